"""Step 4 decided up front: which output columns are masked for this caller, and where masked
columns may not be used."""

from __future__ import annotations

import pytest

from connectors.sqlgov import GovernanceError
from connectors.types import Grants
from tests.connectors.test_sqlgov_fixtures import crm_catalog, prepare


def columns(sql: str, grants: Grants | None = None) -> dict[str, tuple[bool, str | None, str]]:
    prepared = prepare(sql, grants=grants)
    return {c.name: (c.masked, c.sensitivity, c.masking_style) for c in prepared.output_columns}


def masked(sql: str, grants: Grants | None = None) -> dict[str, bool]:
    return {name: value[0] for name, value in columns(sql, grants).items()}


def test_a_pii_column_is_masked_without_the_grant():
    assert columns("SELECT id, email FROM users") == {
        "id": (False, None, "full"),
        "email": (True, "pii", "partial"),
    }


def test_a_pii_column_is_not_masked_with_the_pii_grant():
    assert columns("SELECT email FROM users", Grants(pii=True)) == {"email": (False, "pii", "partial")}


def test_a_renamed_pii_column_stays_masked():
    assert masked("SELECT email AS contact FROM users") == {"contact": True}


def test_count_of_a_pii_column_is_not_masked():
    assert masked("SELECT COUNT(email) AS n, COUNT(DISTINCT email) AS d, COUNT(*) AS c FROM users") == {
        "n": False,
        "d": False,
        "c": False,
    }


def test_a_function_of_a_pii_column_is_masked():
    assert masked("SELECT UPPER(email), LENGTH(email) AS l FROM users") == {"upper": True, "l": True}


@pytest.mark.parametrize(
    "expression",
    [
        "MIN(email)",
        "MAX(email)",
        "STRING_AGG(email, ',')",
        "ARRAY_AGG(email)",
        "COUNT(CASE WHEN email LIKE 'a%' THEN 1 END)",
        "CASE WHEN id > 1 THEN email ELSE 'none' END",
        "CAST(email AS VARCHAR(200))",
        "name || ' <' || email || '>'",
        "CONCAT(name, email)",
        "COALESCE(NULL, email)",
    ],
)
def test_values_derived_from_a_pii_column_are_masked(expression):
    assert masked(f"SELECT {expression} AS v FROM users") == {"v": True}


def test_a_pii_column_passed_through_a_cte_is_masked():
    assert masked("WITH c AS (SELECT email AS e, name FROM users) SELECT e, name FROM c") == {"e": True, "name": False}


def test_a_pii_column_passed_through_nested_subqueries_is_masked():
    sql = "SELECT x FROM (SELECT y AS x FROM (SELECT email AS y FROM users) a) b"
    assert masked(sql) == {"x": True}


def test_star_over_a_cte_keeps_masking_per_column():
    assert masked("WITH c AS (SELECT * FROM users) SELECT * FROM c") == {
        "id": False,
        "email": True,
        "phone": True,
        "name": False,
        "region": False,
        "owner_email": False,
    }


def test_a_union_branch_feeding_pii_masks_the_output_column():
    assert masked("SELECT name FROM products p JOIN users u ON u.id = p.id UNION SELECT email FROM users") == {
        "name": True
    }


def test_a_scalar_subquery_over_a_pii_column_is_masked():
    assert masked("SELECT (SELECT MAX(u2.email) FROM users u2 WHERE u2.id = u.id) AS m, u.id FROM users u") == {
        "m": True,
        "id": False,
    }


def test_a_phi_column_needs_the_phi_grant():
    assert columns("SELECT diagnosis FROM patients", Grants(pii=True)) == {"diagnosis": (True, "phi", "null")}
    assert columns("SELECT diagnosis FROM patients", Grants(phi=True)) == {"diagnosis": (False, "phi", "null")}


def test_a_column_derived_from_pii_and_phi_needs_both_grants():
    sql = "SELECT email || diagnosis AS both_ FROM patients"
    assert masked(sql, Grants(pii=True)) == {"both_": True}
    assert masked(sql, Grants(phi=True)) == {"both_": True}
    assert masked(sql, Grants(pii=True, phi=True)) == {"both_": False}


def test_the_strictest_masking_style_wins():
    assert columns("SELECT email || phone AS v FROM users")["v"] == (True, "pii", "hash")
    assert columns("SELECT email || diagnosis AS v FROM patients")["v"] == (True, "phi", "null")


def test_a_plain_column_is_never_masked():
    assert masked("SELECT u.name, o.amount FROM users u JOIN orders o ON o.user_id = u.id") == {
        "name": False,
        "amount": False,
    }


