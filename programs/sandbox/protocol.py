"""The line protocol between the parent (runner) and the sandboxed child.

One JSON object per line, UTF-8. The parent writes the start message to the child's stdin; the child then
writes messages to its stdout:

    {"t": "out", "text": "..."}                      program output (buffered in chunks)
    {"t": "call", "method": "...", "args": {...}}    a host call; the parent answers on the child's stdin with
                                                     {"ok": true, "result": ...} or
                                                     {"ok": false, "error_type": "KeyError", "message": "..."}
    {"t": "done", "error": null | "line 3: ..."}     the program finished (or failed) normally

This module is imported by the child, so it uses only the standard library.
"""

import datetime
import decimal
import json
import uuid
from typing import Any

# Host calls the child may make. Anything else is a protocol violation and ends the run.
CALL_METHODS = frozenset({"run_sql", "get_artifact", "store_artifact", "primitive"})
PRIMITIVES = frozenset({"classify", "summarize", "extract", "generate"})
ARTIFACT_TYPES = frozenset({"text", "table"})


def to_jsonable(value: Any) -> Any:
    """`default=` hook: turn the values databases and programs commonly hold into JSON ones."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=to_jsonable).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("protocol message is not an object")
    return message


def artifact_problem(identifier: Any, title: Any, artifact_type: Any, data: Any) -> str | None:
    """Why these store_artifact arguments are invalid, or None. Checked on both sides of the pipe."""
    if not isinstance(identifier, str) or not identifier:
        return "artifact identifier must be a non-empty string"
    if not isinstance(title, str):
        return "artifact title must be a string"
    if artifact_type not in ARTIFACT_TYPES:
        return f"artifact_type must be 'text' or 'table', not {artifact_type!r}"
    if artifact_type == "text" and not isinstance(data, str):
        return f"a text artifact needs str data, not {type(data).__name__}"
    if artifact_type == "table" and not (isinstance(data, list) and all(isinstance(row, dict) for row in data)):
        return "a table artifact needs data as a list of dicts"
    return None
