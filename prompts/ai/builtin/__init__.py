"""The `builtin` AI engine: offline, deterministic, schema-aware NL -> SQL.

It reads a question with a small grammar over the catalog's own words (table and column names,
their singular/plural forms and synonyms, foreign keys, `sample_values`) — nothing about any
particular schema is hard-coded. What it cannot map it refuses with `BuiltinCannotAnswer`,
naming the words it did not understand, rather than guessing.

Every content word must be understood (stopwords aside): a question with a word the engine cannot
place ("median salary", "orders returned") is refused naming that word, and one asking to change
data ("delete ...") is refused as such. Confidence: 0.95, less 0.1 for each assumption the engine
had to make between equally good readings (at least 0.55): a measure word that fits several columns
equally well ("revenue" on payments.amount and order_items.quantity x unit_price), or a date phrase
on a table with several dates when the question names none of them and none is the table's own.
The assumptions are listed in the answer and in the execution's `ai_metadata.assumptions`.

Modules: `words` (tokens, vocabularies), `catalog` (schema index, FK paths), `dates` (date
phrases), `parse` (question -> plan), `sqlbuild` (shared SQL pieces), `generate` (plan -> SQL),
`explain` (SQL -> sentence), `refine` (SQL + instruction -> SQL).
"""

from .base import BuiltinAnswer, BuiltinCannotAnswer
from .explain import explain_sql
from .generate import generate_sql
from .refine import refine_sql

__all__ = ["BuiltinAnswer", "BuiltinCannotAnswer", "explain_sql", "generate_sql", "refine_sql"]
