"""/metrics: Prometheus text with request counts and latencies, executions by status and error code,
stage durations, LLM tokens and cost, and queue depth per queue."""

from __future__ import annotations

import pytest
import redis
from django.test import Client
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from config.celery import QUEUES, app
from prompts.models import ErrorCode, ExecutionStatus
from tests.admin.support import execution_row
from tests.factories import MembershipFactory
from tests.services import require


def scrape(client: Client | None = None, **headers: str) -> dict[str, dict[tuple, float]]:
    """name -> {sorted label items: value} for every sample of /metrics."""
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get(name, {}).get(tuple(sorted(labels.items())))


@pytest.fixture
def broker_folder(settings, tmp_path):
    """A filesystem broker of the test's own, so other tests' messages do not count."""
    folder = tmp_path / "broker"
    for sub in ("in", "processed", "control"):
        (folder / sub).mkdir(parents=True)
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(folder / "in"),
        "data_folder_out": str(folder / "in"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    return folder


def enqueue(url: str, transport_options: dict, counts: dict[str, int]) -> None:
    """Publish real task messages, the way the web process does, `counts[queue]` times per queue."""
    names = {"ai": "workers.generate_sql", "query": "workers.execute_query", "programs": "workers.run_program"}
    with Connection(url, transport_options=transport_options) as conn:
        for queue, n in counts.items():
            for i in range(n):
                app.send_task(names.get(queue, "workers.heartbeat"), args=[i], queue=queue, connection=conn)


@pytest.mark.django_db
def test_request_counts_and_latencies_by_route(broker_folder):
    client = Client()
    before = value(scrape(), "prompt_studio_http_requests_total", method="GET", route="healthz", status="200") or 0
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    samples = scrape()
    assert value(samples, "prompt_studio_http_requests_total", method="GET", route="healthz", status="200") == (
        before + 3
    )
    count = value(samples, "prompt_studio_http_request_duration_seconds_count", method="GET", route="healthz")
    assert count is not None
    assert count >= 3
    inf = value(samples, "prompt_studio_http_request_duration_seconds_bucket", method="GET", route="healthz", le="+Inf")
    assert inf == count


@pytest.mark.django_db
def test_executions_by_status_and_error_code_stage_durations_and_llm_usage(broker_folder):
    member = MembershipFactory()
    execution_row(member, prompt_text="a", sql="SELECT 1", ai_model="gpt-4o", tokens=(100, 20), cost=0.5)
    execution_row(member, prompt_text="b", sql="SELECT 2", ai_model="gpt-4o", tokens=(50, 10), cost=0.25)
    execution_row(member, prompt_text="c", sql="SELECT 3", tokens=(7, 3))
    for code in (ErrorCode.SQL_VALIDATION_ERROR, ErrorCode.SQL_VALIDATION_ERROR, ErrorCode.CANCELLED):
        execution_row(member, prompt_text="d", status=ExecutionStatus.FAILED, error_code=code)
    execution_row(member, prompt_text="e", status=ExecutionStatus.PROCESSING)

    samples = scrape()
    assert value(samples, "prompt_studio_executions", status="completed", error_code="") == 3
    assert value(samples, "prompt_studio_executions", status="failed", error_code="SQL_VALIDATION_ERROR") == 2
    assert value(samples, "prompt_studio_executions", status="failed", error_code="CANCELLED") == 1
    assert value(samples, "prompt_studio_executions", status="processing", error_code="") == 1

    assert value(samples, "prompt_studio_stage_duration_ms_avg", stage="ai") == 400
    assert value(samples, "prompt_studio_stage_duration_ms_avg", stage="query") == 50
    assert value(samples, "prompt_studio_stage_duration_ms_avg", stage="total") == 480

    assert value(samples, "prompt_studio_llm_tokens_total", model="gpt-4o", direction="in") == 150
    assert value(samples, "prompt_studio_llm_tokens_total", model="gpt-4o", direction="out") == 30
    assert value(samples, "prompt_studio_llm_tokens_total", model="builtin", direction="in") == 7
    assert value(samples, "prompt_studio_llm_cost_usd_total", model="gpt-4o") == pytest.approx(0.75)
    assert value(samples, "prompt_studio_llm_cost_usd_total", model="builtin") == 0


@pytest.mark.django_db
def test_queue_depth_per_queue_on_the_filesystem_broker(settings, broker_folder):
    samples = scrape()
    assert {value(samples, "prompt_studio_queue_depth", queue=q) for q in QUEUES} == {0}
    enqueue("filesystem://", settings.CELERY_BROKER_TRANSPORT_OPTIONS, {"ai": 3, "query": 1, "default": 2})
    samples = scrape()
    assert value(samples, "prompt_studio_queue_depth", queue="ai") == 3
    assert value(samples, "prompt_studio_queue_depth", queue="query") == 1
    assert value(samples, "prompt_studio_queue_depth", queue="programs") == 0
    assert value(samples, "prompt_studio_queue_depth", queue="default") == 2


@pytest.mark.django_db
def test_queue_depth_per_queue_on_redis(settings):
    base = require("redis").rsplit("/", 1)[0]
    url = f"{base}/13"  # a database of its own: the depth is exact
    client = redis.Redis.from_url(url)
    client.delete(*QUEUES)
    settings.CELERY_BROKER_URL = url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    try:
        enqueue(url, {}, {"ai": 2, "programs": 4})
        samples = scrape()
        assert value(samples, "prompt_studio_queue_depth", queue="ai") == 2
        assert value(samples, "prompt_studio_queue_depth", queue="programs") == 4
        assert value(samples, "prompt_studio_queue_depth", queue="query") == 0
    finally:
        client.delete(*QUEUES)


@pytest.mark.django_db
def test_an_unreachable_broker_leaves_queue_depth_out_instead_of_failing(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    samples = scrape()
    assert "prompt_studio_queue_depth" not in samples
    assert value(samples, "prompt_studio_stage_duration_ms_avg", stage="total") == 0  # the rest still answers


@pytest.mark.django_db
def test_metrics_token_is_required_when_configured(settings, broker_folder):
    settings.METRICS_TOKEN = "scrape-me"
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
    assert "prompt_studio_queue_depth" in scrape(client, HTTP_AUTHORIZATION="Bearer scrape-me")


@pytest.mark.django_db
def test_metrics_are_open_without_a_token(settings, broker_folder):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 200
