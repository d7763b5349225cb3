"""The allowed catalog seen as words and a join graph.

`SchemaIndex` answers the questions the engine asks of the schema: which table or column does a
phrase name, which columns hold money, dates or labels, which known values (`sample_values`)
appear in the question, and the shortest foreign-key path between two tables. Declared foreign
keys are used first; a `<thing>_id` column is also taken to reference the table named `<thing>`
(singular or plural) when that table has a primary key, because many schemas never declare FKs —
in its own source first, else in another selected source (a federated join).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp

from connectors.types import ColumnInfo, SourceCatalog, TableInfo

from .words import (
    MONEY_COLUMN_HINTS,
    PRICE_COLUMN_HINTS,
    QUANTITY_COLUMN_HINTS,
    STOPWORDS,
    forms,
    phrase_key,
    singular,
    tokenize,
)

NUMERIC_RE = re.compile(r"int|numeric|decimal|real|float|double|money|number|serial", re.IGNORECASE)
DATE_RE = re.compile(r"date|time", re.IGNORECASE)
TEXT_RE = re.compile(r"char|text|string|clob", re.IGNORECASE)
ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?")
# the words that make a column name a date's: `created_at`, `hire_date`, `paid_on`, `event_time`
DATE_NAME_WORDS = frozenset({"date", "at", "on", "time", "timestamp", "datetime", "ts", "in", "out"})
# words after a column's first word that only qualify it: "duration" names duration_minutes,
# "insurance" insurance_type, "employees" employee_count, "tip" tip_amount
QUALIFIER_WORDS = frozenset(
    "count number type kind category minutes mins hours hrs seconds secs days weeks months years level amount "
    "kg g lb lbs km m mi miles usd eur gbp pct percent cents mb gb kb".split()
)
# dates that are not when something happened: a deadline, an expiry, a plan
PLANNED_WORDS = frozenset("due expected expires expiry expiration planned estimated deadline target".split())
# stopwords that are also common status values ("sold listings", "closed tickets", "done tasks")
VERB_VALUES = frozenset("sold bought placed made received done ordered generated".split())
AGGREGATE_WORDS = frozenset("total sum avg average mean max min count net gross grand sub".split())
LABEL_NAMES = ("name", "title", "label", "full_name", "display_name", "code")


@dataclass(frozen=True, eq=False)  # identity: one object per table per index
class Table:
    source: SourceCatalog
    info: TableInfo

    @property
    def key(self) -> str:
        return f"{self.source.alias}.{self.info.schema}.{self.info.name}"

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(tokenize(self.info.name))

    @property
    def noun(self) -> str:
        """The table's name as one singular word ("order_items" -> "order_item")."""
        return "_".join(phrase_key(self.words)) or self.info.name

    def pk(self) -> ColumnInfo | None:
        return next((c for c in self.info.columns if c.is_primary_key), None) or self.info.column("id")


@dataclass(frozen=True, eq=False)
class Edge:
    """One hop of a join: `src.src_col = dst.dst_col`; `forward` when src holds the FK (many-to-one)."""

    src: Table
    src_col: str
    dst: Table
    dst_col: str
    forward: bool


def is_numeric(col: ColumnInfo) -> bool:
    return bool(NUMERIC_RE.search(col.data_type)) and not DATE_RE.search(col.data_type)


def is_date(col: ColumnInfo) -> bool:
    return bool(DATE_RE.search(col.data_type)) or is_text_date(col)


FLAG_PREFIXES = ("is", "has", "was", "can")
BOOLEAN_RE = re.compile(r"bool|^tinyint\(1\)|^bit(\(1\))?$", re.IGNORECASE)


