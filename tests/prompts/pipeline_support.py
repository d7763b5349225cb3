"""Shared pieces of the pipeline tests: the demo source, a question-routed LLM stub, polling."""

from __future__ import annotations

import threading
import time
from typing import Any

from rest_framework.test import APIClient

from accounts.models import Membership
from connectors.demo import seed_demo_source
from connectors.models import DataSource
from prompts.models import ExecutionStatus, PromptExecution
from tests.llm_stub import Reply

STUB_KEY_ENV = "PROMPT_STUDIO_TEST_STUB_KEY"
STUB_MODEL = "stub"

SPEC_FIELDS = {
    "execution_id",
    "prompt_id",
    "status",
    "ai_processing_status",
    "query_execution_status",
    "started_at",
    "ai_processing_started_at",
    "ai_processing_completed_at",
    "ai_response_time_ms",
    "query_execution_started_at",
    "query_execution_completed_at",
    "query_execution_duration_ms",
    "total_duration_ms",
    "completed_at",
    "generated_query_id",
    "generated_query_text",
    "rows_returned",
    "result_preview",
    "ai_metadata",
}


def ai_models(base_url: str) -> dict[str, dict[str, str]]:
    return {STUB_MODEL: {"model": "openai/stub-model", "api_base": base_url, "api_key_env": STUB_KEY_ENV}}


class QuestionRouter:
    """A stub script that answers by the question in the request, so tests sharing one stub don't mix.

    `router.script(question, [Reply, ...])`: that question's replies in order, the last repeating.
    """

    def __init__(self) -> None:
        self._scripts: dict[str, list[Reply]] = {}
        self._calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def script(self, question: str, replies: list[Reply]) -> str:
        with self._lock:
            self._scripts[question] = list(replies)
            self._calls[question] = 0
        return question

    def calls(self, question: str) -> int:
        with self._lock:
            return self._calls.get(question, 0)

    def __call__(self, body: dict[str, Any]) -> Reply:
        # The first user message ends with "Question: <the question>" (few-shot pairs come before it).
        users = [str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user"]
        asked = users[0].rsplit("Question: ", 1)[-1].strip() if users else ""
        with self._lock:
            replies = self._scripts.get(asked)
            if replies is None:
                return Reply(status=400, error=f"no script for {asked!r}")
            index = min(self._calls[asked], len(replies) - 1)
            self._calls[asked] += 1
            return replies[index]


def demo_source(member: Membership) -> DataSource:
    """The demo sales database, discovered, with its analyst row policy and masked PII."""
    return seed_demo_source(analyst=member)


def execute(client: APIClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/prompts/execute", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def poll(client: APIClient, execution_id: int, *, timeout: float = 60, worker: Any = None) -> dict[str, Any]:
    """GET the execution until it is no longer processing."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/prompt-executions/{execution_id}")
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        if data["status"] != ExecutionStatus.PROCESSING:
            return data
        if time.monotonic() > deadline:
            row = PromptExecution.objects.filter(pk=execution_id).values().first()
            log = worker.output() if worker is not None else ""
            raise AssertionError(f"execution {execution_id} still processing after {timeout}s: {row}\n{log}")
        time.sleep(0.2)


def wait_for_stage(execution_id: int, stage: str, *, timeout: float = 60) -> PromptExecution:
    deadline = time.monotonic() + timeout
    while True:
        execution = PromptExecution.objects.get(pk=execution_id)
        if execution.stage == stage and execution.heartbeat_at is not None:
            return execution
        if execution.status != ExecutionStatus.PROCESSING or time.monotonic() > deadline:
            raise AssertionError(f"execution {execution_id} never reached stage {stage}: {execution.__dict__}")
        time.sleep(0.1)
