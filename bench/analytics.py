"""Query analytics and prompt history at 1,000,000 executions in PostgreSQL.

Loads (once; reused while the row count matches) 1M executions across 20 users and 5 data sources
spread over 120 days into a dedicated metadata database, with the data-sources through table and a
generated query (tokens, cost) for every run that got past the AI stage, then times:

- query analytics for 30d and 90d, workspace-wide (an admin: every execution) and for one analyst,
  through the view (test client) and through the selector alone;
- GET /api/v1/prompts/history page 1 and page 500 for one user.

Targets: analytics <= 500 ms, history <= 50 ms at any page. Run: .venv/bin/python -m bench.analytics
(or `make bench`). Needs PostgreSQL (BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres);
without it, prints a SKIP line.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "ps_bench_analytics"
EXECUTIONS = 1_000_000
USERS = 20
SOURCES = 5
DAYS = 120
ANALYTICS_TARGET_MS = 500
HISTORY_TARGET_MS = 50


def _server_url() -> str:
    return os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=1):
            return True
    except OSError:
        return False


def _database_url(server: str) -> str:
    return urlunparse(urlparse(server)._replace(path=f"/{DATABASE}"))


def _ensure_database(server: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")  # test client host + embedded defaults; queries are not logged below
    os.environ.setdefault("SECRET_KEY", "bench-secret-key")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


# --- data -----------------------------------------------------------------------------------------


def _seed_accounts() -> dict:
    from django.contrib.auth.models import User

    from accounts.models import Membership, Organization, Role, Workspace
    from connectors.models import DataSource
    from templates_app.models import PromptTemplate

    org, _ = Organization.objects.get_or_create(slug="bench-org", defaults={"name": "Bench org"})
    workspace, _ = Workspace.objects.get_or_create(slug="bench", defaults={"organization": org, "name": "Bench"})
    users = []
    for i in range(USERS):
        user, _ = User.objects.get_or_create(username=f"bench{i:02d}")
        Membership.objects.get_or_create(
            user=user, workspace=workspace, defaults={"role": Role.ADMIN if i == 0 else Role.ANALYST}
        )
        users.append(user)
    sources = []
    for i in range(SOURCES):
        source, _ = DataSource.objects.get_or_create(
            workspace=workspace, alias=f"src{i}", defaults={"name": f"Source {i}", "connector_type": "sqlite"}
        )
        sources.append(source)
    templates = []
    for i in range(3):
        template, _ = PromptTemplate.objects.get_or_create(
            organization=org, name=f"Bench template {i}", defaults={"template_text": "sales by {{d}}"}
        )
        templates.append(template)
    return {"workspace": workspace, "users": users, "sources": sources, "templates": templates}


LOAD_SQL = """
CREATE TEMP TABLE bench_ids ON COMMIT DROP AS
SELECT *, NOT (status = 'processing' OR status = 'failed' AND code = 'AI_GENERATION_ERROR') AS got_sql FROM (
SELECT i,
       (%(users)s::int[])[1 + (i %% %(n_users)s)] AS user_id,
       (%(sources)s::int[])[1 + (i %% %(n_sources)s)] AS source_id,
       (%(sources)s::int[])[1 + ((i + 1) %% %(n_sources)s)] AS second_source_id,
       -- oldest first, as rows arrive: ids and the time indexes grow in order
       now() - make_interval(secs => ((%(n)s - i)::float8 / %(n)s) * %(days)s * 86400) AS at,
       CASE WHEN i %% 1000 = 7 THEN 'processing' WHEN i %% 10 = 3 THEN 'failed' ELSE 'completed' END AS status,
       (ARRAY['QUERY_TIMEOUT','AI_GENERATION_ERROR','SQL_VALIDATION_ERROR','QUERY_EXECUTION_ERROR'])[1 + (i / 10) %% 4]
           AS code,
       (ARRAY['builtin','gpt-4o-mini','claude-3-5-haiku'])[1 + (i %% 3)] AS model,
       CASE WHEN i %% 5 = 0 THEN (%(templates)s::int[])[1 + (i / 5) %% 3] END AS template_id,
       200 + (i * 7919) %% 3000 AS ai_ms,
       5 + (i * 104729) %% 2000 AS query_ms
FROM generate_series(1::bigint, %(n)s) AS i) AS base;

