"""Enqueue after commit, and turn a broker outage into a clean 503 instead of a half-made row."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from kombu.exceptions import KombuError, OperationalError

from config.celery import app
from config.errors import ServiceUnavailable

logger = logging.getLogger("prompt_studio.dispatch")

BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, KombuError, ConnectionError, OSError, TimeoutError)


def send(task_name: str, *, args: list, on_broker_error: Callable[[], None] | None = None) -> None:
    """Send now (the caller has committed). On a broker error run the compensation and raise 503."""
    try:
        app.send_task(task_name, args=args)
    except BROKER_ERRORS as exc:
        logger.error("broker unavailable while sending %s%s: %s", task_name, args, exc)
        if on_broker_error is not None:
            on_broker_error()
        raise ServiceUnavailable("The task queue is unavailable; nothing was started. Try again shortly.") from None


def send_on_commit(task_name: str, *, args: list, on_broker_error: Callable[[], None] | None = None) -> None:
    """Send once the surrounding transaction commits (immediately outside one); errors propagate to the caller."""
    transaction.on_commit(lambda: send(task_name, args=args, on_broker_error=on_broker_error))
