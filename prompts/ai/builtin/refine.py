"""SQL + an instruction -> edited SQL, by deterministic edits of the sqlglot AST.

Understood instructions (several may be combined): "remove the limit"; "top 10" / "limit 50" /
"first 5"; "order by X [descending]"; "group by X" (a column, a table, or day/week/month/year;
a plain listing becomes a count per X); a date phrase ("last 30 days", "in March 2025", replacing
any date filter on the same column); "add a filter X is not null" / "where X > 100" / "X is
cancelled"; known values ("only completed orders", "exclude cancelled orders"). Tables are joined
along foreign keys when the instruction needs one the query does not read yet. Anything else
raises `BuiltinCannotAnswer` naming the words not understood.
"""

from __future__ import annotations

import re
from datetime import date

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from connectors.types import SourceCatalog

from .base import BuiltinCannotAnswer
from .catalog import SchemaIndex, Table, table_expr
from .dates import find_date_range
from .parse import NEGATORS, resolve_dim
from .sqlbuild import Joins, aliased, date_condition, dim_group_keys, dim_projections, dim_table, value_condition
from .words import NUMBER, STOPWORDS, Question, number, tokenize

OPERATORS = [
    ("is not null", exp.Not), ("is null", exp.Is), ("is not empty", exp.Not), ("is empty", exp.Is),
    ("greater than or equal to", exp.GTE), ("less than or equal to", exp.LTE), ("not equal to", exp.NEQ),
    ("greater than", exp.GT), ("more than", exp.GT), ("less than", exp.LT), ("at least", exp.GTE),
    ("at most", exp.LTE), ("over", exp.GT), ("above", exp.GT), ("under", exp.LT), ("below", exp.LT),
    ("equals", exp.EQ), ("is not", exp.NEQ), ("is", exp.EQ), (">=", exp.GTE), ("<=", exp.LTE), ("!=", exp.NEQ),
    ("<>", exp.NEQ), ("==", exp.EQ), ("=", exp.EQ), (">", exp.GT), ("<", exp.LT),
]  # fmt: skip
FILTER_LEAD = r"(?:add (?:a |another )?(?:filter|condition)(?: on| for| where| that)?|filter(?: on| by| where| to)?|" \
    r"(?:only |keep )?(?:rows )?where|such that)"  # fmt: skip


class _Query:
    """The SELECT being edited, with the catalog tables it reads and their aliases."""

    def __init__(self, tree: exp.Select, index: SchemaIndex) -> None:
        self.tree = tree
        self.index = index
        aliases: dict[str, str] = {}
        base: Table | None = None
        federated = False
        for node in tree.find_all(exp.Table):
            table = index.find(node)
            if table is None:
                continue
            base = base or table
            aliases.setdefault(table.key, node.alias_or_name)
            federated = federated or bool(node.catalog)
        if base is None:
            raise BuiltinCannotAnswer("the query reads no table of the selected data sources")
        self.joins = Joins(index, base, federated=federated, aliases=aliases)
        self._applied = 0

    def tables(self) -> list[Table]:
        return [t for t in self.index.tables if t.key in self.joins.aliases]

    def reach(self, table: Table) -> None:
        if not self.joins.reach(table):
            raise BuiltinCannotAnswer(f"cannot join '{table.name}' to the tables the query reads")
        for edge in self.joins.edges[self._applied :]:
            on = exp.EQ(this=self.joins.col(edge.dst, edge.dst_col), expression=self.joins.col(edge.src, edge.src_col))
            target = table_expr(edge.dst, self.joins.alias(edge.dst), federated=self.joins.federated)
            self.tree = self.tree.join(target, on=on, copy=False)
        self._applied = len(self.joins.edges)

    def column(self, words: tuple[str, ...]) -> exp.Column:
        """A column the words name, preferring tables already read; joins the table if needed."""
        found = self.index.columns_named(words, self.tables()) or self.index.columns_named(words)
        if not found:
            raise BuiltinCannotAnswer(f"did not find a column named '{' '.join(words)}'")
        table, col = found[0]
        self.reach(table)
        return self.joins.col(table, col)

    def has_aggregate(self) -> bool:
        return any(e.find(exp.AggFunc) for e in self.tree.expressions)

    def first_aggregate(self) -> exp.Expression | None:
        for e in self.tree.expressions:
            if e.find(exp.AggFunc):
                return exp.column(e.alias) if isinstance(e, exp.Alias) else e.copy()
        return None