INSERT INTO prompts_promptexecution (
    id, workspace_id, user_id, prompt_id, prompt_text, name, tags, save_prompt, ai_model, data_source_ids,
    schema_names, template_id, template_parameters, status, ai_processing_status, query_execution_status,
    progress_percentage, started_at, ai_processing_started_at, ai_processing_completed_at, ai_response_time_ms,
    query_execution_started_at, query_execution_completed_at, query_execution_duration_ms, total_duration_ms,
    completed_at, generated_query_id, rows_returned, result_preview, result_columns, masked_columns,
    result_truncated, warnings, ai_metadata, error_message, error_code, stage, stage_claimed_at, heartbeat_at,
    stage_attempts, correction_round, worker, query_backend, cancel_requested, hidden_from_history, created_at,
    updated_at, tokens_in, tokens_out, cost)
SELECT i, %(workspace)s, user_id, NULL, 'question number ' || (i %% 200), '',
       CASE WHEN i %% 4 = 0 THEN '["sales"]'::jsonb ELSE '[]'::jsonb END, false, model,
       CASE WHEN i %% 10 = 1 THEN jsonb_build_array(source_id, second_source_id) ELSE jsonb_build_array(source_id) END,
       '[]'::jsonb, template_id, '{}'::jsonb, status,
       CASE status WHEN 'processing' THEN 'in_progress' WHEN 'failed' THEN
           CASE WHEN code = 'AI_GENERATION_ERROR' THEN 'failed' ELSE 'completed' END ELSE 'completed' END,
       CASE WHEN status = 'completed' THEN 'completed' WHEN status = 'failed' AND code <> 'AI_GENERATION_ERROR'
           THEN 'failed' END,
       CASE WHEN status = 'processing' THEN 10 ELSE 100 END,
       at, at, at + make_interval(secs => ai_ms / 1000.0),
       CASE WHEN status = 'processing' THEN NULL ELSE ai_ms END,
       CASE WHEN status = 'completed' THEN at END, CASE WHEN status = 'completed' THEN at END,
       CASE WHEN status = 'completed' THEN query_ms END,
       CASE WHEN status = 'processing' THEN NULL ELSE ai_ms + query_ms + 40 END,
       CASE WHEN status = 'processing' THEN NULL ELSE at + interval '2 seconds' END,
       CASE WHEN got_sql THEN i END,
       CASE WHEN status = 'completed' THEN i %% 100 END, NULL, '[]'::jsonb, '[]'::jsonb, false, '[]'::jsonb,
       '{}'::jsonb, CASE WHEN status = 'failed' THEN 'failed' ELSE '' END,
       CASE WHEN status = 'failed' THEN code ELSE '' END,
       CASE WHEN status = 'processing' THEN 'queued_ai' ELSE 'done' END, at, NULL, 0, 0, '', '{}'::jsonb, false,
       i %% 50 = 0, at, at,
       -- the spend of its generated query (below), which the pipeline adds to the execution
       CASE WHEN got_sql THEN 300 + i %% 700 ELSE 0 END, CASE WHEN got_sql THEN 20 + i %% 80 ELSE 0 END,
       CASE WHEN got_sql THEN (300 + i %% 700) * 0.000001 + (20 + i %% 80) * 0.000004 ELSE 0 END
FROM bench_ids
ORDER BY i;

INSERT INTO prompts_generatedquery (
    id, execution_id, sql_text, sql_executed, dialect, model, attempts, confidence, tokens_in, tokens_out, cost,
    latency_ms, created_at)
SELECT i, i, 'SELECT region, SUM(amount) FROM orders GROUP BY region', '', 'sqlite', model, '[]'::jsonb, 0.9,
       300 + i %% 700, 20 + i %% 80, (300 + i %% 700) * 0.000001 + (20 + i %% 80) * 0.000004, ai_ms, at
FROM bench_ids
WHERE got_sql;

