"""The prompt execution pipeline against its floors, on PostgreSQL + Redis with the `builtin` engine.

1. execute answer latency (p50/p99, 16 concurrent clients, gunicorn as in docker-compose: 4 workers x
   4 threads) vs a bare Django view doing one INSERT;
2. end-to-end execute -> completed latency minus the query's own time (the same SQL run directly on
   the SQLite demo file) vs a no-op Celery task's round trip through the same broker and worker;
3. status-poll throughput (GET /api/v1/prompt-executions/{id}, 16 clients) vs a bare view reading
   one row.

Targets: execute p99 <= 2x floor; pipeline overhead p50 <= 3x no-op round trip; poll throughput
>= 0.7x the bare view. Bench-only views and the no-op task live in bench/_pipeline_settings.py and
bench/_pipeline_urls.py (DJANGO_SETTINGS_MODULE override), never in the product's URLs.

Run: `.venv/bin/python -m bench.pipeline` (or `make bench`). Environment: BENCH_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres), BENCH_REDIS_URL (default
redis://127.0.0.1:6379/11, a database of its own: its queues are emptied between phases),
BENCH_REQUESTS (default 2000 per side for execute, four times that for the poll).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "ps_bench_pipeline"
CONCURRENCY = 16
ROUNDS = 4
QUESTION = "Show me total sales by region for the last quarter"
# An execution's life, client clock then the row's timestamps: the execute request until the row's
# started_at; the answer, the `ai` queue hop and the claim; SQL generation; the `query` queue hop and
# the claim; the query stage (the query included); until the polling client sees `completed`.
SEGMENTS = ("request in", "answer + ai hop", "ai stage", "query hop", "query stage", "poll sees it")

SETUP = """
import json
import django
django.setup()
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken
from accounts.models import Membership, Organization, Role, Workspace
from django.contrib.auth.models import User
from connectors.demo import seed_demo_source
with connection.cursor() as c:
    c.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, payload text, "
              "created_at timestamptz NOT NULL DEFAULT now())")
