"""The one pagination of list endpoints: ?limit= (capped) and ?offset= (checked), or a 400."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.views import APIView

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# PostgreSQL's OFFSET is a bigint; far below it, an offset past any real list is an empty page.
MAX_OFFSET = 1_000_000_000


class Pagination(LimitOffsetPagination):
    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int:
        given = _checked(request, self.limit_query_param, minimum=1, maximum=None)
        return self.default_limit if given is None else min(given, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _checked(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET) or 0

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"] |= {"minimum": 1, "default": DEFAULT_LIMIT}
                parameter["description"] = f"Per page (at most {MAX_LIMIT}: more is capped)."
            else:
                parameter["schema"] |= {"minimum": 0, "maximum": MAX_OFFSET}
        return parameters


def _checked(request: Request, name: str, *, minimum: int, maximum: int | None) -> int | None:
    """The integer query parameter `name` (None when absent); ValidationError when out of range."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise exceptions.ValidationError({name: ["A whole number."]}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else " up")
        raise exceptions.ValidationError({name: [f"A whole number {bounds}."]})
    return value
