"""Query editor API benchmarks against PostgreSQL (database `ps_query_editor_bench`):

1. POST /execute of a 500-row query through the API view (auth, membership, throttle, governed
   path, masking, history row, JSON rendering) vs the same final SQL through psycopg directly
   (connect, read-only transaction, fetch all, close: what a script using psycopg does). Target:
   ratio <= 1.3. The governed path keeps its source connections in a per-process pool, so the API
   pays no connect; for information, the same SQL on a kept psycopg connection is timed as well.
2. POST /export of 2,000 rows x 50 columns (CSV and JSON) from a wide table: peak memory growth of
   the process while streaming it, measured in a fresh subprocess with ru_maxrss and tracemalloc.
   Target: < 20 MB.
3. GET /autocomplete on a 2,000-table catalog (10 columns each), warm. Target: <= 50 ms.

Each part runs in its own subprocess with a throwaway SQLite metadata database, so `python -m bench`
(which imports every bench module into one process) cannot mix their Django set-ups.
Run: `make bench` or `.venv/bin/python -m bench.query_editor`.
Environment: BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres), BENCH_RUNS.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATABASE = "ps_query_editor_bench"
ROWS = 2_500
WIDE_COLUMNS = 50
CATALOG_TABLES = 2_000
EXECUTE_SQL = "SELECT id, email, name, score, created_on FROM people ORDER BY id"
EXPORT_SQL = "SELECT * FROM wide ORDER BY id"
TARGETS = {"execute_ratio": 1.3, "export_mb": 20.0, "autocomplete_ms": 50.0}


def _pg() -> dict[str, Any]:
    url = urlparse(os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password or None,
        "admin_db": url.path.lstrip("/") or "postgres",
    }


def _prepare_postgres() -> None:
    pg = _pg()
    conn_kwargs = {"host": pg["host"], "port": pg["port"], "user": pg["user"], "password": pg["password"]}
    with psycopg.connect(dbname=pg["admin_db"], autocommit=True, **conn_kwargs) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    extra = ", ".join(f"c{i:02d} text" for i in range(WIDE_COLUMNS - 2))
    values = ", ".join(f"repeat(md5(g::text || '{i}'), 2)" for i in range(WIDE_COLUMNS - 2))
    with psycopg.connect(dbname=DATABASE, autocommit=True, **conn_kwargs) as conn:
        conn.execute(
            f"""
            DROP TABLE IF EXISTS people; DROP TABLE IF EXISTS wide;
            CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL, score numeric NOT NULL,
                                 created_on date NOT NULL);
            INSERT INTO people SELECT g, 'p' || g || '@example.com', 'person ' || g, (g % 97) + 0.25,
                                      DATE '2024-01-01' + (g % 365) FROM generate_series(1, {ROWS}) g;
            CREATE TABLE wide (id int PRIMARY KEY, email text NOT NULL, {extra});
            INSERT INTO wide SELECT g, 'w' || g || '@example.com', {values} FROM generate_series(1, {ROWS}) g;
            ANALYZE people; ANALYZE wide;
            """
        )


# --- inside a child process ---------------------------------------------------------------------


def _setup_django(var_dir: Path) -> None:
    from cryptography.fernet import Fernet

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    os.environ["QUERY_EDITOR_RATE_LIMIT"] = "1000000/min"
    os.environ["API_THROTTLE_USER"] = "1000000/min"
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _space() -> tuple[Any, Any, Any]:
    """An analyst (no PII grant: masking runs) in a workspace with the discovered PostgreSQL source."""
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import Membership, Organization, Workspace
    from connectors.crypto import encrypt
    from connectors.discovery import discovery_run
    from connectors.models import DataSource

    org = Organization.objects.create(name="Bench", slug="bench")
    workspace = Workspace.objects.create(organization=org, name="Bench", slug="bench")
    user = User.objects.create_user("bench", "bench@example.com", "bench-pass-123")
    Membership.objects.create(user=user, workspace=workspace, role="analyst")
    pg = _pg()
    source = DataSource.objects.create(
        workspace=workspace,
        name="Bench PG",
        alias="bench_pg",
        connector_type="postgres",
        host=pg["host"],
        port=pg["port"],
        database=DATABASE,
        username=pg["user"],
        password_encrypted=encrypt(pg["password"] or ""),
    )
    source = discovery_run(source_id=source.pk)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return workspace, source, client


def _median_ms(fn: Any, runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _child_execute_and_autocomplete(runs: int) -> dict[str, Any]:
    from connectors.governed import GovernedRequest, governed_execute, governed_prepare
    from connectors.models import DataSource
    from connectors.selectors import connection_spec

    workspace, source, client = _space()
    membership = workspace.memberships.select_related("workspace", "user").get()
    url = f"/api/v1/spaces/{workspace.slug}/query/execute"
    body = {"connector_id": str(source.uuid), "sql": EXECUTE_SQL, "row_limit": 500}

    def via_api() -> None:
        response = client.post(url, body, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["row_count"] == 500

    plan = governed_prepare(
        GovernedRequest(membership=membership, sources=[source], sql=EXECUTE_SQL, purpose="editor", row_limit=500)
    )
    spec = connection_spec(source)
    final_sql = plan.prepared.sql.replace("LIMIT 500", "LIMIT 501")  # the engine asks one more to detect truncation

    def direct() -> None:
        with psycopg.connect(
            host=spec.host, port=spec.port, dbname=spec.database, user=spec.user, password=spec.password or None
        ) as conn:
            conn.read_only = True
            with conn.cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(final_sql)
                rows = cur.fetchall()
        assert len(rows) == 501

    kept = psycopg.connect(
        host=spec.host, port=spec.port, dbname=spec.database, user=spec.user, password=spec.password or None
    )
    kept.read_only = True

    def direct_kept() -> None:
        with kept.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(final_sql)
            rows = cur.fetchall()
        kept.rollback()
        assert len(rows) == 501

    def governed_only() -> None:
        request = GovernedRequest(
            membership=membership, sources=[source], sql=EXECUTE_SQL, purpose="editor", row_limit=500
        )
        assert governed_execute(request).row_count == 500

    via_api(), direct(), direct_kept(), governed_only()  # warm: imports, catalog cache, connections
    api_times, direct_times, kept_times, governed_times = [], [], [], []
    for _ in range(runs):  # interleaved, so drift hits all alike
        api_times.append(_median_ms(via_api, 1))
        direct_times.append(_median_ms(direct, 1))
        kept_times.append(_median_ms(direct_kept, 1))
        governed_times.append(_median_ms(governed_only, 1))
    kept.close()
    api_ms, direct_ms = statistics.median(api_times), statistics.median(direct_times)

    # Autocomplete: a second source with a 2,000-table catalog (10 columns each) in the metadata DB.
    from connectors.models import CatalogColumn, CatalogTable

    big = DataSource.objects.create(
        workspace=workspace, name="Big catalog", alias="big", connector_type="sqlite", path="/nonexistent.db"
    )
    tables = CatalogTable.objects.bulk_create(
        CatalogTable(data_source=big, schema_name="main", name=f"table_{i:04d}") for i in range(CATALOG_TABLES)
    )
    CatalogColumn.objects.bulk_create(
        (CatalogColumn(table=t, name=f"column_{j}", ordinal=j, data_type="text") for t in tables for j in range(10)),
        batch_size=5000,
    )
    big.refresh_from_db()
    auto_url = f"/api/v1/spaces/{workspace.slug}/query/autocomplete"

    def autocomplete(params: dict[str, str]) -> Any:
        def call() -> None:
            response = client.get(auto_url, params)
            assert response.status_code == 200, response.content

        return call

    full = {"connector_id": str(big.uuid)}
    cold_ms = _median_ms(autocomplete(full), 1)
    warm_full_ms = _median_ms(autocomplete(full), runs)
    warm_prefix_ms = _median_ms(autocomplete({**full, "prefix": "table_19"}), runs)
    return {
        "execute_api_ms": api_ms,
        "execute_direct_ms": direct_ms,
        "execute_direct_kept_ms": statistics.median(kept_times),
        "execute_governed_ms": statistics.median(governed_times),
        "autocomplete_cold_ms": cold_ms,
        "autocomplete_full_ms": warm_full_ms,
        "autocomplete_prefix_ms": warm_prefix_ms,
    }


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child_export(fmt: str) -> dict[str, Any]:
    workspace, source, client = _space()
    url = f"/api/v1/spaces/{workspace.slug}/query/export"

    def run(sql: str) -> int:
        response = client.post(url, {"connector_id": str(source.uuid), "sql": sql, "format": fmt}, format="json")
        assert response.status_code == 200, response.content
        return sum(len(chunk) for chunk in response.streaming_content)

    run("SELECT * FROM wide ORDER BY id LIMIT 150")  # warm: imports, catalog cache, a first streamed response
    before = _maxrss_mb()
    tracemalloc.start()
    size = run(EXPORT_SQL)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"bytes": size, "rss_growth_mb": _maxrss_mb() - before, "traced_peak_mb": traced_peak / 1024 / 1024}


def _child(mode: str, var_dir: str) -> None:
    _setup_django(Path(var_dir))
    runs = int(os.environ.get("BENCH_RUNS", "30"))
    result = _child_execute_and_autocomplete(runs) if mode == "api" else _child_export(mode.split(":")[1])
    print("RESULT " + json.dumps(result), flush=True)


# --- the parent ---------------------------------------------------------------------------------


def _run_child(mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qe-bench-") as var_dir:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.query_editor", "--child", mode, var_dir],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench child {mode} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> None:
    pg = _pg()
    try:
        socket.create_connection((pg["host"], pg["port"]), timeout=1).close()
    except OSError:
        print(f"SKIPPED: PostgreSQL is not reachable at {pg['host']}:{pg['port']} (set BENCH_POSTGRES_URL)")
        return
    _prepare_postgres()
    api = _run_child("api")
    ratio = api["execute_api_ms"] / api["execute_direct_ms"]
    print(
        f"execute 500 rows x 5 cols: API view {api['execute_api_ms']:.2f} ms, psycopg direct "
        f"{api['execute_direct_ms']:.2f} ms (medians) -> ratio {ratio:.2f} "
        f"(target <= {TARGETS['execute_ratio']}) {_verdict(ratio <= TARGETS['execute_ratio'])}"
    )
    print(
        f"  of which governed_execute alone (connectors: validate, rewrite, run, mask): "
        f"{api['execute_governed_ms']:.2f} ms;"
        f" the editor layer (auth, membership, throttle, history, JSON) adds the rest"
    )
    print(
        f"  for information: psycopg on a kept connection (no connect) {api['execute_direct_kept_ms']:.2f} ms "
        f"-> API / kept {api['execute_api_ms'] / api['execute_direct_kept_ms']:.2f} (no target)"
    )
    for fmt in ("csv", "json"):
        exp = _run_child(f"export:{fmt}")
        print(
            f"export {fmt} 2,000 rows x {WIDE_COLUMNS} cols ({exp['bytes'] / 1e6:.1f} MB streamed): peak RSS growth "
            f"{exp['rss_growth_mb']:.1f} MB, tracemalloc peak {exp['traced_peak_mb']:.1f} MB "
            f"(target < {TARGETS['export_mb']:.0f} MB) {_verdict(exp['rss_growth_mb'] < TARGETS['export_mb'])}"
        )
    print(
        f"autocomplete on {CATALOG_TABLES:,} tables: warm full {api['autocomplete_full_ms']:.2f} ms, "
        f"warm prefix {api['autocomplete_prefix_ms']:.2f} ms, cold (catalog load) {api['autocomplete_cold_ms']:.1f} ms "
        f"(target <= {TARGETS['autocomplete_ms']:.0f} ms warm) "
        f"{_verdict(api['autocomplete_full_ms'] <= TARGETS['autocomplete_ms'])}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
