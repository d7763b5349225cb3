"""SQL -> one plain-language sentence, read from the sqlglot AST (never from the text).

The sentence names, in order: what is computed (counts, sums, averages, lowest/highest values, or
the listed columns) and from which table; the other tables joined; the grouping; the filters (a
`>=`/`<` pair on one column reads as a range); groups kept by HAVING; the ordering; and the limit.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from .base import BuiltinCannotAnswer

AGG_VERBS = {
    exp.Count: "counts",
    exp.Sum: "sums",
    exp.Avg: "averages",
    exp.Min: "finds the lowest",
    exp.Max: "finds the highest",
}
COMPARISONS = {
    exp.EQ: "is",
    exp.NEQ: "is not",
    exp.GT: "is greater than",
    exp.GTE: "is at least",
    exp.LT: "is less than",
    exp.LTE: "is at most",
}
DATE_COMPARISONS = {exp.GT: "is after", exp.GTE: "is on or after", exp.LT: "is before", exp.LTE: "is on or before"}


def explain_sql(sql: str, *, dialect: str) -> str:
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except ParseError as exc:
        raise BuiltinCannotAnswer(f"could not read the SQL: {exc.errors[0]['description'] if exc.errors else exc}")
    if tree is None:
        raise BuiltinCannotAnswer("the SQL is empty")
    return _capitalize(_describe(tree)) + "."


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _describe(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Union | exp.Intersect | exp.Except):
        word = {exp.Union: "combines", exp.Intersect: "keeps the rows common to", exp.Except: "subtracts"}[type(tree)]
        return f"{word} two queries: {_describe(tree.left)}; and {_describe(tree.right)}"
    if not isinstance(tree, exp.Select):
        return f"runs a {tree.key.upper()} statement"
    return _describe_select(tree)


def _describe_select(select: exp.Select) -> str:
    tables = _tables(select)
    names = {alias: name for alias, name in tables}
    many = len({name for _, name in tables}) > 1
    base = tables[0][1] if tables else "the given values"

    def col(node: exp.Expression) -> str:
        if isinstance(node, exp.Column):
            table = names.get(node.table, node.table)
            return f"{table}.{node.name}" if many and table else node.name
        if isinstance(node, exp.Star):
            return "all columns"
        return node.sql()

    computed, listed = [], []
    for item in select.expressions:
        inner = item.unalias() if isinstance(item, exp.Alias) else item
        aggs = [a for a in inner.find_all(exp.AggFunc) if type(a) in AGG_VERBS]
        if not aggs:
            listed.append(col(inner))
            continue
        agg = aggs[0]
        verb = AGG_VERBS[type(agg)]
        arg = agg.this
        if isinstance(agg, exp.Count) and (arg is None or isinstance(arg, exp.Star)):
            computed.append(f"{verb} {base}")
        elif isinstance(arg, exp.Distinct):
            computed.append(f"{verb} distinct {', '.join(col(e) for e in arg.expressions)}")
        else:
            computed.append(f"{verb} {col(arg)}")
    grouped = [col(e) for e in select.args["group"].expressions] if select.args.get("group") else []

    parts = []
    if computed:
        sentence = _join(computed)
        if not all(c.endswith(base) for c in computed) and tables:
            sentence += f" from {base}"
    else:
        distinct = "distinct " if select.args.get("distinct") else ""
        sentence = f"lists {distinct}{_join(listed)} from {base}"
    parts.append(sentence)
    others = [name for _, name in tables[1:]]
    if others:
        parts.append(f"joined with {_join(list(dict.fromkeys(others)))}")
    if grouped:
        parts.append(f"grouped by {_join(grouped)}")
    where = select.args.get("where")
    if where is not None:
        parts.append(f"where {_conditions(where.this, col)}")
    having = select.args.get("having")
    if having is not None:
        parts.append(f"keeping groups where {_conditions(having.this, col)}")
    order = select.args.get("order")
    if order is not None:
        keys = [f"{col(o.this)} {'descending' if o.args.get('desc') else 'ascending'}" for o in order.expressions]
        parts.append(f"sorted by {_join(keys)}")
    limit = select.args.get("limit")
    if limit is not None and limit.expression is not None:
        parts.append(f"limited to {limit.expression.sql()} rows")
    return ", ".join(parts) if len(parts) > 2 else " ".join(parts)


def _tables(select: exp.Select) -> list[tuple[str, str]]:
    out = []
    sources = [select.args.get("from_") or select.args.get("from")] + list(select.args.get("joins") or [])
    for source in sources:
        if source is None:
            continue
        node = source.this
        if isinstance(node, exp.Table):
            out.append((node.alias_or_name, node.name))
        elif isinstance(node, exp.Subquery):
            out.append((node.alias_or_name, f"a subquery ({node.alias_or_name})"))
    return out


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _literal(node: exp.Expression) -> tuple[str, date | None]:
    """A literal's text, and its date when it is one (DATE '...', CAST('...' AS DATE), DATE('...'))."""
    inner = node
    if isinstance(node, exp.Cast | exp.TsOrDsToDate | exp.Date | exp.StrToDate):
        inner = node.this if not isinstance(node, exp.Date) else (node.expressions or [node.this])[0]
    if isinstance(inner, exp.Literal):
        text = inner.this
        try:
            return text, date.fromisoformat(text[:10]) if inner.is_string and len(text) >= 10 else None
        except ValueError:
            return (f"'{text}'" if inner.is_string else text), None
        finally:
            pass
    return node.sql(), None


