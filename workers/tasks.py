"""Celery entry points. Thin: load by id, call a service, record the outcome (STYLE.md → Tasks)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.db.models import F
from django.utils import timezone

from config.logging import execution_id_var
from connectors.discovery import discovery_run
from connectors.models import DataSource, DiscoveryStatus
from programs import services as programs
from prompts import pipeline
from prompts.ai.client import TransientAIError
from prompts.models import ErrorCode, Stage
from workers.models import WorkerHeartbeat

logger = logging.getLogger("prompt_studio.tasks")


@shared_task(name="workers.heartbeat", bind=True, acks_late=True, ignore_result=True, soft_time_limit=10, time_limit=20)
def heartbeat(self, queue: str) -> None:  # noqa: ANN001
    """Record that a worker on `queue` is alive (scheduled by beat for every queue)."""
    hostname = self.request.hostname or "unknown"
    updated = WorkerHeartbeat.objects.filter(queue=queue, hostname=hostname).update(
        seen_at=timezone.now(), beats=F("beats") + 1
    )
    if not updated:
        WorkerHeartbeat.objects.get_or_create(queue=queue, hostname=hostname, defaults={"beats": 1})


@shared_task(
    name="workers.discover_data_source",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=600,
    time_limit=630,
)
def discover_data_source(self, source_id: int) -> None:  # noqa: ANN001
    """Read a data source's schema into the catalog (queue `default`)."""
    if not DataSource.objects.filter(pk=source_id, deleted_at__isnull=True).exists():
        return
    try:
        discovery_run(source_id=source_id)
    except SoftTimeLimitExceeded:
        DataSource.objects.filter(pk=source_id).update(
            discovery_status=DiscoveryStatus.FAILED, discovery_error="Discovery exceeded its time limit"
        )


# --- Prompt execution pipeline --------------------------------------------------------------------
_AI_SOFT = settings.TASK_SOFT_TIME_LIMITS["ai"]
_QUERY_SOFT = settings.TASK_SOFT_TIME_LIMITS["query"]
_MARGIN = settings.TASK_HARD_TIME_LIMIT_MARGIN
_RETRY_LIVE_STAGE = int(pipeline.STALE_AFTER.total_seconds()) + 5


def _worker_name(task) -> str:  # noqa: ANN001
    return f"{task.request.hostname or 'worker'}:{task.request.id or '-'}"


@dataclass(frozen=True)
class _StageTask:
    stage: Stage
    run: Callable[..., None]
    what: str  # for messages: "SQL generation", "the query"
    soft_limit: int
    timeout_code: str


def _run_stage(task, execution_id: int, spec: _StageTask) -> None:  # noqa: ANN001
    """Claim the stage, run it, record the outcome; retry only named transient errors, with backoff."""
    token = execution_id_var.set(str(execution_id))
    try:
        if not pipeline.claim_stage(execution_id=execution_id, stage=spec.stage, worker=_worker_name(task)):
            if pipeline.stage_is_running_elsewhere(execution_id=execution_id, stage=spec.stage) and (
                task.request.retries < 3
            ):
                # Maybe a redelivery after our worker died: look again once its heartbeat has gone stale.
                raise task.retry(countdown=_RETRY_LIVE_STAGE)
            return  # a duplicate delivery: the stage is someone else's or already done
        try:
            spec.run(execution_id=execution_id)
        except TransientAIError as exc:
            pipeline.requeue(execution_id=execution_id, stage=spec.stage)
            if task.request.retries >= task.max_retries:
                pipeline.fail(
                    execution_id=execution_id,
                    code=ErrorCode.AI_GENERATION_ERROR,
                    message=f"The AI provider kept failing: {exc}",
                )
                return
            raise task.retry(exc=exc, countdown=min(2**task.request.retries, 30)) from None
        except (DatabaseOperationalError, InterfaceError) as exc:
            pipeline.requeue(execution_id=execution_id, stage=spec.stage)
            raise task.retry(exc=exc, countdown=min(2**task.request.retries, 30)) from None
        except SoftTimeLimitExceeded:
            pipeline.fail(
                execution_id=execution_id,
                code=spec.timeout_code,
                message=f"{spec.what[0].upper()}{spec.what[1:]} did not finish within {spec.soft_limit} s",
            )
        except Exception as exc:
            logger.exception("%s crashed for execution %s", spec.what, execution_id)
            pipeline.fail(
                execution_id=execution_id,
                code=ErrorCode.INTERNAL_ERROR,
                message=f"Internal error during {spec.what} ({type(exc).__name__})",
            )
    finally:
        execution_id_var.reset(token)


_GENERATE = _StageTask(Stage.AI, pipeline.run_ai_stage, "SQL generation", _AI_SOFT, ErrorCode.EXECUTION_TIMEOUT)
_QUERY = _StageTask(Stage.QUERY, pipeline.run_query_stage, "the query", _QUERY_SOFT, ErrorCode.QUERY_TIMEOUT)


@shared_task(
    name="workers.generate_sql",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=_AI_SOFT,
    time_limit=_AI_SOFT + _MARGIN,
    max_retries=5,
)
def generate_sql(self, execution_id: int) -> None:  # noqa: ANN001
    """Stage 1 (queue `ai`): natural language → validated SQL."""
    _run_stage(self, execution_id, _GENERATE)


@shared_task(
    name="workers.execute_query",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=_QUERY_SOFT,
    time_limit=_QUERY_SOFT + _MARGIN,
    max_retries=5,
)
def execute_query(self, execution_id: int) -> None:  # noqa: ANN001
    """Stage 2 (queue `query`): the governed path, preview, completion."""
    _run_stage(self, execution_id, _QUERY)


@shared_task(name="workers.reap_executions", ignore_result=True, soft_time_limit=60, time_limit=90)
def reap_executions() -> None:
    """Beat (queue `default`): re-queue stages whose worker died, fail what is past saving."""
    counts = pipeline.reap_stale_executions()
    if any(counts.values()):
        logger.warning("reaper: %s", counts)


# --- Programs (execute_program) -----------------------------------------------------------------
_PROGRAMS_SOFT = settings.TASK_SOFT_TIME_LIMITS["programs"]


@shared_task(
    name="workers.run_program",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=_PROGRAMS_SOFT,
    time_limit=_PROGRAMS_SOFT + _MARGIN,
)
def run_program(self, run_id: int) -> None:  # noqa: ANN001
    """Queue `programs`: run one execute_program request in the sandbox; the API polls the row."""
    if not programs.run_claim(run_id=run_id, worker=_worker_name(self)):
        return  # a duplicate delivery, or the API already gave up waiting for it
    try:
        programs.run_execute(run_id=run_id)
    except SoftTimeLimitExceeded:
        programs.run_fail(run_id=run_id, error=f"The program did not finish within {_PROGRAMS_SOFT} s")
    except Exception as exc:
        logger.exception("program run %s crashed", run_id)
        programs.run_fail(run_id=run_id, error=f"Internal error while running the program ({type(exc).__name__})")


@shared_task(name="workers.reap_program_runs", ignore_result=True, soft_time_limit=60, time_limit=90)
def reap_program_runs() -> None:
    """Beat (queue `default`): end program runs nobody will finish, so none stays `running` forever."""
    ended = programs.reap_stranded_runs()
    if ended:
        logger.warning("program reaper: ended %s stranded run(s)", ended)
