"""Celery entry points. Thin: load by id, call a service, record the outcome (STYLE.md → Tasks)."""

from __future__ import annotations

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from workers.models import WorkerHeartbeat


@shared_task(name="workers.heartbeat", bind=True, acks_late=True, ignore_result=True, soft_time_limit=10, time_limit=20)
def heartbeat(self, queue: str) -> None:  # noqa: ANN001
    """Record that a worker on `queue` is alive (scheduled by beat for every queue)."""
    hostname = self.request.hostname or "unknown"
    updated = WorkerHeartbeat.objects.filter(queue=queue, hostname=hostname).update(
        seen_at=timezone.now(), beats=F("beats") + 1
    )
    if not updated:
        WorkerHeartbeat.objects.get_or_create(queue=queue, hostname=hostname, defaults={"beats": 1})
