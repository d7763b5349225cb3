"""Reading a question into a `Plan`: which measure, groupings, filters, date range, order and limit.

Each pass claims the tokens it understood, in this order: date phrase; "the 5 latest <rows>" /
"the earliest <date>"; "the most expensive <row>", "top N <subject>" and "which <subject> has the
most"; "by/per/each <dimension>" (or "by <measure>" when the phrase names a measure, which then
ranks; "made by <who>" filters instead); yes/no columns of the tables the question names; known
values (`sample_values`, optionally negated: "not cancelled"); other yes/no columns; numeric
comparisons ("over 500", "over 10000 kg"); multi-word numeric columns; aggregate words; table
names; money words and numeric columns; other column names (context); words naming the event a
date is about ("closed last week"). What is left is unknown, and the question is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from connectors.types import ColumnInfo

from .base import BuiltinCannotAnswer
from .catalog import QUALIFIER_WORDS as UNIT_WORDS
from .catalog import SchemaIndex, Table, date_words, flag_words, is_date, is_key, is_numeric, same_stem
from .dates import DateRange, find_date_range
from .sqlbuild import Dim
from .words import FILTER_WORDS, MONEY_WORDS, NUMBER, Question, number, singular, tokenize

AGGREGATES = [
    ("total number of", "count"), ("how many", "count"), ("number of", "count"), ("count of", "count"),
    ("count", "count"), ("sum of", "sum"), ("total", "sum"), ("sum", "sum"), ("average", "avg"),
    ("avg", "avg"), ("mean", "avg"), ("most expensive", "max"), ("highest", "max"), ("maximum", "max"),
    ("max", "max"), ("largest", "max"), ("biggest", "max"), ("cheapest", "min"), ("lowest", "min"),
    ("minimum", "min"), ("min", "min"), ("smallest", "min"),
]  # fmt: skip
GRAINS = {
    "day": "day", "date": "day", "daily": "day", "week": "week", "weekly": "week", "month": "month",
    "monthly": "month", "year": "year", "yearly": "year", "annual": "year", "annually": "year",
}  # fmt: skip
# "<verb> by": who did it ("orders placed by enterprise customers"), not "by <dimension>"
AGENT_VERBS = frozenset(
    "made placed booked paid sold bought created submitted handled closed opened taken written sent received done "
    "purchased issued raised filed signed approved rejected assigned owned led taught managed run worked used".split()
)
ASCENDING = {"bottom", "worst", "lowest", "smallest", "least", "fewest", "cheapest"}
NEGATORS = {"not", "excluding", "except", "without", "non", "exclude"}
BOUNDARY = {"for", "in", "from", "with", "where", "and", "or", "the", "at", "on", "during", "since", "only"}
COMPARE = {
    "over": ">", "above": ">", "more than": ">", "greater than": ">", "exceeding": ">", "at least": ">=",
    "bigger than": ">", "larger than": ">", "higher than": ">",
    "under": "<", "below": "<", "less than": "<", "at most": "<=", "smaller than": "<", "lower than": "<",
}  # fmt: skip


@dataclass
class Metric:
    kind: str  # "count" | "column" | "money"
    table: Table | None = None
    column: ColumnInfo | None = None
    word: str = ""


@dataclass
class Filter:
    table: Table | None
    column: ColumnInfo | None  # None with op set: compare the measure's money column
    values: list[str]
    negate: bool = False
    op: str = "="


@dataclass
class Plan:
    date: DateRange | None = None
    limit: int | None = None
    descending: bool = True
    sort_descending: bool | None = None  # an explicit "ascending"/"descending"
    subject: Dim | None = None
    dims: list[Dim] = field(default_factory=list)
    aggs: list[str] = field(default_factory=list)
    metric: Metric | None = None
    sort: Dim | Metric | None = None
    entities: list[Table] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    date_words: list[str] = field(default_factory=list)  # "closed" in "closed last week": which date
    assumptions: list[str] = field(default_factory=list)  # choices between equally good readings
    recency: str | None = None  # "desc": the latest rows first ("asc": the oldest), by their date
    own_measure: bool = False  # "the most expensive room": ranked by the room's own price, nothing else


def resolve_dim(index: SchemaIndex, words: tuple[str, ...]) -> Dim | None:
    if len(words) == 1 and words[0] in GRAINS:
        return Dim("time", grain=GRAINS[words[0]])
    for table, col in index.columns_named(words):
        if not is_numeric(col) and not is_key(table, col):
            return Dim("column", table, col)
    tables = index.tables_named(words)
    return Dim("table", tables[0]) if tables else None


def resolve_metric(index: SchemaIndex, words: tuple[str, ...]) -> Metric | None:
    for table, col in index.columns_named(words):
        if is_numeric(col) and not is_key(table, col):
            return Metric("column", table, col, word=col.name)
    if len(words) == 1 and words[0] in MONEY_WORDS:
        return Metric("money", word=words[0])
    if len(words) == 2 and words[1] in MONEY_WORDS and index.tables_named(words[:1]):
        return Metric("money", index.tables_named(words[:1])[0], word="_".join(words))
    return None


def _span_words(q: Question, start: int, limit: int = 4) -> list[str]:
    out = []
    for i in range(start, min(start + limit, len(q.tokens))):
        if not q.free(i) or q.tokens[i] in BOUNDARY:
            break
        out.append(q.tokens[i])
    return out


def _leading_agg(words: list[str]) -> tuple[str | None, int]:
    text = " ".join(words)
    for phrase, agg in AGGREGATES:
        if text == phrase or text.startswith(phrase + " "):
            return agg, len(phrase.split())
    return None, 0


def _subject(q: Question, index: SchemaIndex, start: int, plan: Plan) -> None:
    words = _span_words(q, start, 3)
    for n in range(len(words), 0, -1):
        dim = resolve_dim(index, tuple(words[:n]))
        if dim is not None:
            plan.subject = dim
            q.claim(start, start + n, "subject")
            return


def pass_recency(q: Question, index: SchemaIndex, plan: Plan) -> None:
    """ "the 5 most recent orders", "latest 10 tickets", "last 3 invoices", "oldest customers": rows by
    date ("the most recent order": one); "the earliest order date": that date, MIN / MAX."""
    recent = r"(most recently|most recent|latest|newest|oldest|earliest)"
    patterns = [rf"\b(?:{NUMBER} )?{recent}(?: {NUMBER})?\b", rf"\b(last|first) {NUMBER}\b"]
    if q.tokens[:1] == ["when"]:  # "when was the last work order closed"
        patterns.append(r"\b(last|first)\b")
    for pattern in patterns:
        for m in q.search(pattern):
            groups = [g for g in m.groups() if g]
            count = next((number(g) for g in groups if re.fullmatch(NUMBER, g)), None)
            word = next(g for g in groups if not re.fullmatch(NUMBER, g))
            oldest = word in ("oldest", "earliest", "first")
            if count is None and word in ("last", "first"):  # only "when was the last X": its date
                if _date_aggregate(q, index, plan, q.span(m)[1], "min" if oldest else "max"):
                    q.claim_match(m, "limit")
                    return
                continue
            q.claim_match(m, "limit")
            end = q.span(m)[1]
            if count is None and _date_aggregate(q, index, plan, end, "min" if oldest else "max"):
                return
            following = q.tokens[end] if q.free(end) else ""
            plan.limit = count or (1 if following and singular(following) == following else 10)
            plan.recency = "asc" if oldest else "desc"
            return


def _date_aggregate(q: Question, index: SchemaIndex, plan: Plan, start: int, agg: str) -> bool:
    """ "latest order date": MAX of the date column the words after `start` name; "the latest sale",
    "when did the earliest shipment depart", "the latest arrival time": of that table's (or that
    event's) date, but only in a "when" question or with "date" / "time" after the words."""
    for n in (3, 2, 1):
        if start + n <= len(q.tokens) and all(q.free(j) for j in range(start, start + n)):
            found = [(t, c) for t, c in index.columns_named(tuple(q.tokens[start : start + n])) if is_date(c)]
            if found:
                end = start + n
                trailing = end < len(q.tokens) and q.free(end) and q.tokens[end] in ("date", "time", "day")
                return _take_date_aggregate(q, plan, start, end + trailing, *found[0], agg)
    asked_when = "when" in q.tokens[:start]
    for n in (2, 1):
        end = start + n
        if end > len(q.tokens) or not all(q.free(j) for j in range(start, end)):
            continue
        trailing = end < len(q.tokens) and q.free(end) and q.tokens[end] in ("date", "time", "day")
        if not (asked_when or trailing):
            continue
        words = tuple(q.tokens[start:end])
        rest = [w for i, w in enumerate(q.tokens) if i >= end and q.free(i)]
        for table in index.tables_named(words):
            dates = [c for c in table.info.columns if is_date(c)]
            named = [c for c in dates if any(same_stem(w, h) for w in date_words(table, c) for h in rest)]
            col = (named or [index.date_column(table)])[0]
            if col is not None:
                return _take_date_aggregate(q, plan, start, end + trailing, table, col, agg)
        events = [(t, c) for t in index.tables for c in t.info.columns if is_date(c)]
        events = [(t, c) for t, c in events if any(same_stem(w, h) for w in date_words(t, c) for h in words)]
        if len(events) == 1:  # "the latest arrival time": arrived_at
            return _take_date_aggregate(q, plan, start, end + trailing, *events[0], agg)
    return False


