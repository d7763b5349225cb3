"""A real Celery worker on the `programs` queue for the program API tests, and a broker for it.

The broker is Redis when reachable (required under REQUIRE_SERVICES=1), under a key prefix of this session's
own, else a filesystem broker in a temporary folder. `publishing_to(broker)` points this process's Celery
app at it, so the API under test enqueues where the worker listens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection

from config.celery import app
from tests.services import _reachable, require, service_url, services_required

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Broker:
    url: str
    transport_options: dict[str, Any] = field(default_factory=dict)


def filesystem_broker(folder: Path) -> Broker:
    options = {
        "data_folder_in": str(folder / "in"),
        "data_folder_out": str(folder / "in"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
    for sub in ("in", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return Broker("filesystem://", options)


def make_broker(folder: Path) -> Broker:
    url = service_url("redis")
    if services_required() or _reachable(url):
        url = require("redis")
        prefix = f"programs-test-{uuid.uuid4().hex[:10]}:"
        return Broker(url, {"global_keyprefix": prefix, "visibility_timeout": 3600, "polling_interval": 0.05})
    return filesystem_broker(folder)


def database_url_for_subprocess() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _drop_broker_connections() -> None:
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def publishing_to(broker: Broker) -> Iterator[Broker]:
    """Celery prefers CELERY_BROKER_URL from the environment over settings: set both, restore both."""
    saved_env = os.environ.get("CELERY_BROKER_URL")
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    os.environ["CELERY_BROKER_URL"] = broker.url
    app.conf.broker_url = broker.url
    app.conf.broker_transport_options = broker.transport_options
    _drop_broker_connections()
    try:
        yield broker
    finally:
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        app.conf.broker_url, app.conf.broker_transport_options = saved
        _drop_broker_connections()


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.output()


def start_worker(broker: Broker, log_dir: Path, *, env: dict[str, str] | None = None) -> Worker:
    name = f"programs-test-{uuid.uuid4().hex[:6]}"
    log = log_dir / f"{name}.log"
    worker_env = dict(
        os.environ,
        DATABASE_URL=database_url_for_subprocess(),
        CELERY_BROKER_URL=broker.url,
        PROGRAM_TEST_BROKER_OPTIONS=json.dumps(broker.transport_options),
        **(env or {}),
    )
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.programs.run_worker",
                "worker",
                "-Q",
                "programs",
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@%h",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(proc, log)
