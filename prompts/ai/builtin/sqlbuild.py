"""Pieces of SQL shared by generation and refinement, built as sqlglot expressions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlglot import exp

from connectors.types import ColumnInfo

from .catalog import Edge, SchemaIndex, Table, is_date, is_text_date, table_expr
from .dates import DateRange
from .words import singular

TIME_FORMATS = {"day": "%Y-%m-%d", "week": "%Y-%W", "month": "%Y-%m", "year": "%Y"}


@dataclass
class Dim:
    """A grouping: a column, a table (shown by its label columns) or a time grain of the date column."""

    kind: str  # "column" | "table" | "time"
    table: Table | None = None
    column: ColumnInfo | None = None
    grain: str = ""


@dataclass
class Joins:
    """The tables a query reads, each with its alias, joined to the base along FK edges."""

    index: SchemaIndex
    base: Table
    federated: bool = False
    aliases: dict[str, str] = field(default_factory=dict)  # table key -> alias
    edges: list[Edge] = field(default_factory=list)
    fanout: bool = False
    dated: Table | None = None  # the table a date phrase dates, when not the base's nearest (see _joins)

    def __post_init__(self) -> None:
        if not self.aliases:
            self.aliases[self.base.key] = self._new_alias(self.base)

    def _new_alias(self, table: Table) -> str:
        stem = "".join(w[0] for w in table.words) or "t"
        taken = set(self.aliases.values())
        alias, n = stem, 1
        while alias in taken:
            n += 1
            alias = f"{stem}{n}"
        return alias

    def reach(self, table: Table) -> bool:
        """Join `table` along the shortest FK path from a table already read; False if unreachable."""
        if table.key in self.aliases:
            return True
        best: list[Edge] | None = None
        for key in list(self.aliases):
            start = next(t for t in self.index.tables if t.key == key)
            path = self.index.path(start, table)
            if path is not None and (best is None or len(path) < len(best)):
                best = path
        if best is None:
            return False
        for edge in best:
            if edge.dst.key not in self.aliases:
                self.aliases[edge.dst.key] = self._new_alias(edge.dst)
                self.edges.append(edge)
                self.fanout = self.fanout or not edge.forward
        return True

    def alias(self, table: Table) -> str:
        return self.aliases[table.key]

    def col(self, table: Table, column: ColumnInfo | str) -> exp.Column:
        name = column if isinstance(column, str) else column.name
        return exp.column(name, table=self.alias(table))

    def date_col(self, table: Table, column: ColumnInfo) -> exp.Expression:
        """A date column to compare or format: a date kept as text is cast where text and dates do not
        compare (PostgreSQL, DuckDB when federated); SQLite and MySQL compare ISO text as it is."""
        col = self.col(table, column)
        if is_text_date(column) and (self.federated or table.source.engine in ("postgres", "duckdb")):
            return exp.cast(col, exp.DataType.build("TIMESTAMP"))
        return col

    def apply(self, select: exp.Select) -> exp.Select:
        select = select.from_(table_expr(self.base, self.alias(self.base), federated=self.federated))
        for edge in self.edges:
            on = exp.EQ(this=self.col(edge.dst, edge.dst_col), expression=self.col(edge.src, edge.src_col))
            select = select.join(table_expr(edge.dst, self.alias(edge.dst), federated=self.federated), on=on)
        return select

    def date_source(self) -> tuple[Table, ColumnInfo] | None:
        """The base table's date column, else its header's: the line tables of an order or invoice
        (order_items, invoice_lines) are dated by the order or invoice they belong to. Any other
        parent's date is not the row's (a booking is not dated by when its member joined): None.
        Or the table chosen as `dated`."""
        if self.dated is not None:
            col = self.index.date_column(self.dated)
            return (self.dated, col) if col is not None else None
        table = self.base
        seen = {table.key}
        while True:
            col = self.index.date_column(table)
            if col is not None:
                return table, col
            header = next(
                (
                    e.dst
                    for e in self.index.edges[table.key]
                    if e.forward and e.dst.key not in seen and _is_header(e.dst, table)
                ),
                None,
            )
            if header is None:
                return None
            seen.add(header.key)
            table = header


def _is_header(parent: Table, child: Table) -> bool:
    """orders is order_items' header (its name starts the child's), invoices invoice_lines'."""
    return len(child.words) > 1 and [singular(w) for w in parent.words] == [
        singular(w) for w in child.words[: len(parent.words)]
    ]


def date_literal(day: date) -> exp.Expression:
    return exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.build("DATE"))


def date_condition(column: exp.Expression, period: DateRange) -> list[exp.Expression]:
    upper = exp.LT(this=column.copy(), expression=date_literal(period.end))
    if period.start == date(1, 1, 1):
        return [upper]
    return [exp.GTE(this=column.copy(), expression=date_literal(period.start)), upper]


def value_condition(column: exp.Expression, values: list[str], *, negate: bool = False) -> exp.Expression:
    literals = [exp.Literal.string(v) for v in values]
    if len(literals) == 1:
        cond: exp.Expression = exp.EQ(this=column, expression=literals[0])
        return exp.NEQ(this=column, expression=literals[0]) if negate else cond
    cond = exp.In(this=column, expressions=literals)
    return exp.Not(this=cond) if negate else cond


def dim_projections(dim: Dim, joins: Joins) -> list[tuple[exp.Expression, str]]:
    """(expression, output name) pairs for a dimension; the table must already be reached."""
    if dim.kind == "time":
        source = joins.date_source()
        assert source is not None
        expr = exp.TimeToStr(this=joins.date_col(*source), format=exp.Literal.string(TIME_FORMATS[dim.grain]))
        return [(expr, dim.grain)]
    assert dim.table is not None
    if dim.kind == "column":
        assert dim.column is not None
        return [(joins.col(dim.table, dim.column), dim.column.name)]
    labels = joins.index.label_columns(dim.table)
    noun = dim.table.noun
    if len(labels) == 1:
        name = noun if not labels[0].is_primary_key else f"{noun}_id"
        return [(joins.col(dim.table, labels[0]), name)]
    out = []
    for col in labels:
        out.append((joins.col(dim.table, col), f"{noun}_id" if col.is_primary_key else col.name))
    return out


def dim_group_keys(dim: Dim, joins: Joins) -> list[exp.Expression]:
    """What a dimension groups by: its projections, plus the table's key when a label shows it, so two
    customers of the same name stay two rows."""
    keys = [expr.copy() for expr, _ in dim_projections(dim, joins)]
    if dim.kind == "table" and dim.table is not None:
        pk = dim.table.pk()
        if pk is not None and all(c.name != pk.name for c in joins.index.label_columns(dim.table)):
            keys.append(joins.col(dim.table, pk))
    return keys


def dim_table(dim: Dim, joins: Joins) -> Table | None:
    if dim.kind == "time":
        source = joins.date_source()
        return source[0] if source else None
    return dim.table


def aliased(expr: exp.Expression, name: str) -> exp.Expression:
    if isinstance(expr, exp.Column) and expr.name == name:
        return expr
    return exp.alias_(expr, name)


def is_date_column(col: ColumnInfo) -> bool:
    return is_date(col)
