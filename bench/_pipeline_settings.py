"""Bench-only settings for bench/pipeline.py: the product's settings, the bench URLconf, a no-op task.

The no-op task (`bench.noop`, reports back on a Redis list) is defined here so every process that
loads these settings — gunicorn and the worker — registers it without touching the product's tasks.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench._pipeline_urls"

from celery import shared_task  # noqa: E402

_replies = None  # the reply channel's client, made once per worker process (a no-op should not connect)


@shared_task(name="bench.noop", ignore_result=True)
def noop(reply_key: str) -> None:
    global _replies
    if _replies is None:
        import redis

        _replies = redis.Redis.from_url(CELERY_BROKER_URL)  # noqa: F405
    _replies.rpush(reply_key, "1")
