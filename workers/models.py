from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """Last time a worker consuming `queue` ran the heartbeat task: liveness per queue for operators."""

    queue = models.CharField(max_length=32)
    hostname = models.CharField(max_length=255)
    seen_at = models.DateTimeField(default=timezone.now)
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "hostname"], name="uniq_heartbeat_queue_host")]
        ordering = ["queue", "hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} on {self.queue}"
