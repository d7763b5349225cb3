"""prepare_query: validate → qualify → lineage → rewrite, for one caller."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify

from connectors.sqlgov.catalog import catalog_index, resolve_tables
from connectors.sqlgov.errors import GovernanceError
from connectors.sqlgov.lineage import LineageAnalyzer
from connectors.sqlgov.prepared import PreparedQuery
from connectors.sqlgov.rewrite import apply_row_cap, apply_row_policies, name_unnamed_projections, strip_catalogs
from connectors.sqlgov.validate import check_functions, check_read_only, parse_single_statement
from connectors.types import Grants, RowPolicySpec, SourceCatalog

FEDERATED_DIALECT = "duckdb"

_COLUMN_IN_ERROR = (
    re.compile(r"Column '([^']+)' could not be resolved for table: '([^']+)'"),
    re.compile(r"Column '([^']+)' could not be resolved"),
    re.compile(r"Unknown column: (\S+)"),
)


def prepare_query(
    sql: str,
    *,
    sources: list[SourceCatalog],
    allowed_schemas: dict[str, set[str]] | None,
    policies: list[RowPolicySpec],
    bindings: Mapping[str, object],
    row_cap: int,
    grants: Grants,
    federated: bool | None = None,
) -> PreparedQuery:
    """Check `sql` against the caller's catalog and rewrite it for execution.

    Raises GovernanceError (SQL_VALIDATION_ERROR or POLICY_VIOLATION) when it may not run.
    """
    if not sources:
        raise ValueError("prepare_query needs at least one source catalog")
    if row_cap < 1:
        raise ValueError("row_cap must be positive")
    is_federated = len(sources) > 1 if federated is None else federated
    if not is_federated and len(sources) > 1:
        raise ValueError("several sources can only be queried federated")
    dialect = FEDERATED_DIALECT if is_federated else sources[0].dialect

    tree = parse_single_statement(sql, dialect=dialect)
    root = check_read_only(tree)
    check_functions(root)

    index = catalog_index(sources, dialect=dialect)
    try:
        tables = resolve_tables(root, index=index, federated=is_federated, allowed_schemas=allowed_schemas)
        name_unnamed_projections(root, dialect=dialect)
        root = _qualify(root, dialect=dialect, index_schema=index.mapping)
        output_columns = LineageAnalyzer(index=index, grants=grants).analyze(root)
        warnings = apply_row_policies(root, policies=policies, index=index, federated=is_federated, bindings=bindings)
        if not is_federated:
            strip_catalogs(root)
        warnings += apply_row_cap(root, row_cap=row_cap)
        final_sql = root.sql(dialect=dialect, comments=False)  # no comment reaches the server (MySQL /*! */)
    except (SqlglotError, RecursionError) as exc:
        # A query the analysis cannot follow is refused, never passed through unchecked.
        raise GovernanceError.invalid("parse", f"The SQL could not be analysed: {exc}")
    return PreparedQuery(
        sql=final_sql,
        dialect=dialect,
        federated=is_federated,
        output_columns=output_columns,
        tables=tables,
        row_cap=row_cap,
        warnings=warnings,
    )


def _qualify(root: exp.Query, *, dialect: str, index_schema: object) -> exp.Query:
    try:
        return qualify(
            root,
            dialect=dialect,
            schema=index_schema,
            expand_stars=True,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=True,
        )
    except OptimizeError as exc:
        raise GovernanceError.invalid("unknown_column", _column_message(str(exc)))
    except (SqlglotError, RecursionError) as exc:
        raise GovernanceError.invalid("parse", f"The SQL could not be analysed: {exc}")


def _column_message(error: str) -> str:
    for pattern in _COLUMN_IN_ERROR:
        if match := pattern.search(error):
            if len(match.groups()) == 2:
                return f"Unknown column '{match.group(1)}' on '{match.group(2)}'."
            return f"Unknown or ambiguous column '{match.group(1)}'."
    return f"A column could not be resolved: {error}"
