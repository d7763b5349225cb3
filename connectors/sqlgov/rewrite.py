"""Step 2 of the governed path: row policies become filtered subqueries, and a row cap is enforced.

Placeholder values are put into the tree as literal nodes; they never pass through SQL text, so
a value like `x' OR '1'='1` stays one quoted string.
"""

from __future__ import annotations

import datetime
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

from sqlglot import exp
from sqlglot.errors import SqlglotError

from connectors.sqlgov.catalog import CatalogIndex, TableKey, table_key
from connectors.sqlgov.errors import GovernanceError
from connectors.sqlgov.validate import check_functions, check_read_only_nodes
from connectors.types import RowPolicySpec

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_MARKER = "__sqlgov_bind_{}__"
_MARKER_RE = re.compile(r"__sqlgov_bind_(\d+)__")


class _Deny(Exception):
    """The predicate cannot be bound safely: it becomes FALSE."""


@lru_cache(maxsize=1024)
def _template(predicate: str, dialect: str) -> tuple[exp.Expr, tuple[str, ...]] | None:
    """The predicate parsed once per dialect, with each placeholder replaced by a marker column."""
    keys: list[str] = []

    def to_marker(match: re.Match[str]) -> str:
        keys.append(match.group(1))
        return _MARKER.format(len(keys) - 1)

    text = _PLACEHOLDER.sub(to_marker, predicate)
    if "{{" in text or "}}" in text or not text.strip():
        return None
    try:
        tree = exp.condition(text, dialect=dialect)
        check_read_only_nodes(tree)
        check_functions(tree)
    except (SqlglotError, GovernanceError, RecursionError, ValueError):
        return None
    return tree, tuple(keys)


def bind_predicate(predicate: str, *, dialect: str, bindings: Mapping[str, object]) -> exp.Expr | None:
    """The predicate with its placeholders bound as literals, or None when it must deny every row."""
    template = _template(predicate, dialect)
    if template is None:
        return None
    tree, keys = template
    tree = tree.copy()
    try:
        values = [_value(bindings, key) for key in keys]
        for node in list(tree.walk()):
            if isinstance(node, exp.Column) and not node.table and _MARKER_RE.fullmatch(node.name):
                _replace_marker(node, values[int(_MARKER_RE.fullmatch(node.name).group(1))])
            elif isinstance(node, exp.Literal) and node.is_string and _MARKER_RE.search(node.this):
                node.replace(exp.Literal.string(_MARKER_RE.sub(lambda m: _text(values[int(m.group(1))]), node.this)))
        # A marker left anywhere else (a table or function name) has no safe meaning.
        if any(_MARKER_RE.search(str(n.this)) for n in tree.find_all(exp.Identifier)):
            raise _Deny
    except _Deny:
        return None
    return tree


def _value(bindings: Mapping[str, object], key: str) -> object:
    if key not in bindings:
        raise _Deny
    return bindings[key]


def _replace_marker(node: exp.Column, value: object) -> None:
    if isinstance(value, (list, tuple, set, frozenset)):
        parent = node.parent
        if not isinstance(parent, exp.In) or node not in (parent.args.get("expressions") or []):
            raise _Deny
        items = [_literal(v) for v in (sorted(value, key=str) if isinstance(value, (set, frozenset)) else value)]
        others = [e for e in parent.args["expressions"] if e is not node]
        if not items and not others:
            parent.replace(exp.false())
            return
        parent.set("expressions", others + items)
        return
    node.replace(_literal(value))


def _literal(value: object) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, Decimal)):
        if isinstance(value, float) and not math.isfinite(value):
            raise _Deny
        if isinstance(value, Decimal) and not value.is_finite():
            raise _Deny
        number = exp.Literal.number(str(abs(value)))
        return exp.paren(exp.Neg(this=number)) if value < 0 else number
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, uuid.UUID):
        return exp.Literal.string(str(value))
    raise _Deny


