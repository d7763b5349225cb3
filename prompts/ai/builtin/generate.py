"""Question -> SQL: choose the fact table, join what the plan needs, and render in the dialect.

The fact ("base") table is where the measure lives. For a money word ("sales", "revenue") every
money-like column of every table is a candidate (`SchemaIndex.money_columns`) and the best is
chosen by, in order: every needed table reachable; no one-to-many hop (which would repeat the
measure per child row); on a table the question names; how well its name fits the word; the
fewest joins. A count is over the table the question names ("how many orders"), COUNT(DISTINCT
pk) when a join fans out.
"""

from __future__ import annotations

from datetime import date

import sqlglot
from sqlglot import exp

from connectors.types import SourceCatalog

from .base import BuiltinAnswer, BuiltinCannotAnswer
from .catalog import SchemaIndex, Table, date_words, is_date, is_numeric, same_stem
from .explain import explain_sql
from .parse import Metric, Plan, check_unknown, parse, unknown_words
from .sqlbuild import Dim, Joins, aliased, date_condition, dim_group_keys, dim_projections, value_condition
from .words import WRITE_WORDS

AGG_NAMES = {"sum": "total", "avg": "average", "min": "min", "max": "max", "count": "count"}
AGG_FUNCS = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max, "count": exp.Count}
LIST_LIMIT = 100  # rows ranked by a measure when the question gives no number
CONFIDENCE, ASSUMPTION_COST, CONFIDENCE_FLOOR = 0.95, 0.1, 0.55  # see the package docstring


def generate_sql(
    question: str, *, catalogs: list[SourceCatalog], dialect: str, today: date, federated: bool = False
) -> BuiltinAnswer:
    index = SchemaIndex(catalogs)
    if not index.tables:
        raise BuiltinCannotAnswer("there are no tables to query")
    plan, q = parse(question, index, today)
    index.date_hints = tuple(plan.date_words)
    unknown = unknown_words(q)
    writes = [w for w in unknown if w in WRITE_WORDS]
    if writes:  # before any other complaint: "update the price to 15" is a write, not a bad number
        raise BuiltinCannotAnswer(
            f"'{writes[0]}' asks to change data; Prompt Studio only reads it (ask a question about the data)"
        )
    check_unknown(q)
    if not q.content() or unknown:
        # A word it cannot place may change the answer ("median salary", "orders returned"): it
        # names what it did not understand instead of answering a different question.
        raise BuiltinCannotAnswer(
            f"did not understand: {', '.join(unknown) or question.strip() or 'an empty question'}"
        )
    out_dialect = "duckdb" if federated else dialect
    select = build(plan, index, federated=federated, dialect=out_dialect)
    sql = select.sql(dialect=out_dialect)
    sqlglot.parse_one(sql, read=out_dialect)  # what we emit must read back in its dialect
    return BuiltinAnswer(
        sql=sql,
        confidence=round(max(CONFIDENCE_FLOOR, CONFIDENCE - ASSUMPTION_COST * len(plan.assumptions)), 2),
        explanation=explain_sql(sql, dialect=out_dialect),
        assumptions=list(plan.assumptions),
    )


def _count_table(plan: Plan) -> Table | None:
    used = {d.table.key for d in [*plan.dims, plan.subject] if d is not None and d.kind == "table" and d.table}
    filtered = {f.table.key for f in plan.filters if f.table is not None}
    free = [t for t in plan.entities if t.key not in used]
    if not plan.entities and len(filtered) == 1:  # "how many Support Engineers": the value's own table
        return next(f.table for f in plan.filters if f.table is not None)
    # "how many dine-in orders from Paris restaurants": the first table named is what is counted
    return free[0] if free else None


def _needed(plan: Plan, dims: list[Dim]) -> list[Table]:
    tables = [d.table for d in dims if d.kind != "time" and d.table is not None]
    return tables + [f.table for f in plan.filters if f.table is not None]


def _joins(index: SchemaIndex, base: Table, plan: Plan, dims: list[Dim], federated: bool) -> Joins | None:
    joins = Joins(index, base, federated=federated)
    for table in _needed(plan, dims):
        for via in _named_on_the_way(index, base, table, plan):
            joins.reach(via)
        if not joins.reach(table):
            return None
    if plan.date is not None or any(d.kind == "time" for d in dims):
        joins.dated = _dated_table(index, base, plan)
        source = joins.date_source()
        if source is None:
            return None
        joins.reach(source[0])
    return joins


def _named_on_the_way(index: SchemaIndex, base: Table, target: Table, plan: Plan) -> list[Table]:
    """Tables the question names that lie on a shortest path from base to target: "bookings for
    Riverside Club members" reaches the club through members, not through the class's club."""
    direct = index.path(base, target)
    if not direct:
        return []
    found = []
    for table in plan.entities:
        if table.key in (base.key, target.key):
            continue
        first, rest = index.path(base, table), index.path(table, target)
        if first and rest is not None and len(first) + len(rest) == len(direct):
            found.append(table)
    return found


