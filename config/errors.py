"""Domain errors. Services raise these; the one exception handler renders them.

`code` is the API's error code (envelope `error.code`, or the query editor's `code`),
`status` the HTTP status, `details` an optional mapping (field -> messages for BAD_REQUEST).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "INTERNAL_SERVER_ERROR"
    status = 500
    default_message = "Internal server error"

    def __init__(self, message: str | None = None, *, code: str | None = None, details: Any = None) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details
        super().__init__(self.message)


class BadRequest(DomainError):
    code = "BAD_REQUEST"
    status = 400
    default_message = "Invalid request data"


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"
    status = 401
    default_message = "Invalid or missing authentication token"


class Forbidden(DomainError):
    code = "FORBIDDEN"
    status = 403
    default_message = "You do not have permission to perform this action"


class NotFound(DomainError):
    code = "NOT_FOUND"
    status = 404
    default_message = "Not found"


class Conflict(DomainError):
    code = "CONFLICT"
    status = 409
    default_message = "Conflict"


class ServiceUnavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    default_message = "A backing service is unavailable; try again shortly"
