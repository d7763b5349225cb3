"""The Celery app: four queues, routing by task name, reliability settings from config.settings."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("prompt_studio")
app.config_from_object("django.conf:settings", namespace="CELERY")

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