def _unjoinable(index: SchemaIndex, plan: Plan, table: Table) -> BuiltinCannotAnswer:
    """Why `table` cannot answer: it has no date for the question's date phrase, or it cannot be
    joined to what the question groups or filters by."""
    if plan.date is not None and Joins(index, table, dated=_dated_table(index, table, plan)).date_source() is None:
        return BuiltinCannotAnswer(f"'{table.name}' has no date column for '{plan.date.phrase}'")
    return BuiltinCannotAnswer(f"cannot join '{table.name}' to what the question groups or filters by")


def _dated_table(index: SchemaIndex, base: Table, plan: Plan) -> Table | None:
    """The table a date phrase dates when it is not the base's own: one whose date the question
    names ("departments that hired employees last year"), else another table the question names on
    the many side of the base ("customers who placed an order last month": the order's date)."""

    def named(table: Table) -> bool:
        words = [w for c in table.info.columns if is_date(c) for w in date_words(table, c)]
        return any(same_stem(w, h) for w in words for h in plan.date_words)

    if named(base):
        return None
    others = [t for t in dict.fromkeys(plan.entities) if t.key != base.key and index.date_column(t) is not None]
    for table in others:
        if named(table):
            return table
    for table in others:
        path = index.path(base, table)
        if path and not all(edge.forward for edge in path):
            return table
    # "listings sold last month": the table whose date the question names (sales.sold_on), nearest first
    hinted = [(len(p), t) for t in index.tables if t.key != base.key and named(t) and (p := index.path(base, t))]
    return min(hinted, key=lambda found: found[0])[1] if hinted else None


def _on_named_tables(dims: list[Dim], plan: Plan) -> list[Dim]:
    """ "downloads by country": the country of the downloads the question names, when they have one,
    not another table's column of that name."""
    out = []
    for dim in dims:
        if dim.kind == "column" and dim.column is not None and dim.table not in plan.entities:
            own = next((t for t in plan.entities if t.info.column(dim.column.name) is not None), None)
            if own is not None:
                dim = Dim("column", own, own.info.column(dim.column.name))
        out.append(dim)
    return out


def build(plan: Plan, index: SchemaIndex, *, federated: bool, dialect: str) -> exp.Select:
    dims = _on_named_tables(list(plan.dims), plan)
    metric = plan.metric
    aggs = list(dict.fromkeys(plan.aggs))
    count_table = _count_table(plan)
    if metric is None and "count" in aggs and len(aggs) > 1:
        # "average number of orders per customer" is an average of counts: not a query shape it builds
        raise BuiltinCannotAnswer(
            f"an {'average' if 'avg' in aggs else 'aggregate'} of a count is not supported; "
            f"ask for the number of {count_table.noun if count_table else 'rows'} per group instead"
        )
    if metric is None and aggs and aggs != ["count"] and count_table is not None:
        metric = Metric("money", count_table, word=f"{count_table.noun}_value")
    if metric is None and count_table is not None and (aggs or dims or plan.subject):
        metric = Metric("count", count_table, word=count_table.noun)
    if metric is None and plan.subject is not None and not aggs:
        raise BuiltinCannotAnswer("did not find what to rank by; say e.g. 'by revenue' or 'by number of orders'")

    row_rank = (
        plan.subject is not None
        and plan.subject.kind == "table"
        and metric is not None
        and not aggs
        and _on_table(index, metric, plan.subject.table)
    )
    if plan.own_measure and not row_rank:
        table = plan.subject.table if plan.subject is not None else None
        raise BuiltinCannotAnswer(f"'{table.name if table else 'it'}' has no price column of its own to rank by")
    if plan.subject is not None and not row_rank:
        dims.insert(0, plan.subject)
    if row_rank:
        assert plan.subject is not None
        metric = Metric(metric.kind, plan.subject.table, metric.column, metric.word)  # type: ignore[union-attr]

    if metric is None:
        if not plan.entities:
            raise BuiltinCannotAnswer("did not find a table, measure or count to answer with")
        return _list_rows(plan, index, plan.entities[0], federated)

    if plan.recency is not None:
        raise BuiltinCannotAnswer("'latest' / 'oldest' lists rows; it cannot be combined with a measure or a grouping")
    joins, columns = _choose_base(plan, index, metric, dims, federated, entity_only=row_rank)
    _note_date_choice(plan, joins)
    if aggs == ["avg"]:  # "average quantity per order item": per row of the measure's own table is all rows
        dims = [d for d in dims if not (d.kind == "table" and d.table is not None and d.table.key == joins.base.key)]
    select = exp.select()
    group: list[exp.Expression] = []
    for dim in dims:
        for expr, name in dim_projections(dim, joins):
            select = select.select(aliased(expr, name), copy=False)
        group.extend(dim_group_keys(dim, joins))
    if row_rank:
        return _rank_rows(plan, joins, columns)
    aggs = aggs or (["count"] if metric.kind == "count" else ["sum"])
    measures = []
    for agg in aggs:
        expr, name = _measure(agg, metric, joins, columns, dialect)
        measures.append(exp.column(name))
        select = select.select(exp.alias_(expr, name), copy=False)
    select = joins.apply(select)
    select = _where(select, plan, joins, columns)
    if group:
        select = select.group_by(*group, copy=False)
    if plan.sort is not None:
        desc = plan.sort_descending if plan.sort_descending is not None else not isinstance(plan.sort, Dim)
        select = select.order_by(exp.Ordered(this=_sort_expr(plan, joins, measures), desc=desc), copy=False)
    elif dims and (dims[0].kind == "time" or (dims[0].column is not None and is_date(dims[0].column))):
        select = select.order_by(*[exp.column(name) for _, name in dim_projections(dims[0], joins)], copy=False)
    elif group:
        desc = plan.sort_descending if plan.sort_descending is not None else plan.descending
        select = select.order_by(exp.Ordered(this=measures[0], desc=desc), copy=False)
    if plan.limit:
        select = select.limit(plan.limit, copy=False)
    return select


