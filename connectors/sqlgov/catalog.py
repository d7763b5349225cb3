"""The allowed catalog as the engine sees it, and the resolution of every table a query names.

Building a sqlglot MappingSchema costs milliseconds, so one is kept per list of catalog objects
(by identity, checked with weak references) for as long as those objects live.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.schema import MappingSchema

from connectors.sqlgov.errors import GovernanceError
from connectors.types import ColumnInfo, SourceCatalog, TableInfo

TableKey = tuple[str, str, str]  # (alias, schema, table), lowercased


class CatalogIndex:
    def __init__(self, sources: Sequence[SourceCatalog], dialect: str) -> None:
        self.dialect = dialect
        self.sources = {s.alias.lower(): s for s in sources}
        self.tables: dict[TableKey, tuple[SourceCatalog, TableInfo]] = {}
        self._columns: dict[TableKey, tuple[dict[str, ColumnInfo], dict[str, ColumnInfo]]] = {}
        mapping: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
        for source in sources:
            catalog = mapping.setdefault(self._key(source.alias), {})
            for table in source.tables:
                key = (source.alias.lower(), table.schema.lower(), table.name.lower())
                self.tables.setdefault(key, (source, table))
                exact = {c.name: c for c in table.columns}
                lowered: dict[str, ColumnInfo] = {}
                for column in table.columns:
                    lowered.setdefault(column.name.lower(), column)
                self._columns.setdefault(key, (exact, lowered))
                # Column types play no part in governance; a neutral type avoids parsing
                # every driver's type spelling.
                columns = {self._key(c.name): "TEXT" for c in table.columns}
                catalog.setdefault(self._key(table.schema), {})[self._key(table.name)] = columns
        self.mapping = MappingSchema(mapping, dialect=dialect)

    def _key(self, name: str) -> str:
        # Quoted so that MappingSchema keeps the catalog's exact spelling where the dialect is
        # case-sensitive for quoted names (PostgreSQL "FirstName").
        return exp.to_identifier(name, quoted=True).sql(dialect=self.dialect)

    def column(self, key: TableKey, name: str) -> ColumnInfo | None:
        found = self._columns.get(key)
        if found is None:
            return None
        exact, lowered = found
        return exact.get(name) or lowered.get(name.lower())


_CACHE_SIZE = 64
_cache: OrderedDict[tuple, tuple[list[weakref.ref], CatalogIndex]] = OrderedDict()
_cache_lock = threading.Lock()


def catalog_index(sources: Sequence[SourceCatalog], *, dialect: str) -> CatalogIndex:
    key = (dialect, tuple((id(s), id(s.tables), len(s.tables)) for s in sources))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and all(ref() is s for ref, s in zip(hit[0], sources, strict=True)):
            _cache.move_to_end(key)
            return hit[1]
    index = CatalogIndex(sources, dialect)
    with _cache_lock:
        _cache[key] = ([weakref.ref(s) for s in sources], index)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index


def table_key(table: exp.Table) -> TableKey | None:
    """The catalog key of a table node resolved by `resolve_tables`, or None (CTE, function)."""
    if not table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        return None
    return (table.catalog.lower(), table.db.lower(), table.name.lower())


def resolve_tables(
    tree: exp.Expr,
    *,
    index: CatalogIndex,
    federated: bool,
    allowed_schemas: dict[str, set[str]] | None,
) -> list[tuple[str, str, str]]:
    """Check every table against the catalog and rewrite it to `alias.schema.table`.

    CTE references are left alone. Returns the distinct (alias, schema, table) referenced.
    """
    referenced: dict[TableKey, tuple[str, str, str]] = {}
    accounted: set[int] = set()
    for scope in traverse_scope(tree):
        for table in scope.tables:
            if id(table) in accounted:
                continue
            accounted.add(id(table))
            if not isinstance(table.this, exp.Identifier):
                continue  # table functions: validated by check_functions
            if not table.args.get("db") and not table.args.get("catalog") and table.name in scope.cte_sources:
                continue
            source, info = _lookup(table, index=index, federated=federated, allowed_schemas=allowed_schemas)
            table.set("this", exp.to_identifier(info.name, quoted=True))
            table.set("db", exp.to_identifier(info.schema, quoted=True))
            table.set("catalog", exp.to_identifier(source.alias, quoted=True))
            key = (source.alias.lower(), info.schema.lower(), info.name.lower())
            referenced.setdefault(key, (source.alias, info.schema, info.name))
    # A table the scope walk did not see could not be checked: refuse it rather than let it through.
    for table in tree.find_all(exp.Table):
        if id(table) not in accounted and isinstance(table.this, exp.Identifier):
            raise GovernanceError.invalid("unknown_table", f"Unknown table '{_written(table)}'.")
    return list(referenced.values())


def _written(table: exp.Table) -> str:
    return ".".join(part.name for part in table.parts)


def _lookup(
    table: exp.Table,
    *,
    index: CatalogIndex,
    federated: bool,
    allowed_schemas: dict[str, set[str]] | None,
) -> tuple[SourceCatalog, TableInfo]:
    parts = [part.name for part in table.parts]
    written = ".".join(parts)
    if len(parts) > 3:
        raise GovernanceError.invalid("unknown_table", f"Unknown table '{written}'.")
    if federated:
        if len(parts) == 1:
            aliases = ", ".join(sorted(s.alias for s in index.sources.values()))
            raise GovernanceError.invalid(
                "unknown_table",
                f"Unknown table '{written}': when querying several sources, address tables as "
                f"<source_alias>.<schema>.<table> or <source_alias>.<table> (sources: {aliases}).",
            )
        alias = parts[0]
        source = index.sources.get(alias.lower())
        if source is None:
            raise GovernanceError.invalid("unknown_table", f"Unknown table '{written}': no source '{alias}'.")
        schema = parts[1] if len(parts) == 3 else source.default_schema
    else:
        source = next(iter(index.sources.values()))
        if len(parts) == 3 and parts[0].lower() != source.alias.lower():
            raise GovernanceError.invalid("unknown_table", f"Unknown table '{written}'.")
        schema = parts[-2] if len(parts) >= 2 else source.default_schema
    allowed = (allowed_schemas or {}).get(source.alias)
    if allowed and schema.lower() not in {s.lower() for s in allowed}:
        raise GovernanceError.invalid(
            "external_schema",
            f"Schema '{schema}' of source '{source.alias}' is outside the schemas selected for this workspace.",
        )
    found = index.tables.get((source.alias.lower(), schema.lower(), parts[-1].lower()))
    if found is None:
        raise GovernanceError.invalid("unknown_table", f"Unknown table '{written}'.")
    return found
