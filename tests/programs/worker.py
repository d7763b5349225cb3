"""A real Celery worker on the `programs` queue for the program API tests (the shared test worker helpers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.workers.helpers import Broker, Worker, filesystem_broker, make_broker, publishing_to
from tests.workers.helpers import start_worker as start_test_worker

__all__ = ["Broker", "Worker", "filesystem_broker", "make_broker", "publishing_to", "start_worker"]


def start_worker(broker: Broker, log_dir: Path, *, settings_overrides: dict[str, Any] | None = None) -> Worker:
    return start_test_worker(
        broker, log_dir, queues="programs", pool="solo", concurrency=1, settings_overrides=settings_overrides
    )