def _note_date_choice(plan: Plan, joins: Joins) -> None:
    """A date phrase on a table with several dates, none of them named by the question nor the
    table's own (`order_date` on orders, `created_at`): which date was meant is an assumption."""
    if plan.date is None and not any(d.kind == "time" for d in plan.dims):
        return
    source = joins.date_source()
    if source is None:
        return
    table, chosen = source
    dates = [c for c in table.info.columns if is_date(c)]
    named = any(same_stem(w, h) for w in date_words(table, chosen) for h in joins.index.date_hints)
    own = not date_words(table, chosen) or chosen.name.lower().startswith(("created", "date"))
    if len(dates) > 1 and not named and not own:
        others = ", ".join(c.name for c in dates if c is not chosen)
        plan.assumptions.append(f"dated {table.name} by {chosen.name} (not {others})")


def _on_table(index: SchemaIndex, metric: Metric, table: Table | None) -> bool:
    """Whether the measure is a column of `table` itself (so ranking its rows needs no grouping)."""
    if table is None or metric.kind == "count":
        return False
    if metric.kind == "column":
        return metric.table is table
    word = metric.word.split("_")[-1]
    least = 1 if word == "price" else 3  # "the most expensive shipment": its own cost or fare, a price word
    return metric.table in (None, table) and any(rank >= least for rank, _ in index.money_columns(table, word))


def _choose_base(plan: Plan, index: SchemaIndex, metric: Metric, dims: list[Dim], federated: bool, entity_only=False):
    if metric.kind == "count":
        assert metric.table is not None
        joins = _joins(index, metric.table, plan, dims, federated)
        if joins is None:
            raise _unjoinable(index, plan, metric.table)
        for table in plan.entities:  # "customers with orders": only those that have one (counted once)
            path = index.path(metric.table, table) if table.key != metric.table.key else None
            if path and not all(edge.forward for edge in path):
                joins.reach(table)
        return joins, []
    if metric.kind == "column":
        assert metric.table is not None
        assert metric.column is not None
        joins = _joins(index, metric.table, plan, dims, federated)
        if joins is None:
            raise _unjoinable(index, plan, metric.table)
        return joins, [metric.column]
    hints = {t.key for t in plan.entities} | ({metric.table.key} if metric.table else set())
    word = metric.word.split("_")[-1]
    best = None
    tables = [metric.table] if entity_only and metric.table else index.tables
    tied: list[str] = []
    for table in tables:
        for rank, columns in index.money_columns(table, word):
            joins = _joins(index, table, plan, dims, federated)
            if joins is None:
                continue
            score = (not joins.fanout, table.key in hints, rank, -len(joins.edges))
            name = " x ".join(f"{table.name}.{c.name}" for c in columns)
            if best is None or score > best[0]:
                best, tied = (score, joins, columns), [name]
            elif score == best[0]:
                tied.append(name)
    if best is None:
        raise BuiltinCannotAnswer(f"did not find a money column for '{metric.word.replace('_', ' ')}'")
    if len(tied) > 1:
        plan.assumptions.append(f"'{metric.word.replace('_', ' ')}' could be {' or '.join(tied)}: used {tied[0]}")
    return best[1], best[2]


def _metric_expr(joins: Joins, columns) -> exp.Expression:
    exprs = [joins.col(joins.base, c) for c in columns]
    return exprs[0] if len(exprs) == 1 else exp.Mul(this=exprs[0], expression=exprs[1])


