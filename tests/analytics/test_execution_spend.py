"""Executions carry their spend (tokens in and out, cost), the sum over their generated queries, which is what query
analytics reads: the pipeline adds each generated query's as it records it, migration 0004 backfilled older rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum

from accounts.models import Membership
from prompts import services
from prompts.models import ExecutionStatus, GeneratedQuery, PromptExecution
from tests.llm_stub import LLMStub, Reply, sql_reply
from tests.prompts.pipeline_support import STUB_KEY_ENV, STUB_MODEL, demo_source
from tests.workers.helpers import make_broker, publishing_to
from workers.tasks import execute_query, generate_sql

pytestmark = pytest.mark.django_db(transaction=True)  # stage watchers read the row on their own connections

SALES_BY_REGION = (
    "SELECT r.name AS region, SUM(o.total_amount) AS total_sales FROM orders AS o "
    "JOIN regions AS r ON r.id = o.region_id GROUP BY r.name ORDER BY r.name"
)
# Valid for the governed path, an error only when SQLite runs it (integer overflow): back to the model it goes.
FAILS_WHEN_RUN = "SELECT abs(-9223372036854775808) AS x FROM orders"


@pytest.fixture(scope="module", autouse=True)
def _idle_broker(tmp_path_factory):
    with publishing_to(make_broker(tmp_path_factory.mktemp("spend-broker"))) as broker:
        yield broker


@pytest.fixture
def priced_model(settings, monkeypatch):
    """The stub behind a model litellm has a price for, so generated queries cost something."""

    def serve(script: list[Reply]) -> LLMStub:
        stub = LLMStub(script)
        settings.AI_MODELS = {
            STUB_MODEL: {"model": "openai/gpt-4o-mini", "api_base": stub.base_url, "api_key_env": STUB_KEY_ENV}
        }
        monkeypatch.setenv(STUB_KEY_ENV, "sk-stub")
        return stub

    return serve


def start(member: Membership, question: str) -> int:
    source = demo_source(member)
    execution = services.execution_create(
        membership=member, prompt_text=question, data_source_ids=[source.pk], ai_model=STUB_MODEL
    )
    return execution.pk


def spend_of_generated_queries(execution_id: int) -> dict:
    return GeneratedQuery.objects.filter(execution_id=execution_id).aggregate(
        tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost=Sum("cost")
    )


def test_a_correction_round_adds_its_generated_querys_spend_to_the_execution(member, priced_model):
    script = [
        sql_reply(FAILS_WHEN_RUN, prompt_tokens=100, completion_tokens=10),
        sql_reply(SALES_BY_REGION, prompt_tokens=300, completion_tokens=40),
    ]
    with priced_model(script):
        execution_id = start(member, "Total sales per region")
        for task in (generate_sql, execute_query, generate_sql, execute_query):  # the second pair: the correction
            task.apply(args=[execution_id])

    execution = PromptExecution.objects.get(pk=execution_id)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert execution.correction_round == 1
    assert GeneratedQuery.objects.filter(execution_id=execution_id).count() == 2
    assert (execution.tokens_in, execution.tokens_out) == (400, 50)
    assert execution.cost > 0
    assert execution.cost == pytest.approx(spend_of_generated_queries(execution_id)["cost"])


def test_a_failed_generation_keeps_the_spend_already_recorded(member, priced_model):
    script = [
        sql_reply(FAILS_WHEN_RUN, prompt_tokens=100, completion_tokens=10),
        sql_reply("DELETE FROM orders"),  # refused on every try: the generation fails
    ]
    with priced_model(script):
        execution_id = start(member, "Total sales per region, then something destructive")
        for task in (generate_sql, execute_query, generate_sql):
            task.apply(args=[execution_id])

    execution = PromptExecution.objects.get(pk=execution_id)
    assert execution.status == ExecutionStatus.FAILED
    assert GeneratedQuery.objects.filter(execution_id=execution_id).count() == 2
    recorded = spend_of_generated_queries(execution_id)
    assert (execution.tokens_in, execution.tokens_out) == (recorded["tokens_in"], recorded["tokens_out"]) == (100, 10)
    assert execution.cost == pytest.approx(recorded["cost"])


# --- the backfill ------------------------------------------------------------------------------------------

BEFORE = ("prompts", "0003_execution_analytics_fields")
BACKFILL = ("prompts", "0004_backfill_execution_spend")


@pytest.fixture
def migrator():
    """Moves the test database's schema back to before the backfill; forward to the latest again afterwards."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([BEFORE])
    yield executor
    executor = MigrationExecutor(connection)
    executor.migrate(latest)


def test_the_backfill_sums_each_executions_generated_queries(member, migrator):
    apps = migrator.loader.project_state([BEFORE]).apps
    Execution = apps.get_model("prompts", "PromptExecution")
    Generated = apps.get_model("prompts", "GeneratedQuery")

    def execution(*spends: tuple[int, int, float]) -> int:
        row = Execution.objects.create(
            workspace_id=member.workspace_id, user_id=member.user_id, prompt_text="q", ai_model="m"
        )
        for tokens_in, tokens_out, cost in spends:
            Generated.objects.create(
                execution_id=row.pk,
                sql_text="SELECT 1",
                dialect="sqlite",
                model="m",
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
            )
        return row.pk

    corrected = execution((100, 10, 0.25), (300, 40, 0.5))
    once = execution((7, 3, 0.125))
    never = execution()

    migrator = MigrationExecutor(connection)
    migrator.migrate([BACKFILL])

    spend = {
        e["pk"]: (e["tokens_in"], e["tokens_out"], e["cost"])
        for e in PromptExecution.objects.values("pk", "tokens_in", "tokens_out", "cost")
    }
    assert spend == {corrected: (400, 50, 0.75), once: (7, 3, 0.125), never: (0, 0, 0.0)}
