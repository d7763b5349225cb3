"""Queries across several sources: one in-memory DuckDB that ATTACHes each source READ_ONLY.

The scanner extensions come from the installed `duckdb-extension-*-scanner` wheels and are
LOADed by path; nothing is installed or downloaded. Credentials go into temporary DuckDB secrets,
which DuckDB redacts, rather than into ATTACH strings, which `duckdb_databases()` would show.
Once every source is attached, external access is switched off and the configuration locked, so
the user's SQL can neither read files nor attach, install or re-enable anything.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import duckdb

from connectors.types import ConnectionSpec

from . import mysql, postgres
from .duckdb import BASE_CONFIG, run_query
from .errors import DataSourceUnavailable, file_missing, scrub
from .runtime import OpenQuery, raise_if_cancelled

_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_RESERVED_ALIASES = {"memory", "system", "temp", "main"}
_SCANNERS = {"postgres": "postgres_scanner", "mysql": "mysql_scanner", "sqlite": "sqlite_scanner"}


def extension_path(engine: str) -> Path:
    """The .duckdb_extension file shipped in the scanner wheel for `engine`."""
    name = _SCANNERS[engine]
    package = import_module(f"duckdb_extension_{name}")
    root = Path(package.__file__).parent
    version = duckdb.__version__
    found = sorted(root.rglob(f"{name}.duckdb_extension"))
    preferred = [p for p in found if f"v{version}" in p.parts]
    if not (preferred or found):
        raise DataSourceUnavailable(f"The DuckDB {engine} scanner extension is not installed")
    return (preferred or found)[0]


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _option_string(options: dict, quote_char: str) -> str:
    """key=value pairs for a scanner's connection string (values quoted and escaped)."""
    parts = []
    for key, value in options.items():
        if not re.fullmatch(r"[A-Za-z_]+", str(key)):
            continue
        text = str(value).replace("\\", "\\\\").replace(quote_char, "\\" + quote_char)
        parts.append(f"{key}={quote_char}{text}{quote_char}")
    return " ".join(parts)


def _attach(
    conn: duckdb.DuckDBPyConnection, alias: str, spec: ConnectionSpec, loaded: set[str], *, timeout_ms: int
) -> None:
    if spec.engine in _SCANNERS and spec.engine not in loaded:
        conn.execute(f"LOAD {_literal(extension_path(spec.engine))}")
        loaded.add(spec.engine)
    target, secret = _identifier(alias), _identifier(f"ps_secret_{alias}")
    if spec.engine in ("postgres", "mysql"):
        default_port = postgres.DEFAULT_PORT if spec.engine == "postgres" else mysql.DEFAULT_PORT
        conn.execute(
            f"CREATE OR REPLACE TEMPORARY SECRET {secret} (TYPE {spec.engine},"
            f" HOST {_literal(spec.host or 'localhost')}, PORT {int(spec.port or default_port)},"
            f" DATABASE {_literal(spec.database)},"
            f" USER {_literal(spec.user)}, PASSWORD {_literal(spec.password)})"
        )
        options = dict(spec.options)
        if spec.engine == "postgres":
            options.setdefault("connect_timeout", 10)
            # DuckDB's interrupt() does not cancel a statement already sent to PostgreSQL, so every
            # scanner connection gets the deadline (and read-only) from the server itself.
            server_side = f"-c statement_timeout={max(1, int(timeout_ms))} -c default_transaction_read_only=on"
            options["options"] = f"{options.get('options', '')} {server_side}".strip()
            path = _option_string(options, "'")
        else:
            path = _option_string({k: v for k, v in options.items() if k.startswith("ssl")}, '"')
        conn.execute(f"ATTACH {_literal(path)} AS {target} (TYPE {spec.engine}, SECRET {secret}, READ_ONLY)")
    elif spec.engine in ("sqlite", "duckdb"):
        path = Path(spec.path or spec.database)
        if not str(path) or not path.is_file():
            raise file_missing(str(path))
        kind = "TYPE sqlite, " if spec.engine == "sqlite" else ""
        conn.execute(f"ATTACH {_literal(str(path.resolve()))} AS {target} ({kind}READ_ONLY)")
    else:
        raise ValueError(f"unknown engine {spec.engine!r}")


def _attach_error(alias: str, spec: ConnectionSpec, exc: duckdb.Error) -> DataSourceUnavailable:
    message = scrub(str(exc), spec)
    if spec.engine == "postgres":
        cause = postgres.classify_connect_error(spec, message)
    elif spec.engine == "mysql":
        cause = mysql.classify_connect_error(spec, message)
    else:
        cause = DataSourceUnavailable(message)
    return DataSourceUnavailable(f"Source {alias!r}: {cause.message}")


def connect(specs: dict[str, ConnectionSpec], *, timeout_ms: int) -> duckdb.DuckDBPyConnection:
    if not specs:
        raise ValueError("federation needs at least one source")
    for alias in specs:
        if not _ALIAS.match(alias) or alias.lower() in _RESERVED_ALIASES:
            raise ValueError(f"invalid source alias {alias!r}")
    conn = duckdb.connect(":memory:", config=dict(BASE_CONFIG))
    try:
        loaded: set[str] = set()
        for alias, spec in specs.items():
            try:
                _attach(conn, alias, spec, loaded, timeout_ms=timeout_ms)
            except duckdb.Error as exc:
                raise _attach_error(alias, spec, exc) from None
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def open_query(
    specs: dict[str, ConnectionSpec],
    sql: str,
    *,
    timeout_ms: int,
    batch_size: int,
    cancel_event: threading.Event | None = None,
) -> Iterator[OpenQuery]:
    raise_if_cancelled(cancel_event)
    conn = connect(specs, timeout_ms=timeout_ms)
    secrets = tuple(spec.password for spec in specs.values() if spec.password)
    try:
        with run_query(
            conn, sql, timeout_ms=timeout_ms, batch_size=batch_size, cancel_event=cancel_event, secrets=secrets
        ) as query:
            yield query
    finally:
        conn.close()
