"""The `builtin` AI engine: offline, deterministic, schema-aware NL -> SQL.

It reads a question with a small grammar over the catalog's own words (table and column names,
their singular/plural forms and synonyms, foreign keys, `sample_values`) — nothing about any
particular schema is hard-coded. What it cannot map it refuses with `BuiltinCannotAnswer`,
naming the words it did not understand, rather than guessing.

Confidence: 0.5 + 0.45 x (understood / content), where `content` counts the question's tokens
that carry meaning (every token the engine understood plus every unknown non-stopword) and
`understood` those it mapped to a measure, table, column, value, date, grouping, ranking or
limit. A fully understood question scores 0.95; unknown words lower it and are listed in
`unmatched_terms`. Questions with more unknown than known content words are refused.

Modules: `words` (tokens, vocabularies), `catalog` (schema index, FK paths), `dates` (date
phrases), `parse` (question -> plan), `sqlbuild` (shared SQL pieces), `generate` (plan -> SQL),
`explain` (SQL -> sentence), `refine` (SQL + instruction -> SQL).
"""

from .base import BuiltinAnswer, BuiltinCannotAnswer
from .explain import explain_sql
from .generate import generate_sql
from .refine import refine_sql

__all__ = ["BuiltinAnswer", "BuiltinCannotAnswer", "explain_sql", "generate_sql", "refine_sql"]