org = Organization.objects.create(name="Bench", slug="bench")
ws = Workspace.objects.create(organization=org, name="Bench", slug="bench")
user = User.objects.create_user("bench", password="bench-pass-123")
member = Membership.objects.create(user=user, workspace=ws, role=Role.ANALYST)
source = seed_demo_source(analyst=member)
print(json.dumps({"token": str(RefreshToken.for_user(user).access_token), "source_id": source.pk,
                  "demo_path": source.path}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Stack:
    """A migrated metadata database, gunicorn on the bench settings, and (when asked) a worker."""

    def __init__(self) -> None:
        self.pg_url = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        self.redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
        pg = urlparse(self.pg_url)
        self.pg = {"host": pg.hostname or "127.0.0.1", "port": pg.port or 5432, "user": pg.username or "postgres"}
        if pg.password:
            self.pg["password"] = pg.password
        self.var_dir = Path(tempfile.mkdtemp(prefix="ps-bench-pipeline-"))
        self.port = free_port()
        auth = self.pg["user"] + (f":{pg.password}" if pg.password else "")
        from cryptography.fernet import Fernet

        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="bench._pipeline_settings",
            DEBUG="0",
            SECRET_KEY="bench-secret-" + uuid.uuid4().hex,
            FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
            DATABASE_URL=f"postgres://{auth}@{self.pg['host']}:{self.pg['port']}/{DATABASE}",
            CELERY_BROKER_URL=self.redis_url,
            CACHE_URL="locmemcache://",
            VAR_DIR=str(self.var_dir),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            API_THROTTLE_USER="100000000/min",
            AI_DEFAULT_MODEL="builtin",
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        self.procs: list[subprocess.Popen] = []
        self.worker: subprocess.Popen | None = None

    def db(self) -> psycopg.Connection:
        return psycopg.connect(dbname=DATABASE, autocommit=True, **self.pg)

    def prepare(self) -> dict:
        with psycopg.connect(dbname="postgres", autocommit=True, **self.pg) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        out = ""
        for args in (["manage.py", "migrate", "-v0"], ["-c", SETUP]):
            done = subprocess.run([sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{args[0]} failed:\n{done.stderr[-3000:]}")
            out = done.stdout
        return json.loads(out.strip().splitlines()[-1])

    def start_web(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
            + ["--workers", "4", "--threads", "4", "--log-level", "warning"],
            cwd=ROOT,
            env=self.env,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "ai,query", "--pool", "threads"]
            + ["--concurrency", "4", "--without-gossip", "--without-mingle", "--without-heartbeat"]
            + ["-n", f"bench-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "WARNING"],
            cwd=ROOT,
            env=self.env,
        )
        self.procs.append(self.worker)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            self.worker.wait(timeout=30)
            self.worker = None

    def empty_queues(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).delete("ai", "query")
        with self.db() as conn:
            conn.execute("TRUNCATE prompts_promptexecution CASCADE")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


class Client:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.local = threading.local()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        payload = json.dumps(body) if body is not None else None
        for attempt in (1, 2):  # gunicorn closes idle keep-alive connections: reconnect once
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request(method, path, body=payload, headers=self.headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


# One set of client threads for the whole bench, each keeping its own keep-alive connection: both
# sides of a comparison run over the same 16 connections, so they meet the same spread of connections
# over gunicorn's worker processes (a process holding more of them answers each more slowly).
_CLIENTS = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="bench-client")


def timed_requests(call: Callable[[], tuple[int, bytes]], count: int) -> tuple[list[float], float]:
    """`count` calls from CONCURRENCY threads: per-call latencies (ms) and the wall time (s)."""

    def one(_: int) -> float:
        started = time.perf_counter()
        status, body = call()
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    latencies = list(_CLIENTS.map(one, range(count)))
    wall = time.perf_counter() - started
    return latencies, wall


def bench_execute(stack: Stack, token: str, source_id: int, count: int) -> dict[str, list[float]]:
    api = bare = Client(stack.port, token)  # the floor view ignores the Authorization header
    body = {
        "prompt_text": QUESTION,
        "selected_data_source_ids": [source_id],
    }

    def execute() -> tuple[int, bytes]:
        return api.request("POST", "/api/v1/prompts/execute", body)

    def insert() -> tuple[int, bytes]:
        return bare.request("POST", "/bench/insert", {"prompt_text": QUESTION})

    timed_requests(execute, 100)  # warm: connections, catalog cache, JWT user lookups
    timed_requests(insert, 100)
    results: dict[str, list[float]] = {"execute": [], "floor": []}
    for _ in range(ROUNDS):  # interleaved rounds, so drift and stalls hit both sides alike
        results["floor"] += timed_requests(insert, count // ROUNDS)[0]
        results["execute"] += timed_requests(execute, count // ROUNDS)[0]
    return results


def bench_pipeline(stack: Stack, token: str, source_id: int, demo_path: str, runs: int) -> dict[str, list[float]]:
    import redis
    from celery import Celery

    api = Client(stack.port, token)
    body = {
        "prompt_text": QUESTION,
        "selected_data_source_ids": [source_id],
    }
    conn = stack.db()

    segments: dict[str, list[float]] = {name: [] for name in SEGMENTS}

    def end_to_end() -> tuple[float, int]:
        started, wall = time.perf_counter(), time.time()
        status, raw = api.request("POST", "/api/v1/prompts/execute", body)
        if status != 200:
            raise RuntimeError(raw[:300])
        execution_id = json.loads(raw)["data"]["execution_id"]
        while True:
            state, query_id = conn.execute(
                "SELECT status, generated_query_id FROM prompts_promptexecution WHERE id = %s", [execution_id]
            ).fetchone()
            if state != "processing":
                break
            time.sleep(0.001)
        elapsed = (time.perf_counter() - started) * 1000
        if state != "completed":
            raise RuntimeError(f"execution {execution_id} {state}")
        # Where the time went, from the row's own timestamps (same host clock as the client's).
        marks = conn.execute(
            "SELECT extract(epoch FROM started_at), extract(epoch FROM ai_processing_started_at),"
            " extract(epoch FROM ai_processing_completed_at), extract(epoch FROM query_execution_started_at),"
            " extract(epoch FROM completed_at) FROM prompts_promptexecution WHERE id = %s",
            [execution_id],
        ).fetchone()
        points = [wall, *(float(m) for m in marks), wall + elapsed / 1000]
        for name, (a, b) in zip(SEGMENTS, pairwise(points), strict=True):
            segments[name].append((b - a) * 1000)
        return elapsed, query_id

    celery = Celery(broker=stack.redis_url)
    replies = redis.Redis.from_url(stack.redis_url)

    def noop_round_trip() -> float:
        key = f"bench:noop:{uuid.uuid4().hex}"
        started = time.perf_counter()
        celery.send_task("bench.noop", args=[key], queue="ai")
        if replies.blpop([key], timeout=30) is None:
            raise RuntimeError("no-op task did not come back")
        return (time.perf_counter() - started) * 1000

    for _ in range(5):  # warm: the worker's connections, imports, catalog cache
        _, query_id = end_to_end()
        noop_round_trip()
    (sql,) = conn.execute("SELECT sql_executed FROM prompts_generatedquery WHERE id = %s", [query_id]).fetchone()
    sqlite_conn = sqlite3.connect(f"file:{demo_path}?mode=ro", uri=True)

    def raw_query() -> float:
        started = time.perf_counter()
        sqlite_conn.execute(sql).fetchall()
        return (time.perf_counter() - started) * 1000

    results: dict[str, list[float]] = {"e2e": [], "noop": [], "query": []}
    for values in segments.values():
        values.clear()  # the warm-up runs' segments
    for _ in range(runs):
        results["e2e"].append(end_to_end()[0])
        results["noop"].append(noop_round_trip())
        results["query"].append(raw_query())
    return results | segments


def bench_poll(stack: Stack, token: str, source_id: int, count: int) -> dict[str, float]:
    api = bare = Client(stack.port, token)
    status, raw = api.request(
        "POST",
        "/api/v1/prompts/execute",
        {"prompt_text": "Total sales by region", "selected_data_source_ids": [source_id]},
    )
    execution_id = json.loads(raw)["data"]["execution_id"]

    def poll() -> tuple[int, bytes]:
        return api.request("GET", f"/api/v1/prompt-executions/{execution_id}")

    def read() -> tuple[int, bytes]:
        return bare.request("GET", f"/bench/read/{execution_id}")

    timed_requests(poll, 200)
    timed_requests(read, 200)
    walls = {"poll": 0.0, "bare": 0.0}
    for _ in range(ROUNDS):
        walls["bare"] += timed_requests(read, count // ROUNDS)[1]
        walls["poll"] += timed_requests(poll, count // ROUNDS)[1]
    return {name: count / wall for name, wall in walls.items()}


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> None:
    count = int(os.environ.get("BENCH_REQUESTS", "2000"))
    stack = Stack()
    try:
        info = stack.prepare()
        stack.start_web()

        ex = bench_execute(stack, info["token"], info["source_id"], count)
        e50, e99 = pct(ex["execute"], 50), pct(ex["execute"], 99)
        f50, f99 = pct(ex["floor"], 50), pct(ex["floor"], 99)
        print(f"(1) execute answer, {CONCURRENCY} concurrent, {count} requests per side")
        print(f"    POST /api/v1/prompts/execute   p50 {e50:7.2f} ms   p99 {e99:7.2f} ms")
        print(f"    bare view, one INSERT (floor)  p50 {f50:7.2f} ms   p99 {f99:7.2f} ms")
        print(f"    p99 ratio {e99 / f99:.2f}x (target <= 2x): {verdict(e99 <= 2 * f99)}")
        stack.empty_queues()

        stack.start_worker()
        runs = int(os.environ.get("BENCH_PIPELINE_RUNS", "40"))
        pipe = bench_pipeline(stack, info["token"], info["source_id"], info["demo_path"], runs)
        stack.stop_worker()
        query50 = statistics.median(pipe["query"])
        overhead = [e - query50 for e in pipe["e2e"]]
        o50, n50 = statistics.median(overhead), statistics.median(pipe["noop"])
        print(f"(2) execute -> completed, sequential, {runs} runs (builtin engine, demo SQLite data)")
        print(f"    end to end p50 {statistics.median(pipe['e2e']):7.2f} ms   query's own time p50 {query50:7.2f} ms")
        print(f"    pipeline overhead p50 {o50:7.2f} ms   no-op Celery round trip p50 {n50:7.2f} ms")
        print(f"    ratio {o50 / n50:.2f}x (target <= 3x): {verdict(o50 <= 3 * n50)}")
        print("    where it goes (p50, ms): " + ", ".join(f"{n} {statistics.median(pipe[n]):.2f}" for n in SEGMENTS))

        polls = bench_poll(stack, info["token"], info["source_id"], count * 4)
        ratio = polls["poll"] / polls["bare"]
        print(f"(3) status poll, {CONCURRENCY} concurrent, {count * 4} requests per side")
        print(f"    GET /api/v1/prompt-executions/{{id}}  {polls['poll']:8.0f} req/s")
        print(f"    bare view, one row read             {polls['bare']:8.0f} req/s")
        print(f"    ratio {ratio:.2f}x (target >= 0.7x): {verdict(ratio >= 0.7)}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
