"""/metrics in Prometheus text format.

Request counts and latencies come from the middleware below (per process; set
PROMETHEUS_MULTIPROC_DIR to aggregate gunicorn workers). Executions, stage durations, LLM
tokens and cost are read from the database and queue depths from the broker at scrape time, so
every web process reports the same truth.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
from django.conf import settings
from django.db.models import Avg, Count, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from config.celery import QUEUES
from prompts.models import GeneratedQuery, PromptExecution

REQUESTS = Counter("prompt_studio_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "prompt_studio_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route if match else "") or "unmatched"
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        return response


def queue_depths() -> dict[str, int | None]:
    url = settings.CELERY_BROKER_URL
    depths: dict[str, int | None] = {}
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        files = [p.name for p in folder.glob("*.msg")] if folder.exists() else []
        for queue in QUEUES:
            depths[queue] = sum(1 for name in files if f"_{queue}." in name or name.endswith(f".{queue}.msg"))
        return depths
    if url.startswith(("redis://", "rediss://")):
        try:
            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            for queue in QUEUES:
                depths[queue] = int(client.llen(queue))
        except redis.RedisError:
            depths = dict.fromkeys(QUEUES)
        return depths
    return dict.fromkeys(QUEUES)


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily(
            "prompt_studio_executions", "Executions by status and error code", labels=["status", "error_code"]
        )
        for row in PromptExecution.objects.values("status", "error_code").annotate(n=Count("id")):
            by_status.add_metric([row["status"], row["error_code"] or ""], row["n"])
        yield by_status

        stages = GaugeMetricFamily(
            "prompt_studio_stage_duration_ms_avg", "Average stage duration (completed)", labels=["stage"]
        )
        row = PromptExecution.objects.filter(status="completed").aggregate(
            ai=Avg("ai_response_time_ms"), query=Avg("query_execution_duration_ms"), total=Avg("total_duration_ms")
        )
        for stage, value in row.items():
            stages.add_metric([stage], float(value or 0))
        yield stages

        usage = GeneratedQuery.objects.values("model").annotate(
            tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost=Sum("cost")
        )
        tokens = GaugeMetricFamily("prompt_studio_llm_tokens_total", "LLM tokens", labels=["model", "direction"])
        cost = GaugeMetricFamily("prompt_studio_llm_cost_usd_total", "LLM cost (litellm cost map)", labels=["model"])
        for r in usage:
            tokens.add_metric([r["model"], "in"], r["tokens_in"] or 0)
            tokens.add_metric([r["model"], "out"], r["tokens_out"] or 0)
            cost.add_metric([r["model"]], float(r["cost"] or 0))
        yield tokens
        yield cost

        depth = GaugeMetricFamily("prompt_studio_queue_depth", "Messages waiting per queue", labels=["queue"])
        for queue, n in queue_depths().items():
            if n is not None:
                depth.add_metric([queue], n)
        yield depth


_DB_COLLECTOR = DatabaseCollector()


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token and request.headers.get("Authorization", "") != f"Bearer {token}":
        return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (REQUESTS, LATENCY):
            registry.register(collector)
    registry.register(_DB_COLLECTOR)
    # The 0.0.4 text format: every Prometheus (2.x and 3.x) and agent parses it.
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