def _take_date_aggregate(
    q: Question, plan: Plan, start: int, end: int, table: Table, col: ColumnInfo, agg: str
) -> bool:
    _set_metric(plan, Metric("column", table, col, word=col.name))
    plan.aggs.append(agg)
    q.claim(start, end, "metric")
    for i, token in enumerate(q.tokens):  # "when" asked for it; a verb naming its event says which
        if q.free(i) and (token == "when" or any(same_stem(token, w) for w in date_words(table, col))):
            q.claim(i, i + 1, "stop")
    return True


def _priciest(q: Question, index: SchemaIndex, plan: Plan) -> bool:
    """ "the most expensive menu item", "the cheapest product", "the highest paid employee": that row."""
    word = r"(most expensive|priciest|least expensive|cheapest|(?:highest|best|lowest|worst) paid)"
    subject = r"((?:[a-z0-9]+ ){0,2}?[a-z0-9]+)"
    which = rf"\b(?:which|what) {subject} (?:is|was|are|were) (?:the )?{word}\b"  # "which sale was the cheapest"
    found = [(m, q.span(m, 1)[0], m.group(2)) for m in q.search(which)]
    found += [(m, q.span(m)[1], m.group(1)) for m in q.search(rf"\b{word}\b")]  # "the cheapest <row>"
    for m, start, ranked in found:
        _subject(q, index, start, plan)
        if plan.subject is None or plan.subject.kind != "table":
            plan.subject = None
            continue
        plan.limit, plan.descending = 1, ranked.split()[0] in ("most", "priciest", "highest", "best")
        plan.own_measure = True
        q.claim_match(m, "limit")
        _set_metric(plan, Metric("money", None, word="paid" if ranked.endswith("paid") else "price"))
        return True
    return False


