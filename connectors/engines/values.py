"""Turning driver values into JSON-safe ones, and driver type codes into readable type names."""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def to_json_safe(value: Any) -> Any:
    """A value `json.dumps` accepts without a custom encoder, losing as little as possible.

    Decimals become floats (ints when integral), temporal values ISO 8601 strings (aware
    datetimes in UTC with "Z"), bytes base64, UUIDs strings, intervals seconds; NaN and the
    infinities, which JSON cannot express, become None.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [to_json_safe(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    return str(value)


PLAIN_TYPES = frozenset({str, int, bool, type(None)})  # JSON-safe exactly as drivers return them


def _decimal(value: Decimal) -> int | float | None:
    if not value.is_finite():
        return None
    integral = int(value)
    return integral if integral == value else float(value)


def _float(value: float) -> float | None:
    return value if math.isfinite(value) else None


# Exact types whose conversion needs none of to_json_safe's checks (datetime is not here: a subclass
# of date, but its type is not date, and time zones need care).
_CONVERTERS: dict[type, Any] = {
    Decimal: _decimal,
    float: _float,
    dt.date: dt.date.isoformat,
    uuid.UUID: str,
}


def to_json_safe_column(values: Any) -> Any:
    """`[to_json_safe(v) for v in values]`, returning `values` itself when every value is already plain,
    and converting a column of one type without re-deciding for every value."""
    kinds = set(map(type, values))
    if kinds <= PLAIN_TYPES:
        return values
    kinds.discard(type(None))
    if len(kinds) == 1 and (convert := _CONVERTERS.get(kinds.pop())) is not None:
        return [None if v is None else convert(v) for v in values]
    return [v if type(v) in PLAIN_TYPES else to_json_safe(v) for v in values]


# PostgreSQL catalog names → the names people read (and the NL→SQL engines expect).
_PG_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double",
    "bool": "boolean",
    "bpchar": "char",
    "timestamptz": "timestamptz",
    "timetz": "timetz",
}


def pg_type_name(name: str) -> str:
    is_array = name.startswith("_") or name.endswith("[]")
    base = name.removeprefix("_").removesuffix("[]")
    base = _PG_NAMES.get(base, base)
    return base + "[]" if is_array else base


# PyMySQL FIELD_TYPE codes (pymysql.constants.FIELD_TYPE).
_MYSQL_NAMES = {
    0: "decimal",
    1: "tinyint",
    2: "smallint",
    3: "integer",
    4: "float",
    5: "double",
    6: "null",
    7: "timestamp",
    8: "bigint",
    9: "mediumint",
    10: "date",
    11: "time",
    12: "datetime",
    13: "year",
    14: "date",
    15: "varchar",
    16: "bit",
    245: "json",
    246: "decimal",
    247: "enum",
    248: "set",
    249: "blob",
    250: "blob",
    251: "blob",
    252: "blob",
    253: "varchar",
    254: "char",
    255: "geometry",
}
_BINARY_CHARSET = 63


def mysql_type_name(type_code: int, *, charsetnr: int | None = None) -> str:
    name = _MYSQL_NAMES.get(type_code, "unknown")
    # BLOB/VARCHAR codes carry both text and binary columns; the charset tells them apart.
    if name == "blob" and charsetnr is not None and charsetnr != _BINARY_CHARSET:
        return "text"
    if name in {"varchar", "char"} and charsetnr == _BINARY_CHARSET:
        return "varbinary" if name == "varchar" else "binary"
    return name


_DUCKDB_NAMES = {
    "TINYINT": "tinyint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "hugeint",
    "FLOAT": "real",
    "DOUBLE": "double",
    "VARCHAR": "varchar",
    "BOOLEAN": "boolean",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIME WITH TIME ZONE": "timetz",
    "BLOB": "blob",
}


def duckdb_type_name(type_code: object) -> str:
    text = str(type_code)
    if text.startswith("DECIMAL"):
        return "numeric" + text[len("DECIMAL") :].lower()
    return _DUCKDB_NAMES.get(text, text.lower())


def sqlite_type_name(declared: str | None, sample: Any = None) -> str:
    """A declared type when there is one, otherwise one inferred from a value (SQLite is dynamic)."""
    if declared:
        return declared.lower()
    if isinstance(sample, bool | int):
        return "integer"
    if isinstance(sample, float):
        return "double"
    if isinstance(sample, str):
        return "text"
    if isinstance(sample, bytes):
        return "blob"
    return "unknown"