@pytest.mark.parametrize(
    ("sql", "clause"),
    [
        ("SELECT id FROM users WHERE email = 'a@b.c'", "WHERE"),
        ("SELECT id FROM users WHERE email LIKE 'a%'", "WHERE"),
        ("SELECT u.id FROM users u JOIN patients p ON p.email = u.email", "JOIN ON"),
        ("SELECT email, COUNT(*) FROM users GROUP BY email", "GROUP BY"),
        ("SELECT COUNT(*) FROM users GROUP BY UPPER(email)", "GROUP BY"),
        ("SELECT id FROM users ORDER BY email", "ORDER BY"),
        ("SELECT id, email AS e FROM users ORDER BY e", "ORDER BY"),
        ("SELECT id, email FROM users ORDER BY 2", "ORDER BY"),
        ("SELECT region FROM users GROUP BY region HAVING MAX(email) > 'm'", "HAVING"),
        ("SELECT ROW_NUMBER() OVER (PARTITION BY email) AS r FROM users", "PARTITION BY"),
        ("SELECT RANK() OVER (ORDER BY email) AS r FROM users", "ORDER BY"),
        ("WITH c AS (SELECT email AS e FROM users) SELECT COUNT(*) FROM c WHERE e = 'x'", "WHERE"),
        ("SELECT id FROM orders WHERE product_id IN (SELECT email FROM users)", "WHERE"),
        ("SELECT id FROM orders WHERE user_id IN (SELECT id FROM users WHERE email = 'x')", "WHERE"),
        ("SELECT id FROM patients WHERE diagnosis = 'flu'", "WHERE"),
    ],
)
def test_it_rejects_using_a_masked_column_where_it_would_leak(sql, clause):
    with pytest.raises(GovernanceError) as caught:
        prepare(sql)
    assert caught.value.code == "POLICY_VIOLATION"
    assert caught.value.check == "masked_column_usage"
    assert clause in caught.value.message


def test_the_violation_names_the_column():
    with pytest.raises(GovernanceError, match="users.email"):
        prepare("SELECT id FROM users WHERE email = 'a@b.c'")


def test_a_granted_caller_may_filter_on_a_pii_column():
    prepared = prepare("SELECT id FROM users WHERE email = 'a@b.c' ORDER BY email", grants=Grants(pii=True))
    assert prepared.output_columns[0].name == "id"


def test_a_pii_grant_does_not_allow_filtering_on_phi():
    with pytest.raises(GovernanceError, match="PHI"):
        prepare("SELECT id FROM patients WHERE diagnosis = 'flu'", grants=Grants(pii=True))


def test_count_of_a_masked_column_in_select_is_allowed():
    prepared = prepare("SELECT region, COUNT(email) AS n FROM users GROUP BY region ORDER BY n DESC")
    assert [(c.name, c.masked) for c in prepared.output_columns] == [("region", False), ("n", False)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT row_to_json(u) FROM users u",
        "SELECT to_jsonb(u.*) FROM users u",
        "SELECT json_agg(u.*) FROM users u",
        "SELECT u FROM users u",
    ],
)
def test_a_whole_row_reference_carries_the_rows_pii(sql):
    assert list(masked(sql).values()) == [True]


def test_a_whole_row_reference_without_sensitive_columns_is_not_masked():
    assert list(masked("SELECT row_to_json(o) FROM orders o").values()) == [False]


def test_it_rejects_a_masked_column_in_an_offset_subquery():
    with pytest.raises(GovernanceError, match="OFFSET"):
        prepare("SELECT id FROM users LIMIT 1 OFFSET (SELECT LENGTH(email) FROM users LIMIT 1)")


def test_a_recursive_cte_is_analysed():
    sql = "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r"
    assert masked(sql) == {"n": False}


def test_computed_columns_get_readable_names():
    assert list(masked("SELECT COUNT(*), UPPER(name), UPPER(region), 1 FROM users")) == [
        "count",
        "upper",
        "upper_2",
        "value",
    ]


def test_it_rejects_duckdb_group_by_all_over_a_masked_column():
    duck = crm_catalog(engine="duckdb", schema="main")
    with pytest.raises(GovernanceError, match="GROUP BY ALL"):
        prepare("SELECT email, COUNT(*) AS n FROM users GROUP BY ALL", sources=[duck])
    assert prepare("SELECT region, MAX(email) AS m FROM users GROUP BY ALL", sources=[duck]).output_columns[1].masked