def pass_ranking(q: Question, index: SchemaIndex, plan: Plan) -> None:
    if _priciest(q, index, plan):
        return
    for m in q.search(rf"\b(top|bottom|best|worst|first|highest|lowest|largest|biggest|smallest|limit) {NUMBER}\b"):
        plan.limit, plan.descending = number(m.group(2)), m.group(1) not in ASCENDING
        q.claim_match(m, "limit")
        _subject(q, index, q.span(m)[1], plan)
        return
    superlative = r"(most|highest|largest|biggest|best|lowest|least|fewest|smallest|worst)"
    # "which agent has / closed / handled the most tickets": any verb; one that is a known value
    # ("closed") is left for pass_values to filter on.
    values = {words[0] for words, *_ in index.values_in() if len(words) == 1}
    subject = r"((?:[a-z0-9]+ ){0,2}?[a-z0-9]+)"
    pattern = rf"\b(?:which|what) {subject} (?:is |are |was |were )?([a-z]+)(?: in)?(?: the)? {superlative}\b"
    for m in q.search(pattern):
        start, _ = q.span(m, 1)
        _subject(q, index, start, plan)
        if plan.subject is not None:
            plan.limit, plan.descending = 1, m.group(3) not in ASCENDING
            q.claim_match(m, "limit", 3)
            verb = q.span(m, 2)[0]
            for i in range(q.span(m)[0], q.span(m)[1]):
                if q.free(i) and not (i == verb and q.tokens[i] in values):
                    q.claim(i, i + 1, "stop")
        return
    for m in q.search(r"\b(top|bottom)\b"):
        plan.limit, plan.descending = 10, m.group(1) == "top"
        q.claim_match(m, "limit")
        _subject(q, index, q.span(m)[1], plan)


