"""Request and execution ids on every log line; JSON lines in production."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any

from celery.signals import setup_logging

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
execution_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("execution_id", default="-")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id == "-":
            # django.request logs 4xx/5xx after the middleware has returned (and reset the variable),
            # but hands over the request itself.
            request_id = getattr(getattr(record, "request", None), "request_id", "-")
        record.request_id = request_id
        record.execution_id = execution_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "execution_id": getattr(record, "execution_id", "-"),
        }
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


@setup_logging.connect
def keep_django_logging(*, loglevel: Any = None, **kwargs: Any) -> None:
    """Celery replaces the root handlers with its own text format unless someone answers this signal.

    Django has already configured LOGGING (JSON lines with request and execution ids) when the worker
    starts; keep it, and honour the worker's --loglevel.
    """
    if loglevel:
        logging.getLogger().setLevel(loglevel)
