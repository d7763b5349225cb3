"""Execute → poll → completed / failed, through a real worker process, the broker and the test database.

The LLM is tests/llm_stub.py on 127.0.0.1: litellm runs its real HTTP path against scripted replies.
One worker (ai + query queues, a thread pool) serves the whole module.
"""

from __future__ import annotations

import json

import pytest

from connectors.models import DataSource
from prompts.models import GeneratedQuery, Prompt, PromptExecution
from tests.conftest import client_for
from tests.llm_stub import LLMStub, Reply, sql_reply
from tests.prompts.pipeline_support import (
    SPEC_FIELDS,
    STUB_KEY_ENV,
    STUB_MODEL,
    QuestionRouter,
    ai_models,
    demo_source,
    execute,
    poll,
)
from tests.workers.helpers import make_broker, publishing_to, start_worker

pytestmark = pytest.mark.django_db(transaction=True)

AI_REQUEST_TIMEOUT = 2  # seconds, for the worker: a reply delayed longer is a timeout
SALES_BY_REGION = (
    "SELECT r.name AS region, SUM(o.total_amount) AS total_sales FROM orders AS o "
    "JOIN regions AS r ON r.id = o.region_id GROUP BY r.name ORDER BY r.name"
)


@pytest.fixture(scope="module")
def router() -> QuestionRouter:
    return QuestionRouter()


@pytest.fixture(scope="module")
def stub(router):
    with LLMStub([router]) as server:
        yield server


@pytest.fixture(scope="module")
def worker(django_db_setup, tmp_path_factory, stub):
    folder = tmp_path_factory.mktemp("pipeline-e2e")
    broker = make_broker(folder / "broker")
    env = {
        "AI_MODELS": json.dumps(ai_models(stub.base_url)),
        "AI_REQUEST_TIMEOUT": str(AI_REQUEST_TIMEOUT),
        STUB_KEY_ENV: "sk-stub",
    }
    with publishing_to(broker):
        proc = start_worker(broker, folder, env=env)
        yield proc
        proc.stop()


@pytest.fixture(autouse=True)
def _stub_model_served(settings, stub, monkeypatch):
    settings.AI_MODELS = ai_models(stub.base_url)
    monkeypatch.setenv(STUB_KEY_ENV, "sk-stub")


@pytest.fixture
def source(member) -> DataSource:
    return demo_source(member)


@pytest.fixture
def client(member):
    return client_for(member.user)


def run(client, worker, source, question: str, **extra) -> dict:
    body = {"prompt_text": question, "selected_data_source_ids": [source.pk], "ai_model": STUB_MODEL, **extra}
    started = execute(client, **body)
    return poll(client, started["execution_id"], worker=worker)


# --- builtin -----------------------------------------------------------------------------------------


def test_the_spec_example_completes_with_every_spec_field_on_the_builtin_engine(client, worker, source, member):
    started = execute(
        client,
        prompt_text="Show me total sales by region for the last quarter",
        workspace_id=member.workspace_id,
        selected_data_source_ids=[source.pk],
        selected_schema_names=["main"],
        name="Q4 Sales Report",
        save_prompt=True,
        ai_model="builtin",
        tags=["sales", "quarterly"],
    )
    assert set(started) == {
        "execution_id",
        "prompt_id",
        "status",
        "ai_processing_status",
        "query_execution_status",
        "started_at",
        "progress_percentage",
    }
    assert started["prompt_id"] is None
    assert (started["status"], started["ai_processing_status"], started["query_execution_status"]) == (
        "processing",
        "in_progress",
        None,
    )

    done = poll(client, started["execution_id"], worker=worker)

    assert done["status"] == "completed", done
    missing = {f for f in SPEC_FIELDS if done.get(f) is None}
    assert not missing, f"null spec fields: {missing}"
    assert (done["ai_processing_status"], done["query_execution_status"]) == ("completed", "completed")
    assert done["progress_percentage"] == 100
    assert done["rows_returned"] == 5
    assert len(done["result_preview"]) == 5
    assert all(len(row) == 2 for row in done["result_preview"])
    assert {"model", "confidence", "tokens_used"} <= set(done["ai_metadata"])
    assert done["ai_metadata"]["model"] == "builtin"
    for stamp in ("started_at", "ai_processing_completed_at", "query_execution_completed_at", "completed_at"):
        assert done[stamp].endswith("Z")
    assert done["total_duration_ms"] >= done["query_execution_duration_ms"]
    prompt = Prompt.objects.get(pk=done["prompt_id"])
    assert (prompt.name, prompt.tags, prompt.status) == ("Q4 Sales Report", ["sales", "quarterly"], "completed")
    assert prompt.data_source_ids == [source.pk]
    assert GeneratedQuery.objects.get(pk=done["generated_query_id"]).sql_text == done["generated_query_text"]


def test_a_question_the_builtin_engine_cannot_map_fails_with_ai_generation_error(client, worker, source):
    done = run(client, worker, source, "Why is the sky blue on tuesdays", ai_model="builtin")

    assert (done["status"], done["error_code"]) == ("failed", "AI_GENERATION_ERROR")
    assert done["error_message"]
    assert done["query_execution_status"] is None


# --- a litellm model against the stub ------------------------------------------------------------------


def test_correct_sql_from_the_model_completes_with_tokens_and_confidence(client, worker, source, router):
    question = router.script("Total sales per region (llm)", [sql_reply(SALES_BY_REGION)])

    done = run(client, worker, source, question, save_prompt=True, name="by region")

    assert done["status"] == "completed", done
    assert not {f for f in SPEC_FIELDS if done.get(f) is None}
    assert done["rows_returned"] == 5
    assert [c["name"] for c in done["columns"]] == ["region", "total_sales"]
    assert done["ai_metadata"]["model"] == STUB_MODEL
    assert done["ai_metadata"]["tokens_used"] == 150
    assert done["ai_metadata"]["confidence"] == pytest.approx(0.9)
    assert done["ai_metadata"]["attempts"] == 1
    assert router.calls(question) == 1


