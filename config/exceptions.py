"""One exception handler: domain errors, DRF's and Django's exceptions → the API's error shapes.

Views choose the shape with `error_style`:
- "envelope" (default): {"success": false, "error": {"code","message","details"}, "message"}
- "detail" (query editor, spec 004): {"detail": "…", "code": "…"}
- "validation422" (program API, spec 002): 422 {"detail": [{"loc","msg","type"}]} for bad input
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from config.errors import DomainError

logger = logging.getLogger("prompt_studio.api")

STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    429: "RATE_LIMITED",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def _flatten_messages(detail: Any) -> Any:
    """DRF ErrorDetail trees → plain JSON (lists of strings, nested dicts)."""
    if isinstance(detail, dict):
        return {str(k): _flatten_messages(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten_messages(v) for v in detail]
    return str(detail)


def _first_message(details: Any) -> str:
    if isinstance(details, dict):
        for key, value in details.items():
            inner = _first_message(value)
            return f"{key}: {inner}" if key != "non_field_errors" else inner
    if isinstance(details, list) and details:
        return _first_message(details[0])
    return str(details)


def _normalize(exc: Exception) -> tuple[int, str, str, Any, dict[str, str]]:
    """→ (status, code, message, details, extra headers) or raise to signal 'unexpected'."""
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        return exc.status, exc.code, exc.message, exc.details, headers
    if isinstance(exc, DjangoValidationError):
        exc = drf.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.ValidationError):
        details = _flatten_messages(exc.detail)
        if not isinstance(details, dict):
            details = {"non_field_errors": details if isinstance(details, list) else [details]}
        return 400, "BAD_REQUEST", _first_message(details), details, headers
    if isinstance(exc, drf.ParseError):
        return 400, "BAD_REQUEST", f"Malformed request body: {exc.detail}", {"body": [str(exc.detail)]}, headers
    if isinstance(exc, drf.Throttled):
        wait = int(exc.wait) if exc.wait is not None else None
        if wait is not None:
            headers["Retry-After"] = str(max(wait, 1))
        message = "Rate limit exceeded" + (f"; retry in {max(wait, 1)} s" if wait is not None else "")
        return 429, "RATE_LIMITED", message, {"retry_after_seconds": wait}, headers
    if isinstance(exc, drf.APIException):
        status = exc.status_code
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            status = 401
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        code = STATUS_CODES.get(status, "ERROR")
        detail = exc.detail
        message = str(detail) if not isinstance(detail, dict | list) else _first_message(_flatten_messages(detail))
        return status, code, message, None, headers
    raise exc


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    view = context.get("view")
    request = context.get("request")
    style = getattr(view, "error_style", "envelope")
    try:
        status, code, message, details, headers = _normalize(exc)
    except Exception:  # anything not anticipated: log it with the request id, answer without internals
        request_id = getattr(request, "request_id", "-") if request is not None else "-"
        logger.exception("Unhandled error in %s (request %s)", type(view).__name__ if view else "?", request_id)
        status, code, headers = 500, "INTERNAL_SERVER_ERROR", {}
        message = f"Internal server error (request id {request_id})"
        details = {"request_id": request_id}
    if style == "validation422" and status == 400:
        status = 422
        if isinstance(exc, drf.ValidationError):  # keep the nested paths and DRF's error codes
            return Response({"detail": validation_entries(exc.detail)}, status=status, headers=headers)
    return Response(render_error(style, status, code, message, details), status=status, headers=headers)


# DRF error codes → the `type` of a spec-002 (FastAPI-style) validation error.
_VALIDATION_TYPES = {
    "required": "missing",
    "null": "missing",
    "blank": "string_too_short",
    "max_length": "string_too_long",
    "min_length": "string_too_short",
    "invalid_choice": "enum",
    "not_a_list": "list_type",
    "not_a_dict": "dict_type",
    "empty": "too_short",
    "unique": "value_error",
}


def validation_entries(detail: Any, loc: tuple[Any, ...] = ("body",)) -> list[dict[str, Any]]:
    """A DRF error tree → [{"loc": ["body", "artifacts", 0, "data"], "msg", "type"}, …], one per message."""
    if isinstance(detail, dict):
        entries = []
        for key, value in detail.items():
            step = key if isinstance(key, int) else str(key)
            entries += validation_entries(value, loc if key in ("non_field_errors", "__all__") else (*loc, step))
        return entries
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):  # the messages of one field
            return [entry for item in detail for entry in validation_entries(item, loc)]
        entries = []
        for index, item in enumerate(detail):  # a list field: {} / [] for the items without errors
            entries += validation_entries(item, (*loc, index))
        return entries
    code = getattr(detail, "code", None) or "invalid"
    if code in _VALIDATION_TYPES.values() or code.endswith("_type"):
        kind = code  # already a spec-002 type, given by the serializer
    else:
        kind = _VALIDATION_TYPES.get(code, "type_error" if code == "invalid" else "value_error")
    return [{"loc": list(loc), "msg": str(detail), "type": kind}]


def render_error(style: str, status: int, code: str, message: str, details: Any) -> Any:
    if style == "detail":
        return {"detail": message, "code": code}
    if style == "validation422" and status in (400, 422) and isinstance(details, dict):
        return {"detail": [{"loc": [k], "msg": _first_message(v), "type": "value_error"} for k, v in details.items()]}
    if style == "validation422":
        return {"detail": message}
    return {"success": False, "error": {"code": code, "message": message, "details": details}, "message": message}


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(render_error("envelope", 404, "NOT_FOUND", "Not found", None), status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    request_id = getattr(request, "request_id", "-")
    message = f"Internal server error (request id {request_id})"
    return JsonResponse(
        render_error("envelope", 500, "INTERNAL_SERVER_ERROR", message, {"request_id": request_id}), status=500
    )