def _conditions(node: exp.Expression, col) -> str:
    conjuncts = list(node.flatten()) if isinstance(node, exp.And) else [node]
    out = []
    ranges: dict[str, dict[type, date]] = {}
    for c in conjuncts:
        if type(c) in (exp.GTE, exp.LT) and isinstance(c.this, exp.Column):
            _, day = _literal(c.expression)
            if day is not None:
                ranges.setdefault(col(c.this), {})[type(c)] = day
    for c in conjuncts:
        if type(c) in (exp.GTE, exp.LT) and isinstance(c.this, exp.Column) and len(ranges.get(col(c.this), {})) == 2:
            bounds = ranges.pop(col(c.this))
            last = bounds[exp.LT] - timedelta(days=1)
            out.append(f"{col(c.this)} is between {bounds[exp.GTE].isoformat()} and {last.isoformat()}")
        elif not (
            type(c) in (exp.GTE, exp.LT)
            and isinstance(c.this, exp.Column)
            and col(c.this) not in ranges
            and _literal(c.expression)[1] is not None
        ):
            out.append(_condition(c, col))
    return _join(out)


def _condition(node: exp.Expression, col) -> str:
    if isinstance(node, exp.Paren):
        return _condition(node.this, col)
    if isinstance(node, exp.Or):
        return f"({_condition(node.left, col)} or {_condition(node.right, col)})"
    if isinstance(node, exp.And):
        return f"{_condition(node.left, col)} and {_condition(node.right, col)}"
    if isinstance(node, exp.Not):
        inner = node.this
        if isinstance(inner, exp.Is):
            return f"{col(inner.this)} is not null"
        if isinstance(inner, exp.In):
            return f"{col(inner.this)} is not one of {', '.join(_quoted(e) for e in inner.expressions)}"
        return f"not ({_condition(inner, col)})"
    if isinstance(node, exp.Is):
        return f"{col(node.this)} is null"
    if isinstance(node, exp.In):
        return f"{col(node.this)} is one of {', '.join(_quoted(e) for e in node.expressions)}"
    if isinstance(node, exp.Like):
        return f"{col(node.this)} matches {_quoted(node.expression)}"
    if isinstance(node, exp.Between):
        return f"{col(node.this)} is between {_quoted(node.args['low'])} and {_quoted(node.args['high'])}"
    if type(node) in COMPARISONS:
        text, day = _literal(node.expression)
        if day is not None and type(node) in DATE_COMPARISONS:
            return f"{col(node.this)} {DATE_COMPARISONS[type(node)]} {day.isoformat()}"
        return f"{col(node.this)} {COMPARISONS[type(node)]} {_quoted(node.expression)}"
    return node.sql()


def _quoted(node: exp.Expression) -> str:
    if isinstance(node, exp.Literal):
        return f"'{node.this}'" if node.is_string else node.this
    text, day = _literal(node)
    return day.isoformat() if day else text
