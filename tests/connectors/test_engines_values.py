"""to_json_safe: every value a driver returns becomes something json.dumps accepts."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal

import pytest

from connectors.engines import to_json_safe, to_json_safe_column
from connectors.engines.errors import scrub
from connectors.types import ConnectionSpec


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (3, 3),
        ("x", "x"),
        (Decimal("12.00"), 12),
        (Decimal("12.50"), 12.5),
        (Decimal("NaN"), None),
        (float("nan"), None),
        (math.inf, None),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2024-01-02T03:04:05Z"),
        (dt.time(3, 4, 5), "03:04:05"),
        (dt.timedelta(minutes=1, seconds=30), 90.0),
        (b"\x00\xff", "AP8="),
        (memoryview(b"ab"), "YWI="),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        ([Decimal("1.5"), dt.date(2024, 1, 1)], [1.5, "2024-01-01"]),
        ({"a": {"b": Decimal("2")}}, {"a": {"b": 2}}),
        ({3, 1, 2}, [1, 2, 3]),
        ((1, b"a"), [1, "YQ=="]),
    ],
)
def test_it_converts_driver_values(value, expected):
    assert to_json_safe(value) == expected


def test_everything_it_returns_serializes():
    row = (Decimal("1.1"), dt.datetime.now(dt.UTC), b"x", uuid.uuid4(), {"k": [float("inf")]})
    json.dumps(to_json_safe(row), allow_nan=False)


def test_scrub_removes_passwords_from_dsns_urls_and_literal_text():
    spec = ConnectionSpec(engine="postgres", password="s3cret")
    text = (
        "failed for host=h password='p\\'w' user=u; mysql password=\"x y\"; "
        "postgresql://u:urlpw@h/db; echoed s3cret; PASSWORD 'lit''eral'"
    )
    cleaned = scrub(text, spec)
    for secret in ("p\\'w", "x y", "urlpw", "s3cret", "lit''eral"):
        assert secret not in cleaned
    assert "user=u" in cleaned


COLUMN_SAMPLES = [
    [1, 2, None, 3],
    ["a", None, "b"],
    [True, False, None],
    [Decimal("1.50"), Decimal("2"), None, Decimal("NaN"), Decimal("-0"), Decimal("1E+30"), Decimal("1E-30")],
    [1.5, float("nan"), math.inf, None],
    [dt.date(2024, 1, 2), None, dt.date(1999, 12, 31)],
    [dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))],
    [dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5)],  # mixed: SQLite has no column types
    [uuid.UUID(int=1), None],
    [b"\x00\x01", memoryview(b"xy"), None],
    [1, "two", Decimal("3.5"), None, dt.time(1, 2), [1, Decimal("2")], {"k": Decimal("1")}],
]


@pytest.mark.parametrize("values", COLUMN_SAMPLES)
def test_a_column_converts_exactly_as_its_values_one_by_one(values):
    converted = to_json_safe_column(tuple(values))
    assert list(converted) == [to_json_safe(v) for v in values]
    assert [type(v) for v in converted] == [type(to_json_safe(v)) for v in values]


def test_a_column_of_plain_values_is_returned_as_it_is():
    values = (1, "a", None, True)
    assert to_json_safe_column(values) is values