def refine_sql(sql: str, instruction: str, *, catalogs: list[SourceCatalog], dialect: str, today: date) -> str:
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except ParseError as exc:
        raise BuiltinCannotAnswer(f"could not read the SQL to refine: {exc}")
    if not isinstance(tree, exp.Select):
        raise BuiltinCannotAnswer("only a single SELECT query can be refined")
    query = _Query(tree.copy(), SchemaIndex(catalogs))
    q = Question(instruction)
    changed = False
    for edit in (_remove_limit, _condition, _limit, _order, _group, _date, _values):
        changed = edit(q, query, today) or changed
    for n in (3, 2, 1):  # table and column names left over are context ("only completed orders")
        for i in range(len(q.tokens) - n + 1):
            words = tuple(q.tokens[i : i + n])
            if all(q.free(j) for j in range(i, i + n)):
                if query.index.tables_named(words) or query.index.columns_named(words, query.tables()):
                    q.claim(i, i + n, "context")
    unknown = [q.tokens[i] for i in q.unknown()]
    if unknown or not changed:
        words = ", ".join(unknown) or instruction.strip() or "an empty instruction"
        raise BuiltinCannotAnswer(f"did not understand the instruction: {words}")
    return query.tree.sql(dialect=dialect)


def _remove_limit(q: Question, query: _Query, today: date) -> bool:
    for m in q.search(r"\b(?:remove|drop|no|without|clear|lift)(?: the| any)? limit\b|\b(?:show )?all rows\b"):
        query.tree.set("limit", None)
        q.claim_match(m, "edit")
        return True
    return False


def _limit(q: Question, query: _Query, today: date) -> bool:
    for m in q.search(rf"\b(top|bottom|first|limit(?: it)?(?: to)?|only|just|show) {NUMBER}(?: rows| results)?\b"):
        query.tree = query.tree.limit(number(m.group(2)), copy=False)
        if m.group(1) in ("top", "bottom") and not query.tree.args.get("order"):
            target = query.first_aggregate()
            if target is not None:
                query.tree = query.tree.order_by(exp.Ordered(this=target, desc=m.group(1) == "top"), copy=False)
        q.claim_match(m, "edit")
        return True
    return False


def _order(q: Question, query: _Query, today: date) -> bool:
    pattern = r"\b(?:order|sort|rank)(?:ed)?(?: it| them| the results| results)? by ([a-z0-9]+(?: [a-z0-9]+)*?)" \
        r"(?: (desc|descending|asc|ascending|highest first|lowest first))?$"  # fmt: skip
    for m in q.search(pattern):
        words = tuple(m.group(1).split())
        names = {e.alias_or_name: e for e in query.tree.expressions}
        key = "_".join(words)
        target: exp.Expression = exp.column(key) if key in names else query.column(words)
        desc = (m.group(2) or "").startswith(("desc", "highest"))
        query.tree.set("order", None)
        query.tree = query.tree.order_by(exp.Ordered(this=target, desc=desc), copy=False)
        q.claim_match(m, "edit")
        return True
    return False


def _group(q: Question, query: _Query, today: date) -> bool:
    for m in q.search(
        r"(?:\b(?:group|grouped|break|broken|split)(?: it| them)?(?: down)? by|^by|^per) ((?:[a-z0-9]+ ?)+)$"
    ):
        words = tuple(m.group(1).split())
        dim = next((d for n in range(len(words), 0, -1) if (d := resolve_dim(query.index, words[:n]))), None)
        if dim is None:
            raise BuiltinCannotAnswer(f"did not find a column or table matching '{' '.join(words)}' to group by")
        table = dim_table(dim, query.joins)
        if table is None:
            raise BuiltinCannotAnswer("the query has no date column to group by")
        query.reach(table)
        projections = dim_projections(dim, query.joins)
        if not query.has_aggregate():  # a listing becomes a count per group
            count = exp.alias_(exp.Count(this=exp.Star()), f"{query.joins.base.noun}_count")
            query.tree.set("expressions", [count])
            query.tree.set("order", None)
            query.tree.set("limit", None)
            query.tree.set("distinct", None)
        existing = list(query.tree.expressions)
        query.tree.set("expressions", [aliased(e, name) for e, name in projections] + existing)
        query.tree = query.tree.group_by(*dim_group_keys(dim, query.joins), copy=False)
        q.claim_match(m, "edit")
        return True
    return False


