"""Structured logs: JSON lines that carry the request id and the execution id."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client

from config.celery import app
from config.logging import ContextFilter, JsonFormatter, execution_id_var, request_id_var


@pytest.fixture
def json_lines():
    """Capture records as production renders them: the context filter and the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in ("prompt_studio", "django.request")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    for lg, level in saved:
        lg.removeHandler(handler)
        lg.setLevel(level)


@pytest.mark.urls("tests.ops.log_urls")
def test_lines_logged_during_a_request_carry_its_request_id(json_lines):
    response = Client().get("/logs", HTTP_X_REQUEST_ID="req-abc-123")
    assert response["X-Request-ID"] == "req-abc-123"
    (line,) = [r for r in json_lines() if r["logger"] == "prompt_studio.test_ops"]
    assert line["message"] == "handling the request"
    assert line["request_id"] == "req-abc-123"
    assert line["execution_id"] == "-"
    assert line["level"] == "INFO"
    assert line["ts"].endswith("Z")


@pytest.mark.urls("tests.ops.log_urls")
def test_a_request_without_an_id_gets_a_fresh_one_in_header_and_logs(json_lines):
    response = Client().get("/logs")
    (line,) = [r for r in json_lines() if r["logger"] == "prompt_studio.test_ops"]
    assert line["request_id"] == response["X-Request-ID"]
    assert len(line["request_id"]) == 32


@pytest.mark.urls("tests.ops.log_urls")
def test_django_request_errors_carry_the_request_id(json_lines):
    """django.request logs a 404 after the middleware returned; the line still names the request."""
    response = Client().get("/no-such-page", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    (line,) = [r for r in json_lines() if r["logger"] == "django.request"]
    assert line["level"] == "WARNING"
    assert line["request_id"] == "req-404"


def test_lines_of_a_stage_carry_the_execution_id(json_lines):
    logger = logging.getLogger("prompt_studio.pipeline")
    token = execution_id_var.set("4242")  # as workers.tasks does around every stage
    try:
        logger.info("generating SQL")
    finally:
        execution_id_var.reset(token)
    logger.info("between stages")
    stage, idle = json_lines()
    assert stage["execution_id"] == "4242"
    assert stage["message"] == "generating SQL"
    assert idle["execution_id"] == "-"


def test_exceptions_are_one_json_line_with_the_traceback(json_lines):
    token = request_id_var.set("req-exc")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("prompt_studio.pipeline").exception("stage failed")
    finally:
        request_id_var.reset(token)
    (line,) = json_lines()
    assert line["request_id"] == "req-exc"
    assert "ValueError: boom" in line["exc_info"]


def test_celery_workers_keep_the_json_handlers(monkeypatch):
    """Celery would swap the root handlers for its own text format; the project answers setup_logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr("celery.app.log.Logging._setup", False)
    try:
        app.log.setup_logging_subsystem(loglevel="INFO")
        assert root.handlers == handlers
        assert root.level == logging.INFO
    finally:
        root.setLevel(level)
