"""One JSON error shape for every API 4xx/5xx: {"error": {"code", "message", "field"}}."""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, DjangoValidationError):  # raised by a model's full_clean() in a service
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, RequestDataTooBig):  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, read by DRF
        return Response(
            error_body("too_large", "The request body is too large; send less per request."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(
            error_body("server_error", "Something went wrong on our side; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_error_body(response.data)
    else:
        detail = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else exc
        code = str(getattr(detail, "code", None) or getattr(exc, "default_code", "error"))
        response.data = error_body(_public_code(exc, code), str(detail))
    return response


def _public_code(exc: Exception, code: str) -> str:
    if isinstance(exc, exceptions.Throttled):
        return "rate_limited"
    if isinstance(exc, exceptions.ParseError):
        return "malformed_request"
    return code


def _validation_error_body(data: Any) -> dict[str, Any]:
    """Name the first bad field in `field`/`message`; list every problem under `details`."""
    details = _flatten(data)
    field, message = details[0] if details else (None, "Invalid input.")
    return error_body(
        "invalid",
        f"{field}: {message}" if field else message,
        field,
        details=[{"field": f, "message": m} for f, m in details],
    )


def _flatten(data: Any, path: str = "") -> list[tuple[str | None, str]]:
    if isinstance(data, dict):
        items: list[tuple[str | None, str]] = []
        for key, value in data.items():
            if isinstance(key, int):  # DRF keys a nested list's errors by position
                items += _flatten(value, f"{path}[{key}]")
                continue
            name = None if key in ("non_field_errors", "detail") else key
            items += _flatten(value, f"{path}.{name}" if path and name else (name or path))
        return items
    if isinstance(data, list):
        if all(isinstance(item, (str, exceptions.ErrorDetail)) for item in data):
            return [(path or None, str(item)) for item in data]
        items = []
        for index, item in enumerate(data):
            items += _flatten(item, f"{path}[{index}]" if path else f"[{index}]")
        return items
    return [(path or None, str(data))]


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body("not_found", f"No endpoint at {request.path}."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it has been logged."),
            status=500,
        )
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)
