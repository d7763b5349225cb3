"""Real Celery workers for tests: a broker of their own, the test database, a process to kill.

The broker is Redis when it is reachable (required under REQUIRE_SERVICES=1), under a key prefix
of its own so no other worker on the same Redis takes this test's messages; the filesystem broker
otherwise. `publishing_to(broker)` points this process's Celery app at it, so the API under test
enqueues where the worker listens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from config.celery import app
from tests.services import _reachable, require, service_url, services_required

ROOT = Path(__file__).resolve().parents[2]


def database_url_for_subprocess() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@dataclass
class Broker:
    url: str
    transport_options: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.url.split(":", 1)[0]


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
    """Redis (own key prefix) when available or required; else a filesystem broker under `folder`."""
    url = service_url("redis")
    if services_required() or _reachable(url):
        url = require("redis")
        prefix = f"test-{uuid.uuid4().hex[:10]}:"
        return Broker(url, {"global_keyprefix": prefix, "visibility_timeout": 3600, "polling_interval": 0.05})
    return filesystem_broker(folder)


def _drop_broker_connections() -> None:
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def publishing_to(broker: Broker) -> Iterator[Broker]:
    """This process's Celery app sends to `broker` (Celery prefers the environment over settings)."""
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

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def children(self) -> list[int]:
        """Pool processes of a prefork worker."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool): no chance to ack, reject or clean up."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.output()


def start_worker(
    broker: Broker,
    log_dir: Path,
    *,
    queues: str = "ai,query",
    pool: str = "threads",
    concurrency: int = 4,
    env: dict[str, str] | None = None,
    pipeline_seconds: dict[str, float] | None = None,
    include: list[str] | None = None,
    settings_overrides: dict[str, Any] | None = None,
) -> Worker:
    name = f"test-{uuid.uuid4().hex[:6]}"
    log = log_dir / f"{name}.log"
    worker_env = dict(
        os.environ,
        DATABASE_URL=database_url_for_subprocess(),
        CELERY_BROKER_URL=broker.url,
        VAR_DIR=str(settings.VAR_DIR),
        DATA_SOURCE_FILE_ROOTS=",".join(str(p) for p in settings.DATA_SOURCE_FILE_ROOTS),
        TEST_BROKER_TRANSPORT_OPTIONS=json.dumps(broker.transport_options),
        TEST_PIPELINE_SECONDS=json.dumps(pipeline_seconds or {}),
        TEST_WORKER_INCLUDE=",".join(include or []),
        TEST_WORKER_SETTINGS=json.dumps(settings_overrides or {}),
        **(env or {}),
    )
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.workers.run_worker",
                "worker",
                "-Q",
                queues,
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
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
            start_new_session=True,  # its own process group: kill() takes the pool with it
        )
    return Worker(proc, log)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60, interval: float = 0.2, what: str = "") -> Any:
    """Poll until `predicate()` is truthy; return its value, or raise with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)
