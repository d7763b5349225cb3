"""The execution pipeline's stages, run by workers: claim → work → record, never stuck.

- A stage is claimed with one conditional UPDATE (`queued_x` → `x`, or a stale `x` whose worker
  stopped heart-beating); a duplicate delivery claims nothing and does nothing.
- While a stage runs, a watcher thread beats `heartbeat_at` and turns a cancel request into a
  cancel event: the database query is cancelled on the server, an LLM call in flight is abandoned.
- Every outcome is written conditionally on `status='processing'`, so a cancel (or the reaper)
  that already ended the execution is never overwritten.
- The beat reaper re-queues stages whose worker died, and fails with EXECUTION_TIMEOUT what keeps
  failing or outlives its deadline.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Membership
from accounts.selectors import memberships_active
from config.errors import BadRequest
from connectors.errors import GovernedQueryError, QueryCancelledError, QueryExecutionFailed
from connectors.governed import GovernedRequest, governed_execute, governed_prepare
from connectors.models import DataSource
from connectors.selectors import data_sources_for_query, source_catalog
from prompts.ai import generation
from prompts.ai.client import PermanentAIError
from prompts.ai.registry import resolve_model
from prompts.models import ErrorCode, ExecutionStatus, GeneratedQuery, PromptExecution, Stage, StageStatus
from prompts.selectors import execution_with_query, few_shot_examples
from prompts.services import prompt_record_execution
from workers.dispatch import send

logger = logging.getLogger("prompt_studio.pipeline")

HEARTBEAT_SECONDS = 5.0
CANCEL_POLL_SECONDS = 0.5
STALE_AFTER = timedelta(seconds=20)  # a claimed stage without a heartbeat for this long has lost its worker
QUEUED_STALE_AFTER = timedelta(minutes=10)  # a queued stage nobody picked up: re-send its message
MAX_STAGE_ATTEMPTS = 3
MAX_EXECUTION_CORRECTIONS = 2  # SQL that failed at execution goes back to the model at most this often
EXECUTION_DEADLINE = timedelta(minutes=30)
PREVIEW_ROWS = 100

QUEUED = {Stage.AI: Stage.QUEUED_AI, Stage.QUERY: Stage.QUEUED_QUERY}
TASKS = {Stage.AI: "workers.generate_sql", Stage.QUERY: "workers.execute_query"}


class StageAbandoned(Exception):
    """The execution was cancelled or ended elsewhere while this stage worked."""


def _ms(start: Any, end: Any) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None


def _live(execution_id: int) -> Any:
    return PromptExecution.objects.filter(pk=execution_id, status=ExecutionStatus.PROCESSING)


def claim_stage(*, execution_id: int, stage: Stage, worker: str) -> bool:
    now = timezone.now()
    fields: dict[str, Any] = {
        "stage": stage,
        "stage_claimed_at": now,
        "heartbeat_at": now,
        "worker": worker[:255],
        "stage_attempts": F("stage_attempts") + 1,
    }
    if stage == Stage.AI:
        # A retry or a correction round continues the AI stage: it started at the first claim.
        fields.update(
            ai_processing_status=StageStatus.IN_PROGRESS,
            progress_percentage=30,
            ai_processing_started_at=Coalesce(F("ai_processing_started_at"), Value(now)),
        )
    else:
        fields.update(
            query_execution_status=StageStatus.IN_PROGRESS, progress_percentage=80, query_execution_started_at=now
        )
    claimed = (
        _live(execution_id)
        .filter(cancel_requested=False)
        .filter(Q(stage=QUEUED[stage]) | Q(stage=stage, heartbeat_at__lt=now - STALE_AFTER))
        .update(**fields)
    )
    return claimed == 1


def stage_is_running_elsewhere(*, execution_id: int, stage: Stage) -> bool:
    return _live(execution_id).filter(stage=stage, heartbeat_at__gte=timezone.now() - STALE_AFTER).exists()


def requeue(*, execution_id: int, stage: Stage) -> None:
    """Give the stage back (a transient error: the task retries with backoff and claims it again)."""
    _live(execution_id).filter(stage=stage).update(stage=QUEUED[stage], heartbeat_at=None)


def fail(*, execution_id: int, code: str, message: str) -> bool:
    now = timezone.now()
    execution = PromptExecution.objects.filter(pk=execution_id).only("stage", "started_at").first()
    if execution is None:
        return False
    fields: dict[str, Any] = {
        "status": ExecutionStatus.FAILED,
        "error_code": code,
        "error_message": message[:4000],
        "completed_at": now,
        "stage": Stage.DONE,
        "total_duration_ms": _ms(execution.started_at, now),
    }
    if execution.stage in (Stage.QUEUED_AI, Stage.AI):
        fields["ai_processing_status"] = StageStatus.FAILED
    else:
        fields["query_execution_status"] = StageStatus.FAILED
    # One transaction: a poller that sees `failed` also sees the prompt's outcome recorded.
    with transaction.atomic():
        ended = _live(execution_id).update(**fields) == 1
        if ended:
            prompt_record_execution(execution_id=execution_id)
    if ended:
        logger.warning("execution %s failed: %s %s", execution_id, code, message)
    return ended


class StageWatch:
    """Heartbeat + cancel watcher for one running stage (a daemon thread with its own DB connection)."""

    def __init__(self, execution_id: int) -> None:
        self.execution_id = execution_id
        self.cancel_event = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stage-watch-{execution_id}", daemon=True)

    def __enter__(self) -> StageWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        last_beat = 0.0
        elapsed = 0.0
        try:
            while not self._stop.wait(CANCEL_POLL_SECONDS):
                elapsed += CANCEL_POLL_SECONDS
                row = PromptExecution.objects.filter(pk=self.execution_id).values("status", "cancel_requested").first()
                if row is None or row["cancel_requested"] or row["status"] != ExecutionStatus.PROCESSING:
                    self.cancel_event.set()
                    return
                if elapsed - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = elapsed
                    _live(self.execution_id).update(heartbeat_at=timezone.now())
        except Exception:  # the watcher must never take the stage down; the reaper is the backstop
            logger.exception("stage watcher for execution %s stopped", self.execution_id)
        finally:
            connection.close()


@dataclass
class _Context:
    execution: PromptExecution
    membership: Membership
    sources: list[DataSource]

    def request(self, sql: str) -> GovernedRequest:
        return GovernedRequest(
            membership=self.membership,
            sources=self.sources,
            sql=sql,
            purpose="prompt",
            schemas=list(self.execution.schema_names or []),
        )


def _load(execution_id: int) -> _Context | None:
    """The execution with its generated query, the owner's active membership and the sources (with
    access rules): three fixed statements (config/rows.py), run at the start of both stages."""
    execution = execution_with_query(execution_id=execution_id)
    memberships = memberships_active(user_id=execution.user_id, workspace_id=execution.workspace_id, limit=1)
    if not memberships:
        fail(
            execution_id=execution_id,
            code=ErrorCode.POLICY_VIOLATION,
            message="You are no longer an active member of this workspace",
        )
        return None
    try:
        sources = data_sources_for_query(membership=memberships[0], ids=list(execution.data_source_ids))
    except BadRequest as exc:
        fail(
            execution_id=execution_id,
            code=ErrorCode.DATA_SOURCE_UNAVAILABLE,
            message=f"{exc.message} (removed or deactivated since the execution started)",
        )
        return None
    return _Context(execution, memberships[0], sources)


def _wait_unless_cancelled(watch: StageWatch, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run fn in a helper thread; if the execution is cancelled first, abandon it (its result is ignored)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-call")

    def call() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    future = pool.submit(call)
    pool.shutdown(wait=False)
    while True:
        try:
            return future.result(timeout=CANCEL_POLL_SECONDS)
        except TimeoutError:
            if watch.cancel_event.is_set():
                raise StageAbandoned() from None


def run_ai_stage(*, execution_id: int) -> None:
    ctx = _load(execution_id)
    if ctx is None:
        return
    execution = ctx.execution
    spec = resolve_model(execution.ai_model)
    catalogs = [source_catalog(s) for s in ctx.sources]
    federated = len(ctx.sources) > 1
    dialect = "duckdb" if federated else catalogs[0].dialect
    prior = list(execution.generated_query.attempts if execution.generated_query and execution.correction_round else [])
    prior_errors = [a for a in prior if a.get("stage") == "execution"]

    def validate(sql: str) -> None:
        governed_prepare(ctx.request(sql))

    request = dict(
        question=execution.prompt_text,
        catalogs=catalogs,
        dialect=dialect,
        federated=federated,
        spec=spec,
        validate=validate,
        today=timezone.localdate(),
        prior_errors=prior_errors,
    )
    with StageWatch(execution_id) as watch:
        try:
            if spec.is_builtin:
                # In-process and deterministic, milliseconds long: nothing to abandon, so it runs here
                # (its validation on this thread's connection) and a cancel is honoured right after.
                result = generation.generate(**request)
            else:
                examples = few_shot_examples(
                    workspace_id=execution.workspace_id, question=execution.prompt_text, exclude_id=execution_id
                )
                result = _wait_unless_cancelled(watch, generation.generate, examples=examples, **request)
        except StageAbandoned:
            logger.info("execution %s cancelled during SQL generation; LLM call abandoned", execution_id)
            return
        except generation.GenerationFailed as exc:
            # No tokens or cost are known for a failed generation, so the execution's spend totals stand.
            GeneratedQuery.objects.create(
                execution_id=execution_id,
                sql_text=(exc.attempts[-1]["sql"] if exc.attempts else ""),
                dialect=dialect,
                model=spec.name,
                attempts=prior + exc.attempts,
            )
            fail(execution_id=execution_id, code=exc.code, message=exc.message)
            return
        except PermanentAIError as exc:
            fail(execution_id=execution_id, code=ErrorCode.AI_GENERATION_ERROR, message=f"The AI model failed: {exc}")
            return

    now = timezone.now()
    previous = execution.ai_metadata or {}
    metadata = {
        "model": spec.name,
        "provider_model": result.model,
        "confidence": result.confidence,
        "tokens_used": result.tokens_in + result.tokens_out + previous.get("tokens_used", 0),
        "tokens_in": result.tokens_in + previous.get("tokens_in", 0),
        "tokens_out": result.tokens_out + previous.get("tokens_out", 0),
        "cost": round(result.cost + previous.get("cost", 0.0), 6),
        "latency_ms": result.latency_ms,
        "attempts": len(prior) + len(result.attempts),
        "corrections": len(prior) + len(result.attempts) - 1,
    }
    if result.assumptions:
        metadata["assumptions"] = result.assumptions
    # The execution carries the sums over its generated queries (every correction round), for analytics.
    spend = {
        "tokens_in": F("tokens_in") + result.tokens_in,
        "tokens_out": F("tokens_out") + result.tokens_out,
        "cost": F("cost") + result.cost,
    }
    with transaction.atomic():  # one commit: the generated query, the spend and the hand-over
        generated = GeneratedQuery.objects.create(
            execution_id=execution_id,
            sql_text=result.sql,
            dialect=dialect,
            model=result.model,
            attempts=prior + result.attempts,
            confidence=result.confidence,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            cost=result.cost,
            latency_ms=result.latency_ms,
        )
        moved = (
            _live(execution_id)
            .filter(stage=Stage.AI)
            .update(
                stage=Stage.QUEUED_QUERY,
                stage_claimed_at=now,
                stage_attempts=0,
                heartbeat_at=None,
                ai_processing_status=StageStatus.COMPLETED,
                ai_processing_completed_at=now,
                ai_response_time_ms=_ms(execution.ai_processing_started_at, now),
                progress_percentage=60,
                generated_query=generated,
                ai_metadata=metadata,
                **spend,
            )
        )
        if not moved:  # cancelled or ended meanwhile: the model was paid all the same
            PromptExecution.objects.filter(pk=execution_id).update(**spend)
    if moved:
        send(TASKS[Stage.QUERY], args=[execution_id])


def run_query_stage(*, execution_id: int) -> None:
    ctx = _load(execution_id)
    if ctx is None:
        return
    execution = ctx.execution
    generated = execution.generated_query
    if generated is None:
        fail(execution_id=execution_id, code=ErrorCode.INTERNAL_ERROR, message="No generated query to run")
        return

    def remember_backend(info: dict) -> None:
        if info:  # a server-side backend to cancel (PostgreSQL pid, MySQL connection id)
            PromptExecution.objects.filter(pk=execution_id).update(query_backend=info)

    with StageWatch(execution_id) as watch:
        try:
            result = governed_execute(
                ctx.request(generated.sql_text), cancel_event=watch.cancel_event, on_connected=remember_backend
            )
        except QueryCancelledError:
            logger.info("execution %s cancelled; the query was cancelled on the server", execution_id)
            return
        except QueryExecutionFailed as exc:
            if _send_back_for_correction(execution, generated, exc):
                return
            fail(execution_id=execution_id, code=exc.code, message=f"Query execution failed: {exc.message}")
            return
        except GovernedQueryError as exc:
            fail(execution_id=execution_id, code=exc.code, message=exc.message)
            return

    now = timezone.now()
    # One transaction: a poller that sees `completed` also sees the saved prompt (prompt_id) and history.
    with transaction.atomic():
        GeneratedQuery.objects.filter(pk=generated.pk).update(sql_executed=result.sql_executed)
        completed = (
            _live(execution_id)
            .filter(stage=Stage.QUERY)
            .update(
                status=ExecutionStatus.COMPLETED,
                stage=Stage.DONE,
                progress_percentage=100,
                query_execution_status=StageStatus.COMPLETED,
                query_execution_completed_at=now,
                query_execution_duration_ms=_ms(execution.query_execution_started_at, now),
                completed_at=now,
                total_duration_ms=_ms(execution.started_at, now),
                rows_returned=result.row_count,
                result_preview=result.rows[:PREVIEW_ROWS],
                result_columns=[{"name": c.name, "type": c.type, "masked": c.masked} for c in result.columns],
                masked_columns=result.masked_columns,
                result_truncated=result.truncated,
                warnings=result.warnings,
            )
        )
        if completed and (execution.prompt_id is not None or execution.save_prompt):  # fixed at creation
            prompt_record_execution(execution_id=execution_id)


def _send_back_for_correction(execution: PromptExecution, generated: GeneratedQuery, exc: QueryExecutionFailed) -> bool:
    """An LLM's SQL that failed in the database goes back to the model with the error (bounded)."""
    if resolve_model(execution.ai_model).is_builtin or execution.correction_round >= MAX_EXECUTION_CORRECTIONS:
        return False
    attempts = [*generated.attempts, {"stage": "execution", "sql": generated.sql_text, "error": exc.message}]
    GeneratedQuery.objects.filter(pk=generated.pk).update(attempts=attempts)
    moved = (
        _live(execution.pk)
        .filter(stage=Stage.QUERY)
        .update(
            stage=Stage.QUEUED_AI,
            stage_claimed_at=timezone.now(),
            stage_attempts=0,
            heartbeat_at=None,
            correction_round=F("correction_round") + 1,
            ai_processing_status=StageStatus.IN_PROGRESS,
            query_execution_status=None,
            progress_percentage=30,
        )
    )
    if moved:
        send(TASKS[Stage.AI], args=[execution.pk])
    return bool(moved)


