"""Program runs: create and enqueue (web), claim, execute and record (worker), wait for the outcome (web).

The web process never runs a program: it writes a ProgramRun, sends `workers.run_program` with the run's id
on commit, and polls the row until the worker has recorded the outcome or the wall clock (plus a margin) is
spent. Secrets (the provider api_key, the ddn headers) ride along encrypted on the row and are wiped as
soon as the run ends, whichever way it ends.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, Membership
from connectors.crypto import decrypt, encrypt
from connectors.errors import PolicyViolation, SqlValidationFailed
from connectors.governed import GovernedRequest, governed_execute
from programs.host import LlmChoice, ProgramHost
from programs.models import ProgramRun, RunStatus
from programs.sandbox import Limits, run_program
from programs.selectors import queryable_sources
from workers.dispatch import send_on_commit

TASK_NAME = "workers.run_program"
DEFAULT_WALL_CLOCK_S = 30.0
# The worker needs a moment around the program itself: queueing, process start, recording the outcome.
DEFAULT_WAIT_MARGIN_S = 15.0
TIMED_OUT_WAITING = "timed out waiting for a worker"
_FINISHED = (RunStatus.COMPLETED, RunStatus.FAILED)
_POLL_FIRST_S = 0.01
_POLL_MAX_S = 0.2


def program_limits() -> Limits:
    """Limits of every run. The wall clock is capped below the task's soft time limit, so the sandbox's own
    limit always fires first and the program gets a readable error instead of a killed task."""
    soft_limit = settings.TASK_SOFT_TIME_LIMITS["programs"]
    wall_clock = float(getattr(settings, "PROGRAM_WALL_CLOCK_S", DEFAULT_WALL_CLOCK_S))
    return Limits(
        wall_clock_s=max(0.1, min(wall_clock, soft_limit * 0.8)),
        cpu_s=int(getattr(settings, "PROGRAM_CPU_S", 10)),
        memory_bytes=int(getattr(settings, "PROGRAM_MEMORY_BYTES", 512 * 1024**2)),
        output_bytes=int(getattr(settings, "PROGRAM_OUTPUT_BYTES", 1_000_000)),
    )


def wait_budget_s() -> float:
    return program_limits().wall_clock_s + float(getattr(settings, "PROGRAM_WAIT_MARGIN_S", DEFAULT_WAIT_MARGIN_S))


# --- web side ------------------------------------------------------------------------------------


def run_create(
    *,
    api_key: ApiKey,
    membership: Membership,
    code: str,
    artifacts: list[dict[str, Any]],
    ai_primitives_llm: dict[str, Any],
    ddn: dict[str, Any],
) -> ProgramRun:
    """Store the run and enqueue it on commit (503 if the broker is down; the run is then marked failed)."""
    headers = dict(ddn.get("headers") or {})
    secrets = {"llm_api_key": ai_primitives_llm.get("api_key") or "", "ddn_headers": headers}
    request = {
        "artifacts": artifacts,
        "ai_primitives_llm": {
            "provider": ai_primitives_llm["provider"],
            "model": ai_primitives_llm.get("model") or None,
            "api_base": ai_primitives_llm.get("api_base") or None,
        },
        # Header names only: their values are often credentials.
        "ddn": {"url": ddn.get("url") or "", "header_names": sorted(headers)},
    }
    with transaction.atomic():
        run = ProgramRun.objects.create(
            workspace_id=membership.workspace_id,
            api_key=api_key,
            user_id=membership.user_id,
            code=code,
            request=request,
            secrets_encrypted=encrypt(json.dumps(secrets)),
        )
        run_id = run.pk

        def broker_down() -> None:
            run_fail(run_id=run_id, error="The task queue is unavailable; the program was not run")

        send_on_commit(TASK_NAME, args=[run_id], on_broker_error=broker_down)
    return run


def run_wait(*, run_id: int, timeout_s: float) -> ProgramRun:
    """Poll the row until the worker has finished it; past `timeout_s`, mark it failed (a late worker will then
    neither start it nor overwrite the answer the client got)."""
    deadline = time.monotonic() + timeout_s
    pause = _POLL_FIRST_S
    while True:
        status = ProgramRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        if status is None or status in _FINISHED:
            break
        if time.monotonic() >= deadline:
            run_fail(run_id=run_id, error=f"{TIMED_OUT_WAITING} (no result within {timeout_s:g} s)")
            break
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, _POLL_MAX_S)
    return ProgramRun.objects.get(pk=run_id)


def sql_endpoint_execute(*, membership: Membership, sql: str) -> list[dict[str, Any]]:
    """The DDN-style SQL endpoint: the member's queryable sources through the governed path; writes are 403."""
    sources = queryable_sources(membership=membership)
    if not sources:
        raise SqlValidationFailed("This space has no active data source you may query", check="empty")
    try:
        return governed_execute(
            GovernedRequest(membership=membership, sources=sources, sql=sql, purpose="sql_endpoint")
        ).rows
    except SqlValidationFailed as exc:
        if exc.is_write_attempt:
            raise PolicyViolation(exc.message, check=exc.check) from None
        raise