def flag_words(col: ColumnInfo) -> tuple[str, ...]:
    """What a yes/no column says of a row: `is_active` / `active` (boolean) -> ("active",),
    `has_discount` -> ("discount",), `is_full_time` -> ("full", "time"), `was_late` -> ("late",);
    () for other columns. MySQL's BOOLEAN is tinyint(1)."""
    words = tokenize(col.name)
    typed = bool(BOOLEAN_RE.search(col.data_type.strip()))
    named = len(words) >= 2 and words[0] in FLAG_PREFIXES and (not col.data_type or "int" in col.data_type.lower())
    if not (typed or named) or not words:
        return ()
    return tuple(words[1:]) if words[0] in FLAG_PREFIXES and len(words) > 1 else tuple(words)


def is_text_date(col: ColumnInfo) -> bool:
    """A date kept as ISO text (common in SQLite): a text (or untyped) column named like a date
    (`created_at`, `order_date`) whose known values, if discovery kept any, are all ISO dates."""
    if col.data_type and not TEXT_RE.search(col.data_type):
        return False
    words = tokenize(col.name)
    if not words or (words[-1] not in DATE_NAME_WORDS and words[0] != "date") or words == ["on"]:
        return False
    return all(ISO_DATE_RE.fullmatch(str(v).strip()) for v in col.sample_values)


def date_words(table: Table, col: ColumnInfo) -> tuple[str, ...]:
    """What a date column says happened: `closed_at` -> closed, `hire_date` -> hire. The table's own
    name (`order_date` on orders) and the date words themselves say nothing more."""
    own = {singular(w) for w in table.words}
    return tuple(
        w for w in tokenize(col.name) if (w not in DATE_NAME_WORDS or w in ("in", "out")) and singular(w) not in own
    )  # check_in -> check, in: "checking out" is check_out


