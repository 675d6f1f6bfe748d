"""Content negotiation for the hot endpoints, which only ever answer JSON."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.http import HttpRequest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.settings import api_settings

ANY_JSON = {"", "*/*", "application/json"}


def takes_plain_json(request: HttpRequest, query_params: Mapping[str, Any]) -> bool:
    """The request takes JSON and asks for no other format (so any JSON renderer answers it)."""
    return (
        request.META.get("HTTP_ACCEPT", "") in ANY_JSON
        and api_settings.URL_FORMAT_OVERRIDE not in query_params
    )


class JsonFirstNegotiation(DefaultContentNegotiation):
    """Skip parsing the Accept header when it takes anything (what phone systems send)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        plain = not format_suffix and takes_plain_json(request, request.query_params)
        first = next(iter(renderers))
        if plain and first.format == "json":
            return first, first.media_type
        chosen: tuple[BaseRenderer, str] = super().select_renderer(
            request, renderers, format_suffix
        )
        return chosen
