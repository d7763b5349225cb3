"""Plain data types shared by discovery, the governed path and the AI layer.

They carry no Django state so the SQL engine, the drivers and the NL→SQL engines can be
used (and tested) without a database, and so a worker can build them once per execution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ENGINES = ("postgres", "mysql", "sqlite", "duckdb")

# sqlglot dialect name per connector type
DIALECTS = {"postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite", "duckdb": "duckdb"}

MASK_STYLES = ("full", "partial", "hash", "null")


@dataclass(frozen=True)
class ConnectionSpec:
    """How to reach one data source. `password` is plaintext here: never log or serialize it."""

    engine: str  # one of ENGINES
    host: str = ""
    port: int | None = None
    database: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    path: str = ""  # sqlite / duckdb file
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ForeignKey:
    schema: str
    table: str
    column: str


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str
    nullable: bool = True
    is_primary_key: bool = False
    foreign_key: ForeignKey | None = None
    pii: bool = False
    phi: bool = False
    masking_style: str = "full"  # one of MASK_STYLES
    description: str = ""
    sample_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    kind: str = "table"  # "table" | "view"
    row_estimate: int | None = None
    description: str = ""

    def column(self, name: str) -> ColumnInfo | None:
        lowered = name.lower()
        for col in self.columns:
            if col.name.lower() == lowered:
                return col
        return None


@dataclass
class SourceCatalog:
    """The allowed catalog of one data source, as the governed path and the AI see it."""

    alias: str
    engine: str
    tables: list[TableInfo]
    default_schema: str = ""  # "public" (postgres), database name (mysql), "main" (sqlite/duckdb)

    @property
    def dialect(self) -> str:
        return DIALECTS[self.engine]


@dataclass(frozen=True)
class RowPolicySpec:
    """A row policy resolved for one caller: `predicate` is SQL over the table's columns with
    `{{user.id}}`, `{{user.email}}` and `{{member.<attribute>}}` placeholders; `bindings` holds
    the caller's values for them. Values are substituted as AST literals, never pasted as text."""

    source_alias: str
    schema: str
    table: str
    predicate: str
    name: str = ""


@dataclass(frozen=True)
class Grants:
    pii: bool = False
    phi: bool = False


@dataclass
class ResultColumn:
    name: str
    type: str
    masked: bool = False


@dataclass
class QueryResult:
    columns: list[ResultColumn]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool
    execution_ms: int
    sql_executed: str
    warnings: list[str] = field(default_factory=list)

    @property
    def masked_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.masked]
