"""Step 1 of the governed path, before any catalog lookup: one read-only statement, no denied functions."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from connectors.sqlgov.errors import GovernanceError

MAX_SQL_LENGTH = 50_000

# Anything that writes, changes session state, reaches the file system or leaves the statement.
_WRITE_OR_SESSION_NODES: tuple[type[exp.Expr], ...] = (
    exp.DDL,  # CREATE, INSERT
    exp.DML,  # INSERT, UPDATE, DELETE, MERGE, COPY
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Copy,
    exp.Set,
    exp.Command,  # statements sqlglot could not parse: CALL, EXPLAIN, LOAD, VACUUM ...
    exp.Attach,
    exp.Detach,
    exp.Pragma,
    exp.Install,
    exp.Commit,
    exp.Rollback,
    exp.Transaction,
    exp.Use,
    exp.Into,  # SELECT ... INTO
    exp.Lock,  # FOR UPDATE / FOR SHARE
    exp.Describe,
    exp.Analyze,
    exp.Grant,
    exp.Revoke,
    exp.Comment,
    exp.Refresh,
    exp.LoadData,
    exp.Cache,
    exp.Uncache,
    exp.Export,
    exp.Kill,
    exp.Put,
    exp.Get,
    exp.Summarize,
    exp.Show,
    exp.Declare,
    exp.Execute,
)

DENIED_FUNCTIONS = frozenset(
    {
        # PostgreSQL: sleeping, files, large objects, settings, other backends, sequences
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "pg_stat_file",
        "pg_file_write",
        "pg_logdir_ls",
        "pg_rotate_logfile",
        "set_config",
        "current_setting",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "nextval",
        "setval",
        # SQLite / MySQL
        "load_extension",
        "sleep",
        "benchmark",
        "load_file",
        "sys_exec",
        "sys_eval",
        "get_lock",
        "release_lock",
        "release_all_locks",
        # DuckDB: files, other databases, extensions, environment
        "sniff_csv",
        "glob",
        "csv_scan",
        "sqlite_scan",
        "sqlite_attach",
        "query",
        "query_table",
        "install",
        "load",
        "getenv",
        "delta_scan",
        "which_secret",
        "columns",  # DuckDB COLUMNS(...): output names unknown until run time, so unmaskable
    }
)

DENIED_PREFIXES = (
    "dblink",
    "pg_advisory_",
    "pg_try_advisory_",
    "pg_read_",  # pg_read_file, pg_read_binary_file
    "pg_ls_",  # pg_ls_dir, pg_ls_logdir ...
    "lo_",  # lo_import, lo_export, lo_get, lo_put ...
    "read_",  # DuckDB read_csv*, read_parquet, read_json*, read_text, read_blob, read_ndjson*
    "parquet_",
    "postgres_",  # postgres_scan*, postgres_query, postgres_attach, postgres_execute
    "mysql_",  # mysql_query, mysql_execute
    "iceberg_",
    "http",  # httpfs / http_client functions
    "s3",
    "duckdb_",
)

# Table-valued functions that only produce values from their arguments.
ALLOWED_TABLE_FUNCTIONS = frozenset({"unnest", "generate_series", "exploding_generate_series", "range"})


def parse_single_statement(sql: str, *, dialect: str) -> exp.Expr:
    if len(sql) > MAX_SQL_LENGTH:
        raise GovernanceError.invalid(
            "too_long", f"The SQL is {len(sql):,} characters long; the limit is {MAX_SQL_LENGTH:,}."
        )
    if not sql.strip():
        raise GovernanceError.invalid("empty", "The SQL is empty.")
    try:
        statements = sqlglot.parse(sql, read=dialect)
    except ParseError as exc:
        raise GovernanceError.invalid("parse", _parse_error_message(exc, dialect))
    except (SqlglotError, RecursionError, ValueError) as exc:
        raise GovernanceError.invalid("parse", f"The SQL could not be parsed as {dialect}: {exc}")
    statements = [s for s in statements if s is not None]
    if not statements:
        raise GovernanceError.invalid("empty", "The SQL contains no statement.")
    if len(statements) > 1:
        raise GovernanceError.invalid("single_statement", f"Exactly one statement is allowed; found {len(statements)}.")
    return statements[0]


def _parse_error_message(exc: ParseError, dialect: str) -> str:
    if exc.errors:
        first = exc.errors[0]
        where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        highlight = first.get("highlight") or ""
        near = f" near '{highlight}'" if highlight else ""
        return f"The SQL could not be parsed as {dialect}: {first.get('description')}{near}{where}."
    return f"The SQL could not be parsed as {dialect}."


def check_read_only(tree: exp.Expr) -> exp.Query:
    """Return the root query; reject anything but SELECT / set operations, anywhere in the tree."""
    check_read_only_nodes(tree)
    root = tree
    while isinstance(root, exp.Subquery) and set(k for k, v in root.args.items() if v) == {"this"}:
        root = root.this
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        raise GovernanceError.invalid(
            "read_only", f"Only read-only SELECT queries are allowed; found {_describe(root)}."
        )
    return root


def check_read_only_nodes(tree: exp.Expr) -> None:
    for node in tree.walk():
        if isinstance(node, _WRITE_OR_SESSION_NODES):
            raise GovernanceError.invalid(
                "read_only", f"Only read-only SELECT queries are allowed; found {_describe(node)}."
            )


def _describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    if isinstance(node, exp.Subquery):
        return "a parenthesised query with outer clauses (remove the parentheses)"
    if isinstance(node, exp.Lock):
        return "FOR UPDATE" if node.args.get("update") else "FOR SHARE"
    return node.key.upper()


def function_names(node: exp.Func) -> list[str]:
    if isinstance(node, exp.Anonymous):
        return [str(node.name).lower()]
    return [name.lower() for name in type(node).sql_names()] or [node.key.lower()]


def is_denied_function(name: str) -> bool:
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


def check_functions(tree: exp.Expr) -> None:
    for node in tree.walk():
        if not isinstance(node, exp.Func):
            continue
        names = function_names(node)
        for name in names:
            if is_denied_function(name):
                raise GovernanceError.invalid("denied_function", f"The function {name}() is not allowed.")
        if isinstance(node.parent, (exp.Table, exp.From, exp.Join, exp.Lateral)) and not (
            set(names) & ALLOWED_TABLE_FUNCTIONS
        ):
            raise GovernanceError.invalid(
                "denied_function",
                f"The table function {names[0]}() is not allowed in FROM; only unnest, generate_series and range are.",
            )
