"""Pooled source connections against real servers: reuse, the reset every checkout does, and the
connections that must never come back (failed, timed out, cancelled, edited, forked, closed by the
server). Plus the pool's own bookkeeping (expiry and caps) on plain objects."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlparse

import psycopg
import pytest

from connectors import engines
from connectors.engines import QueryCancelled, QueryExecutionError, QueryTimeout, execute, stream
from connectors.engines.pool import ConnectionPool, Lease
from connectors.types import ConnectionSpec
from tests.services import require


@pytest.fixture
def pool_key() -> Iterator[str]:
    key = f"test-{uuid.uuid4()}"
    yield key
    engines.close_pooled(key)


@pytest.fixture(scope="module")
def pg() -> ConnectionSpec:
    url = urlparse(require("postgres"))
    return ConnectionSpec(
        engine="postgres",
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        database=url.path.lstrip("/") or "postgres",
        user=url.username or "postgres",
        password=url.password or "",
    )


@pytest.fixture(scope="module")
def my() -> ConnectionSpec:
    url = urlparse(require("mysql"))
    return ConnectionSpec(
        engine="mysql",
        host=url.hostname or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
    )


def one(spec: ConnectionSpec, sql: str, key: str | None, **kwargs) -> tuple:
    _, rows = execute(spec, sql, timeout_ms=kwargs.pop("timeout_ms", 5000), max_rows=10, pool_key=key, **kwargs)
    return rows[0]


def pg_pid(spec: ConnectionSpec, key: str | None) -> int:
    return one(spec, "SELECT pg_backend_pid()", key)[0]


def pg_backend_alive(spec: ConnectionSpec, pid: int) -> bool:
    with psycopg.connect(
        host=spec.host, port=spec.port, dbname=spec.database, user=spec.user, password=spec.password or None
    ) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0] == 1


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_a_postgres_source_reuses_its_idle_connection(pg, pool_key):
    first = pg_pid(pg, pool_key)
    assert engines.idle_pooled(pool_key) == 1
    assert pg_pid(pg, pool_key) == first
    assert engines.idle_pooled(pool_key) == 1


def test_without_a_pool_key_every_query_has_a_connection_of_its_own(pg):
    first = pg_pid(pg, None)
    assert pg_pid(pg, None) != first


def test_different_sources_do_not_share_connections(pg, pool_key):
    other = f"{pool_key}-other"
    try:
        assert pg_pid(pg, pool_key) != pg_pid(pg, other)
    finally:
        engines.close_pooled(other)


def test_every_checkout_starts_a_read_only_transaction_with_its_own_timeout(pg, pool_key):
    sql = "SELECT pg_backend_pid(), current_setting('transaction_read_only'), current_setting('statement_timeout')"
    pid, read_only, timeout = one(pg, sql, pool_key, timeout_ms=4000)
    assert (read_only, timeout) == ("on", "4s")
    again = one(pg, sql, pool_key, timeout_ms=7000)
    assert again == (pid, "on", "7s")


def test_a_setting_changed_by_one_query_does_not_reach_the_next(pg, pool_key):
    pid, _ = one(pg, "SELECT pg_backend_pid(), set_config('app.leak', 'secret', false)", pool_key)
    assert one(pg, "SELECT pg_backend_pid(), current_setting('app.leak', true)", pool_key) in {(pid, None), (pid, "")}


def test_a_reused_connection_cannot_be_switched_to_read_write(pg, pool_key):
    pg_pid(pg, pool_key)
    with pytest.raises(QueryExecutionError, match="read-write"):
        one(pg, "SELECT set_config('transaction_read_only', 'off', false)", pool_key)


@pytest.mark.parametrize("pipeline", [True, False], ids=["pipelined", "libpq-without-pipeline"])
def test_the_sql_is_always_exactly_one_statement(pg, pool_key, pipeline, monkeypatch):
    if not pipeline:  # an older libpq (< 14): the statements go one by one
        monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    assert one(pg, "SELECT 'a%' AS x, current_setting('transaction_read_only')", pool_key) == ("a%", "on")
    with pytest.raises(QueryExecutionError, match="multiple commands"):
        one(pg, "SELECT 1; COMMIT; SELECT set_config('transaction_read_only', 'off', false)", pool_key)


def test_a_failed_query_closes_its_connection(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    with pytest.raises(QueryExecutionError, match="division by zero"):
        one(pg, "SELECT 1 / (pg_backend_pid() - pg_backend_pid())", pool_key)
    assert engines.idle_pooled(pool_key) == 0
    assert pg_pid(pg, pool_key) != pid


def test_a_timed_out_query_closes_its_connection(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    with pytest.raises(QueryTimeout):
        one(pg, "SELECT count(*) FROM generate_series(1, 100000000)", pool_key, timeout_ms=200)
    assert engines.idle_pooled(pool_key) == 0
    assert pg_pid(pg, pool_key) != pid


def test_a_cancelled_query_closes_its_connection(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(QueryCancelled):
        one(pg, "SELECT count(*) FROM generate_series(1, 100000000)", pool_key, cancel_event=cancel)
    assert engines.idle_pooled(pool_key) == 0
    assert pg_pid(pg, pool_key) != pid


def test_a_stream_left_half_way_leaves_nothing_open_on_its_connection(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    sql = "SELECT g FROM generate_series(1, 1000) g"
    with stream(pg, sql, timeout_ms=5000, max_rows=1000, batch_size=100, pool_key=pool_key) as (_columns, rows):
        assert next(rows) == (1,)
    # The rest stayed on the server, in a cursor the ROLLBACK dropped: the connection is clean to reuse.
    # (The only cursor of ours left is the one this query itself runs in.)
    sql = "SELECT pg_backend_pid(), (SELECT count(*) FROM pg_cursors WHERE name LIKE 'ps\\_%')"
    assert one(pg, sql, pool_key) == (pid, 1)


def test_a_stream_read_to_the_end_returns_its_connection(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    with stream(pg, "SELECT g FROM generate_series(1, 450) g", timeout_ms=5000, max_rows=1000, pool_key=pool_key) as (
        _columns,
        rows,
    ):
        assert sum(1 for _ in rows) == 450
    assert pg_pid(pg, pool_key) == pid


def test_a_result_over_several_batches_comes_whole_through_a_reused_connection(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    _, rows = execute(
        pg, "SELECT g FROM generate_series(1, 25000) g", timeout_ms=5000, max_rows=25000, pool_key=pool_key
    )
    assert [r[0] for r in rows] == list(range(1, 25001))
    assert pg_pid(pg, pool_key) == pid


def test_an_edited_source_gets_a_new_connection_and_the_old_one_is_closed(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    edited = replace(pg, options={"application_name": "prompt-studio-edited"})
    assert one(edited, "SELECT pg_backend_pid(), current_setting('application_name')", pool_key)[1] == (
        "prompt-studio-edited"
    )
    assert not pg_backend_alive(pg, pid)


def test_closing_a_key_closes_its_idle_connections_on_the_server(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    assert engines.close_pooled(pool_key) == 1
    assert engines.idle_pooled(pool_key) == 0
    assert not pg_backend_alive(pg, pid)


def test_an_idle_connection_the_server_closed_is_replaced(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    with psycopg.connect(
        host=pg.host, port=pg.port, dbname=pg.database, user=pg.user, password=pg.password or None, autocommit=True
    ) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0] is True
    new_pid = pg_pid(pg, pool_key)
    assert new_pid != pid


def test_a_forked_child_neither_uses_nor_closes_its_parents_connections(pg, pool_key):
    pid = pg_pid(pg, pool_key)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report what it sees, then leave without running any cleanup
        try:
            report = {"idle": engines.idle_pooled(pool_key), "pid": pg_pid(pg, pool_key)}
        except BaseException as exc:  # noqa: BLE001 - anything the child hits must reach the parent
            report = {"error": repr(exc)}
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(child, 0)
    assert report.get("error") is None, report
    assert report["idle"] == 0  # the parent's idle connection is not the child's
    assert report["pid"] != pid
    assert pg_pid(pg, pool_key) == pid  # and the parent's connection still works


# --- MySQL / MariaDB ----------------------------------------------------------------------------


def my_id(spec: ConnectionSpec, key: str | None) -> int:
    return one(spec, "SELECT CONNECTION_ID()", key)[0]


def test_a_mysql_source_reuses_its_idle_connection(my, pool_key):
    first = my_id(my, pool_key)
    assert my_id(my, pool_key) == first


def test_user_variables_of_one_mysql_query_do_not_reach_the_next(my, pool_key):
    connection_id, _ = one(my, "SELECT CONNECTION_ID(), @leak := 'secret'", pool_key)
    assert one(my, "SELECT CONNECTION_ID(), @leak", pool_key) == (connection_id, None)


def test_a_reused_mysql_connection_is_read_only_with_its_own_limit(my, pool_key):
    my_id(my, pool_key)
    connection_id, read_only, _ = one(my, "SELECT CONNECTION_ID(), @@session.tx_read_only, 1", pool_key)
    assert read_only == 1
    assert my_id(my, pool_key) == connection_id


def test_a_mysql_result_read_to_exactly_max_rows_returns_its_connection(my, pool_key):
    connection_id = my_id(my, pool_key)
    _, rows = execute(my, "SELECT 1 UNION ALL SELECT 2", timeout_ms=5000, max_rows=2, pool_key=pool_key)
    assert len(rows) == 2
    assert my_id(my, pool_key) == connection_id


def test_a_mysql_result_cut_short_closes_its_connection(my, pool_key):
    connection_id = my_id(my, pool_key)
    _, rows = execute(
        my, "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3", timeout_ms=5000, max_rows=1, pool_key=pool_key
    )
    assert len(rows) == 1
    assert my_id(my, pool_key) != connection_id


def test_a_failed_mysql_query_closes_its_connection(my, pool_key):
    connection_id = my_id(my, pool_key)
    with pytest.raises(QueryExecutionError):
        one(my, "SELECT * FROM no_such_database.no_such_table", pool_key)
    assert my_id(my, pool_key) != connection_id


# --- the pool's bookkeeping ---------------------------------------------------------------------


class Conn:
    """A stand-in connection: the pool only ever closes what it holds."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


