"""mask_value and mask_rows: what a caller without the grant sees."""

from __future__ import annotations

import hashlib

import pytest

from connectors.sqlgov import OutputColumn, mask_column, mask_rows, mask_value


def test_full_masking_hides_the_whole_value():
    assert mask_value("ann@example.com", "full") == "***MASKED***"
    assert mask_value(12345, "full") == "***MASKED***"


def test_partial_masking_keeps_an_emails_first_letter_and_domain():
    assert mask_value("john.smith@example.com", "partial") == "j***@example.com"


@pytest.mark.parametrize("phone", ["555-123-1234", "+1 (555) 123-1234", "5551231234"])
def test_partial_masking_keeps_the_last_four_digits_of_a_phone(phone):
    assert mask_value(phone, "partial") == "***-***-1234"


def test_partial_masking_keeps_the_first_character_of_other_strings():
    assert mask_value("Diabetes", "partial") == "D***"
    assert mask_value("", "partial") == "***"


def test_hash_masking_is_a_stable_sha256_prefix():
    expected = "sha256:" + hashlib.sha256(b"ann@example.com").hexdigest()[:16]
    assert mask_value("ann@example.com", "hash") == expected
    assert mask_value(42, "hash") == "sha256:" + hashlib.sha256(b"42").hexdigest()[:16]


def test_null_masking_drops_the_value():
    assert mask_value("ann@example.com", "null") is None


@pytest.mark.parametrize("style", ["full", "partial", "hash", "null"])
def test_none_stays_none_for_every_style(style):
    assert mask_value(None, style) is None


def test_an_unknown_style_masks_fully():
    assert mask_value("secret", "sparkly") == "***MASKED***"


def test_mask_rows_masks_only_masked_columns_and_leaves_the_input_alone():
    rows = [{"id": 1, "email": "ann@example.com", "phone": "555-000-1234"}]
    cols = [
        OutputColumn(name="id", masked=False, sensitivity=None, masking_style="full"),
        OutputColumn(name="email", masked=True, sensitivity="pii", masking_style="partial"),
        OutputColumn(name="phone", masked=False, sensitivity="pii", masking_style="hash"),
    ]
    assert mask_rows(rows, cols) == [{"id": 1, "email": "a***@example.com", "phone": "555-000-1234"}]
    assert rows[0]["email"] == "ann@example.com"


def test_mask_rows_uses_the_strictest_style_for_a_repeated_name():
    cols = [
        OutputColumn(name="v", masked=True, sensitivity="pii", masking_style="partial"),
        OutputColumn(name="v", masked=True, sensitivity="phi", masking_style="null"),
    ]
    assert mask_rows([{"v": "x"}], cols) == [{"v": None}]


@pytest.mark.parametrize("style", ["full", "partial", "hash", "null", "unknown-style"])
def test_a_masked_column_equals_its_values_masked_one_by_one(style):
    values = ["ann@example.com", None, "555-123-1234", 12345, 1.5, True, "", "x"]
    assert mask_column(values, style) == [mask_value(v, style) for v in values]
