"""The async stack end to end: a real Celery worker process consumes a task and writes to the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from kombu import Connection

from config.celery import app
from tests.services import require
from workers.models import WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]


def database_url_for_subprocess() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(broker_url: str, var_dir: Path, queue: str) -> subprocess.Popen:
    env = dict(
        os.environ, DATABASE_URL=database_url_for_subprocess(), CELERY_BROKER_URL=broker_url, VAR_DIR=str(var_dir)
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"smoke-{uuid.uuid4().hex[:6]}@%h",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_worker(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def wait_for_heartbeat(queue: str, timeout: float = 60) -> WorkerHeartbeat | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beat = WorkerHeartbeat.objects.filter(queue=queue).first()
        if beat:
            return beat
        time.sleep(0.3)
    return None


def send_heartbeat(broker_url: str, queue: str, transport_options: dict) -> None:
    with Connection(broker_url, transport_options=transport_options) as conn:
        app.send_task("workers.heartbeat", args=[queue], queue=queue, connection=conn)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_consumes_from_redis_and_writes_to_the_database(tmp_path):
    broker = require("redis")
    queue = f"smoke-{uuid.uuid4().hex[:8]}"
    worker = start_worker(broker, tmp_path, queue)
    try:
        send_heartbeat(broker, queue, {})
        beat = wait_for_heartbeat(queue)
    finally:
        output = stop_worker(worker)
    assert beat is not None, f"no heartbeat row written; worker said:\n{output}"
    assert beat.hostname.startswith("smoke-")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_consumes_from_the_filesystem_broker(tmp_path):
    queue = "default"
    worker = start_worker("filesystem://", tmp_path, queue)
    folder = tmp_path / "broker"
    options = {
        "data_folder_in": str(folder / "in"),
        "data_folder_out": str(folder / "in"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    try:
        for sub in ("in", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        send_heartbeat("filesystem://", queue, options)
        beat = wait_for_heartbeat(queue)
    finally:
        output = stop_worker(worker)
    assert beat is not None, f"no heartbeat row written; worker said:\n{output}"