def pass_by(q: Question, index: SchemaIndex, plan: Plan) -> None:
    values = {words[0] for words, *_ in index.values_in() if len(words) == 1}
    for m in q.search(r"\b(daily|weekly|monthly|yearly|annual|annually)\b"):
        i = q.span(m)[0]
        if m.group(1) in values or (q.free(i + 1) and index.columns_named(tuple(q.tokens[i : i + 2]))):
            continue  # "annual subscriptions" (a billing_cycle value), "monthly price" (monthly_price)
        plan.dims.append(Dim("time", grain=GRAINS[m.group(1)]))
        q.claim_match(m, "dim")
    for m in q.search(r"\b(?:(sorted|ordered|ranked|sort|rank) )?(by|per|for each|for every|each|across) "):
        start = q.span(m)[1]
        words = _span_words(q, start)
        if not words:
            continue
        sorting = bool(m.group(1))
        by_start = q.span(m, 2)[0]
        if m.group(2) == "by" and by_start > 0 and q.tokens[by_start - 1] in AGENT_VERBS:
            if q.free(by_start - 1) and q.tokens[by_start - 1] not in values:  # "closed" may be a status
                q.claim(by_start - 1, by_start, "stop")
            continue  # "bookings made by members of X": who did it, not a grouping
        n_used, target = _by_target(index, words, grouping=not sorting)
        if target is None and not sorting and _names_a_value(index, words):
            continue  # "paid by credit card": a known value, which pass_values filters on
        after = start + n_used
        connector = q.tokens[after] if q.free(after) else ""
        plural = singular(q.tokens[after - 1]) != q.tokens[after - 1]
        if (
            isinstance(target, tuple)
            and isinstance(target[1], Dim)
            and target[1].kind == "table"
            and (connector == "of" or (plural and connector in ("in", "from", "at", "with")))
            and _names_a_value(index, [w for w in q.tokens[after + 1 : after + 6] if w not in ("the", "a", "an")])
        ):
            # "bookings by members of Riverside Club", "orders by customers in Germany": who, a filter;
            # "amount by restaurant in Lyon" still groups by restaurant (within Lyon)
            continue
        if target is None:
            phrase = " ".join(words)
            raise BuiltinCannotAnswer(f"did not find a column or table matching '{phrase}' after '{m.group(2)}'")
        agg, target = target
        if sorting:
            plan.sort = target
        elif isinstance(target, Dim):
            plan.dims.append(target)
        else:
            _set_metric(plan, target)
            if agg:
                plan.aggs.append(agg)
        q.claim_match(m, "by")
        q.claim(start, start + n_used, "dim")
        end = start + n_used
        while isinstance(target, Dim) and q.free(end):
            joined = q.tokens[end] in ("and", "then")  # "by region and status"; "by region, status"
            more = _span_words(q, end + joined)
            dim = next((d for n in range(len(more), 0, -1) if (d := resolve_dim(index, tuple(more[:n])))), None)
            if dim is None:
                break
            plan.dims.append(dim)
            used = next(n for n in range(len(more), 0, -1) if resolve_dim(index, tuple(more[:n])))
            q.claim(end, end + joined + used, "dim")
            end += joined + used


def _names_a_value(index: SchemaIndex, words: list[str]) -> bool:
    found = tuple(singular(w) for w in words)
    return any(found[: len(value)] == tuple(singular(w) for w in value) for value, *_ in index.values_in())


