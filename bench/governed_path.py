"""The governed path's overhead on PostgreSQL: the demo sales data (60,000 orders) in a database
`ps_bench`, two join + aggregate queries timed through `governed_execute` and as the same final
SQL run directly with psycopg, interleaved, in one process. Also the median time of validation +
rewrite (`sqlgov.prepare_query`) and masking + JSON conversion of the result alone.

Targets: prepare + mask < 5 ms at the median; governed / direct <= 1.2 on the query that takes
>= 50 ms raw. Run: `make bench` or `.venv/bin/python -m bench.governed_path`.
Environment: BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres), BENCH_RUNS.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATABASE = "ps_bench"
ORDERS = 60_000
TODAY = date(2025, 6, 30)  # fixed: the same data on every run, so numbers compare across runs
TABLES = """
CREATE TABLE regions (id int PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, category text NOT NULL, unit_price numeric NOT NULL);
CREATE TABLE customers (
    id int PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL, email text NOT NULL UNIQUE, phone text,
    city text NOT NULL, region_id int NOT NULL REFERENCES regions(id), segment text NOT NULL,
    created_at timestamp NOT NULL
);
CREATE TABLE orders (
    id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
    region_id int NOT NULL REFERENCES regions(id), order_date date NOT NULL, status text NOT NULL,
    total_amount numeric NOT NULL
);
CREATE TABLE order_items (
    id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders(id), product_id int NOT NULL REFERENCES products(id),
    quantity int NOT NULL, unit_price numeric NOT NULL
);
CREATE INDEX ON customers (region_id);
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON orders (order_date);
CREATE INDEX ON order_items (order_id);
CREATE INDEX ON order_items (product_id);
CREATE TABLE bench_meta (orders int NOT NULL, today date NOT NULL);
"""
TABLE_ORDER = ("regions", "products", "customers", "orders", "order_items")

QUERIES = {
    "3-way join + aggregate by region": """
        SELECT r.name AS region, COUNT(*) AS orders, SUM(o.total_amount) AS revenue,
               COUNT(DISTINCT c.id) AS customers
        FROM orders o
        JOIN customers c ON c.id = o.customer_id
        JOIN regions r ON r.id = c.region_id
        GROUP BY r.name
        ORDER BY revenue DESC
    """,
    "heavier: 5-way join, region x category x month": """
        SELECT r.name AS region, p.category, date_trunc('month', o.order_date) AS month,
               SUM(i.quantity * i.unit_price) AS revenue, COUNT(DISTINCT o.customer_id) AS buyers,
               COUNT(DISTINCT c.city) AS cities
        FROM order_items i
        JOIN orders o ON o.id = i.order_id
        JOIN customers c ON c.id = o.customer_id
        JOIN regions r ON r.id = c.region_id
        JOIN products p ON p.id = i.product_id
        GROUP BY r.name, p.category, date_trunc('month', o.order_date)
        ORDER BY r.name, p.category, month
    """,
}


def _server() -> dict | None:
    url = urlparse(os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    server = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432, "user": url.username or "postgres"}
    if url.password:
        server["password"] = url.password
    try:
        socket.create_connection((server["host"], server["port"]), timeout=1).close()
    except OSError:
        return None
    return {**server, "admin_db": url.path.lstrip("/") or "postgres"}


def _connect(server: dict, **kwargs: object) -> psycopg.Connection:
    params = {k: v for k, v in server.items() if k != "admin_db"}
    return psycopg.connect(**{**params, **kwargs})


def _load_demo_data(server: dict, scratch: Path) -> None:
    """Create ps_bench with the demo data unless it already holds this exact data set."""
    with _connect(server, dbname=server["admin_db"], autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with _connect(server, dbname=DATABASE, autocommit=True) as conn:
        try:
            meta = conn.execute("SELECT orders, today FROM bench_meta").fetchone()
        except psycopg.errors.UndefinedTable:
            meta = None
        if meta == (ORDERS, TODAY):
            return
    from connectors.demo_data import generate_sales_db

    started = time.perf_counter()
    path = scratch / "sales.sqlite3"
    generate_sales_db(path, orders=ORDERS, today=TODAY)
    source = sqlite3.connect(path)
    with _connect(server, dbname=DATABASE) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_meta, order_items, orders, customers, products, regions CASCADE")
        conn.execute(TABLES)
        for table in TABLE_ORDER:
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for row in source.execute(f"SELECT * FROM {table} ORDER BY id"):
                    copy.write_row(row)
        conn.execute("INSERT INTO bench_meta VALUES (%s, %s)", [ORDERS, TODAY])
    source.close()
    with _connect(server, dbname=DATABASE, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"loaded the demo data ({ORDERS} orders) into {DATABASE} in {time.perf_counter() - started:.1f} s")


def _setup_django(var_dir: Path) -> None:
    """A throwaway metadata database: a temporary SQLite file, migrated."""
    from cryptography.fernet import Fernet

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _governed_fixture(server: dict):  # noqa: ANN202
    """An analyst with a row policy on customers and email masked, on a discovered ps_bench source."""
    # Imports here, not at the top: Django must be configured first (a standalone script).
    from django.contrib.auth.models import User

    from accounts.models import Membership, Organization, Workspace
    from connectors.discovery import discovery_run
    from connectors.models import CatalogColumn, DataSource, MaskingStyle, RowPolicy

    org = Organization.objects.create(name="Bench", slug="bench")
    workspace = Workspace.objects.create(organization=org, name="Bench", slug="bench")
    user = User.objects.create_user("bench-analyst", "analyst@example.com", "bench-pass")
    membership = Membership.objects.create(user=user, workspace=workspace, role="analyst", attributes={"max_region": 5})
    source = DataSource.objects.create(
        workspace=workspace,
        name="Bench sales",
        alias="sales",
        connector_type="postgres",
        host=server["host"],
        port=server["port"],
        database=DATABASE,
        username=server["user"],
    )
    source = discovery_run(source_id=source.pk)
    if source.discovery_status != "succeeded":
        raise SystemExit(f"discovery of {DATABASE} failed: {source.discovery_error}")
    for column in CatalogColumn.objects.filter(table__data_source=source, name="email"):
        column.pii, column.masking_style = True, MaskingStyle.PARTIAL
        column.save()
    # Every region passes (the numbers compare like for like), but the rewrite and binding still run.
    RowPolicy.objects.create(
        data_source=source,
        name="regions up to the member's",
        table_name="customers",
        predicate="region_id <= {{member.max_region}}",
        roles=["analyst"],
    )
    source.refresh_from_db()
    return Membership.objects.select_related("workspace", "user").get(pk=membership.pk), source


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _bench_query(title: str, sql: str, membership, source, server: dict, runs: int) -> None:  # noqa: ANN001
    from connectors import engines, sqlgov
    from connectors.governed import GovernedRequest, _RowShaper, governed_execute, governed_prepare
    from connectors.selectors import member_bindings, row_policies_for, source_catalog
    from connectors.types import Grants

    request = GovernedRequest(membership=membership, sources=[source], sql=sql, purpose="editor")
    plan = governed_prepare(request)
    final_sql = plan.prepared.sql

    def direct_fresh() -> list[tuple]:
        with _connect(server, dbname=DATABASE) as conn:
            return conn.execute(final_sql).fetchall()

    kept = _connect(server, dbname=DATABASE, autocommit=True)

    def direct_kept() -> list[tuple]:
        return kept.execute(final_sql).fetchall()

    def governed() -> object:
        return governed_execute(GovernedRequest(membership=membership, sources=[source], sql=sql, purpose="editor"))

    runners: dict[str, Callable[[], object]] = {
        "governed": governed,
        "direct": direct_fresh,
        "direct, kept connection": direct_kept,
    }
    for run in runners.values():  # warm up caches (catalog, plans, connections) before timing
        run()
        run()
    timings: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for i in range(runs):
        for name in names[i % len(names) :] + names[: i % len(names)]:  # rotate the order: no position bias
            start = time.perf_counter()
            runners[name]()
            timings[name].append(_ms(start))
    kept.close()

    # Validation + rewrite alone, with exactly the inputs the governed path gives it.
    catalog = source_catalog(source)
    kwargs = {
        "sources": [catalog],
        "allowed_schemas": None,
        "policies": row_policies_for(membership=membership, sources=[source]),
        "bindings": member_bindings(membership),
        "row_cap": plan.row_cap,
        "grants": Grants(pii=membership.pii_access, phi=membership.phi_access),
    }
    columns, rows = engines.execute(
        plan.specs["sales"], final_sql, timeout_ms=plan.timeout_ms, max_rows=plan.row_cap + 1
    )
    prepare_ms, mask_ms, total_ms = [], [], []
    for _ in range(max(runs, 200)):
        start = time.perf_counter()
        sqlgov.prepare_query(sql, **kwargs)
        prepared = _ms(start)
        start = time.perf_counter()
        _RowShaper(plan, columns).shape_all(rows[: plan.row_cap])
        masked = _ms(start)
        prepare_ms.append(prepared)
        mask_ms.append(masked)
        total_ms.append(prepared + masked)

    gov, raw, pooled = (statistics.median(timings[n]) for n in names)
    print(f"-- {title}: {len(rows)} result rows, {runs} interleaved runs each")
    for name in names:
        print(f"   {name:<26} median {statistics.median(timings[name]):8.2f} ms   p95 {_p95(timings[name]):8.2f} ms")
    heavy = raw >= 50
    target = "target <= 1.2" + ("" if heavy else " applies to the >= 50 ms query; this one is lighter")
    print(f"   overhead ratio governed / direct: {gov / raw:.3f}  ({target})")
    print(f"   overhead ratio governed / direct with a kept connection: {gov / pooled:.3f}")
    print(
        f"   prepare_query median {statistics.median(prepare_ms):.2f} ms, mask + JSON-safe median "
        f"{statistics.median(mask_ms):.2f} ms, together {statistics.median(total_ms):.2f} ms (target < 5 ms)"
    )


def main(runs: int | None = None) -> None:
    runs = runs or int(os.environ.get("BENCH_RUNS", "30"))
    server = _server()
    if server is None:
        print("SKIPPED bench.governed_path: PostgreSQL is not reachable (set BENCH_POSTGRES_URL)")
        return
    with tempfile.TemporaryDirectory(prefix="ps-bench-") as scratch:
        scratch_dir = Path(scratch)
        _setup_django(scratch_dir)
        _load_demo_data(server, scratch_dir)
        membership, source = _governed_fixture(server)
        for title, sql in QUERIES.items():
            _bench_query(title, sql, membership, source, server, runs)


if __name__ == "__main__":
    main()