def stem(word: str) -> str:
    for suffix in ("ation", "ion", "ing", "ed", "es", "s", "e", "y"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def same_stem(a: str, b: str) -> bool:
    """ "terminated" ~ "termination", "hired" ~ "hire", "shipped" ~ "ship", "signed" ~ "signup"."""
    x, y = stem(a.lower()), stem(b.lower())
    return x == y or (min(len(x), len(y)) >= 4 and (x.startswith(y) or y.startswith(x)))


def is_key(table: Table, col: ColumnInfo) -> bool:
    return col.is_primary_key or col.foreign_key is not None or col.name.lower() == "id" or col.name.endswith("_id")


class SchemaIndex:
    def __init__(self, catalogs: list[SourceCatalog]) -> None:
        self.tables = [Table(source, info) for source in catalogs for info in source.tables]
        # words of the question that name an event with a date of its own ("closed" -> closed_at)
        self.date_hints: tuple[str, ...] = ()
        self._values: list[tuple[tuple[str, ...], Table, ColumnInfo, str]] | None = None
        self.edges: dict[str, list[Edge]] = {t.key: [] for t in self.tables}
        for table in self.tables:
            for col in table.info.columns:
                target = self._referenced(table, col)
                if target is not None and target[0].key != table.key:
                    dst, dst_col = target
                    self.edges[table.key].append(Edge(table, col.name, dst, dst_col, True))
                    self.edges[dst.key].append(Edge(dst, dst_col, table, col.name, False))

    def _referenced(self, table: Table, col: ColumnInfo) -> tuple[Table, str] | None:
        fk = col.foreign_key
        same_source = [t for t in self.tables if t.source is table.source]
        if fk is not None:
            for t in same_source:
                if t.name.lower() == fk.table.lower() and (not fk.schema or t.info.schema == fk.schema):
                    return t, fk.column
            return None
        if col.is_primary_key or not col.name.lower().endswith("_id"):
            return None
        stem = col.name.lower()[: -len("_id")]
        names = {stem, stem + "s", stem + "es", stem[:-1] + "ies"}
        # The table of its own source first; else one in another selected source: keys cannot be
        # declared across databases, and federated questions join orders (PostgreSQL) to customers (SQLite).
        others = [t for t in self.tables if t.source is not table.source]
        for t in [*same_source, *others]:
            pk = t.pk()
            if pk is not None and t.name.lower() in names:
                return t, pk.name
        return None

    # --- naming -------------------------------------------------------------------------------------------

    def tables_named(self, words: tuple[str, ...]) -> list[Table]:
        """Tables the phrase names: the table name (any number) or a synonym of a one-word name."""
        key = phrase_key(words)
        exact = [t for t in self.tables if phrase_key(t.words) == key]
        if exact:
            return exact
        return [t for t in self.tables if len(t.words) == 1 and key in {phrase_key(f) for f in forms(t.words)}]

    def columns_named(
        self, words: tuple[str, ...], tables: list[Table] | None = None
    ) -> list[tuple[Table, ColumnInfo]]:
        """Columns the phrase names: `status`, `unit price`, `product category`, or a synonym (`state`)."""
        key = phrase_key(words)
        found: list[tuple[Table, ColumnInfo]] = []
        for synonyms in (False, True):
            for table in tables if tables is not None else self.tables:
                for col in table.info.columns:
                    if key in _column_keys(table.words, col.name, synonyms) and (table, col) not in found:
                        found.append((table, col))
            if found:
                return found
        return found

    def values_in(self) -> list[tuple[tuple[str, ...], Table, ColumnInfo, str]]:
        """Every known value as (words, table, column, value), longest phrases first (made once per
        index: several passes of one question ask for it)."""
        if self._values is not None:
            return self._values
        out = []
        for table in self.tables:
            for col in table.info.columns:
                for value in col.sample_values:
                    words = tuple(tokenize(str(value)))
                    if words and not all((w in STOPWORDS and w not in VERB_VALUES) or w.isdigit() for w in words):
                        out.append((words, table, col, str(value)))
        out.sort(key=lambda item: -len(item[0]))
        self._values = out
        return out

    # --- column roles -------------------------------------------------------------------------------------

    def date_column(self, table: Table) -> ColumnInfo | None:
        """The column that dates a row: the one the question names ("closed last week" -> closed_at),
        else `<table>_date` before other dates, event dates before `updated_at`."""

        def rank(col: ColumnInfo) -> tuple[int, int, int]:
            name = col.name.lower()
            hinted = sum(any(same_stem(w, h) for h in self.date_hints) for w in date_words(table, col))
            own = name.startswith(singular(table.words[-1]))
            event = not name.startswith(("updated", "modified", "deleted")) and not set(tokenize(name)) & PLANNED_WORDS
            return (int(hinted), int(event), int(own) + int(name.endswith(("date", "_on", "_day"))))

        dates = [c for c in table.info.columns if is_date(c)]
        return max(dates, key=rank) if dates else None

    def label_columns(self, table: Table) -> list[ColumnInfo]:
        """The columns that name a row: `name`, `title`..., first and last names, else `<x>_name`
        (`dept_name`, `agent_name`: the table's own first), else the key. Never a PII/PHI column:
        governance masks those for most callers and refuses to group by them, so a person is shown
        by their key."""

        def column(name: str) -> ColumnInfo | None:
            col = table.info.column(name)
            return col if col is not None and not (col.pii or col.phi) else None

        for name in LABEL_NAMES:
            col = column(name)
            if col is not None:
                return [col]
        pk = table.pk()
        names = [c for name in ("first_name", "last_name") if (c := column(name)) is not None]
        if names:
            return ([pk] if pk else []) + names
        text = [
            c
            for c in table.info.columns
            if not is_numeric(c) and not is_date(c) and not is_key(table, c) and not (c.pii or c.phi)
        ]
        named = [c for c in text if tokenize(c.name)[-1:] in (["name"], ["title"], ["label"])]
        if named:
            own = singular(table.words[0]) if table.words else ""
            return [max(named, key=lambda c: singular(tokenize(c.name)[0]) == own)]
        if pk is None and text:
            return text[:1]
        return [pk] if pk else table.info.columns[:1]

    def money_columns(self, table: Table, word: str) -> list[tuple[int, list[ColumnInfo]]]:
        """(rank, columns) for `word` ("sales", "price"...) on `table`; two columns mean quantity x price."""
        found: list[tuple[int, list[ColumnInfo]]] = []
        numeric = [c for c in table.info.columns if is_numeric(c) and not is_key(table, c)]
        for col in numeric:
            name = col.name.lower()
            if singular(word) in phrase_key(tuple(tokenize(name))):
                found.append((4, [col]))
            elif any(h in name for h in MONEY_COLUMN_HINTS) and not any(h in name for h in QUANTITY_COLUMN_HINTS):
                found.append((3, [col]))
            elif any(h in name for h in PRICE_COLUMN_HINTS):
                found.append((1, [col]))
        quantity = next((c for c in numeric if any(h in c.name.lower() for h in QUANTITY_COLUMN_HINTS)), None)
        price = next((c for c in numeric if any(h in c.name.lower() for h in PRICE_COLUMN_HINTS)), None)
        if quantity is not None and price is not None and word not in ("price", "prices", "cost", "costs"):
            found.append((2, [quantity, price]))
        return found

    # --- joins --------------------------------------------------------------------------------------------

    def path(self, src: Table, dst: Table) -> list[Edge] | None:
        """The shortest FK path from src to dst, many-to-one hops preferred on ties; None if unreachable."""
        if src.key == dst.key:
            return []
        seen = {src.key}
        queue: deque[tuple[Table, list[Edge]]] = deque([(src, [])])
        while queue:
            table, hops = queue.popleft()
            for edge in sorted(self.edges[table.key], key=lambda e: not e.forward):
                if edge.dst.key in seen:
                    continue
                if edge.dst.key == dst.key:
                    return [*hops, edge]
                seen.add(edge.dst.key)
                queue.append((edge.dst, [*hops, edge]))
        return None

    def find(self, node: exp.Table) -> Table | None:
        """The catalog table a parsed table reference names."""
        for table in self.tables:
            if table.name.lower() != node.name.lower():
                continue
            if node.db and node.db.lower() != table.info.schema.lower():
                continue
            if node.catalog and node.catalog.lower() != table.source.alias.lower():
                continue
            return table
        return None


def table_expr(table: Table, alias: str, *, federated: bool) -> exp.Table:
    schema = table.info.schema
    if federated:
        return exp.table_(table.name, db=schema, catalog=table.source.alias, alias=alias)
    if schema and schema != table.source.default_schema:
        return exp.table_(table.name, db=schema, alias=alias)
    return exp.table_(table.name, alias=alias)


@lru_cache(maxsize=65536)
def _column_keys(table_words: tuple[str, ...], column: str, synonyms: bool) -> frozenset[tuple[str, ...]]:
    """The phrase keys a column answers to: its name, alone or after a word of its table's name
    ("leave days" is leave_request.days); every question asks this of every column: memoized."""
    col_words = tuple(tokenize(column))
    names = {phrase_key(col_words), phrase_key((*table_words, *col_words))}
    names |= {phrase_key((word, *col_words)) for word in table_words}
    trimmed = col_words
    while len(trimmed) > 1 and trimmed[-1] in QUALIFIER_WORDS:
        trimmed = trimmed[:-1]  # "duration" is duration_minutes, "cargo weight" cargo_weight_kg
    own = {singular(w) for w in table_words}
    if (
        trimmed != col_words
        and trimmed[0] not in AGGREGATE_WORDS
        and not (len(trimmed) == 1 and singular(trimmed[0]) in own)
    ):
        names.add(phrase_key(trimmed))  # but "total" is not total_amount, "machine" not machines.machine_type
    for i in range(len(col_words) - 1):  # "drop-in price" is drop_in_price
        names.add(phrase_key((*col_words[:i], f"{col_words[i]}-{col_words[i + 1]}", *col_words[i + 2 :])))
    if synonyms and len(col_words) == 1:
        names |= {phrase_key(f) for f in forms(col_words)}
    return frozenset(names)