def _by_target(index: SchemaIndex, words: list[str], *, grouping: bool):
    """What "by <words>" names: a dimension to group by, else a measure (to rank or sort by)."""
    agg, skip = _leading_agg(words)
    prefixes = range(len(words), 0, -1)
    if grouping and agg is None:
        for n in prefixes:
            if dim := resolve_dim(index, tuple(words[:n])):
                return n, (None, dim)
    for n in prefixes:  # a measure named whole ("total amount") before "total" + "amount"
        metric = resolve_metric(index, tuple(words[:n]))
        if metric is not None and metric.kind == "column":
            return n, (None, metric)
    rest = words[skip:]
    for n in range(len(rest), 0, -1):
        phrase = tuple(rest[:n])
        if metric := resolve_metric(index, phrase):
            return skip + n, (agg, metric)
        if not grouping and agg is None and (dim := resolve_dim(index, phrase)):
            return skip + n, (None, dim)
        tables = index.tables_named(phrase)
        if tables and (agg == "count" or not grouping):
            return skip + n, ("count", Metric("count", tables[0], word=tables[0].noun))
    return 0, None


def pass_direction(q: Question, plan: Plan) -> None:
    for m in q.search(r"\b(?:in )?(desc|descending|asc|ascending|alphabetical|alphabetically)(?: order)?\b"):
        plan.sort_descending = m.group(1).startswith("desc")
        q.claim_match(m, "sort")
    for m in q.search(r"\b(highest|largest|biggest|most|lowest|smallest|least) first\b"):
        plan.sort_descending = m.group(1) in ("highest", "largest", "biggest", "most")
        q.claim_match(m, "sort")


def pass_values(q: Question, index: SchemaIndex, plan: Plan) -> None:
    mentioned = set(q.tokens)
    by_phrase: dict[tuple[str, ...], list] = {}
    for words, table, col, value in index.values_in():
        by_phrase.setdefault(words, []).append((table, col, value))
    matches = [(words, candidates, i) for words, candidates in by_phrase.items() for i in q.find_phrase(words)]
    for words, candidates in by_phrase.items():  # then in the other number: "software engineers"
        matches += [(words, candidates, i) for i in q.find_phrase(words, any_number=True)]
    for words, candidates in by_phrase.items():  # "no-show" is the value no_show
        if len(words) > 1:
            hyphenated = ("-".join(words),)
            matches += [(hyphenated, candidates, i) for i in q.find_phrase(hyphenated, any_number=True)]
    for words, candidates, i in matches:
        if not all(q.free(j) for j in range(i, i + len(words))):
            continue  # a longer value already claimed these words
        end = i + len(words)
        if q.free(end) and any(is_numeric(c) for _, c in index.columns_named(tuple(q.tokens[i : end + 1]))):
            continue  # "monthly price" is the column monthly_price, not the value 'monthly'

        def mention(item: tuple[Table, ColumnInfo, str]) -> int:
            table, col, _ = item
            hits = set(tokenize(col.name)) | set(table.words) | {w.rstrip("s") for w in table.words}
            return -len(hits & mentioned)

        table, col, value = sorted(candidates, key=mention)[0]
        j = _negator_before(q, i, skipping=("on", "in", "at", "from", "by", "for", "of", *ARTICLES))
        negate = j is not None  # "not cancelled", "not on phones"
        q.claim(j if j is not None else i, i + len(words), "value")
        existing = next((f for f in plan.filters if f.column is col and f.negate == negate), None)
        if existing is not None:
            existing.values.append(value)
        else:
            plan.filters.append(Filter(table, col, [value], negate))


ARTICLES = ("the", "a", "an")


def _negator_before(
    q: Question, i: int, *, skipping: tuple[str, ...], negators: tuple[str, ...] | set[str] = tuple(NEGATORS)
) -> int | None:
    """The index of a free negating word before token i ("not", "without"), over `skipping` words."""
    j = i - 1
    while j >= 0 and q.free(j) and q.tokens[j] in skipping:
        j -= 1
    return j if q.free(j) and q.tokens[j] in negators else None


