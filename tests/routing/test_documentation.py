"""The routing rules documentation: linked from the API schema, served there, complete."""

import re

import pytest

from routing.conditions import CONDITION_KEYS, CONTACT_ATTRIBUTES, DAYS, OPERATORS
from routing.models import RoutingRule

pytestmark = pytest.mark.django_db


def test_the_schema_links_the_rules_documentation_at_a_url_that_serves_it(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    help_text = schema["components"]["schemas"]["RoutingRule"]["properties"]["conditions"][
        "description"
    ]
    (link,) = re.findall(r"\]\((/[^)]+)\)", help_text)

    page = client.get(link)

    assert page.status_code == 200
    assert page["Content-Type"] == "text/plain; charset=utf-8"
    assert page.content.decode().startswith("# routing: smart-IVR rules")


def test_the_documentation_names_every_condition_operator_and_action(client):
    text = client.get("/api/docs/routing-rules").content.decode()

    documented = set(re.findall(r"`([a-z_]+)`", text))
    for name in (*CONDITION_KEYS, *OPERATORS, *CONTACT_ATTRIBUTES, *RoutingRule.Action.values):
        assert name in documented, name
    assert set(DAYS) <= documented
    assert "/api/v1/routing/dry-run" in text and "/api/v1/routing/decide" in text
