"""How the API reads what callers send: ids in range, JSON strings and booleans as JSON has them.

Ids are 1..ID_MAX, the largest value a signed 64-bit column holds (PostgreSQL bigint, SQLite INTEGER).
A larger id would reach the database and overflow there, a 500, so every id is bounded before any
query runs: path ids by the "id" converter (registered in config/api.py), which leaves them unresolved
(404); body ids by `IdField` and query parameters by `int_param`, both 400s naming the field.

The APIs are JSON-only, so the spec's string and boolean fields take JSON strings and true / false,
not the form-style coercions DRF applies by default (123 becomes "123", "yes" becomes True).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

ID_MAX = 2**63 - 1


class IdConverter:
    """A path id in 1..ID_MAX; anything else does not match, so the URL does not resolve (a 404)."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)  # a ValueError (over 4,300 digits) is "no match" too
        if not 1 <= number <= ID_MAX:
            raise ValueError(f"id {value} is out of range")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


class IdField(serializers.IntegerField):
    """An id in a request body: an integer in 1..ID_MAX."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=ID_MAX, **kwargs)


class StrictCharField(serializers.CharField):
    """A JSON string. DRF's CharField would also take a number and turn it into one."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false. DRF's BooleanField would also take "yes", "true", 1, "on", …"""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def int_param(request: Request, name: str, *, maximum: int = ID_MAX) -> int | None:
    """Query parameter `name` as an integer in 1..maximum (an id unless told otherwise); None when it
    is absent or empty. Anything else is a 400 naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise serializers.ValidationError({name: [f"A positive integer is required, got {shown!r}."]}) from None
    if value < 1:
        raise serializers.ValidationError({name: ["Must be at least 1."]})
    if value > maximum:
        raise serializers.ValidationError({name: [f"Must be at most {maximum}."]})
    return value
