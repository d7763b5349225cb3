"""Relative and absolute date phrases -> half-open date ranges [start, end).

Conventions (all computed from the `today` the caller passes):
- today / yesterday: that one day.
- last|past N days|weeks|months|quarters|years: the span of N units ending today, today included
  ("last 7 days" with today 2025-11-15 is 2025-11-09 .. 2025-11-15).
- last|previous week|month|quarter|year: the previous whole calendar period (weeks start Monday).
- this|current week|month|quarter|year: the whole current calendar period.
- year|month|quarter to date (ytd, mtd, qtd), "so far this year": the current period up to today.
- since March (the latest March begun) / since March 2024 / since 2024: from its first day up to
  today; after 2020 from 2021; before 2020 up to its first day; from January to March 2026.
- in 2024, in March 2025, in Q3 2024: that calendar period; "in March" is the latest March that has begun.
- since / after / before / on / between ISO dates; between|from March 2024 and|to May 2024 (whole months);
  between jan 1 2024 and march 31 2024 (both days included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .words import MONTHS, NUMBER, Question, number

UNITS = r"(day|week|month|quarter|year)s?"
MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
ISO = r"(\d{4}-\d{2}-\d{2})"


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # exclusive
    phrase: str


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_first = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (next_first - timedelta(days=1)).day))


def period_start(day: date, unit: str) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def shift(day: date, unit: str, n: int) -> date:
    if unit == "day":
        return day + timedelta(days=n)
    if unit == "week":
        return day + timedelta(weeks=n)
    return add_months(day, n * {"month": 1, "quarter": 3, "year": 12}[unit])


def _ranges(today: date) -> list[tuple[str, object]]:
    tomorrow = today + timedelta(days=1)

    def last_n(m):
        n, unit = number(m.group(1)), m.group(2)
        return shift(tomorrow, unit, -n), tomorrow

    def calendar(m):
        which, unit = m.group(1), m.group(2)
        start = period_start(today, unit)
        if which in ("last", "previous", "prior", "past"):
            start = shift(start, unit, -1)
        return start, shift(start, unit, 1)

    def to_date(m):
        unit = {"y": "year", "m": "month", "q": "quarter", "w": "week"}[(m.group(1) or m.group(2))[0]]
        return period_start(today, unit), tomorrow

    def month_year(m):
        start = date(int(m.group(2)), MONTHS[m.group(1)], 1)
        return start, add_months(start, 1)

    def month_span(m):
        start = date(int(m.group(2)), MONTHS[m.group(1)], 1)
        return start, add_months(date(int(m.group(4)), MONTHS[m.group(3)], 1), 1)

    def month_span_one_year(m):  # "from January to March 2026"
        start = date(int(m.group(3)), MONTHS[m.group(1)], 1)
        return start, add_months(date(int(m.group(3)), MONTHS[m.group(2)], 1), 1)

    def since_year(m):  # since 2024: from its first day; after 2024: from 2025
        return date(int(m.group(2)) + (m.group(1) == "after"), 1, 1), tomorrow

    def since_month(m):
        start = date(int(m.group(2)) if m.group(2) else today.year, MONTHS[m.group(1)], 1)
        if not m.group(2) and start > today:
            start = start.replace(year=today.year - 1)
        return start, tomorrow

    def day_span(m):
        start = date(int(m.group(3)), MONTHS[m.group(1)], int(m.group(2)))
        return start, date(int(m.group(6)), MONTHS[m.group(4)], int(m.group(5))) + timedelta(days=1)

    def month_only(m):
        start = date(today.year, MONTHS[m.group(1)], 1)
        if start > today:
            start = start.replace(year=today.year - 1)
        return start, add_months(start, 1)

    def quarter(m):
        start = date(int(m.group(2)), 3 * (int(m.group(1)) - 1) + 1, 1)
        return start, add_months(start, 3)

    def year(m):
        return date(int(m.group(1)), 1, 1), date(int(m.group(1)) + 1, 1, 1)

    def iso(s: str) -> date:
        return date.fromisoformat(s)

    return [
        (rf"\b(?:between|from) {ISO} (?:and|to) {ISO}\b", lambda m: (iso(m[1]), iso(m[2]) + timedelta(days=1))),
        (
            rf"\b(?:between|from) ({MONTH_NAMES}) (\d{{4}}) (?:and|to|through|until) ({MONTH_NAMES}) (\d{{4}})\b",
            month_span,
        ),
        (
            rf"\b(?:between|from) ({MONTH_NAMES}) (\d{{1,2}}),? (\d{{4}}) (?:and|to|through|until) "
            rf"({MONTH_NAMES}) (\d{{1,2}}),? (\d{{4}})\b",
            day_span,
        ),
        (rf"\b(?:since|after|from) {ISO}\b", lambda m: (iso(m[1]), tomorrow)),
        (rf"\bsince ({MONTH_NAMES})(?: (\d{{4}}))?\b", since_month),
        (
            rf"\b(?:between|from) ({MONTH_NAMES}) (?:and|to|through|until) ({MONTH_NAMES}) (\d{{4}})\b",
            month_span_one_year,
        ),
        (r"\b(since|after) ((?:19|20)\d{2})\b", since_year),
        (r"\bbefore ((?:19|20)\d{2})\b", lambda m: (date(1, 1, 1), date(int(m[1]), 1, 1))),
        (rf"\bso far this {UNITS}\b|\bthis {UNITS} so far\b", lambda m: (period_start(today, m[1] or m[2]), tomorrow)),
        (rf"\bbefore {ISO}\b", lambda m: (date(1, 1, 1), iso(m[1]))),
        (rf"\b(?:on )?{ISO}\b", lambda m: (iso(m[1]), iso(m[1]) + timedelta(days=1))),
        (r"\btoday\b", lambda m: (today, tomorrow)),
        (r"\byesterday\b", lambda m: (today - timedelta(days=1), today)),
        (rf"\b(?:the )?(?:last|past|previous|prior|trailing) {NUMBER} {UNITS}\b", last_n),
        (rf"\b(?:the )?(last|previous|prior|past|this|current) {UNITS}\b", calendar),
        (r"\b(year|month|quarter|week) to date\b|\b(ytd|mtd|qtd|wtd)\b", to_date),
        (rf"\b(?:in |during )?({MONTH_NAMES}) (?:of )?(\d{{4}})\b", month_year),
        (r"\b(?:in |during )?q([1-4]) (\d{4})\b", quarter),
        (rf"\b(?:in |during )({MONTH_NAMES})\b", month_only),
        (r"\b(?:in|during|for|of|year)(?: the)?(?: year)? ((?:19|20)\d{2})\b", year),
    ]


def find_date_range(question: Question, today: date) -> DateRange | None:
    """Claim the first date phrase of the question and return its range; a second phrase is left unclaimed."""
    for pattern, make in _ranges(today):
        match = next(question.search(pattern), None)
        if match is not None:
            start, end = make(match)
            question.claim_match(match, "date")
            return DateRange(start, end, match.group(0))
    return None
