"""Run the product's Celery worker for tests, with test-only knobs from the environment.

    python -m tests.workers.run_worker worker -Q ai,query ...   (arguments as for `celery worker`)

- TEST_BROKER_TRANSPORT_OPTIONS (JSON): the broker's transport options (filesystem folders, or a
  Redis `global_keyprefix` that keeps this test's queues apart from any other worker's).
- TEST_PIPELINE_SECONDS (JSON, e.g. {"STALE_AFTER": 2, "HEARTBEAT_SECONDS": 0.5}): scale the
  pipeline's liveness constants down so reliability tests finish in seconds, not minutes.
- TEST_WORKER_INCLUDE: comma-separated extra task modules (benchmarks' no-op tasks).
- TEST_WORKER_SETTINGS (JSON, e.g. {"PROGRAM_CPU_S": 2}): Django settings to override in the worker.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from config.celery import app  # noqa: E402
from prompts import pipeline  # noqa: E402


def configure() -> None:
    options = os.environ.get("TEST_BROKER_TRANSPORT_OPTIONS")
    if options:
        app.conf.broker_transport_options = json.loads(options)
    for name, seconds in json.loads(os.environ.get("TEST_PIPELINE_SECONDS", "{}")).items():
        current = getattr(pipeline, name)
        setattr(pipeline, name, timedelta(seconds=seconds) if isinstance(current, timedelta) else float(seconds))
    tasks = importlib.import_module("workers.tasks")
    tasks._RETRY_LIVE_STAGE = int(pipeline.STALE_AFTER.total_seconds()) + 1
    for name, value in json.loads(os.environ.get("TEST_WORKER_SETTINGS", "{}")).items():
        setattr(settings, name, value)
    for module in filter(None, os.environ.get("TEST_WORKER_INCLUDE", "").split(",")):
        importlib.import_module(module)


if __name__ == "__main__":
    configure()
    app.worker_main(sys.argv[1:])
