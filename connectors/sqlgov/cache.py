"""prepare_query, remembered per process.

prepare_query is a pure function of its inputs, and parsing, qualifying, lineage and rewriting cost
milliseconds, so a result is kept under a key made of every input: the SQL; each catalog object (by
identity, checked with a weak reference: the catalogs are cached per source and catalog version, so
an edited catalog, classification, alias or engine is a new object); the selected schemas; the row
policies that apply to the caller; the caller's bindings when any policy may use them; the row cap;
the PII/PHI grants. A change to any of them is another key: a plan is never served for inputs it was
not made from. Failures are not kept (they are cheap to find again, and carry no state).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping

from connectors.sqlgov.engine import prepare_query
from connectors.sqlgov.prepared import PreparedQuery
from connectors.types import Grants, RowPolicySpec, SourceCatalog

CACHE_SIZE = 256
MAX_SQL_CHARS = 20_000  # longer SQL is prepared every time rather than held in memory

_cache: OrderedDict[tuple, tuple[list[weakref.ref], PreparedQuery]] = OrderedDict()
_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0}


def prepare_query_cached(
    sql: str,
    *,
    sources: list[SourceCatalog],
    allowed_schemas: dict[str, set[str]] | None,
    policies: list[RowPolicySpec],
    bindings: Mapping[str, object],
    row_cap: int,
    grants: Grants,
) -> PreparedQuery:
    """`prepare_query(...)` with the same arguments, from the cache when it has been made before.

    Returns the caller's own copy: nothing a caller does to it reaches the cache.
    """
    key = _key(sql, sources, allowed_schemas, policies, bindings, row_cap, grants)
    if key is not None:
        with _lock:
            hit = _cache.get(key)
            if hit is not None and all(ref() is s for ref, s in zip(hit[0], sources, strict=True)):
                _cache.move_to_end(key)
                _stats["hits"] += 1
                return _copy(hit[1])
            _stats["misses"] += 1
    prepared = prepare_query(
        sql,
        sources=sources,
        allowed_schemas=allowed_schemas,
        policies=policies,
        bindings=bindings,
        row_cap=row_cap,
        grants=grants,
    )
    if key is not None:
        with _lock:
            _cache[key] = ([weakref.ref(s) for s in sources], prepared)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return _copy(prepared)


def cache_stats() -> dict[str, int]:
    with _lock:
        return {**_stats, "size": len(_cache)}


def cache_clear() -> None:
    with _lock:
        _cache.clear()
        _stats.update(hits=0, misses=0)


def _key(
    sql: str,
    sources: list[SourceCatalog],
    allowed_schemas: dict[str, set[str]] | None,
    policies: list[RowPolicySpec],
    bindings: Mapping[str, object],
    row_cap: int,
    grants: Grants,
) -> tuple | None:
    if len(sql) > MAX_SQL_CHARS:
        return None
    bound = None  # without policies the bindings play no part in the plan
    if policies:
        try:
            # JSON tells 1, 1.0, "1" and true apart; a value JSON cannot write makes no key.
            bound = json.dumps(dict(bindings), sort_keys=True)
        except (TypeError, ValueError):
            return None  # prepared every time
    schemas = (
        tuple(sorted((alias, tuple(sorted(names))) for alias, names in allowed_schemas.items()))
        if allowed_schemas is not None
        else None
    )
    return (sql, tuple(id(s) for s in sources), schemas, tuple(policies), bound, row_cap, grants)


def _copy(prepared: PreparedQuery) -> PreparedQuery:
    return dataclasses.replace(
        prepared,
        output_columns=[dataclasses.replace(c) for c in prepared.output_columns],
        tables=list(prepared.tables),
        warnings=list(prepared.warnings),
    )