def _text(value: object) -> str:
    """A value embedded inside a string literal of the predicate ('%{{user.email}}%')."""
    if value is None or isinstance(value, (list, tuple, set, frozenset, dict)):
        raise _Deny
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def apply_row_policies(
    tree: exp.Expr,
    *,
    policies: list[RowPolicySpec],
    index: CatalogIndex,
    federated: bool,
    bindings: Mapping[str, object],
) -> list[str]:
    """Wrap every reference to a governed table; returns warnings."""
    by_table: dict[TableKey, list[RowPolicySpec]] = {}
    for policy in policies:
        key = (policy.source_alias.lower(), policy.schema.lower(), policy.table.lower())
        by_table.setdefault(key, []).append(policy)
    if not by_table:
        return []
    warnings: list[str] = []
    for table in list(tree.find_all(exp.Table)):
        key = table_key(table)
        if key is None or key not in by_table:
            continue
        source, _info = index.tables[key]
        conditions: list[exp.Expr] = []
        for policy in by_table[key]:
            bound = bind_predicate(policy.predicate, dialect=source.dialect, bindings=bindings)
            if bound is None:
                bound = exp.false()
                warning = f"Row policy {policy.name or policy.predicate!r} could not be applied; its rows are denied."
                if warning not in warnings:
                    warnings.append(warning)
            elif federated:
                _address_in_source(bound, alias=source.alias, default_schema=source.default_schema)
            conditions.append(exp.paren(bound))
        inner = table.copy()
        inner.set("alias", None)
        inner.set("pivots", None)
        select = exp.Select(expressions=[exp.Star()]).from_(inner, copy=False)
        select.set("where", exp.Where(this=exp.and_(*conditions, copy=False)))
        alias = table.args.get("alias")
        alias = (
            alias.copy() if alias and alias.name else exp.TableAlias(this=exp.to_identifier(table.name, quoted=True))
        )
        wrapped = exp.Subquery(this=select, alias=alias)
        if pivots := table.args.get("pivots"):
            wrapped.set("pivots", pivots)
        table.replace(wrapped)
    return warnings


def _address_in_source(predicate: exp.Expr, *, alias: str, default_schema: str) -> None:
    """Tables a predicate names are its own source's: in DuckDB they live under the source alias."""
    for table in predicate.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier) and not table.args.get("catalog"):
            if not table.args.get("db"):
                table.set("db", exp.to_identifier(default_schema, quoted=True))
            table.set("catalog", exp.to_identifier(alias, quoted=True))


def strip_catalogs(tree: exp.Expr) -> None:
    """One source: its tables are addressed as schema.table on its own connection."""
    for table in tree.find_all(exp.Table):
        if table.args.get("catalog"):
            table.set("catalog", None)


def apply_row_cap(root: exp.Query, *, row_cap: int) -> list[str]:
    """Fetch at most row_cap + 1 rows so the executor can tell the result was truncated."""
    limit = root.args.get("limit")
    current = _limit_value(limit)
    if current is not None and current <= row_cap:
        return []
    root.set("limit", exp.Limit(expression=exp.Literal.number(row_cap + 1)))
    if limit is None:
        return []
    written = current if current is not None else limit.sql()
    return [f"LIMIT {written} exceeds the row cap of {row_cap}; at most {row_cap} rows are returned."]


def _limit_value(limit: exp.Expr | None) -> int | None:
    if isinstance(limit, exp.Limit):
        value = limit.expression
    elif isinstance(limit, exp.Fetch):
        if (options := limit.args.get("limit_options")) and (
            options.args.get("percent") or options.args.get("with_ties")
        ):
            return None
        value = limit.args.get("count")
    else:
        return None
    if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
        return int(value.this)
    return None


def name_unnamed_projections(root: exp.Query, *, dialect: str) -> None:
    """Give computed output columns readable names (`count`, `upper`) before qualify would call
    them `_col_0`; the alias is written into the SQL, so every engine returns the same name."""
    select = root
    while isinstance(select, exp.SetOperation):  # the leftmost branch names a set operation's columns
        select = select.this.unnest() if isinstance(select.this, exp.Subquery) else select.this
    if not isinstance(select, exp.Select):
        return
    taken = {
        s.alias_or_name.lower()
        for s in select.expressions
        if isinstance(s, (exp.Alias, exp.Column)) or s.args.get("alias")
    }
    for position, projection in enumerate(select.expressions):
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star)) or projection.args.get("alias"):
            continue
        base = _projection_base_name(projection, dialect)
        name, suffix = base, 2
        while name.lower() in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name.lower())
        select.expressions[position] = exp.alias_(projection, name, quoted=True, copy=False)


def _projection_base_name(projection: exp.Expr, dialect: str) -> str:
    if isinstance(projection, exp.Window):
        return _projection_base_name(projection.this, dialect)
    if isinstance(projection, exp.Cast):
        return _projection_base_name(projection.this, dialect)
    if isinstance(projection, exp.Literal):
        return "value"
    if isinstance(projection, exp.Func):
        match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", projection.sql(dialect=dialect, comments=False))
        if match:
            return match.group(1).lower()
    return "expr"