def test_wrong_sql_is_sent_back_with_the_error_and_the_correction_completes(client, worker, source, router):
    question = router.script(
        "Total sales per region, with a typo first",
        [
            sql_reply("SELECT region_name, SUM(total_amount) FROM orders GROUP BY region_name"),
            sql_reply(SALES_BY_REGION),
        ],
    )

    done = run(client, worker, source, question)

    assert done["status"] == "completed", done
    assert done["rows_returned"] == 5
    assert done["ai_metadata"]["attempts"] == 2
    assert done["ai_metadata"]["confidence"] < 0.9
    assert done["ai_metadata"]["tokens_used"] == 300
    attempts = GeneratedQuery.objects.get(pk=done["generated_query_id"]).attempts
    assert [bool(a["error"]) for a in attempts] == [True, False]
    assert "region_name" in attempts[0]["error"]
    assert router.calls(question) == 2


def test_dml_from_the_model_is_refused_after_the_retries_and_nothing_runs(client, worker, source, router):
    question = router.script(
        "Remove the cancelled orders", [sql_reply("DELETE FROM orders WHERE status = 'cancelled'")]
    )

    done = run(client, worker, source, question)

    assert (done["status"], done["error_code"]) == ("failed", "SQL_VALIDATION_ERROR")
    assert router.calls(question) == 3
    assert done["query_execution_status"] is None
    assert done["query_execution_started_at"] is None
    assert done["rows_returned"] is None
    execution = PromptExecution.objects.get(pk=done["execution_id"])
    assert execution.generated_queries.get().attempts[-1]["sql"].startswith("DELETE")


def test_a_rate_limited_model_is_retried_with_backoff_and_completes(client, worker, source, router):
    question = router.script(
        "Sales per region after a rate limit", [Reply(status=429, error="slow down"), sql_reply(SALES_BY_REGION)]
    )

    done = run(client, worker, source, question)

    assert done["status"] == "completed", done
    assert router.calls(question) == 2
    assert done["ai_metadata"]["attempts"] == 1  # the 429 produced no SQL attempt


def test_a_model_timeout_is_retried_and_completes(client, worker, source, router):
    question = router.script(
        "Sales per region after a timeout",
        [sql_reply(SALES_BY_REGION, delay=AI_REQUEST_TIMEOUT + 2), sql_reply(SALES_BY_REGION)],
    )

    done = run(client, worker, source, question)

    assert done["status"] == "completed", done
    assert router.calls(question) == 2
    assert done["ai_metadata"]["attempts"] == 1


def test_a_bad_api_key_fails_at_once_with_ai_generation_error(client, worker, source, router):
    question = router.script("Sales per region with a bad key", [Reply(status=401, error="Incorrect API key")])

    done = run(client, worker, source, question)

    assert (done["status"], done["error_code"]) == ("failed", "AI_GENERATION_ERROR")
    assert "key" in done["error_message"].lower()
    assert router.calls(question) == 1


# --- governance inside the pipeline -------------------------------------------------------------------


def test_the_row_policy_and_masking_shape_the_preview(client, worker, source, router, member):
    question = router.script(
        "Customers and their emails", [sql_reply("SELECT email, segment, region_id FROM customers")]
    )

    done = run(client, worker, source, question)

    assert done["status"] == "completed", done
    assert done["rows_returned"] > 0
    assert {row["region_id"] for row in done["result_preview"]} == {member.attributes["region_id"]}
    assert done["masked_columns"] == ["email"]
    assert all("*" in row["email"] for row in done["result_preview"])
    assert [c["name"] for c in done["columns"] if c["masked"]] == ["email"]


def test_a_renamed_masked_column_stays_masked_and_other_regions_stay_hidden(client, worker, source, router, member):
    question = router.script(
        "Contacts everywhere", [sql_reply("SELECT c.email AS contact, c.region_id FROM customers AS c")]
    )

    done = run(client, worker, source, question)

    assert done["status"] == "completed", done
    assert "contact" in done["masked_columns"]
    assert all("*" in row["contact"] for row in done["result_preview"])
    assert {row["region_id"] for row in done["result_preview"]} == {member.attributes["region_id"]}


def test_a_filter_on_another_region_returns_nothing(client, worker, source, router):
    question = router.script(
        "Customers of region two", [sql_reply("SELECT COUNT(*) AS n FROM customers WHERE region_id = 2")]
    )

    done = run(client, worker, source, question)

    assert done["status"] == "completed", done
    assert done["result_preview"] == [{"n": 0}]


def test_a_filter_on_a_masked_column_reveals_nothing(client, worker, source, router):
    question = router.script(
        "Customers with gmail", [sql_reply("SELECT segment FROM customers WHERE email LIKE '%a%' LIMIT 5")]
    )

    done = run(client, worker, source, question)

    assert done["status"] == "failed", done
    assert done["error_code"] in {"POLICY_VIOLATION", "SQL_VALIDATION_ERROR"}


def test_sql_reading_a_table_outside_the_catalog_is_refused(client, worker, source, router):
    question = router.script("List the database tables", [sql_reply("SELECT name, sql FROM sqlite_master")])

    done = run(client, worker, source, question)

    assert (done["status"], done["error_code"]) == ("failed", "SQL_VALIDATION_ERROR")
    assert done["query_execution_started_at"] is None
