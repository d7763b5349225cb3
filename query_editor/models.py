"""Saved queries, per-user tab drafts and the execution history of the SQL editor."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Workspace
from connectors.models import DataSource


class SavedQuery(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="saved_queries")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_queries")
    data_source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="saved_queries")
    title = models.CharField(max_length=200)
    sql_text = models.TextField()
    is_shared = models.BooleanField(default=False, help_text="Visible to every member of the workspace")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "saved queries"
        ordering = ["-updated_at", "id"]
        indexes = [models.Index(fields=["workspace", "owner"]), models.Index(fields=["workspace", "is_shared"])]

    def __str__(self) -> str:
        return self.title


class TabDraft(models.Model):
    """The whole editor tab state of one user in one workspace, replaced on every save."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tab_drafts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tab_drafts")
    tabs = models.JSONField(default=list, blank=True)
    active_tab_id = models.CharField(max_length=100, null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="uniq_tab_draft_user_workspace")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace.slug}: {len(self.tabs)} tabs"


class HistoryStatus(models.TextChoices):
    SUCCESS = "success", "Success"
    ERROR = "error", "Error"


class HistoryKind(models.TextChoices):
    EXECUTE = "execute", "Execute"
    EXPORT = "export", "Export"


class QueryHistory(models.Model):
    """One row per execution (grid or export), success or failure. Never edited after the fact."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="query_history")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="query_history")
    data_source = models.ForeignKey(
        DataSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="query_history"
    )
    # The connector id as the caller sent it: kept when the source is gone or was never found.
    connector_id = models.UUIDField(null=True, blank=True)
    kind = models.CharField(max_length=8, choices=HistoryKind.choices, default=HistoryKind.EXECUTE)
    sql_text = models.TextField()
    row_count = models.PositiveIntegerField(null=True, blank=True)
    execution_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=HistoryStatus.choices)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    executed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "query history"
        ordering = ["-executed_at", "id"]
        indexes = [
            models.Index(fields=["workspace", "user", "-executed_at"]),
            models.Index(fields=["workspace", "-executed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.kind} by {self.user} at {self.executed_at:%Y-%m-%d %H:%M:%S}"
