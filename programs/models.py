"""One row per execute_program call: what was asked, who asked, and what came out.

The provider api_key and the ddn headers (often a bearer token) are secrets: they never go into
`request`. They travel to the worker encrypted in `secrets_encrypted` and are wiped when the run ends.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import ApiKey, Workspace


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class ProgramRun(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="program_runs")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="program_runs")
    # The key's creator: the program runs with their membership (role, row policies, PII/PHI grants).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="program_runs")
    code = models.TextField()
    # {"artifacts": [...], "ai_primitives_llm": {provider, model, api_base}, "ddn": {url, header_names}}
    request = models.JSONField(default=dict)
    secrets_encrypted = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    worker = models.CharField(max_length=255, blank=True)
    output = models.TextField(blank=True)
    error = models.TextField(null=True, blank=True)
    accessed_artifact_ids = models.JSONField(default=list, blank=True)
    modified_artifacts = models.JSONField(default=list, blank=True)
    llm_usages = models.JSONField(default=list, blank=True)
    # {"queued_ms", "run_ms", "total_ms"}
    timings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="programrun_ws_created")]

    def __str__(self) -> str:
        return f"Program run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (RunStatus.COMPLETED, RunStatus.FAILED)