SPEC = ConnectionSpec(engine="postgres", host="db.example", database="app", user="u", password="p")


def test_it_keeps_at_most_max_idle_per_key_closing_the_oldest():
    pool: ConnectionPool[Conn] = ConnectionPool(name="t", close=Conn.close, max_idle_per_key=2)
    leases = [pool.checkout("k", SPEC, Conn) for _ in range(3)]
    for lease in leases:
        pool.checkin(lease, reusable=True)
    assert pool.idle_count("k") == 2
    assert [lease.conn.closed for lease in leases] == [True, False, False]


def test_it_keeps_at_most_max_idle_in_all():
    pool: ConnectionPool[Conn] = ConnectionPool(name="t", close=Conn.close, max_idle_total=2)
    leases = [pool.checkout(key, SPEC, Conn) for key in ("a", "b", "c")]
    for lease in leases:
        pool.checkin(lease, reusable=True)
    assert pool.idle_count() == 2
    assert leases[0].conn.closed
    assert pool.idle_count("a") == 0


def test_an_idle_connection_past_its_idle_timeout_is_closed_not_reused():
    pool: ConnectionPool[Conn] = ConnectionPool(name="t", close=Conn.close, idle_timeout_s=0)
    lease = pool.checkout("k", SPEC, Conn)
    pool.checkin(lease, reusable=True)
    again = pool.checkout("k", SPEC, Conn)
    assert again.conn is not lease.conn
    assert not again.reused
    assert lease.conn.closed


