"""Spaces with a discovered SQLite sales source (demo data) and, when PostgreSQL runs, a wide table."""

from __future__ import annotations

import shutil
from datetime import date
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from connectors.demo_data import generate_sales_db
from connectors.discovery import discovery_run
from connectors.models import DataSource
from tests.conftest import client_for
from tests.factories import DataSourceFactory, MembershipFactory
from tests.services import require

TODAY = date(2025, 6, 30)
PG_DATABASE = "ps_query_editor_test"
PG_ROWS = 2_500
PG_WIDE_COLUMNS = 50


def space_url(slug: str, path: str) -> str:
    return f"/api/v1/spaces/{slug}/query/{path}"


@pytest.fixture(scope="session")
def sales_db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("query-editor") / "sales.sqlite3"
    generate_sales_db(path, orders=600, seed=7, today=TODAY)
    return path


@pytest.fixture
def sales(member, data_root, sales_db_file) -> DataSource:
    """The member's space's SQLite sales source, discovered: customers.email / phone / names are PII."""
    path = data_root / "sales.sqlite3"
    shutil.copy(sales_db_file, path)
    source = DataSourceFactory(
        workspace=member.workspace, name="Sales", alias="sales", path=str(path), source_system_name="demo-sales"
    )
    return discovery_run(source_id=source.pk)


@pytest.fixture
def slug(member) -> str:
    return member.workspace.slug


@pytest.fixture
def analyst_client(member):
    return client_for(member.user)


@pytest.fixture
def pii_member(member):
    return MembershipFactory(role="analyst", workspace=member.workspace, pii_access=True)


def pg_wide_sql() -> str:
    extra = ", ".join(f"c{i:02d} text" for i in range(PG_WIDE_COLUMNS - 2))
    values = ", ".join(f"repeat(md5(g::text || '{i}'), 2)" for i in range(PG_WIDE_COLUMNS - 2))
    return f"""
DROP TABLE IF EXISTS public.people;
DROP TABLE IF EXISTS public.wide;
CREATE TABLE public.people (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL, score int NOT NULL);
INSERT INTO public.people
    SELECT g, 'p' || g || '@example.com', 'person ' || g, g % 97 FROM generate_series(1, {PG_ROWS}) g;
CREATE TABLE public.wide (id int PRIMARY KEY, email text NOT NULL, {extra});
INSERT INTO public.wide SELECT g, 'w' || g || '@example.com', {values} FROM generate_series(1, {PG_ROWS}) g;
ANALYZE public.people; ANALYZE public.wide;
"""


@cache
def prepare_postgres(url: str) -> dict[str, object]:
    """Create the test database once per process; returns the DataSource connection fields."""
    parsed = urlparse(url)
    conn_kwargs = {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
    }
    password = parsed.password or None
    with psycopg.connect(
        dbname=parsed.path.lstrip("/") or "postgres", password=password, autocommit=True, **conn_kwargs
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    with psycopg.connect(dbname=PG_DATABASE, password=password, autocommit=True, **conn_kwargs) as conn:
        conn.execute(pg_wide_sql())
    return {
        "host": conn_kwargs["host"],
        "port": conn_kwargs["port"],
        "username": conn_kwargs["user"],
        "database": PG_DATABASE,
        "password": password or "",
    }


@pytest.fixture
def warehouse(member) -> DataSource:
    """A discovered PostgreSQL source (people, wide) in the member's space."""
    fields = prepare_postgres(require("postgres"))
    source = DataSourceFactory(
        workspace=member.workspace,
        name="Warehouse",
        alias="warehouse",
        connector_type="postgres",
        source_system_name="data-warehouse",
        **fields,
    )
    return discovery_run(source_id=source.pk)
