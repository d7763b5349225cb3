"""Step 4 of the governed path: replace the values of masked output columns."""

from __future__ import annotations

import hashlib
import re

from connectors.sqlgov.prepared import OutputColumn

FULL_MASK = "***MASKED***"
_STRICTNESS = ("partial", "full", "hash", "null")
_EMAIL = re.compile(r"^([^@\s])[^@\s]*@([^@\s]+)$")
_PHONE = re.compile(r"^\+?[\d\s().\-]+$")


def mask_value(value: object, style: str) -> object:
    """The masked form of a JSON-safe value (None stays None)."""
    if value is None:
        return None
    if style == "null":
        return None
    if style == "hash":
        return "sha256:" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:16]
    if style == "partial":
        return _partial(str(value))
    return FULL_MASK  # "full", and any unknown style: fail closed


def mask_column(values: list[object], style: str) -> list[object]:
    """`[mask_value(v, style) for v in values]` for JSON-safe values, without a call per value where
    the style does not look at the value."""
    if style == "null":
        return [None] * len(values)
    if style in ("partial", "hash"):
        return [mask_value(v, style) for v in values]
    return [None if v is None else FULL_MASK for v in values]  # "full", and any unknown style


def _partial(text: str) -> str:
    if match := _EMAIL.match(text):
        return f"{match.group(1)}***@{match.group(2)}"
    digits = re.sub(r"\D", "", text)
    if _PHONE.match(text) and len(digits) >= 7:
        return f"***-***-{digits[-4:]}"
    return f"{text[:1]}***" if text else "***"


def mask_rows(rows: list[dict], columns: list[OutputColumn]) -> list[dict]:
    """Rows keyed by output column name; masked columns get their style (the strictest when a
    name appears twice)."""
    styles: dict[str, str] = {}
    for column in columns:
        if column.masked:
            current = styles.get(column.name)
            style = column.masking_style if column.masking_style in _STRICTNESS else "null"
            if current is None or _STRICTNESS.index(style) > _STRICTNESS.index(current):
                styles[column.name] = style
    if not styles:
        return rows
    masked_rows = []
    for row in rows:
        copy = dict(row)
        for name, style in styles.items():
            if name in copy:
                copy[name] = mask_value(copy[name], style)
        masked_rows.append(copy)
    return masked_rows
