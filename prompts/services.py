"""Writes for Prompt Studio: start an execution, cancel it, record its outcome on the prompt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership
from config.errors import BadRequest, Forbidden
from connectors.errors import PolicyViolation
from connectors.models import DataSource
from connectors.selectors import can_query, data_sources_for_query, source_catalog
from prompts.ai.registry import resolve_model
from prompts.models import (
    ErrorCode,
    ExecutionStatus,
    Prompt,
    PromptExecution,
    PromptStatus,
    Stage,
    StageStatus,
)
from workers.dispatch import send_on_commit


def _check_discovered(sources: list[DataSource]) -> None:
    """A source with no discovered tables has nothing to ask about (and nothing governance allows)."""
    empty = [s for s in sources if not source_catalog(s).tables]
    if empty:
        raise BadRequest(
            f"No tables discovered yet in data sources {', '.join(str(s.pk) for s in empty)}",
            details={
                "selected_data_source_ids": [
                    f"Data source {s.pk} has no discovered tables (discovery: {s.discovery_status}); "
                    "run POST /api/v1/data-sources/{id}/discover and wait for it to succeed."
                    for s in empty
                ]
            },
        )


def _check_schemas(sources: list[DataSource], schema_names: list[str]) -> None:
    if not schema_names:
        return
    present = {t.schema for s in sources for t in source_catalog(s).tables}
    unknown = [name for name in schema_names if name not in present]
    if unknown:
        raise BadRequest(
            f"selected_schema_names: unknown schemas {', '.join(unknown)}",
            details={"selected_schema_names": [f"Schema {n!r} is not in the selected data sources." for n in unknown]},
        )


def execution_create(
    *,
    membership: Membership,
    prompt_text: str,
    data_source_ids: list[int],
    schema_names: list[str] | None = None,
    name: str = "",
    save_prompt: bool = False,
    ai_model: str | None = None,
    tags: list[str] | None = None,
    prompt: Prompt | None = None,
    template_id: int | None = None,
    template_parameters: dict | None = None,
) -> PromptExecution:
    """Validate, pre-check policy, write the execution and enqueue SQL generation once committed.

    The web process touches no LLM and no customer database here. If the broker is down the row is
    removed again and the caller gets a 503: nothing is left half-made.
    """
    spec = resolve_model(ai_model)
    sources = data_sources_for_query(membership=membership, ids=data_source_ids)
    _check_discovered(sources)
    _check_schemas(sources, schema_names or [])
    for source in sources:
        if not can_query(membership=membership, source=source):
            raise PolicyViolation(f"Your role may not query data source {source.name!r}", check="source_access")
    with transaction.atomic():
        execution = PromptExecution.objects.create(
            workspace_id=membership.workspace_id,
            user_id=membership.user_id,
            prompt=prompt,
            prompt_text=prompt_text,
            name=name,
            tags=tags or [],
            save_prompt=save_prompt,
            ai_model=spec.name,
            data_source_ids=[s.pk for s in sources],
            schema_names=schema_names or [],
            template_id=template_id,
            template_parameters=template_parameters or {},
            stage=Stage.QUEUED_AI,
            stage_claimed_at=timezone.now(),
        )
        # A new row has no links yet: one INSERT, without the SELECT of existing links .set() does.
        links = PromptExecution.data_sources.through
        links.objects.bulk_create([links(promptexecution_id=execution.pk, datasource_id=s.pk) for s in sources])
        if prompt is not None:
            Prompt.objects.filter(pk=prompt.pk).update(status=PromptStatus.PROCESSING)
        execution_id = execution.pk

        def undo() -> None:
            PromptExecution.objects.filter(pk=execution_id).delete()
            if prompt is not None:
                Prompt.objects.filter(pk=prompt.pk).update(status=prompt.status)

        send_on_commit("workers.generate_sql", args=[execution_id], on_broker_error=undo)
    return execution


def execution_cancel(*, execution: PromptExecution) -> PromptExecution:
    """End a running execution now; the worker's watcher cancels its query / abandons its LLM call."""
    now = timezone.now()
    stage_field = "ai_processing_status" if execution.stage in (Stage.QUEUED_AI, Stage.AI) else "query_execution_status"
    with transaction.atomic():  # the cancel and its record on the prompt become visible together
        cancelled = PromptExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.PROCESSING).update(
            status=ExecutionStatus.FAILED,
            cancel_requested=True,
            error_code=ErrorCode.CANCELLED,
            error_message="Cancelled by the user",
            completed_at=now,
            stage=Stage.DONE,
            total_duration_ms=int((now - execution.started_at).total_seconds() * 1000),
            **{stage_field: StageStatus.FAILED},
        )
        if cancelled:
            prompt_record_execution(execution_id=execution.pk)
    if not cancelled:
        raise BadRequest(
            f"Execution {execution.pk} has already finished ({execution.status}); nothing to cancel",
            details={"execution_id": ["The execution is not running."]},
        )
    execution.refresh_from_db()
    return execution


