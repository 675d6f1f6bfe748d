"""Content negotiation for the hot endpoints, which only ever answer JSON."""

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

ANY_JSON = {"", "*/*", "application/json"}


class JsonFirstNegotiation(DefaultContentNegotiation):
    """Skip parsing the Accept header when it takes anything (what phone systems send)."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        takes_json = request.META.get("HTTP_ACCEPT", "") in ANY_JSON
        asks_format = format_suffix or self.settings.URL_FORMAT_OVERRIDE in request.query_params
        if takes_json and not asks_format and renderers[0].format == "json":
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