# --- worker side ---------------------------------------------------------------------------------


def run_claim(*, run_id: int, worker: str) -> bool:
    """Queued → running. False for a duplicate delivery or a run the API already gave up on."""
    claimed = ProgramRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), worker=worker[:255]
    )
    return claimed == 1


def run_execute(*, run_id: int) -> ProgramRun:
    """Run a claimed program in the sandbox and record its outcome."""
    run = ProgramRun.objects.select_related("workspace").get(pk=run_id)
    membership = (
        Membership.objects.select_related("workspace", "user")
        .filter(user_id=run.user_id, workspace_id=run.workspace_id)
        .first()
    )
    if membership is None:
        run_fail(run_id=run_id, error="The API key's creator is no longer a member of this workspace")
        return ProgramRun.objects.get(pk=run_id)
    secrets = json.loads(decrypt(run.secrets_encrypted) or "{}")
    llm = run.request.get("ai_primitives_llm") or {}
    ddn = run.request.get("ddn") or {}
    limits = program_limits()
    host = ProgramHost(
        membership=membership,
        llm=LlmChoice(
            provider=llm.get("provider") or "hasura",
            model=llm.get("model"),
            api_key=secrets.get("llm_api_key") or "",
            api_base=llm.get("api_base"),
        ),
        ddn_url=ddn.get("url") or "",
        ddn_headers=secrets.get("ddn_headers") or {},
        deadline=time.monotonic() + limits.wall_clock_s,
    )
    outcome = run_program(run.code, artifacts=run.request.get("artifacts") or [], host=host, limits=limits)
    _finish(
        run_id=run_id,
        status=RunStatus.FAILED if outcome.error else RunStatus.COMPLETED,
        from_statuses=(RunStatus.RUNNING,),
        output=_db_safe(outcome.output),
        error=_db_safe(outcome.error),
        accessed_artifact_ids=_db_safe(outcome.accessed_artifact_ids),
        modified_artifacts=_db_safe(outcome.modified_artifacts),
        llm_usages=_db_safe(outcome.llm_usages),
    )
    return ProgramRun.objects.get(pk=run_id)


def run_fail(*, run_id: int, error: str) -> bool:
    """End a run that has not finished yet with `error`. False if it had already finished."""
    return _finish(
        run_id=run_id,
        status=RunStatus.FAILED,
        from_statuses=(RunStatus.QUEUED, RunStatus.RUNNING),
        error=error,
    )


def _finish(*, run_id: int, status: str, from_statuses: tuple[str, ...], **fields: Any) -> bool:
    now = timezone.now()
    row = ProgramRun.objects.filter(pk=run_id).values("created_at", "started_at").first()
    if row is None:
        return False
    updated = ProgramRun.objects.filter(Q(pk=run_id), Q(status__in=from_statuses)).update(
        status=status,
        finished_at=now,
        secrets_encrypted="",
        timings=_timings(created=row["created_at"], started=row["started_at"], finished=now),
        **fields,
    )
    if not updated:
        # Finished by someone else already; the secrets go regardless.
        ProgramRun.objects.filter(pk=run_id).exclude(secrets_encrypted="").update(secrets_encrypted="")
    return updated == 1


def _timings(*, created: datetime, started: datetime | None, finished: datetime) -> dict[str, int | None]:
    def ms(a: datetime, b: datetime) -> int:
        return int((b - a).total_seconds() * 1000)

    return {
        "queued_ms": ms(created, started) if started else None,
        "run_ms": ms(started, finished) if started else None,
        "total_ms": ms(created, finished),
    }


def _db_safe(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL characters; programs can produce them."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_db_safe(v) for v in value]
    if isinstance(value, dict):
        return {_db_safe(k): _db_safe(v) for k, v in value.items()}
    return value


def reap_stranded_runs() -> int:
    """Beat: fail runs still queued/running well past any wait (web and worker both died); wipe their secrets.

    The API gives up after `wait_budget_s()`; a run older than twice that and the task's hard limit can no
    longer be answered, so it is ended instead of staying `running` forever.
    """
    grace_s = max(
        wait_budget_s() * 2, settings.TASK_SOFT_TIME_LIMITS["programs"] + settings.TASK_HARD_TIME_LIMIT_MARGIN
    )
    cutoff = timezone.now() - timedelta(seconds=grace_s)
    stranded = ProgramRun.objects.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING), created_at__lt=cutoff)
    ended = 0
    for run_id in stranded.values_list("pk", flat=True):
        if run_fail(run_id=run_id, error="The run was abandoned: no worker finished it in time"):
            ended += 1
    return ended
