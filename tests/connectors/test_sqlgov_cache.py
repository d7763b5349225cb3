"""prepare_query_cached: the same plan for the same inputs, another for any input that differs."""

from __future__ import annotations

import pytest

from connectors.sqlgov import GovernanceError, cache_clear, cache_stats, prepare_query, prepare_query_cached
from connectors.types import Grants
from tests.connectors.test_sqlgov_fixtures import crm_catalog, region_policy

CRM = crm_catalog()
SQL = "SELECT id, email, region FROM users"


@pytest.fixture(autouse=True)
def _empty_cache():
    cache_clear()


def prepared(sql: str = SQL, **overrides):
    kwargs = {
        "sources": [CRM],
        "allowed_schemas": None,
        "policies": [],
        "bindings": {"user.id": 1},
        "row_cap": 100,
        "grants": Grants(),
        **overrides,
    }
    return prepare_query_cached(sql, **kwargs)


def test_the_same_inputs_are_prepared_once_and_give_what_prepare_query_gives():
    first, second = prepared(), prepared()
    assert cache_stats()["hits"] == 1
    assert cache_stats()["misses"] == 1
    uncached = prepare_query(
        SQL, sources=[CRM], allowed_schemas=None, policies=[], bindings={}, row_cap=100, grants=Grants()
    )
    assert first == second == uncached


@pytest.mark.parametrize(
    "change",
    [
        {"sql": "SELECT id, email FROM users"},
        {"sources": [crm_catalog()]},  # the same contents, but a rebuilt catalog: it may have changed
        {"allowed_schemas": {"crm": {"public"}}},
        {"policies": [region_policy()], "bindings": {"member.region": "north"}},
        {"row_cap": 50},
        {"grants": Grants(pii=True)},
    ],
)
def test_any_changed_input_is_prepared_anew(change):
    prepared()
    sql = change.pop("sql", SQL)
    prepared(sql, **change)
    assert cache_stats()["hits"] == 0
    assert cache_stats()["misses"] == 2


def test_bindings_are_part_of_the_key_when_a_policy_may_use_them():
    north = prepared(policies=[region_policy()], bindings={"member.region": "north"})
    south = prepared(policies=[region_policy()], bindings={"member.region": "south"})
    assert "'north'" in north.sql
    assert "'south'" in south.sql
    assert cache_stats()["hits"] == 0


@pytest.mark.parametrize(("one", "other"), [(1, "1"), (1, 1.0), (1, True), ([1, 2], "[1, 2]")])
def test_bindings_that_only_print_alike_are_other_keys(one, other):
    prepared(policies=[region_policy()], bindings={"member.region": one})
    prepared(policies=[region_policy()], bindings={"member.region": other})
    assert cache_stats()["hits"] == 0


def test_without_policies_other_callers_share_the_plan():
    prepared(bindings={"user.id": 1})
    prepared(bindings={"user.id": 2})
    assert cache_stats()["hits"] == 1


def test_bindings_json_cannot_write_are_never_kept():
    prepared(policies=[region_policy()], bindings={"member.region": {"north"}})
    prepared(policies=[region_policy()], bindings={"member.region": {"north"}})
    assert cache_stats() == {"hits": 0, "misses": 0, "size": 0}


def test_each_caller_gets_its_own_copy():
    first = prepared()
    first.warnings.append("mine")
    first.output_columns[1].masked = False
    second = prepared()
    assert second.warnings == []
    assert second.masked_columns == ["email"]


def test_a_refused_query_is_refused_every_time_and_not_kept():
    for _ in range(2):
        with pytest.raises(GovernanceError):
            prepared("DELETE FROM users")
    assert cache_stats()["size"] == 0
