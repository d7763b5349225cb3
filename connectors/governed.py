"""The one governed path to data. Every caller — prompts, templates, the query editor, exports,
programs, the SQL endpoint, the admin's preview — goes through `governed_execute` or
`governed_stream`:

1. access: the caller's role may query each selected source (admins always may);
2. validate + rewrite + decide masking (connectors.sqlgov, against the allowed catalog);
3. execute read-only with the smallest row cap and timeout of settings, workspace and sources
   (connectors.engines; several sources federate through DuckDB);
4. mask the rows (lineage-aware decisions from step 2) and make every value JSON-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Membership
from connectors import engines, sqlgov
from connectors.errors import (
    DataSourceUnavailableError,
    GovernedQueryError,
    PolicyViolation,
    QueryCancelledError,
    QueryExecutionFailed,
    QueryTimeoutError,
    SqlValidationFailed,
)
from connectors.models import DataSource
from connectors.selectors import (
    can_query,
    connection_spec,
    member_bindings,
    row_policies_for,
    source_catalog,
)
from connectors.types import ConnectionSpec, Grants, QueryResult, ResultColumn

logger = logging.getLogger("prompt_studio.governed")

PURPOSES = ("prompt", "editor", "export", "program", "sql_endpoint", "preview")
_NO_SCHEMA = "\x00no-schema-selected"  # a schema name no catalog has: "nothing of this source"


@dataclass
class GovernedRequest:
    membership: Membership
    sources: list[DataSource]
    sql: str
    purpose: str
    schemas: list[str] = field(default_factory=list)  # selected schema names; empty = all
    row_limit: int | None = None  # the caller's own cap (e.g. the editor's row_limit)


@dataclass
class GovernedPlan:
    prepared: sqlgov.PreparedQuery
    specs: dict[str, ConnectionSpec]
    timeout_ms: int
    row_cap: int
    pool_keys: dict[str, str] = field(default_factory=dict)  # alias -> the source's key in the engines' pools

    @property
    def federated(self) -> bool:
        return self.prepared.federated


def _smallest(*values: int | None) -> int:
    return min(v for v in values if v)


def governed_prepare(request: GovernedRequest) -> GovernedPlan:
    membership, sources = request.membership, request.sources
    if not sources:
        raise SqlValidationFailed("Select at least one data source", check="empty")
    for source in sources:
        if source.workspace_id != membership.workspace_id or source.deleted_at is not None:
            raise DataSourceUnavailableError(f"Data source {source.pk} is not available in this workspace")
        if not source.is_active:
            raise DataSourceUnavailableError(f"Data source {source.name!r} is inactive")
        if not can_query(membership=membership, source=source):
            raise PolicyViolation(f"Your role may not query data source {source.name!r}", check="source_access")

    workspace = membership.workspace
    row_cap = _smallest(
        settings.QUERY_DEFAULT_ROW_CAP, workspace.row_cap, request.row_limit, *(s.row_cap for s in sources)
    )
    timeout_ms = _smallest(
        settings.QUERY_DEFAULT_TIMEOUT_MS, workspace.statement_timeout_ms, *(s.statement_timeout_ms for s in sources)
    )
    catalogs = [source_catalog(s) for s in sources]
    for source, catalog in zip(sources, catalogs, strict=True):
        if not catalog.tables:
            raise SqlValidationFailed(
                f"Data source {source.name!r} has no discovered tables yet: run schema discovery first",
                check="unknown_table",
            )
    allowed: dict[str, set[str]] | None = None
    if request.schemas:
        wanted = set(request.schemas)
        allowed = {}
        for catalog in catalogs:
            present = {t.schema for t in catalog.tables} & wanted
            allowed[catalog.alias] = present or {_NO_SCHEMA}
    try:
        prepared = sqlgov.prepare_query_cached(
            request.sql,
            sources=catalogs,
            allowed_schemas=allowed,
            policies=row_policies_for(membership=membership, sources=sources),
            bindings=member_bindings(membership),
            row_cap=row_cap,
            grants=Grants(pii=membership.pii_access, phi=membership.phi_access),
        )
    except sqlgov.GovernanceError as exc:
        if exc.code == sqlgov.POLICY_VIOLATION:
            raise PolicyViolation(exc.message, check=exc.check) from None
        raise SqlValidationFailed(exc.message, check=exc.check) from None
    specs = {s.alias: connection_spec(s) for s in sources}
    return GovernedPlan(
        prepared=prepared,
        specs=specs,
        timeout_ms=timeout_ms,
        row_cap=prepared.row_cap,
        pool_keys={s.alias: str(s.uuid) for s in sources},
    )


# --- pooled source connections ----------------------------------------------------------------------
#
# The engines keep idle PostgreSQL / MySQL connections per source (connectors/engines/pool.py), under
# the source's uuid and a fingerprint of its connection parameters: an edit made in another process
# is noticed at the next checkout. In this process, any save or delete of a source closes its idle
# connections at once. (Registered here because only the governed path fills the pools: a process
# that never imported this module has none to close.)


@receiver(post_save, sender=DataSource, dispatch_uid="connectors.governed.close_pooled_on_save")
@receiver(post_delete, sender=DataSource, dispatch_uid="connectors.governed.close_pooled_on_delete")
def _close_pooled_connections(sender: type[DataSource], instance: DataSource, **kwargs: Any) -> None:
    engines.close_pooled(str(instance.uuid))


def _engine_error(exc: engines.EngineError) -> GovernedQueryError:
    if isinstance(exc, engines.QueryTimeout):
        return QueryTimeoutError(exc.message)
    if isinstance(exc, engines.QueryCancelled):
        return QueryCancelledError(exc.message)
    if isinstance(exc, engines.DataSourceUnavailable):
        return DataSourceUnavailableError(exc.message)
    return QueryExecutionFailed(exc.message)


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        seen.setdefault(name, 1)
        out.append(name)
    return out


class _RowShaper:
    """Masks by position, converts to JSON-safe values, keys rows by (unique) output names.

    Only what needs it is touched: a value of a plain type (str, int, bool, None) in an unmasked
    column is used as it is; masked columns are masked whatever their type.
    """

    def __init__(self, plan: GovernedPlan, driver_columns: list[ResultColumn]) -> None:
        outputs = plan.prepared.output_columns
        if len(outputs) != len(driver_columns):
            # Never return data whose masking we could not decide column by column.
            raise QueryExecutionFailed("The result's columns do not match the validated query; refusing to return it")
        self.names = _unique_names([o.name for o in outputs])
        self.masks = [(o.masking_style if o.masked else None) for o in outputs]
        self.columns = [
            ResultColumn(name=n, type=d.type, masked=o.masked)
            for n, d, o in zip(self.names, driver_columns, outputs, strict=True)
        ]

    def __call__(self, row: tuple) -> dict[str, Any]:
        out = {}
        for name, style, value in zip(self.names, self.masks, row, strict=True):
            if style is not None:
                out[name] = sqlgov.mask_value(engines.to_json_safe(value), style)
            else:
                out[name] = value if type(value) in engines.PLAIN_TYPES else engines.to_json_safe(value)
        return out

    def shape_all(self, rows: list[tuple]) -> list[dict[str, Any]]:
        """`[self(r) for r in rows]`, column by column: a column of plain values is not looked at twice."""
        if not rows:
            return []
        columns: list[Any] = list(zip(*rows, strict=True))
        if len(columns) != len(self.names):
            raise QueryExecutionFailed("The result's rows do not match its columns; refusing to return them")
        for i, (style, values) in enumerate(zip(self.masks, columns, strict=True)):
            safe = engines.to_json_safe_column(values)
            columns[i] = safe if style is None else sqlgov.mask_column(safe, style)
        names = self.names
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _warnings(plan: GovernedPlan, columns: list[ResultColumn], truncated: bool) -> list[str]:
    warnings = list(plan.prepared.warnings)
    if truncated:
        warnings.append(f"Result truncated to {plan.row_cap} rows")
    masked = sum(1 for c in columns if c.masked)
    if masked:
        warnings.append(f"{masked} column{'s' if masked != 1 else ''} masked")
    return warnings


def governed_execute(
    request: GovernedRequest,
    *,
    cancel_event: threading.Event | None = None,
    on_connected: Callable[[dict], None] | None = None,
) -> QueryResult:
    plan = governed_prepare(request)
    started = time.monotonic()
    try:
        if plan.federated:
            driver_columns, rows = engines.execute_federated(
                plan.specs,
                plan.prepared.sql,
                timeout_ms=plan.timeout_ms,
                max_rows=plan.row_cap + 1,
                cancel_event=cancel_event,
            )
        else:
            ((alias, spec),) = plan.specs.items()
            driver_columns, rows = engines.execute(
                spec,
                plan.prepared.sql,
                timeout_ms=plan.timeout_ms,
                max_rows=plan.row_cap + 1,
                cancel_event=cancel_event,
                on_connected=on_connected,
                pool_key=plan.pool_keys.get(alias),
            )
    except engines.EngineError as exc:
        raise _engine_error(exc) from None
    elapsed_ms = int((time.monotonic() - started) * 1000)
    truncated = len(rows) > plan.row_cap
    shaper = _RowShaper(plan, driver_columns)
    shaped = shaper.shape_all(rows[: plan.row_cap])
    logger.info(
        "governed query (%s) on %s: %d rows in %d ms", request.purpose, ",".join(plan.specs), len(shaped), elapsed_ms
    )
    return QueryResult(
        columns=shaper.columns,
        rows=shaped,
        row_count=len(shaped),
        truncated=truncated,
        execution_ms=elapsed_ms,
        sql_executed=plan.prepared.sql,
        warnings=_warnings(plan, shaper.columns, truncated),
    )


@contextmanager
def governed_stream(
    request: GovernedRequest, *, max_rows: int, batch_size: int = 200
) -> Iterator[tuple[list[ResultColumn], Iterator[dict[str, Any]]]]:
    """Like governed_execute, but rows come from a server-side cursor, masked, one at a time."""
    request.row_limit = _smallest(request.row_limit, max_rows)
    plan = governed_prepare(request)
    try:
        if plan.federated:
            ctx = engines.stream_federated(
                plan.specs, plan.prepared.sql, timeout_ms=plan.timeout_ms, max_rows=plan.row_cap, batch_size=batch_size
            )
        else:
            ((alias, spec),) = plan.specs.items()
            ctx = engines.stream(
                spec,
                plan.prepared.sql,
                timeout_ms=plan.timeout_ms,
                max_rows=plan.row_cap,
                batch_size=batch_size,
                pool_key=plan.pool_keys.get(alias),
            )
        with ctx as (driver_columns, rows):
            shaper = _RowShaper(plan, driver_columns)
            yield shaper.columns, (shaper(r) for r in rows)
    except engines.EngineError as exc:
        raise _engine_error(exc) from None
