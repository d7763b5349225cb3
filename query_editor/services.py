"""Writes and workflows of the query editor: execute, history, saved queries, tab drafts."""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from config.errors import BadRequest, DomainError
from connectors.errors import SqlValidationFailed
from connectors.governed import GovernedRequest, governed_execute
from connectors.models import DataSource
from connectors.types import QueryResult
from query_editor import selectors
from query_editor.errors import DmlBlocked
from query_editor.models import HistoryKind, HistoryStatus, QueryHistory, SavedQuery, TabDraft

logger = logging.getLogger("prompt_studio.query_editor")

DEFAULT_ROW_LIMIT = 500
MAX_SQL_CHARS = 50_000
MAX_DRAFT_TABS = 50
MAX_DRAFT_BYTES = 1_000_000


# --- history ------------------------------------------------------------------------------------


def history_record(
    *,
    membership: Membership,
    connector_id: UUID | None,
    source: DataSource | None,
    sql: str,
    kind: str,
    status: str,
    row_count: int | None = None,
    execution_ms: int | None = None,
    error: DomainError | None = None,
) -> QueryHistory:
    return QueryHistory.objects.create(
        workspace_id=membership.workspace_id,
        user_id=membership.user_id,
        data_source=source,
        connector_id=connector_id,
        kind=kind,
        sql_text=sql,
        row_count=row_count,
        execution_ms=execution_ms,
        status=status,
        error_code=error.code if error else "",
        error_message=error.message if error else "",
    )


def editor_error(exc: Exception) -> DomainError:
    """What the editor answers for a failed query: DML/DDL is 403 DML_BLOCKED, the rest as raised."""
    if isinstance(exc, SqlValidationFailed) and exc.is_write_attempt:
        return DmlBlocked(exc.message)
    if isinstance(exc, DomainError):
        return exc
    return DomainError("Internal error while running the query")


def elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --- execute ------------------------------------------------------------------------------------


def history_record_failure(
    *,
    membership: Membership,
    connector_id: UUID,
    source: DataSource | None,
    sql: str,
    kind: str,
    started: float,
    exc: Exception,
) -> DomainError | None:
    """Record a run that failed before or while executing. Returns the editor error to raise instead of `exc`
    (a write attempt becomes DML_BLOCKED), or None when `exc` should be re-raised as it is."""
    error = editor_error(exc)
    history_record(
        membership=membership,
        connector_id=connector_id,
        source=source,
        sql=sql,
        kind=kind,
        status=HistoryStatus.ERROR,
        execution_ms=elapsed_ms(started),
        error=error,
    )
    return error if error is not exc and isinstance(error, DmlBlocked) else None


def query_execute(
    *, membership: Membership, connector_id: UUID, sql: str, row_limit: int = DEFAULT_ROW_LIMIT
) -> QueryResult:
    """Run `sql` through the governed path and record the execution, whatever its outcome."""
    started = time.monotonic()
    source: DataSource | None = None
    try:
        source = selectors.connector_for_query(membership=membership, connector_id=connector_id)
        request = GovernedRequest(
            membership=membership, sources=[source], sql=sql, purpose="editor", row_limit=row_limit
        )
        result = governed_execute(request)
    except Exception as exc:
        replacement = history_record_failure(
            membership=membership,
            connector_id=connector_id,
            source=source,
            sql=sql,
            kind=HistoryKind.EXECUTE,
            started=started,
            exc=exc,
        )
        if replacement is not None:
            raise replacement from None
        raise  # unexpected errors keep their traceback for the exception handler's log
    history_record(
        membership=membership,
        connector_id=connector_id,
        source=source,
        sql=sql,
        kind=HistoryKind.EXECUTE,
        status=HistoryStatus.SUCCESS,
        row_count=result.row_count,
        execution_ms=result.execution_ms,
    )
    return result


# --- saved queries ------------------------------------------------------------------------------


def _source_in_space(*, membership: Membership, connector_id: UUID) -> DataSource:
    source = DataSource.objects.alive().filter(workspace_id=membership.workspace_id, uuid=connector_id).first()
    if source is None:
        raise BadRequest(
            f"connector_id: connector {connector_id} does not exist in this space",
            details={"connector_id": [f"Connector {connector_id} does not exist in this space."]},
        )
    return source


def saved_query_create(
    *, membership: Membership, title: str, sql_text: str, connector_id: UUID, is_shared: bool = False
) -> SavedQuery:
    source = _source_in_space(membership=membership, connector_id=connector_id)
    return SavedQuery.objects.create(
        workspace_id=membership.workspace_id,
        owner_id=membership.user_id,
        data_source=source,
        title=title,
        sql_text=sql_text,
        is_shared=is_shared,
    )


def saved_query_update(*, membership: Membership, query_id: UUID, **changes: Any) -> SavedQuery:
    """Owner only. `changes` may hold title, sql_text, is_shared and connector_id."""
    query = selectors.saved_query_for_owner(membership=membership, query_id=query_id)
    if "connector_id" in changes:
        query.data_source = _source_in_space(membership=membership, connector_id=changes.pop("connector_id"))
    for field in ("title", "sql_text", "is_shared"):
        if field in changes:
            setattr(query, field, changes[field])
    query.save()
    return query


def saved_query_delete(*, membership: Membership, query_id: UUID) -> None:
    selectors.saved_query_for_owner(membership=membership, query_id=query_id).delete()


# --- tab drafts ---------------------------------------------------------------------------------


def _draft_errors(tabs: list[dict[str, Any]], active_tab_id: str | None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if len(tabs) > MAX_DRAFT_TABS:
        errors["tabs"] = [f"At most {MAX_DRAFT_TABS} tabs may be saved; got {len(tabs)}."]
    ids = [t["id"] for t in tabs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        errors.setdefault("tabs", []).append(f"Tab ids must be unique; repeated: {', '.join(duplicates)}.")
    if active_tab_id is not None and active_tab_id not in ids:
        errors["active_tab_id"] = [f"{active_tab_id!r} is not the id of one of the tabs."]
    if active_tab_id is None and tabs:
        errors["active_tab_id"] = ["Required when there are tabs: the id of one of them."]
    size = len(json.dumps(tabs, ensure_ascii=False).encode())
    if size > MAX_DRAFT_BYTES:
        errors.setdefault("tabs", []).append(f"The tab state is {size} bytes; at most {MAX_DRAFT_BYTES} may be saved.")
    return errors


@transaction.atomic
def draft_save(*, membership: Membership, tabs: list[dict[str, Any]], active_tab_id: str | None) -> TabDraft:
    """Replace the caller's whole tab state in this space (validated: unique ids, active tab among them, capped)."""
    errors = _draft_errors(tabs, active_tab_id)
    if errors:
        raise BadRequest(next(iter(errors.values()))[0], details=errors)
    draft, _ = TabDraft.objects.select_for_update().get_or_create(
        workspace_id=membership.workspace_id, user_id=membership.user_id
    )
    draft.tabs = tabs
    draft.active_tab_id = active_tab_id
    draft.updated_at = timezone.now()
    draft.save()
    return draft
