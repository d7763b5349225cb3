"""Workers that die and queries that are cancelled: the execution always ends, the server-side query stops.

Real worker processes with the pipeline's liveness constants scaled down (tests/workers/run_worker.py):
a heartbeat every 0.5 s, a stage stale after 2 s.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import timedelta
from urllib.parse import urlparse

import psycopg
import pytest
from django.utils import timezone

from connectors.discovery import discovery_run
from connectors.models import DataSource
from prompts import pipeline
from prompts.models import ExecutionStatus, GeneratedQuery, PromptExecution, Stage
from tests.conftest import client_for
from tests.factories import DataSourceFactory
from tests.llm_stub import LLMStub, sql_reply
from tests.prompts.pipeline_support import (
    STUB_KEY_ENV,
    STUB_MODEL,
    QuestionRouter,
    ai_models,
    demo_source,
    execute,
    poll,
    wait_for_stage,
)
from tests.services import require
from tests.workers.helpers import make_broker, publishing_to, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FAST_LIVENESS = {"HEARTBEAT_SECONDS": 0.5, "STALE_AFTER": 2, "CANCEL_POLL_SECONDS": 0.2}
SALES_BY_REGION = (
    "SELECT r.name AS region, SUM(o.total_amount) AS total_sales FROM orders AS o "
    "JOIN regions AS r ON r.id = o.region_id GROUP BY r.name"
)
PG_DATABASE = "ps_pipeline_test"
SLOW_QUERY = "SELECT COUNT(*) AS n FROM big AS a CROSS JOIN big AS b"


@pytest.fixture(scope="module")
def router() -> QuestionRouter:
    return QuestionRouter()


@pytest.fixture(scope="module")
def stub(router):
    with LLMStub([router]) as server:
        yield server


@pytest.fixture(scope="module")
def worker_env(stub) -> dict[str, str]:
    return {"AI_MODELS": json.dumps(ai_models(stub.base_url)), "AI_REQUEST_TIMEOUT": "60", STUB_KEY_ENV: "sk-stub"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with publishing_to(make_broker(tmp_path_factory.mktemp("reliability-broker"))) as b:
        yield b


@pytest.fixture(scope="module")
def worker(django_db_setup, tmp_path_factory, broker, worker_env):
    """The module's long-lived worker: it finishes what the killed ones leave behind."""
    proc = start_worker(broker, tmp_path_factory.mktemp("reliability"), env=worker_env, pipeline_seconds=FAST_LIVENESS)
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def _stub_model_served(settings, stub, monkeypatch):
    settings.AI_MODELS = ai_models(stub.base_url)
    monkeypatch.setenv(STUB_KEY_ENV, "sk-stub")


@pytest.fixture
def client(member):
    return client_for(member.user)


# --- SIGKILL -------------------------------------------------------------------------------------------------


def test_a_pool_process_killed_mid_generation_is_redelivered_and_completes(
    client, member, router, worker_env, tmp_path
):
    source = demo_source(member)
    question = router.script(
        "Sales by region, worker dies", [sql_reply(SALES_BY_REGION, delay=8), sql_reply(SALES_BY_REGION)]
    )
    own = make_broker(tmp_path / "broker")  # only the prefork worker below reads it
    with publishing_to(own):
        doomed = start_worker(
            own, tmp_path, pool="prefork", concurrency=1, env=worker_env, pipeline_seconds=FAST_LIVENESS
        )
        try:
            started = execute(client, prompt_text=question, selected_data_source_ids=[source.pk], ai_model=STUB_MODEL)
            execution_id = started["execution_id"]
            wait_for_stage(execution_id, Stage.AI)
            wait_for(lambda: router.calls(question) == 1, what="the model call in flight")
            (child,) = wait_for(doomed.children, what="the pool process")
            os.kill(child, signal.SIGKILL)  # the main process sees the pool process lost and rejects the message

            done = poll(client, execution_id, timeout=90, worker=doomed)
        finally:
            doomed.stop()

    assert done["status"] == "completed", done
    assert done["rows_returned"] == 5
    assert router.calls(question) == 2
    assert GeneratedQuery.objects.filter(execution_id=execution_id).count() == 1


