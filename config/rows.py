"""Hot-path reads with one fixed SQL string instead of a queryset compiled on every call.

Compiling a queryset costs ≈0.5–1 ms of Python per query on a wide model (select_related, many
fields) — more than the database needs to answer it. The few reads that bench/pipeline.py holds to
a floor (the polled execution, execute's membership and source checks) build their SQL once from a
`Projection` and turn each row back into model instances exactly as a queryset would: the same
columns, the same database converters (JSON, datetimes on SQLite, booleans on MySQL), `from_db`.
Everything else uses the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import psycopg
from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


class Projection(Generic[M]):
    """Some (default: all) concrete fields of `model` under a table alias, as SQL and back."""

    def __init__(self, model: type[M], alias: str, fields: Sequence[str] | None = None) -> None:
        self.model = model
        self.alias = alias
        concrete = model._meta.concrete_fields
        self.fields = [f for f in concrete if fields is None or f.name in fields or f.attname in fields]
        if fields is not None and len(self.fields) != len(fields):
            unknown = set(fields) - {f.name for f in self.fields} - {f.attname for f in self.fields}
            raise ValueError(f"{model.__name__} has no concrete fields {sorted(unknown)}")
        self.attnames = [f.attname for f in self.fields]
        self.width = len(self.fields)
        self._converters: dict[str, list[tuple[int, Any, list[Converter]]]] = {}
        self._columns: dict[str, str] = {}

    @property
    def table(self) -> str:
        return f"{connection.ops.quote_name(self.model._meta.db_table)} {self.alias}"

    @property
    def columns(self) -> str:
        found = self._columns.get(connection.vendor)
        if found is None:
            quote = connection.ops.quote_name
            found = self._columns[connection.vendor] = ", ".join(f"{self.alias}.{quote(f.column)}" for f in self.fields)
        return found

    def _converters_for(self) -> list[tuple[int, Any, list[Converter]]]:
        vendor = connection.vendor
        found = self._converters.get(vendor)
        if found is None:
            found = []
            for i, field in enumerate(self.fields):
                col = field.get_col(self.alias)
                chain = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if chain:
                    found.append((i, col, chain))
            self._converters[vendor] = found
        return found

    def load(self, row: Sequence[Any], start: int = 0) -> M:
        """The model instance for row[start:start + width], converted as the ORM would."""
        values = list(row[start : start + self.width])
        for i, col, chain in self._converters_for():
            for convert in chain:
                values[i] = convert(values[i], col, connection)
        return self.model.from_db(connection.alias, self.attnames, values)  # type: ignore[return-value]


def fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows for one of these fixed statements.

    On PostgreSQL the statement is prepared on the server (once per connection, by psycopg) so the
    joins are planned once, not on every poll — planning them costs more than running them. Django's
    own cursors bind client-side and never prepare; this one shares their connection and transaction.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with connection.wrap_database_errors, psycopg.Cursor(cursor.connection) as prepared:
                prepared.execute(sql, params, prepare=True)
                return prepared.fetchall()
        cursor.execute(sql, params)
        return cursor.fetchall()
