"""The Celery app: four queues, routing by task name, reliability settings from config.settings."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("prompt_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task, so each
# pipeline stage paid a new PostgreSQL connection (a backend fork, several ms). Connections follow
# Django's own rule instead, as between web requests: kept up to DATABASE_CONN_MAX_AGE, closed when
# broken (the fixup only closes after this many tasks).
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000


@task_prerun.connect
@task_postrun.connect
def _recycle_database_connections(**_: object) -> None:
    close_old_connections()


QUEUES = ("ai", "query", "programs", "default")

# Task name -> queue. Names are stable (Flower, operators and redeliveries rely on them).
TASK_QUEUES = {
    "workers.generate_sql": "ai",
    "workers.execute_query": "query",
    "workers.run_program": "programs",
}


def route_task(name: str, args, kwargs, options, task=None, **kw):  # noqa: ANN001 - Celery's router signature
    return {"queue": TASK_QUEUES.get(name, "default")}


app.conf.task_queues = [Queue(name, routing_key=name) for name in QUEUES]
app.conf.task_routes = (route_task,)
app.autodiscover_tasks(["workers"])

# Beat: a heartbeat through every queue, so operators see which queues have live workers.
app.conf.beat_schedule = {
    f"heartbeat-{queue}": {"task": "workers.heartbeat", "schedule": 60.0, "args": (queue,), "options": {"queue": queue}}
    for queue in QUEUES
}
app.conf.beat_schedule["reap-executions"] = {"task": "workers.reap_executions", "schedule": 30.0}
app.conf.beat_schedule["reap-program-runs"] = {"task": "workers.reap_program_runs", "schedule": 60.0}