INSERT INTO prompts_promptexecution_data_sources (promptexecution_id, datasource_id)
SELECT i, source_id FROM bench_ids
UNION ALL
SELECT i, second_source_id FROM bench_ids WHERE i %% 10 = 1;
"""


def _load(seed: dict) -> None:
    from django.db import connection, transaction

    params = {
        "users": [u.pk for u in seed["users"]],
        "n_users": USERS,
        "sources": [s.pk for s in seed["sources"]],
        "n_sources": SOURCES,
        "templates": [t.pk for t in seed["templates"]],
        "workspace": seed["workspace"].pk,
        "n": EXECUTIONS,
        "days": DAYS,
    }
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE prompts_promptexecution_data_sources, prompts_generatedquery, prompts_promptexecution CASCADE"
        )
        for statement in LOAD_SQL.split(";\n\n"):
            cursor.execute(statement, params)
        for table in ("prompts_promptexecution", "prompts_generatedquery", "prompts_promptexecution_data_sources"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    _vacuum()
    print(f"  loaded {EXECUTIONS:,} executions in {time.perf_counter() - started:.1f}s")


def _migrate() -> bool:
    """Apply pending migrations; True when there were any."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        print(f"  applied {len(pending)} migration(s) in {time.perf_counter() - started:.1f}s")
    return bool(pending)


def _vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _counts() -> dict[str, int]:
    from prompts.models import GeneratedQuery, PromptExecution

    return {
        "executions": PromptExecution.objects.count(),
        "generated_queries": GeneratedQuery.objects.count(),
        "execution_sources": PromptExecution.data_sources.through.objects.count(),
    }


# --- timing ---------------------------------------------------------------------------------------


def _time(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    result = fn()  # warm: plans, caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def _verdict(ms: float, target: float) -> str:
    return "ok" if ms <= target else f"MISSED (target {target:.0f} ms)"


def main() -> None:
    """`python -m bench` runs every bench in one process: run this one in its own, since it points Django at
    its own database."""
    import subprocess

    subprocess.run([sys.executable, "-m", "bench.analytics"], cwd=ROOT, check=False)


def run() -> None:
    server = _server_url()
    if not _reachable(server):
        print(f"SKIP analytics: PostgreSQL is not reachable at {server} (set BENCH_POSTGRES_URL)")
        return
    _ensure_database(server)
    _setup_django(_database_url(server))

    from rest_framework.test import APIClient

    from analytics.selectors import query_analytics, window_for
    from prompts.models import PromptExecution

    if _migrate():
        # A migration that rewrote or backfilled the loaded table leaves it without statistics and without a
        # visibility map, so nothing would be answered from the covering indexes until autovacuum came by.
        _vacuum()
    seed = _seed_accounts()
    counts = _counts()
    if counts["executions"] != EXECUTIONS:
        _load(seed)
        counts = _counts()
    print(
        f"analytics bench on {DATABASE}: {counts['executions']:,} executions, {counts['generated_queries']:,} "
        f"generated queries, {counts['execution_sources']:,} execution-source rows; {USERS} users, {SOURCES} sources, "
        f"{DAYS} days; load average {os.getloadavg()[0]:.1f}"
    )

    admin, analyst = seed["users"][0], seed["users"][1]
    workspace_qs = PromptExecution.objects.filter(workspace_id=seed["workspace"].pk)
    client = APIClient()
    for user, who in ((admin, "admin (workspace)"), (analyst, "analyst (own)")):
        client.force_authenticate(user)
        for period in ("30d", "90d"):

            def view(period: str = period) -> dict:
                response = client.get("/api/v1/prompts/analytics/query-analytics", {"period": period})
                assert response.status_code == 200, response.content
                return response.json()["data"]

            ms, data = _time(view, runs=5)
            rows = data["totals"]["executions"]  # type: ignore[index]
            print(
                f"  query-analytics {period:>3} {who:<18} view     {ms:7.1f} ms  rows in window {rows:>9,}  "
                f"{_verdict(ms, ANALYTICS_TARGET_MS)}"
            )
            if user is admin:
                window = window_for(period, None, None)
                ms, _ = _time(lambda window=window: query_analytics(workspace_qs, window), runs=5)
                print(
                    f"  query-analytics {period:>3} {who:<18} selector {ms:7.1f} ms  rows in window {rows:>9,}  "
                    f"{_verdict(ms, ANALYTICS_TARGET_MS)}"
                )

    client.force_authenticate(analyst)
    for page in (1, 500, 2000):

        def history(page: int = page) -> dict:
            response = client.get("/api/v1/prompts/history", {"page": page})
            assert response.status_code == 200, response.content
            return response.json()["data"]

        ms, data = _time(history, runs=20)
        p = data["pagination"]  # type: ignore[index]
        print(
            f"  history page {page:>4} (page_size {p['page_size']}, {p['total']:,} rows for the user)  {ms:6.1f} ms  "
            f"{_verdict(ms, HISTORY_TARGET_MS)}"
        )


if __name__ == "__main__":
    run()
