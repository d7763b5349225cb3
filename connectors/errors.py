"""Domain errors of the governed path, with the API codes of DESIGN.md."""

from __future__ import annotations

from config.errors import DomainError


class GovernedQueryError(DomainError):
    """A query the governed path refused or could not run. `check` names the failed check, if any."""

    status = 400
    code = "QUERY_EXECUTION_ERROR"
    check = ""

    def __init__(self, message: str, *, code: str | None = None, check: str = "", details: object = None) -> None:
        super().__init__(message, code=code, details=details)
        self.check = check


class SqlValidationFailed(GovernedQueryError):
    code = "SQL_VALIDATION_ERROR"

    @property
    def is_write_attempt(self) -> bool:
        return self.check == "read_only"


class PolicyViolation(GovernedQueryError):
    status = 403
    code = "POLICY_VIOLATION"


class DataSourceUnavailableError(GovernedQueryError):
    code = "DATA_SOURCE_UNAVAILABLE"


class QueryTimeoutError(GovernedQueryError):
    code = "QUERY_TIMEOUT"


class QueryCancelledError(GovernedQueryError):
    code = "CANCELLED"


class QueryExecutionFailed(GovernedQueryError):
    code = "QUERY_EXECUTION_ERROR"
