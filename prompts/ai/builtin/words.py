"""Words: tokenizing a question, marking which parts were understood, and the small vocabularies.

A `Question` keeps its tokens in order and records, per token, the role it was understood in.
Passes search the still-unclaimed text with regular expressions (claimed tokens are masked with
`#`, so a pattern never matches across something already understood) and claim what they match.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

TOKEN_RE = re.compile(r"[a-z0-9]+(?:['.:-][a-z0-9]+)*")

# words that carry no meaning for the query; they neither count as understood nor as unknown
STOPWORDS = frozenset(
    """a an the of for to in on at from with by per me us we our my i you your it its is are was were be been
    show list give get find tell display return see what which who whom how whats please can could would
    do does did all any every each some that this these those there their them and or as into than then
    about over across within during so far much many just only also both have has had having being
    overall across grouped group broken down split sorted ordered ranked rank sort order
    sold bought placed made generated received value values amounts data records rows results result
    number numbers figure figures breakdown summary report total totals there's let know want need
    done were be versus vs up out like
    what's who's how's it's i'd i'm i'll we'd we're let's you're kindly quick quickly now currently
    right ever altogether combined together make makes made come came comes happen happened happens
    occur occurred exist exists existing available recorded registered logged entered stored
    look looking interested wondering curious able possible one ones hey hi hello thanks thank
    break compare comparing comparison bring brings place places take takes took taken among belong belongs
    belonging where still rated posted published""".split()
)
# a question asking to change data: the engine only reads (sources are attached read-only anyway)
WRITE_WORDS = frozenset(
    "delete remove drop truncate update insert add alter modify change rename replace erase purge wipe set".split()
)
# after these words an unknown word is most likely a filter value we could not place
FILTER_WORDS = frozenset("in from for with where at named called whose without except excluding only not".split())

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100,
}  # fmt: skip
NUMBER = r"(\d+|" + "|".join(NUMBER_WORDS) + r")"

# each group's words name the same kind of thing; a table is reachable by any word of its group
SYNONYMS = [
    {"customer", "client", "buyer", "account", "shopper"},
    {"order", "purchase", "transaction"},
    {"product", "item", "good", "sku", "article"},
    {"invoice", "bill"},
    {"employee", "staff", "worker"},
    {"region", "area", "territory", "zone"},
    {"category", "type", "kind"},
    {"country", "nation"},
    {"status", "state"},
    {"supplier", "vendor"},
    {"user", "member"},
]
# words meaning "money" and the column-name fragments that look like money
MONEY_WORDS = frozenset(
    "sales revenue revenues amount amounts spend spending spent income turnover earnings money value worth "
    "takings billing billings gmv price prices cost costs paid payment payments sell".split()
)
MONEY_COLUMN_HINTS = (
    "amount", "total", "revenue", "sales", "subtotal", "value", "spend", "paid", "payment", "salary", "wage",
)  # fmt: skip
PRICE_COLUMN_HINTS = ("price", "cost", "fee", "rate", "fare", "tariff")
QUANTITY_COLUMN_HINTS = ("quantity", "qty", "units", "count")

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(text.lower().replace("_", " "))


def number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


def singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ouses"):  # houses, warehouses
        return word[:-1]
    if word.endswith(("sses", "xes", "ches", "shes", "uses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def forms(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The phrase itself, its last word made singular, and each synonym of that last word."""
    *head, last = words
    base = singular(last)
    lasts = {last, base}
    for group in SYNONYMS:
        if base in group:
            lasts |= group
    return {(*head, w) for w in lasts}


def phrase_key(words: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A phrase normalized for lookups: every word singular."""
    return tuple(singular(w) for w in words)


class Question:
    """Tokens of a question plus the role each token was understood in (None while unclaimed)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.roles: list[str | None] = [None] * len(self.tokens)
        self._starts: list[int] = []
        offset = 0
        for token in self.tokens:
            self._starts.append(offset)
            offset += len(token) + 1

    def masked(self) -> str:
        return " ".join(t if r is None else "#" * len(t) for t, r in zip(self.tokens, self.roles, strict=True))

    def search(self, pattern: str) -> Iterator[re.Match[str]]:
        """Matches of `pattern` over unclaimed text, re-scanning after each claim the caller makes."""
        pos = 0
        while True:
            match = re.compile(pattern).search(self.masked(), pos)
            if match is None:
                return
            yield match
            pos = match.end() if match.end() > match.start() else match.end() + 1

    def span(self, match: re.Match[str], group: int | str = 0) -> tuple[int, int]:
        start = bisect.bisect_right(self._starts, match.start(group)) - 1
        end = bisect.bisect_left(self._starts, match.end(group))
        return start, end

    def claim(self, start: int, end: int, role: str) -> None:
        for i in range(start, end):
            self.roles[i] = role

    def claim_match(self, match: re.Match[str], role: str, group: int | str = 0) -> None:
        self.claim(*self.span(match, group), role)

    def free(self, i: int) -> bool:
        return 0 <= i < len(self.tokens) and self.roles[i] is None

    def find_phrase(self, phrase: tuple[str, ...], *, any_number: bool = False) -> Iterator[int]:
        """Where the unclaimed phrase occurs; with `any_number`, "software engineers" finds "software engineer"."""
        n = len(phrase)
        want = tuple(singular(w) for w in phrase) if any_number else phrase
        for i in range(len(self.tokens) - n + 1):
            found = tuple(self.tokens[i : i + n])
            if any_number:
                found = tuple(singular(w) for w in found)
            if found == want and all(r is None for r in self.roles[i : i + n]):
                yield i

    def content(self) -> list[int]:
        """Indexes of tokens that carry meaning: the understood ones and the unknown non-stopwords."""
        return [i for i, t in enumerate(self.tokens) if self.roles[i] not in (None, "stop") or t not in STOPWORDS]

    def unknown(self) -> list[int]:
        return [i for i, t in enumerate(self.tokens) if self.roles[i] is None and t not in STOPWORDS]
