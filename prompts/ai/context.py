"""What the model sees: dialect instructions, the (pruned) schema, and few-shot pairs from history."""

from __future__ import annotations

import re
from datetime import date

from connectors.types import SourceCatalog, TableInfo

MAX_TABLES = 40
MAX_CHARS = 24_000
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {
    "the",
    "a",
    "an",
    "of",
    "for",
    "by",
    "in",
    "on",
    "and",
    "or",
    "to",
    "me",
    "show",
    "what",
    "which",
    "how",
    "many",
    "much",
    "is",
    "are",
    "was",
    "were",
    "with",
    "from",
    "per",
    "each",
    "all",
    "list",
    "give",
    "top",
    "last",
    "this",
    "total",
    "number",
    "count",
    "average",
    "sum",
}

DIALECT_NOTES = {
    "postgres": "PostgreSQL: use ILIKE for case-insensitive matching, date_trunc() and CURRENT_DATE for dates.",
    "mysql": "MySQL/MariaDB: use backticks only when needed, DATE_SUB(CURDATE(), INTERVAL n DAY) for dates.",
    "sqlite": "SQLite: dates are ISO-8601 text; use date('now', '-30 day') and strftime() for date logic.",
    "duckdb": "DuckDB: tables are addressed alias.schema.table; use CURRENT_DATE - INTERVAL 30 DAY for dates.",
}


def tokens(text: str) -> set[str]:
    words = {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3}


def _table_words(table: TableInfo) -> set[str]:
    words = tokens(table.name.replace("_", " "))
    for col in table.columns:
        words |= tokens(col.name.replace("_", " "))
        words |= {v.lower() for v in col.sample_values}
    return words


def relevant_tables(catalog: SourceCatalog, question: str, limit: int = MAX_TABLES) -> list[TableInfo]:
    """All tables when few; otherwise the best matches plus their foreign-key neighbours."""
    if len(catalog.tables) <= limit:
        return list(catalog.tables)
    wanted = tokens(question)
    scored = sorted(catalog.tables, key=lambda t: (-len(wanted & _table_words(t)), t.name))
    chosen = [t for t in scored[: limit // 2] if wanted & _table_words(t)] or scored[: limit // 2]
    names = {(t.schema, t.name) for t in chosen}
    by_name = {(t.schema, t.name): t for t in catalog.tables}
    for table in list(chosen):
        for col in table.columns:
            fk = col.foreign_key
            if fk and (fk.schema, fk.table) in by_name and (fk.schema, fk.table) not in names and len(names) < limit:
                names.add((fk.schema, fk.table))
                chosen.append(by_name[(fk.schema, fk.table)])
    return chosen


def _describe_table(catalog: SourceCatalog, table: TableInfo, federated: bool) -> str:
    if federated:
        name = f"{catalog.alias}.{table.schema}.{table.name}"
    elif table.schema and table.schema != catalog.default_schema:
        name = f"{table.schema}.{table.name}"
    else:
        name = table.name
    lines = [
        f"TABLE {name}"
        + (f" -- {table.description}" if table.description else "")
        + (f" (~{table.row_estimate} rows)" if table.row_estimate else "")
    ]
    for col in table.columns:
        parts = [f"  {col.name} {col.data_type}"]
        if col.is_primary_key:
            parts.append("PRIMARY KEY")
        if col.foreign_key:
            parts.append(f"REFERENCES {col.foreign_key.table}({col.foreign_key.column})")
        if col.description:
            parts.append(f"-- {col.description}")
        if col.sample_values and not (col.pii or col.phi):
            parts.append("-- values: " + ", ".join(repr(v) for v in col.sample_values[:20]))
        lines.append(" ".join(parts))
    return "\n".join(lines)


def schema_context(catalogs: list[SourceCatalog], *, question: str, federated: bool) -> str:
    blocks: list[str] = []
    budget = MAX_CHARS
    for catalog in catalogs:
        for table in relevant_tables(catalog, question):
            block = _describe_table(catalog, table, federated)
            if len(block) > budget:
                break
            blocks.append(block)
            budget -= len(block)
    return "\n\n".join(blocks)


def system_prompt(*, dialect: str, federated: bool, today: date) -> str:
    rules = [
        "You translate questions into ONE read-only SQL query (SELECT or WITH … SELECT).",
        "Use only the tables and columns listed in the schema. Never write INSERT, UPDATE, DELETE, DDL or SET.",
        "Qualify columns with table aliases, give computed columns readable aliases.",
        f"Today is {today.isoformat()}. 'Last quarter' means the previous calendar quarter.",
        DIALECT_NOTES.get(dialect, ""),
        "Answer with the SQL only, in a ```sql fenced block.",
    ]
    if federated:
        rules.append("Several databases are attached: address every table as alias.schema.table exactly as listed.")
    return "\n".join(r for r in rules if r)


def user_prompt(*, question: str, schema: str, examples: list[tuple[str, str]]) -> str:
    parts = [f"Schema:\n{schema}"]
    if examples:
        shots = "\n\n".join(f"Question: {q}\nSQL:\n```sql\n{s}\n```" for q, s in examples)
        parts.append(f"Examples of questions answered before in this workspace:\n{shots}")
    parts.append(f"Question: {question}")
    return "\n\n".join(parts)


def similarity(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


_SQL_FENCE = re.compile(r"```(?:sql)?\s*(.*?)```", re.IGNORECASE | re.DOTALL)
# Any statement keyword, not only SELECT/WITH: a reply that writes DML must reach the validator and be
# refused as SQL_VALIDATION_ERROR, not be mistaken for "no SQL in the reply".
_SQL_START = re.compile(
    r"\b(WITH|SELECT|INSERT|UPDATE|DELETE|MERGE|UPSERT|REPLACE|CREATE|ALTER|DROP|TRUNCATE|GRANT|REVOKE|"
    r"COPY|SET|CALL|EXEC|EXECUTE|ATTACH|DETACH|PRAGMA|VACUUM|LOCK)\b",
    re.IGNORECASE,
)


def extract_sql(reply: str) -> str:
    """The SQL in a model's reply: a fenced block, else from the first statement keyword; '' when none."""
    match = _SQL_FENCE.search(reply)
    text = match.group(1) if match else reply
    start = _SQL_START.search(text)
    if not start:
        return ""
    if match:  # the whole block: leading comments included, the validator judges it
        return text.strip().rstrip(";").strip()
    return text[start.start() :].strip().rstrip(";").strip()
