"""Reads for prompts and executions, scoped to the caller."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from accounts.models import ApiKey, Membership, Role
from accounts.selectors import AnyUser, memberships_for, user_require_active
from config.errors import NotFound
from config.rows import Projection, fetch
from prompts.ai.context import similarity
from prompts.models import ExecutionStatus, GeneratedQuery, Prompt, PromptExecution

FEW_SHOT_CANDIDATES = 200
FEW_SHOT_K = 3


def executions_visible(*, user: AnyUser, api_key: ApiKey | None = None) -> QuerySet[PromptExecution]:
    """Own executions everywhere; every execution of workspaces the caller administers."""
    memberships = list(memberships_for(user=user, api_key=api_key))
    admin_ws = [m.workspace_id for m in memberships if m.role == Role.ADMIN]
    member_ws = [m.workspace_id for m in memberships]
    return PromptExecution.objects.filter(
        Q(workspace_id__in=admin_ws) | Q(workspace_id__in=member_ws, user_id=user.id or 0)
    )


# What the status body (prompts.api.execution_body) and a cancel read; the rest stays deferred.
_EXECUTION = Projection(
    PromptExecution,
    "e",
    fields=(
        *("id", "workspace_id", "user_id", "prompt_id", "generated_query_id", "status", "stage", "ai_model"),
        *("ai_processing_status", "query_execution_status", "progress_percentage", "started_at"),
        *("ai_processing_started_at", "ai_processing_completed_at", "ai_response_time_ms"),
        *("query_execution_started_at", "query_execution_completed_at", "query_execution_duration_ms"),
        *("total_duration_ms", "completed_at", "rows_returned", "result_preview", "result_columns"),
        *("masked_columns", "warnings", "ai_metadata", "data_source_ids", "schema_names"),
        *("error_message", "error_code"),
    ),
)
_GENERATED = Projection(GeneratedQuery, "g", fields=("id", "sql_text"))


def execution_get(*, user: AnyUser, execution_id: int, api_key: ApiKey | None = None) -> PromptExecution:
    """The caller's execution (or one of a workspace they administer), with its generated SQL.

    Polled, so one fixed statement (no queryset compilation): the primary-key read joined to the
    caller's membership and to the user row, so a deactivated user is refused by the same query.
    """
    uid = user.id or 0
    sql = (
        f"SELECT {_EXECUTION.columns}, {_GENERATED.columns} FROM {_EXECUTION.table}"
        f" JOIN {Membership._meta.db_table} m ON m.workspace_id = e.workspace_id AND m.user_id = %s"
        f" JOIN {User._meta.db_table} u ON u.id = m.user_id AND u.is_active = %s"
        f" LEFT JOIN {_GENERATED.table} ON g.id = e.generated_query_id"
        " WHERE e.id = %s AND (e.user_id = m.user_id OR m.role = %s)"
    )
    params: list = [uid, True, execution_id, Role.ADMIN.value]
    if api_key is not None:
        sql += " AND e.workspace_id = %s"
        params.append(api_key.workspace_id)
    rows = fetch(sql, params)
    if not rows:
        user_require_active(user)
        raise NotFound(f"Execution {execution_id} not found")
    execution = _EXECUTION.load(rows[0])
    execution.generated_query = _GENERATED.load(rows[0], _EXECUTION.width) if execution.generated_query_id else None
    return execution


_STAGE_EXECUTION = Projection(PromptExecution, "e")
_STAGE_GENERATED = Projection(GeneratedQuery, "g")


def execution_with_query(*, execution_id: int) -> PromptExecution:
    """The whole execution and its generated query, for a pipeline stage (no caller scoping: the
    stage's task carries the id). One fixed statement; DoesNotExist when there is no such row."""
    rows = fetch(
        f"SELECT {_STAGE_EXECUTION.columns}, {_STAGE_GENERATED.columns} FROM {_STAGE_EXECUTION.table}"
        f" LEFT JOIN {_STAGE_GENERATED.table} ON g.id = e.generated_query_id WHERE e.id = %s",
        [execution_id],
    )
    if not rows:
        raise PromptExecution.DoesNotExist(f"Execution {execution_id} does not exist")
    execution = _STAGE_EXECUTION.load(rows[0])
    execution.generated_query = (
        _STAGE_GENERATED.load(rows[0], _STAGE_EXECUTION.width) if execution.generated_query_id else None
    )
    return execution


def few_shot_examples(*, workspace_id: int, question: str, exclude_id: int | None = None) -> list[tuple[str, str]]:
    """The workspace's own successful (question, SQL) pairs most similar to the new question."""
    candidates = PromptExecution.objects.filter(
        workspace_id=workspace_id, status=ExecutionStatus.COMPLETED, generated_query__isnull=False
    )
    if exclude_id is not None:
        candidates = candidates.exclude(pk=exclude_id)
    recent = candidates.order_by("-created_at").values_list("prompt_text", "generated_query__sql_text")[
        :FEW_SHOT_CANDIDATES
    ]
    scored = sorted(((similarity(question, q), q, s) for q, s in recent if s), key=lambda t: -t[0])
    seen: set[str] = set()
    examples = []
    for score, q, s in scored:
        if score <= 0 or q in seen:
            continue
        seen.add(q)
        examples.append((q, s))
        if len(examples) == FEW_SHOT_K:
            break
    return examples


def prompts_visible(*, user: AnyUser, api_key: ApiKey | None = None) -> QuerySet[Prompt]:
    """Own prompts, prompts shared to the workspace, and every prompt of workspaces the caller administers."""
    memberships = list(memberships_for(user=user, api_key=api_key))
    admin_ws = [m.workspace_id for m in memberships if m.role == Role.ADMIN]
    member_ws = [m.workspace_id for m in memberships]
    return Prompt.objects.filter(deleted_at__isnull=True).filter(
        Q(workspace_id__in=admin_ws)
        | Q(workspace_id__in=member_ws, owner_id=user.id or 0)
        | Q(workspace_id__in=member_ws, is_shared=True)
    )


def prompt_get(*, user: AnyUser, prompt_id: int, api_key: ApiKey | None = None) -> Prompt:
    prompt = prompts_visible(user=user, api_key=api_key).filter(pk=prompt_id).first()
    if prompt is None:
        raise NotFound(f"Prompt {prompt_id} not found")
    return prompt


def history_for(*, user: AnyUser, api_key: ApiKey | None = None) -> QuerySet[PromptExecution]:
    """The caller's own executions not cleared from history, newest first."""
    workspace_ids = memberships_for(user=user, api_key=api_key).values("workspace_id")
    return (
        PromptExecution.objects.filter(user_id=user.id or 0, hidden_from_history=False, workspace_id__in=workspace_ids)
        .select_related("generated_query")
        .order_by("-created_at", "-id")
    )