def pass_flags(q: Question, index: SchemaIndex, plan: Plan, *, mentioned_tables_only: bool = False) -> None:
    """Yes/no columns: "active products" (is_active true), "inactive" / "not active" / "non-active"
    (false), "full-time staff" (is_full_time), "restaurants without a terrace" (has_terrace false).
    Run first for the tables the question names ("members who are not students": members.is_student
    before a 'student' value elsewhere), then for the rest."""
    mentioned = {singular(t) for t in q.tokens}
    flags = [
        (words, table, col)
        for table in index.tables
        if not mentioned_tables_only or {singular(w) for w in table.words} & mentioned
        for col in table.info.columns
        if (words := flag_words(col))
    ]
    flags.sort(key=lambda f: (-len(f[0]), -len({singular(w) for w in f[1].words} & mentioned)))
    for i in range(len(q.tokens)):
        for words, table, col in flags:
            n = _flag_at(q, i, words)
            if n == 0:
                continue
            j = _negator_before(q, i, skipping=ARTICLES, negators=(*NEGATORS, "no"))  # "without a terrace"
            negate = n < 0 or j is not None
            q.claim(j if j is not None and n > 0 else i, i + abs(n), "value")
            plan.filters.append(Filter(table, col, ["false" if negate else "true"], op="flag"))
            break


def _flag_at(q: Question, i: int, words: tuple[str, ...]) -> int:
    """How many tokens at i say the flag (negative: its opposite, "inactive"); 0 when they do not."""
    n = len(words)
    found = q.tokens[i : i + n]
    if (
        len(found) == n
        and all(q.free(k) for k in range(i, i + n))
        and ([*found[:-1], singular(found[-1])] == [*words[:-1], singular(words[-1])])
    ):
        return n
    if not q.free(i):
        return 0
    token = singular(q.tokens[i])
    joined = "-".join(words)
    if token == joined:  # "full-time"
        return 1
    if token in (f"in{joined}", f"un{joined}", f"non{joined}", f"non-{joined}"):
        return -1
    return 0


def pass_compare(q: Question, index: SchemaIndex, plan: Plan) -> None:
    ops = "|".join(sorted(COMPARE, key=len, reverse=True))
    for m in q.search(rf"\b({ops}) (\d+(?:\.\d+)?)\b"):
        after = q.span(m)[1]
        if after < len(q.tokens) and index.tables_named((q.tokens[after],)):
            continue  # "more than 5 orders" counts rows; not supported, so left unknown
        start = q.span(m)[0]
        target = None
        for n in (3, 2, 1):
            if start - n >= 0 and all(q.free(j) for j in range(start - n, start)):
                found = [tc for tc in index.columns_named(tuple(q.tokens[start - n : start])) if is_numeric(tc[1])]
                if found:
                    target = found[0]
                    q.claim(start - n, start, "column")
                    break
        for n in (3, 2, 1):  # "with more than 500 employees" (employee_count)
            if target is None and all(q.free(j) for j in range(after, after + n)) and after + n <= len(q.tokens):
                found = [tc for tc in index.columns_named(tuple(q.tokens[after : after + n])) if is_numeric(tc[1])]
                if found:
                    target = found[0]
                    q.claim(after, after + n, "column")
        unit = q.tokens[after] if q.free(after) and q.tokens[after] in UNIT_WORDS else None
        if target is None and unit is not None:  # "shipments over 10000 kg": the one column in kg
            in_unit = [
                (t, c)
                for t in index.tables
                for c in t.info.columns
                if is_numeric(c) and tokenize(c.name)[-1:] == [unit]
            ]
            target = in_unit[0] if len(in_unit) == 1 else None
        value = m.group(2)
        plan.filters.append(Filter(*(target or (None, None)), values=[value], op=COMPARE[m.group(1)]))
        q.claim_match(m, "compare")
        if unit is not None:  # "over 8 hours", "over 10000 kg"
            q.claim(after, after + 1, "compare")