def _measure(agg: str, metric: Metric, joins: Joins, columns, dialect: str) -> tuple[exp.Expression, str]:
    if metric.kind == "count" or not columns:
        pk = joins.base.pk()
        if joins.fanout and pk is not None:
            expr: exp.Expression = exp.Count(this=exp.Distinct(expressions=[joins.col(joins.base, pk)]))
        else:
            expr = exp.Count(this=exp.Star())
        return expr, f"{joins.base.noun}_count"
    value = _metric_expr(joins, columns)
    expr = AGG_FUNCS[agg](this=value)
    types = " ".join(c.data_type.lower() for c in columns)
    whole = "int" in types and len(columns) == 1
    if agg == "avg" or (agg == "sum" and not whole):
        if dialect == "postgres" and ("float" in types or "double" in types or "real" in types):
            return expr, f"{AGG_NAMES[agg]}_{metric.word}"  # PostgreSQL has no ROUND(double precision, int)
        expr = exp.Round(this=expr, decimals=exp.Literal.number(2))
    return expr, f"{AGG_NAMES[agg]}_{metric.word}"


def _where(select: exp.Select, plan: Plan, joins: Joins, columns) -> exp.Select:
    for f in plan.filters:
        if f.op == "flag":
            assert f.table is not None
            assert f.column is not None
            yes = f.values == ["true"]
            if "bool" in f.column.data_type.lower():  # tinyint(1) and INTEGER flags compare with 1 / 0
                truth: exp.Expression = exp.true() if yes else exp.false()
            else:  # an integer 0/1 column: PostgreSQL compares no integer with a boolean
                truth = exp.Literal.number(int(yes))
            select = select.where(exp.EQ(this=joins.col(f.table, f.column), expression=truth), copy=False)
        elif f.op != "=":
            target = joins.col(f.table, f.column) if f.table and f.column else None
            if target is None:
                money = [c for c in columns if is_numeric(c)] or _base_money(joins)
                if not money:
                    raise BuiltinCannotAnswer(f"did not find what to compare with {f.values[0]}")
                target = _metric_expr(joins, money)
            op = {">": exp.GT, ">=": exp.GTE, "<": exp.LT, "<=": exp.LTE}[f.op]
            select = select.where(op(this=target, expression=exp.Literal.number(f.values[0])), copy=False)
        else:
            assert f.table is not None
            assert f.column is not None
            select = select.where(value_condition(joins.col(f.table, f.column), f.values, negate=f.negate), copy=False)
    if plan.date is not None:
        source = joins.date_source()
        assert source is not None
        select = select.where(*date_condition(joins.date_col(*source), plan.date), copy=False)
    return select


def _base_money(joins: Joins):
    """The base table's own money column ("orders over 1000" compares the order's amount)."""
    money = sorted(joins.index.money_columns(joins.base, "amount"), key=lambda rc: -rc[0])
    return money[0][1] if money and money[0][0] >= 3 else []


def _sort_expr(plan: Plan, joins: Joins, measures: list[exp.Expression]) -> exp.Expression:
    target = plan.sort
    if isinstance(target, Dim) and target.kind != "time":
        if target.table is not None and joins.reach(target.table):
            return dim_projections(target, joins)[0][0]
    if isinstance(target, Metric) and target.kind == "column" and target.table and target.column:
        if joins.reach(target.table):
            return joins.col(target.table, target.column)
    return measures[0]


def _rank_rows(plan: Plan, joins: Joins, columns) -> exp.Select:
    cols = [joins.col(joins.base, c) for c in joins.base.info.columns]
    select = joins.apply(exp.select(*cols))
    select = _where(select, plan, joins, columns)
    order = _metric_expr(joins, columns)
    return select.order_by(exp.Ordered(this=order, desc=plan.descending)).limit(plan.limit or LIST_LIMIT)


def _list_rows(plan: Plan, index: SchemaIndex, table: Table, federated: bool) -> exp.Select:
    joins = _joins(index, table, plan, [], federated)
    if joins is None:
        raise _unjoinable(index, plan, table)
    select = joins.apply(exp.select(*[joins.col(table, c) for c in table.info.columns]))
    if joins.fanout:
        select = select.distinct()
    select = _where(select, plan, joins, _base_money(joins))
    source = joins.date_source()
    if source is not None and source[0] is table:
        select = select.order_by(exp.Ordered(this=joins.col(*source), desc=plan.recency != "asc"))
    elif plan.recency is not None:
        raise BuiltinCannotAnswer(f"'{table.name}' has no date column to tell its latest rows")
    # Every matching row unless the question gave a number: the governed path caps the rows (and
    # says so), and rows_returned then counts what really matched.
    return select.limit(plan.limit) if plan.limit else select
