"""Bench-only settings for bench/pipeline.py: the product's settings, the bench URLconf, a no-op task.

The no-op task (`bench.noop`, reports back on a Redis list) is defined here so every process that
loads these settings — gunicorn and the worker — registers it without touching the product's tasks.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench._pipeline_urls"

from celery import shared_task  # noqa: E402


@shared_task(name="bench.noop", ignore_result=True)
def noop(reply_key: str) -> None:
    import redis  # the bench's reply channel

    redis.Redis.from_url(CELERY_BROKER_URL).rpush(reply_key, "1")  # noqa: F405
