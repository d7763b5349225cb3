"""Stage claims, duplicate deliveries, retry exhaustion and the reaper — the task bodies run in this process.

Task bodies run with Celery's `apply()` (eager: a retry re-runs at once, without its countdown). The
messages they enqueue go to a broker of this module's own that no worker reads.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership
from prompts import pipeline, services
from prompts.models import ErrorCode, ExecutionStatus, GeneratedQuery, PromptExecution, Stage
from tests.llm_stub import LLMStub, Reply
from tests.prompts.pipeline_support import STUB_KEY_ENV, STUB_MODEL, ai_models, demo_source
from tests.workers.helpers import make_broker, publishing_to
from workers.tasks import execute_query, generate_sql

pytestmark = pytest.mark.django_db(transaction=True)  # stage watchers read the row on their own connections


@pytest.fixture(scope="module", autouse=True)
def _idle_broker(tmp_path_factory):
    with publishing_to(make_broker(tmp_path_factory.mktemp("claims-broker"))) as broker:
        yield broker


def start(member: Membership, *, ai_model: str = "builtin", question: str = "Total sales by region") -> int:
    source = demo_source(member)
    execution = services.execution_create(
        membership=member, prompt_text=question, data_source_ids=[source.pk], ai_model=ai_model
    )
    return execution.pk


def row(execution_id: int) -> PromptExecution:
    return PromptExecution.objects.get(pk=execution_id)


# --- claims ------------------------------------------------------------------------------------------------


def test_a_stage_is_claimed_once(member):
    execution_id = start(member)

    first = pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="w1")
    second = pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="w2")

    assert (first, second) == (True, False)
    execution = row(execution_id)
    assert (execution.stage, execution.worker, execution.stage_attempts) == (Stage.AI, "w1", 1)


def test_the_query_stage_cannot_be_claimed_before_the_ai_stage_handed_it_over(member):
    execution_id = start(member)

    assert not pipeline.claim_stage(execution_id=execution_id, stage=Stage.QUERY, worker="w1")
    assert row(execution_id).stage == Stage.QUEUED_AI


def test_a_stage_whose_worker_stopped_heart_beating_can_be_claimed_again(member):
    execution_id = start(member)
    assert pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="dead")
    PromptExecution.objects.filter(pk=execution_id).update(
        heartbeat_at=timezone.now() - pipeline.STALE_AFTER - timedelta(seconds=1)
    )

    assert pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="alive")
    assert (row(execution_id).worker, row(execution_id).stage_attempts) == ("alive", 2)


def test_a_cancelled_execution_cannot_be_claimed(member):
    execution_id = start(member)
    services.execution_cancel(execution=row(execution_id))

    assert not pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="w1")


# --- duplicate deliveries ----------------------------------------------------------------------------------


def test_duplicate_deliveries_of_both_stages_run_each_stage_once(member):
    execution_id = start(member, question="Show me total sales by region for the last quarter")

    generate_sql.apply(args=[execution_id])
    generate_sql.apply(args=[execution_id])
    assert row(execution_id).stage == Stage.QUEUED_QUERY
    execute_query.apply(args=[execution_id])
    done = row(execution_id)
    execute_query.apply(args=[execution_id])
    again = row(execution_id)

    assert done.status == ExecutionStatus.COMPLETED
    assert GeneratedQuery.objects.filter(execution_id=execution_id).count() == 1
    assert done.stage_attempts == 1
    assert (again.stage_attempts, again.query_execution_completed_at, again.updated_at) == (
        1,
        done.query_execution_completed_at,
        done.updated_at,
    )
    assert done.prompt_id is None


def test_a_redelivery_while_the_stage_runs_elsewhere_does_not_run_it(member):
    execution_id = start(member)
    generate_sql.apply(args=[execution_id])
    assert pipeline.claim_stage(execution_id=execution_id, stage=Stage.QUERY, worker="busy-worker")
    before = row(execution_id)

    execute_query.apply(args=[execution_id])  # eager: its "look again later" retries run at once, then give up

    after = row(execution_id)
    assert (after.status, after.stage, after.worker, after.stage_attempts) == (
        ExecutionStatus.PROCESSING,
        Stage.QUERY,
        "busy-worker",
        before.stage_attempts,
    )
    assert after.rows_returned is None


# --- transient AI errors run out of retries ----------------------------------------------------------------


@pytest.fixture
def stub_model(settings, monkeypatch):
    def serve(script: list[Reply]) -> LLMStub:
        stub = LLMStub(script)
        settings.AI_MODELS = ai_models(stub.base_url)
        settings.AI_REQUEST_TIMEOUT = 1
        monkeypatch.setenv(STUB_KEY_ENV, "sk-stub")
        return stub

    return serve


@pytest.mark.parametrize(
    "reply", [Reply(status=429, error="rate limited"), Reply(content="SELECT 1", delay=2)], ids=["429", "timeout"]
)
def test_a_provider_that_keeps_failing_transiently_ends_in_ai_generation_error(member, stub_model, reply):
    with stub_model([reply]) as stub:
        execution_id = start(member, ai_model=STUB_MODEL)

        generate_sql.apply(args=[execution_id])

    execution = row(execution_id)
    assert (execution.status, execution.error_code) == (ExecutionStatus.FAILED, ErrorCode.AI_GENERATION_ERROR)
    assert "kept failing" in execution.error_message
    assert len(stub.requests) == generate_sql.max_retries + 1
    assert execution.stage_attempts == generate_sql.max_retries + 1


# --- the reaper ----------------------------------------------------------------------------------------------


def test_the_reaper_fails_an_execution_past_its_deadline_with_execution_timeout(member):
    execution_id = start(member)
    pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="w1")
    PromptExecution.objects.filter(pk=execution_id).update(
        started_at=timezone.now() - pipeline.EXECUTION_DEADLINE - timedelta(minutes=1)
    )

    counts = pipeline.reap_stale_executions()

    execution = row(execution_id)
    assert counts["failed"] == 1
    assert (execution.status, execution.error_code, execution.stage) == (
        ExecutionStatus.FAILED,
        ErrorCode.EXECUTION_TIMEOUT,
        Stage.DONE,
    )
    assert execution.ai_processing_status == "failed"
    assert execution.completed_at is not None


def test_the_reaper_requeues_a_stage_whose_worker_died(member):
    execution_id = start(member)
    pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="dead")
    PromptExecution.objects.filter(pk=execution_id).update(heartbeat_at=timezone.now() - pipeline.STALE_AFTER * 4)

    counts = pipeline.reap_stale_executions()

    execution = row(execution_id)
    assert counts == {"requeued": 1, "failed": 0}
    assert (execution.status, execution.stage) == (ExecutionStatus.PROCESSING, Stage.QUEUED_AI)
    assert pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="second")


def test_the_reaper_gives_up_on_a_stage_that_keeps_losing_its_worker(member):
    execution_id = start(member)
    pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="dead")
    PromptExecution.objects.filter(pk=execution_id).update(
        heartbeat_at=timezone.now() - pipeline.STALE_AFTER * 4, stage_attempts=pipeline.MAX_STAGE_ATTEMPTS
    )

    pipeline.reap_stale_executions()

    execution = row(execution_id)
    assert (execution.status, execution.error_code) == (ExecutionStatus.FAILED, ErrorCode.EXECUTION_TIMEOUT)


def test_the_reaper_resends_a_stage_nobody_picked_up(member):
    execution_id = start(member)
    PromptExecution.objects.filter(pk=execution_id).update(
        stage_claimed_at=timezone.now() - pipeline.QUEUED_STALE_AFTER - timedelta(minutes=1)
    )

    counts = pipeline.reap_stale_executions()

    assert counts["requeued"] == 1
    execution = row(execution_id)
    assert (execution.stage, execution.status) == (Stage.QUEUED_AI, ExecutionStatus.PROCESSING)
    assert execution.stage_claimed_at > timezone.now() - timedelta(minutes=1)


def test_the_reaper_leaves_live_executions_alone(member):
    execution_id = start(member)
    pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="alive")

    assert pipeline.reap_stale_executions() == {"requeued": 0, "failed": 0}
    assert row(execution_id).stage == Stage.AI
