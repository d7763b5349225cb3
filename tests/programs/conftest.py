"""Fixtures of the program API tests: a real worker on the `programs` queue, a small sales data source."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from connectors.demo_data import generate_sales_db
from connectors.discovery import discovery_run
from tests.factories import DataSourceFactory
from tests.programs.worker import make_broker, publishing_to, start_worker

EXECUTE_URL = "/api/v1/execute_program"
# The worker's limits, small enough that the resource escapes end in seconds.
WORKER_SETTINGS = {"PROGRAM_CPU_S": 2, "PROGRAM_MEMORY_BYTES": 256 * 1024**2, "PROGRAM_OUTPUT_BYTES": 100_000}


@pytest.fixture(scope="session")
def program_worker(django_db_setup, tmp_path_factory):
    """One worker for the session (started once the test database exists), stopped at the end."""
    folder = tmp_path_factory.mktemp("program-worker")
    broker = make_broker(folder / "broker")
    worker = start_worker(broker, folder, settings_overrides=WORKER_SETTINGS)
    yield worker, broker
    worker.stop()


@pytest.fixture
def live_worker(program_worker):
    """The session's worker, with this process publishing to its broker; it must still be alive afterwards."""
    worker, broker = program_worker
    assert worker.alive(), f"the program worker is not running:\n{worker.output()[-3000:]}"
    with publishing_to(broker):
        yield worker
    assert worker.alive(), f"the program worker died:\n{worker.output()[-3000:]}"


def make_sales_source(workspace: Any, folder: Path, *, name: str = "Sales", alias: str = "sales", orders: int = 300):
    path = folder / f"{alias}.db"
    generate_sales_db(path, orders=orders, seed=7, today=date(2024, 6, 30))
    source = DataSourceFactory(workspace=workspace, name=name, alias=alias, path=str(path))
    discovery_run(source_id=source.pk)
    source.refresh_from_db()
    return source


@pytest.fixture
def sales_source(member, data_root):
    return make_sales_source(member.workspace, data_root)


def program_request(token: str, code: str, **overrides: Any) -> dict[str, Any]:
    """The spec's request shape."""
    body: dict[str, Any] = {
        "code": code,
        "promptql_api_key": token,
        "ai_primitives_llm": {"provider": "hasura"},
        "ddn": {"url": "", "headers": {}},
        "artifacts": [],
    }
    body.update(overrides)
    return body


def execute(body: Any) -> Any:
    return APIClient().post(EXECUTE_URL, body, format="json")
