"""Errors the driver layer raises, and the scrubbing that keeps credentials out of them.

Every driver exception is translated into one of these before it leaves the package, so callers
(the governed path, the workers, the data-source test endpoint) handle four codes and never a
psycopg, PyMySQL, sqlite3 or DuckDB type. `message` is shown to users: it never carries a password.
"""

from __future__ import annotations

import re

from connectors.types import ConnectionSpec


class EngineError(Exception):
    code = "QUERY_EXECUTION_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DataSourceUnavailable(EngineError):
    code = "DATA_SOURCE_UNAVAILABLE"


class QueryTimeout(EngineError):
    code = "QUERY_TIMEOUT"


class QueryCancelled(EngineError):
    code = "CANCELLED"


class QueryExecutionError(EngineError):
    code = "QUERY_EXECUTION_ERROR"


# key=value DSNs (libpq, the DuckDB scanners), URLs with user:password@, and quoted variants.
_SECRET_PATTERNS = (
    re.compile(r"""(?i)\b(password|passwd|pwd)\s*=\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\S+)"""),
    re.compile(r"(?i)\b(password|passwd|pwd)\s+'(?:[^']|'')*'"),
    re.compile(r"(://[^:/@\s]*:)[^@\s]*@"),
)


def scrub(text: str, spec: ConnectionSpec | None = None, *, secrets: tuple[str, ...] = ()) -> str:
    """`text` with every password it may contain replaced by ***."""
    candidates = [s for s in (*secrets, spec.password if spec else "") if s]
    for secret in sorted(candidates, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}=***", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)} '***'", text)
    return _SECRET_PATTERNS[2].sub(r"\1***@", text)


def first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def endpoint(spec: ConnectionSpec, default_port: int) -> str:
    return f"{spec.host or 'localhost'}:{spec.port or default_port}"


def unreachable(spec: ConnectionSpec, default_port: int, detail: str) -> DataSourceUnavailable:
    return DataSourceUnavailable(f"Cannot reach {endpoint(spec, default_port)}: {scrub(detail, spec)}")


def auth_failed(spec: ConnectionSpec) -> DataSourceUnavailable:
    return DataSourceUnavailable(f"Authentication failed for user {spec.user!r}")


def database_missing(name: str) -> DataSourceUnavailable:
    return DataSourceUnavailable(f"Database {name!r} does not exist")


def file_missing(path: str) -> DataSourceUnavailable:
    return DataSourceUnavailable(f"Database file {path!r} does not exist")