def test_a_worker_killed_mid_stage_is_requeued_by_the_reaper_and_finished_by_another(
    client, member, router, worker, worker_env, tmp_path, monkeypatch
):
    source = demo_source(member)
    question = router.script(
        "Sales by region, host dies", [sql_reply(SALES_BY_REGION, delay=8), sql_reply(SALES_BY_REGION)]
    )
    own = make_broker(tmp_path / "broker")
    with publishing_to(own):
        doomed = start_worker(own, tmp_path, env=worker_env, pipeline_seconds=FAST_LIVENESS)
        started = execute(client, prompt_text=question, selected_data_source_ids=[source.pk], ai_model=STUB_MODEL)
        execution_id = started["execution_id"]
        wait_for_stage(execution_id, Stage.AI)
        wait_for(lambda: router.calls(question) == 1, what="the model call in flight")
        doomed.kill()  # the whole worker: nothing acks, rejects or records anything

    # The beat reaper, run here with this process's clock for "stale".
    monkeypatch.setattr(pipeline, "STALE_AFTER", timedelta(seconds=1))
    wait_for(
        lambda: PromptExecution.objects.filter(
            pk=execution_id, heartbeat_at__lt=timezone.now() - timedelta(seconds=3)
        ).exists(),
        what="the heartbeat to go stale",
    )
    assert PromptExecution.objects.get(pk=execution_id).status == ExecutionStatus.PROCESSING
    counts = pipeline.reap_stale_executions()  # re-sends to the module worker's broker
    done = poll(client, execution_id, timeout=60, worker=worker)

    assert counts["requeued"] == 1
    assert done["status"] == "completed", done
    assert router.calls(question) == 2


# --- cancel on PostgreSQL ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_database() -> dict[str, object]:
    url = urlparse(require("postgres"))
    params = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432, "user": url.username or "postgres"}
    with psycopg.connect(dbname=url.path.lstrip("/") or "postgres", autocommit=True, **params) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    with psycopg.connect(dbname=PG_DATABASE, autocommit=True, **params) as conn:
        conn.execute(
            "DROP TABLE IF EXISTS big; CREATE TABLE big AS SELECT g AS id, g % 7 AS bucket "
            "FROM generate_series(1, 50000) g; ANALYZE big;"
        )
    return {**params, "dbname": PG_DATABASE}


@pytest.fixture
def pg_source(member, pg_database) -> DataSource:
    source = DataSourceFactory(
        workspace=member.workspace,
        connector_type="postgres",
        host=pg_database["host"],
        port=pg_database["port"],
        database=PG_DATABASE,
        username=pg_database["user"],
    )
    discovery_run(source_id=source.pk)
    return source


def backend_state(pg_database, pid: int) -> str | None:
    params = {k: v for k, v in pg_database.items() if k != "dbname"}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        found = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return found[0] if found else None


def test_cancelling_during_the_query_stage_cancels_the_query_on_the_server(
    client, pg_source, pg_database, router, worker
):
    question = router.script("Count every pair of rows", [sql_reply(SLOW_QUERY)])
    started = execute(client, prompt_text=question, selected_data_source_ids=[pg_source.pk], ai_model=STUB_MODEL)
    execution_id = started["execution_id"]
    wait_for_stage(execution_id, Stage.QUERY)
    pid = wait_for(
        lambda: PromptExecution.objects.get(pk=execution_id).query_backend.get("backend_pid"),
        what="the query's backend pid",
    )
    wait_for(lambda: backend_state(pg_database, pid) == "active", what="the query to run on the server")

    response = client.post(f"/api/v1/prompt-executions/{execution_id}/cancel")

    assert response.status_code == 200, response.content
    done = poll(client, execution_id, worker=worker)
    assert (done["status"], done["error_code"]) == ("failed", "CANCELLED")
    wait_for(lambda: backend_state(pg_database, pid) != "active", timeout=15, what="the server-side query to stop")
    assert PromptExecution.objects.get(pk=execution_id).rows_returned is None
    assert client.post(f"/api/v1/prompt-executions/{execution_id}/cancel").status_code == 400