def reap_stale_executions() -> dict[str, int]:
    """Beat task body: nothing stays `processing` forever."""
    now = timezone.now()
    counts = {"requeued": 0, "failed": 0}
    processing = PromptExecution.objects.filter(status=ExecutionStatus.PROCESSING)
    for execution_id in processing.filter(started_at__lt=now - EXECUTION_DEADLINE).values_list("pk", flat=True):
        if fail(
            execution_id=execution_id,
            code=ErrorCode.EXECUTION_TIMEOUT,
            message=f"The execution did not finish within {int(EXECUTION_DEADLINE.total_seconds() // 60)} minutes",
        ):
            counts["failed"] += 1
    for stage in (Stage.AI, Stage.QUERY):
        lost = processing.filter(stage=stage).filter(Q(heartbeat_at__lt=now - STALE_AFTER * 3) | Q(heartbeat_at=None))
        counts_stage = _requeue_or_fail(lost, stage, "its worker stopped responding")
        counts["requeued"] += counts_stage[0]
        counts["failed"] += counts_stage[1]
        waiting = processing.filter(stage=QUEUED[stage], stage_claimed_at__lt=now - QUEUED_STALE_AFTER)
        counts_stage = _requeue_or_fail(waiting, stage, "no worker picked it up")
        counts["requeued"] += counts_stage[0]
        counts["failed"] += counts_stage[1]
    return counts


def _requeue_or_fail(queryset: Any, stage: Stage, why: str) -> tuple[int, int]:
    requeued = failed = 0
    for execution_id, attempts in queryset.values_list("pk", "stage_attempts"):
        if attempts >= MAX_STAGE_ATTEMPTS:
            if fail(
                execution_id=execution_id,
                code=ErrorCode.EXECUTION_TIMEOUT,
                message=f"The {stage.label.lower()} stage was given up after {attempts} attempts: {why}",
            ):
                failed += 1
            continue
        now = timezone.now()
        moved = (
            _live(execution_id)
            .filter(pk=execution_id, stage__in=[stage, QUEUED[stage]])
            .update(
                stage=QUEUED[stage], stage_claimed_at=now, heartbeat_at=None, stage_attempts=F("stage_attempts") + 1
            )
        )
        if moved:
            logger.warning("re-queued execution %s (%s: %s)", execution_id, stage, why)
            send(TASKS[stage], args=[execution_id])
            requeued += 1
    return requeued, failed


def close_connections() -> None:
    close_old_connections()
