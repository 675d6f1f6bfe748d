"""One JSON error shape for every API 4xx/5xx: {"error": {"code", "message", "field"}}."""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)
_json = JSONRenderer()


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    if request is not None:  # errors are JSON whatever the view renders (YAML schema, CSV)
        request.accepted_renderer, request.accepted_media_type = _json, "application/json"
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


# Django answers these itself (outside any view) with HTML pages; under /api/ they are JSON.
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        # Not the exception's text: a SuspiciousOperation's message is meant for our logs.
        message = "The request was refused (its Host header, size or form is not accepted)."
        return JsonResponse(error_body("bad_request", message), status=400)
    from django.views.defaults import bad_request as default_bad_request

    return default_bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        message = "You do not have permission to do this."
        return JsonResponse(error_body("permission_denied", message), status=403)
    from django.views.defaults import permission_denied as default_permission_denied

    return default_permission_denied(request, exception)


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


# What each error status means for any operation (the body is always ERROR_SCHEMA).
ERROR_STATUSES = {
    400: "Invalid or malformed request: `error.field` names the first bad field.",
    401: "No server key, or an unknown or revoked one.",
    403: "The key may not do this (scope, IP range, key kind, deactivated tenant).",
    404: "Not found (or another tenant's).",
    405: "Method not allowed.",
    409: "Conflicts with what exists (e.g. an event id reused for a different event).",
    413: "The request body is too large.",
    415: "Unsupported Content-Type.",
    429: "Over the key's rate limit: retry after Retry-After seconds.",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "nullable": True},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string", "nullable": True},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


def document_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation lists the errors it may answer."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status_code, description in ERROR_STATUSES.items():
                responses.setdefault(
                    str(status_code), {"description": description, "content": error}
                )
    return result
