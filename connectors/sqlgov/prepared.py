"""What `prepare_query` hands to the executor."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OutputColumn:
    name: str
    masked: bool  # decided for this caller: sensitive and the grant for its class is missing
    sensitivity: str | None  # "pii" | "phi" | None: what the column derives from ("phi" wins when both)
    masking_style: str  # "full" | "partial" | "hash" | "null"


@dataclass
class PreparedQuery:
    sql: str  # final SQL to execute, in `dialect`
    dialect: str  # the source's sqlglot dialect, or "duckdb" when federated
    federated: bool
    output_columns: list[OutputColumn]
    tables: list[tuple[str, str, str]]  # (source_alias, schema, table) referenced
    row_cap: int  # keep at most row_cap rows; `sql` fetches row_cap + 1 so truncation is detectable
    warnings: list[str] = field(default_factory=list)

    @property
    def masked_columns(self) -> list[str]:
        return [c.name for c in self.output_columns if c.masked]