def test_a_connection_past_its_lifetime_is_closed_on_checkin():
    pool: ConnectionPool[Conn] = ConnectionPool(name="t", close=Conn.close, max_lifetime_s=0)
    lease = pool.checkout("k", SPEC, Conn)
    pool.checkin(lease, reusable=True)
    assert lease.conn.closed
    assert pool.idle_count() == 0


def test_a_connection_that_is_not_reusable_is_closed():
    pool: ConnectionPool[Conn] = ConnectionPool(name="t", close=Conn.close)
    lease = pool.checkout("k", SPEC, Conn)
    pool.checkin(lease, reusable=False)
    assert lease.conn.closed
    assert pool.idle_count() == 0


def test_a_checkout_with_another_fingerprint_closes_the_old_connections_of_the_key():
    pool: ConnectionPool[Conn] = ConnectionPool(name="t", close=Conn.close)
    old = pool.checkout("k", SPEC, Conn)
    pool.checkin(old, reusable=True)
    new = pool.checkout("k", replace(SPEC, password="rotated"), Conn)
    assert not new.reused
    assert old.conn.closed


def test_the_fingerprint_covers_every_connection_parameter_and_hides_the_password():
    from connectors.engines.pool import fingerprint

    variants = [
        replace(SPEC, host="other"),
        replace(SPEC, port=6543),
        replace(SPEC, database="other"),
        replace(SPEC, user="other"),
        replace(SPEC, password="other"),
        replace(SPEC, options={"sslmode": "require"}),
    ]
    digests = {fingerprint(SPEC), *(fingerprint(v) for v in variants)}
    assert len(digests) == len(variants) + 1
    assert "zzzz-secret" not in fingerprint(replace(SPEC, password="zzzz-secret"))


def test_a_lease_without_a_key_is_never_kept():
    pool: ConnectionPool[Conn] = ConnectionPool(name="t", close=Conn.close)
    lease: Lease[Conn] = pool.checkout(None, SPEC, Conn)
    pool.checkin(lease, reusable=True)
    assert lease.conn.closed
    assert pool.idle_count() == 0


POOL_LIMITS = """
import json
import django
django.setup()
from connectors import engines
print(json.dumps([[p.max_idle_per_key, p.max_idle_total, p.idle_timeout_s] for p in engines.source_pools()]))
"""


def test_the_source_pools_take_their_limits_from_the_environment():
    """Values other than the defaults, in a fresh process: the app applies the settings at start-up."""
    import subprocess
    import sys
    from pathlib import Path

    env = dict(
        os.environ,
        DEBUG="1",
        SOURCE_POOL_MAX_IDLE_PER_SOURCE="0",
        SOURCE_POOL_MAX_IDLE="7",
        SOURCE_POOL_IDLE_SECONDS="5",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", POOL_LIMITS], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[0, 7, 5.0], [0, 7, 5.0]]
