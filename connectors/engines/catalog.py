"""Assembling discovered catalog rows into TableInfo, shared by every engine's discover().

Each engine reads its own system catalog into these raw rows and passes a `sampler` that runs
one bounded query; the rules about which columns get sample values live here, once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from connectors.types import ColumnInfo, ForeignKey, TableInfo

logger = logging.getLogger(__name__)

# Samples come from the first rows of a table, so discovering a huge table stays fast.
SAMPLE_SCAN_ROWS = 10_000
MAX_SAMPLE_CHARS = 200


@dataclass
class RawTable:
    schema: str
    name: str
    kind: str = "table"
    row_estimate: int | None = None
    description: str = ""
    count_if_missing: bool = False  # small enough that count(*) is cheap when no estimate exists


@dataclass
class RawColumn:
    schema: str
    table: str
    name: str
    data_type: str
    nullable: bool = True
    textual: bool = False
    description: str = ""


@dataclass
class RawKey:
    schema: str
    table: str
    column: str
    primary: bool
    ref: tuple[str, str, str] | None = None  # (schema, table, column) for a foreign key


Sampler = Callable[[str, str, str, int], list[Any]]
Counter = Callable[[str, str], int]


def assemble(
    tables: Iterable[RawTable],
    columns: Iterable[RawColumn],
    keys: Iterable[RawKey],
    *,
    sampler: Sampler | None,
    sample_errors: tuple[type[BaseException], ...],
    sample_limit: int,
    sample_max_distinct: int,
    counter: Counter | None = None,
) -> list[TableInfo]:
    by_table: dict[tuple[str, str], list[RawColumn]] = defaultdict(list)
    for col in columns:
        by_table[(col.schema, col.table)].append(col)
    primary: set[tuple[str, str, str]] = set()
    foreign: dict[tuple[str, str, str], ForeignKey] = {}
    for key in keys:
        if key.primary:
            primary.add((key.schema, key.table, key.column))
        elif key.ref is not None:
            foreign.setdefault((key.schema, key.table, key.column), ForeignKey(*key.ref))

    result = []
    for table in tables:
        row_estimate = table.row_estimate
        if row_estimate is None and table.count_if_missing and counter is not None:
            row_estimate = _quietly(lambda t=table: counter(t.schema, t.name), sample_errors)
        infos = []
        for col in by_table.get((table.schema, table.name), []):
            samples: tuple[str, ...] = ()
            if col.textual and table.kind == "table" and sampler is not None and sample_limit > 0:
                samples = _samples(table, col, sampler, sample_errors, sample_limit, sample_max_distinct)
            ident = (table.schema, table.name, col.name)
            infos.append(
                ColumnInfo(
                    name=col.name,
                    data_type=col.data_type,
                    nullable=bool(col.nullable) and ident not in primary,
                    is_primary_key=ident in primary,
                    foreign_key=foreign.get(ident),
                    description=col.description or "",
                    sample_values=samples,
                )
            )
        result.append(
            TableInfo(
                schema=table.schema,
                name=table.name,
                columns=tuple(infos),
                kind=table.kind,
                row_estimate=row_estimate,
                description=table.description or "",
            )
        )
    return result


def _samples(
    table: RawTable,
    col: RawColumn,
    sampler: Sampler,
    errors: tuple[type[BaseException], ...],
    sample_limit: int,
    sample_max_distinct: int,
) -> tuple[str, ...]:
    # One more than the cap tells "too many distinct values" apart from "exactly the cap".
    values = _quietly(lambda: sampler(table.schema, table.name, col.name, sample_max_distinct + 1), errors)
    if not values or len(values) > sample_max_distinct:
        return ()
    texts = [str(v) for v in values if v is not None]
    if any(len(text) > MAX_SAMPLE_CHARS for text in texts):
        return ()  # free text, not categories
    return tuple(texts[:sample_limit])


def _quietly(call: Callable[[], Any], errors: tuple[type[BaseException], ...]) -> Any:
    """Samples and counts are extras: a failure (timeout, permission) leaves them out."""
    try:
        return call()
    except errors as exc:
        logger.info("discovery extra skipped: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return None
