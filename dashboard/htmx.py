"""htmx requests: the same view answers a whole page or, for htmx, just the part that changed."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def is_htmx(request: HttpRequest) -> bool:
    """An htmx request for a fragment (a history restore wants the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_page(
    request: HttpRequest, page: str, fragment: str, context: dict[str, object], status: int = 200
) -> HttpResponse:
    """Render `page`, or only `fragment` (a template the page includes) for htmx."""
    response = render(request, fragment if is_htmx(request) else page, context, status=status)
    # Caches and the back button must never serve a fragment as the page.
    patch_vary_headers(response, ["HX-Request"])
    return response