def pass_terms(q: Question, index: SchemaIndex, plan: Plan) -> None:
    """Aggregates, multi-word numeric columns, tables, money words, and remaining column names."""
    for n in (3, 2):
        for i in range(len(q.tokens) - n + 1):
            words = tuple(q.tokens[i : i + n])
            if all(q.free(j) for j in range(i, i + n)) and (metric := resolve_metric(index, words)):
                if metric.kind == "column":
                    _set_metric(plan, metric)
                    q.claim(i, i + n, "metric")
    for m in q.search(r"\b(?:in total|altogether|overall)\b"):  # "how many shipments in total"
        q.claim_match(m, "stop")
    for phrase, agg in AGGREGATES:
        for m in q.search(rf"\b{phrase}\b"):
            plan.aggs.append(agg)
            q.claim_match(m, "agg")
    for n in (3, 2, 1):
        for i in range(len(q.tokens) - n + 1):
            words = tuple(q.tokens[i : i + n])
            if all(q.free(j) for j in range(i, i + n)):
                if n == 2 and (metric := resolve_metric(index, words)) and metric.kind == "money":
                    _set_metric(plan, metric)
                    q.claim(i, i + n, "metric")
                elif tables := index.tables_named(words):
                    plan.entities.append(tables[0])
                    q.claim(i, i + n, "table")
    for i, token in enumerate(q.tokens):
        if q.free(i) and (metric := resolve_metric(index, (token,))):
            if metric.kind == "money" and plan.metric is not None and i > 0 and q.roles[i - 1] in ("metric", "dim"):
                q.claim(i, i + 1, "metric")  # "amount paid", "sales revenue": one measure in two words
                continue
            _set_metric(plan, metric)
            q.claim(i, i + 1, "metric")
    for n in (3, 2, 1):
        for i in range(len(q.tokens) - n + 1):
            if all(q.free(j) for j in range(i, i + n)) and index.columns_named(tuple(q.tokens[i : i + n])):
                q.claim(i, i + n, "column")


def _set_metric(plan: Plan, metric: Metric) -> None:
    if plan.metric is not None and (plan.metric.word, plan.metric.column) != (metric.word, metric.column):
        raise BuiltinCannotAnswer(f"found two measures, '{plan.metric.word}' and '{metric.word}'; ask for one")
    plan.metric = metric


def parse(question: str, index: SchemaIndex, today: date) -> tuple[Plan, Question]:
    q = Question(question)
    plan = Plan(date=find_date_range(q, today))
    pass_direction(q, plan)
    pass_recency(q, index, plan)
    pass_ranking(q, index, plan)
    pass_by(q, index, plan)
    pass_flags(q, index, plan, mentioned_tables_only=True)
    pass_values(q, index, plan)
    pass_flags(q, index, plan)
    pass_compare(q, index, plan)
    pass_terms(q, index, plan)
    pass_date_words(q, index, plan)
    return plan, q


def pass_date_words(q: Question, index: SchemaIndex, plan: Plan) -> None:
    """Words naming the event a date phrase is about: "closed last week" dates by closed_at,
    "hired in 2024" by hire_date (see SchemaIndex.date_column)."""
    if plan.date is None and plan.recency is None and not any(d.kind == "time" for d in plan.dims):
        return
    names = {w for t in index.tables for c in t.info.columns if is_date(c) for w in date_words(t, c)}
    for i, token in enumerate(q.tokens):
        if q.roles[i] in (None, "value", "stop", "column") and any(same_stem(token, w) for w in names):
            plan.date_words.append(token)
            if q.free(i):
                q.claim(i, i + 1, "date column")


def unknown_words(q: Question) -> list[str]:
    return [q.tokens[i] for i in q.unknown()]


def check_unknown(q: Question) -> None:
    """Unknown numbers and unknown words right after a filter word would change the answer: refuse."""
    for i in q.unknown():
        token = q.tokens[i]
        if re.fullmatch(r"[\d.:-]+", token):
            raise BuiltinCannotAnswer(f"did not understand the number '{token}' in the question")
        j = i - 1
        while j >= 0 and q.roles[j] is None and q.tokens[j] in ("the", "a", "an"):
            j -= 1
        if j >= 0 and q.roles[j] is None and q.tokens[j] in FILTER_WORDS:
            phrase = " ".join(q.tokens[j : i + 1])
            raise BuiltinCannotAnswer(f"did not understand '{phrase}': '{token}' is not a known value, table or column")