def _date(q: Question, query: _Query, today: date) -> bool:
    period = find_date_range(q, today)
    if period is None:
        return False
    source = query.joins.date_source()
    if source is None:
        raise BuiltinCannotAnswer(f"the query has no date column for '{period.phrase}'")
    query.reach(source[0])
    column = query.joins.date_col(*source)
    _drop_conditions(query, column, (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ, exp.Between))
    query.tree = query.tree.where(*date_condition(column, period), copy=False)
    return True


def _drop_conditions(query: _Query, column: exp.Column, kinds: tuple[type, ...]) -> None:
    where = query.tree.args.get("where")
    if where is None:
        return
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    keep = [c for c in conjuncts if not (isinstance(c, kinds) and c.this == column)]
    query.tree.set("where", None)
    if keep:
        query.tree = query.tree.where(*keep, copy=False)


def _condition(q: Question, query: _Query, today: date) -> bool:
    text = q.text.strip().lower().rstrip(".")
    lead = re.search(rf"\b{FILTER_LEAD} (.+)$", text)
    if lead is None:
        return False
    body = lead.group(1).strip()
    for phrase, kind in OPERATORS:
        found = re.match(rf"^(.+?) {re.escape(phrase)}(?: (.+))?$", body) if phrase[0].isalpha() else None
        found = found or re.match(rf"^(.+?)\s*{re.escape(phrase)}\s*(.+)?$", body)
        if found is None:
            continue
        column = query.column(tuple(tokenize(found.group(1))))
        raw = (found.group(2) or "").strip()
        if kind in (exp.Is, exp.Not) and "null" in phrase or "empty" in phrase:
            cond: exp.Expression = exp.Is(this=column, expression=exp.Null())
            cond = exp.Not(this=cond) if kind is exp.Not else cond
        elif not raw:
            continue
        else:
            cond = kind(this=column, expression=_value(query, column, raw))
        query.tree = query.tree.where(cond, copy=False)
        q.claim(0, len(q.tokens), "edit")
        return True
    raise BuiltinCannotAnswer(f"did not understand the filter '{body}'")


def _value(query: _Query, column: exp.Column, raw: str) -> exp.Expression:
    raw = raw.strip("'\"")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", raw):
        return exp.Literal.number(raw)
    for table in query.tables():
        if query.joins.alias(table) == column.table:
            info = table.info.column(column.name)
            for value in info.sample_values if info else ():
                if str(value).lower() == raw.lower():
                    return exp.Literal.string(str(value))
    return exp.Literal.string(raw)


def _values(q: Question, query: _Query, today: date) -> bool:
    changed = False
    negated = any(t in NEGATORS or t in ("remove", "drop") for t in q.tokens)
    found: dict[tuple[str, str], list[str]] = {}
    for words, table, col, value in query.index.values_in():
        for i in list(q.find_phrase(words)):
            if table.key not in query.joins.aliases and query.index.path(query.joins.base, table) is None:
                continue
            query.reach(table)
            found.setdefault((table.key, col.name), []).append(value)
            q.claim(i, i + len(words), "value")
    for (key, name), values in found.items():
        column = exp.column(name, table=query.joins.aliases[key])
        if not negated:
            _drop_conditions(query, column, (exp.EQ, exp.In))
        query.tree = query.tree.where(value_condition(column, values, negate=negated), copy=False)
        changed = True
    if changed:
        for i, token in enumerate(q.tokens):
            if q.free(i) and (token in NEGATORS or token in ("remove", "drop") or token in STOPWORDS):
                q.claim(i, i + 1, "edit")
    return changed
