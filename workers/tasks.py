"""Celery entry points. Thin: load by id, call a service, record the outcome (STYLE.md → Tasks)."""

from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db.models import F
from django.utils import timezone

from connectors.discovery import discovery_run
from connectors.models import DataSource, DiscoveryStatus
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


@shared_task(
    name="workers.discover_data_source",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=600,
    time_limit=630,
)
def discover_data_source(self, source_id: int) -> None:  # noqa: ANN001
    """Read a data source's schema into the catalog (queue `default`)."""
    if not DataSource.objects.filter(pk=source_id, deleted_at__isnull=True).exists():
        return
    try:
        discovery_run(source_id=source_id)
    except SoftTimeLimitExceeded:
        DataSource.objects.filter(pk=source_id).update(
            discovery_status=DiscoveryStatus.FAILED, discovery_error="Discovery exceeded its time limit"
        )
