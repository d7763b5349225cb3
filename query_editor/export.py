"""POST /export: run a query on a server-side cursor and stream it as CSV or a JSON array.

Memory stays flat however wide the rows: rows arrive masked, one at a time, from
`governed_stream` and leave in chunks of FLUSH_ROWS rows. The query is prepared and started
before the response begins, so refusals (DML, unknown columns, policy) are ordinary error
responses; a failure mid-stream cuts the download short and is recorded in history.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from uuid import UUID

from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership
from config.errors import DomainError
from connectors.governed import GovernedRequest, governed_stream
from connectors.models import DataSource
from connectors.types import ResultColumn
from query_editor import selectors
from query_editor.models import HistoryKind, HistoryStatus
from query_editor.services import editor_error, elapsed_ms, history_record, history_record_failure

logger = logging.getLogger("prompt_studio.query_editor")

EXPORT_MAX_ROWS = 2_000
FLUSH_ROWS = 100
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class ExportBody:
    """The response body: iterable of bytes, with `close()` (called by Django when the response ends)."""

    def __init__(
        self,
        *,
        membership: Membership,
        source: DataSource,
        connector_id: UUID,
        sql: str,
        fmt: str,
        columns: list[ResultColumn],
        rows: Iterator[dict[str, Any]],
        stack: ExitStack,
        started: float,
    ) -> None:
        self.membership, self.source, self.connector_id, self.sql = membership, source, connector_id, sql
        self.fmt = fmt
        self.columns = columns
        self._rows = rows
        self._stack = stack
        self._started = started
        self.row_count = 0
        self._finished = False
        self._error: DomainError | None = None
        self._recorded = False
        self._chunks = self._encode()

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def _encode(self) -> Iterator[bytes]:
        try:
            yield from (self._csv() if self.fmt == "csv" else self._json())
        except GeneratorExit:
            raise
        except Exception as exc:
            self._error = editor_error(exc)
            logger.warning("export failed after %d rows: %s", self.row_count, self._error.message)
            self._finalize()
            raise
        self._finished = True
        self._finalize()

    def _csv(self) -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([c.name for c in self.columns])
        names = [c.name for c in self.columns]
        for row in self._rows:
            writer.writerow([_csv_value(row[n]) for n in names])
            self.row_count += 1
            if self.row_count % FLUSH_ROWS == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    def _json(self) -> Iterator[bytes]:
        parts: list[str] = ["["]
        for row in self._rows:
            parts.append(("," if self.row_count else "") + json.dumps(row, ensure_ascii=False, default=str))
            self.row_count += 1
            if self.row_count % FLUSH_ROWS == 0:
                yield "".join(parts).encode()
                parts.clear()
        parts.append("]")
        yield "".join(parts).encode()

    def close(self) -> None:
        """Called when the response ends, finished or not."""
        try:
            self._chunks.close()
        finally:
            self._finalize()

    def _finalize(self) -> None:
        """Release the cursor and connection, and record the export, once."""
        if self._recorded:
            return
        self._recorded = True
        try:
            self._stack.close()
        finally:
            error = self._error
            if error is None and not self._finished:
                error = DomainError(
                    f"Export interrupted after {self.row_count} rows: the client went away", code="EXPORT_INTERRUPTED"
                )
            history_record(
                membership=self.membership,
                connector_id=self.connector_id,
                source=self.source,
                sql=self.sql,
                kind=HistoryKind.EXPORT,
                status=HistoryStatus.ERROR if error else HistoryStatus.SUCCESS,
                row_count=self.row_count,
                execution_ms=elapsed_ms(self._started),
                error=error,
            )


def _csv_value(value: Any) -> Any:
    # Nested JSON values (arrays, objects) as JSON text rather than Python reprs.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def export_open(*, membership: Membership, connector_id: UUID, sql: str, fmt: str) -> ExportBody:
    """Validate, start the query on a server-side cursor, and hand back the body to stream.

    Refusals raise here (and are recorded) before any byte is sent.
    """
    started = time.monotonic()
    stack = ExitStack()
    source: DataSource | None = None
    try:
        source = selectors.connector_for_query(membership=membership, connector_id=connector_id)
        request = GovernedRequest(membership=membership, sources=[source], sql=sql, purpose="export")
        columns, rows = stack.enter_context(governed_stream(request, max_rows=EXPORT_MAX_ROWS))
    except Exception as exc:
        stack.close()
        replacement = history_record_failure(
            membership=membership,
            connector_id=connector_id,
            source=source,
            sql=sql,
            kind=HistoryKind.EXPORT,
            started=started,
            exc=exc,
        )
        if replacement is not None:
            raise replacement from None
        raise
    audit_record(
        actor=membership.user,
        action=f"export.{fmt}",
        workspace=membership.workspace,
        object_type="connectors.DataSource",
        object_id=str(source.pk),
        object_repr=source.name,
        after={
            "sql": sql[:2000],
            "format": fmt,
            "max_rows": EXPORT_MAX_ROWS,
            "masked_columns": [c.name for c in columns if c.masked],
        },
    )
    return ExportBody(
        membership=membership,
        source=source,
        connector_id=connector_id,
        sql=sql,
        fmt=fmt,
        columns=columns,
        rows=rows,
        stack=stack,
        started=started,
    )


def export_filename(fmt: str) -> str:
    return f"query-export-{timezone.now():%Y%m%d-%H%M%S}.{fmt}"