@transaction.atomic
def prompt_record_execution(*, execution_id: int) -> None:
    """After an execution ends: create the prompt (save_prompt, completed) or update the linked one."""
    execution = PromptExecution.objects.select_for_update().get(pk=execution_id)
    status = PromptStatus.COMPLETED if execution.status == ExecutionStatus.COMPLETED else PromptStatus.FAILED
    if execution.prompt_id is not None:
        Prompt.objects.filter(pk=execution.prompt_id).update(
            status=status, execution_count=F("execution_count") + 1, last_executed_at=execution.started_at
        )
        return
    if execution.save_prompt and execution.status == ExecutionStatus.COMPLETED:
        prompt = Prompt.objects.create(
            workspace_id=execution.workspace_id,
            owner_id=execution.user_id,
            name=execution.name or execution.prompt_text[:80],
            prompt_text=execution.prompt_text,
            tags=execution.tags,
            data_source_ids=execution.data_source_ids,
            schema_names=execution.schema_names,
            ai_model=execution.ai_model,
            status=status,
            execution_count=1,
            last_executed_at=execution.started_at,
        )
        PromptExecution.objects.filter(pk=execution_id).update(prompt=prompt)


# --- Saved prompts and history ----------------------------------------------------------------------


def _check_prompt_sources(membership: Membership, data_source_ids: list[int], schema_names: list[str]) -> None:
    sources = data_sources_for_query(membership=membership, ids=data_source_ids, field="data_source_ids")
    _check_schemas(sources, schema_names)


def prompt_create(
    *,
    membership: Membership,
    prompt_text: str,
    data_source_ids: list[int],
    schema_names: list[str] | None = None,
    name: str = "",
    tags: list[str] | None = None,
    ai_model: str | None = None,
    is_shared: bool = False,
) -> Prompt:
    """A saved prompt that has not run yet (status `draft`)."""
    if membership.role == "viewer":
        raise Forbidden("Viewers may not create prompts")
    spec = resolve_model(ai_model)
    _check_prompt_sources(membership, data_source_ids, schema_names or [])
    return Prompt.objects.create(
        workspace_id=membership.workspace_id,
        owner_id=membership.user_id,
        name=name or prompt_text[:80],
        prompt_text=prompt_text,
        tags=tags or [],
        data_source_ids=list(dict.fromkeys(data_source_ids)),
        schema_names=schema_names or [],
        ai_model=spec.name,
        status=PromptStatus.DRAFT,
        is_shared=is_shared,
    )


def _require_owner_or_admin(prompt: Prompt, membership: Membership) -> None:
    if prompt.owner_id != membership.user_id and not membership.is_admin:
        raise Forbidden("Only the prompt's owner or a workspace admin may change it")


def prompt_update(*, membership: Membership, prompt: Prompt, **changes: Any) -> Prompt:
    _require_owner_or_admin(prompt, membership)
    if "ai_model" in changes:
        changes["ai_model"] = resolve_model(changes["ai_model"] or None).name
    if "data_source_ids" in changes or "schema_names" in changes:
        _check_prompt_sources(
            membership,
            list(changes.get("data_source_ids", prompt.data_source_ids)),
            list(changes.get("schema_names", prompt.schema_names)),
        )
    for key, value in changes.items():
        setattr(prompt, key, value)
    prompt.save()
    return prompt


def prompt_delete(*, membership: Membership, prompt: Prompt) -> None:
    _require_owner_or_admin(prompt, membership)
    prompt.deleted_at = timezone.now()
    prompt.save(update_fields=["deleted_at", "updated_at"])


def prompt_restore(*, prompt: Prompt) -> None:
    prompt.deleted_at = None
    prompt.save(update_fields=["deleted_at", "updated_at"])


def prompt_execute(*, membership: Membership, prompt: Prompt) -> PromptExecution:
    """Run a saved (e.g. draft) prompt through the pipeline; the execution is linked to it."""
    if prompt.owner_id != membership.user_id and not (prompt.is_shared or membership.is_admin):
        raise Forbidden("You may not run this prompt")
    return execution_create(
        membership=membership,
        prompt_text=prompt.prompt_text,
        data_source_ids=list(prompt.data_source_ids),
        schema_names=list(prompt.schema_names),
        name=prompt.name,
        save_prompt=False,
        ai_model=prompt.ai_model or None,
        tags=list(prompt.tags),
        prompt=prompt,
    )


def history_clear(*, user_id: int, workspace_ids: list[int], before: datetime | None = None) -> int:
    """Hide the caller's executions from their history; they stay for analytics and operators."""
    qs = PromptExecution.objects.filter(user_id=user_id, workspace_id__in=workspace_ids, hidden_from_history=False)
    if before is not None:
        qs = qs.filter(created_at__lt=before)
    return qs.update(hidden_from_history=True)
