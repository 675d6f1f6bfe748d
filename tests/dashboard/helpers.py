"""Reading dashboard forms in view tests."""

import re

from django.http import HttpResponse

from dashboard.forms import SUBMIT_TOKEN_FIELD


def form_data(page: HttpResponse, action: str = "", **fields: str) -> dict[str, str]:
    """`fields` plus the one-time submit token of the page's first form (posting to `action`)."""
    html = page.content.decode()
    if action:
        html = html[html.index(f'action="{action}"') :]
    match = re.search(rf'name="{SUBMIT_TOKEN_FIELD}" value="([^"]+)"', html)
    assert match, "the page has no form with a submit token"
    return {SUBMIT_TOKEN_FIELD: match.group(1), **fields}
