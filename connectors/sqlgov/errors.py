"""The one error the governance engine raises: a query the caller may not run as written."""

from __future__ import annotations

SQL_VALIDATION_ERROR = "SQL_VALIDATION_ERROR"
POLICY_VIOLATION = "POLICY_VIOLATION"


class GovernanceError(Exception):
    """`code` is the API error code, `check` names the failed check, `message` is user-facing."""

    def __init__(self, *, code: str, check: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.check = check
        self.message = message

    @property
    def http_status(self) -> int:
        return 403 if self.code == POLICY_VIOLATION else 400

    @classmethod
    def invalid(cls, check: str, message: str) -> GovernanceError:
        return cls(code=SQL_VALIDATION_ERROR, check=check, message=message)

    @classmethod
    def violation(cls, check: str, message: str) -> GovernanceError:
        return cls(code=POLICY_VIOLATION, check=check, message=message)

    def __repr__(self) -> str:
        return f"GovernanceError(code={self.code!r}, check={self.check!r}, message={self.message!r})"
