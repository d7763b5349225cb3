"""Prompts, their executions, and the SQL generated for them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.db.models.functions import MD5, Cast, Concat
from django.utils import timezone

from accounts.models import Workspace


class PromptStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Prompt(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="prompts")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prompts")
    name = models.CharField(max_length=200, blank=True)
    prompt_text = models.TextField()
    tags = models.JSONField(default=list, blank=True)
    data_source_ids = models.JSONField(default=list, blank=True)
    schema_names = models.JSONField(default=list, blank=True)
    ai_model = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=PromptStatus.choices, default=PromptStatus.DRAFT)
    is_shared = models.BooleanField(default=False, help_text="Visible to every member of the workspace")
    execution_count = models.PositiveIntegerField(default=0)
    last_executed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "owner", "-created_at"], name="prompt_ws_owner_created")]

    def __str__(self) -> str:
        return self.name or self.prompt_text[:60]


class ExecutionStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class StageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Stage(models.TextChoices):
    """Where the pipeline is. A task claims `queued_x` → `x`; the reaper watches `x` heartbeats."""

    QUEUED_AI = "queued_ai", "Waiting for the AI worker"
    AI = "ai", "Generating SQL"
    QUEUED_QUERY = "queued_query", "Waiting for the query worker"
    QUERY = "query", "Running the query"
    DONE = "done", "Done"


class ErrorCode(models.TextChoices):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    AI_GENERATION_ERROR = "AI_GENERATION_ERROR"
    SQL_VALIDATION_ERROR = "SQL_VALIDATION_ERROR"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    DATA_SOURCE_UNAVAILABLE = "DATA_SOURCE_UNAVAILABLE"
    QUERY_EXECUTION_ERROR = "QUERY_EXECUTION_ERROR"
    QUERY_TIMEOUT = "QUERY_TIMEOUT"
    EXECUTION_TIMEOUT = "EXECUTION_TIMEOUT"
    CANCELLED = "CANCELLED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


# Covering indexes (PostgreSQL INCLUDE) for query analytics over a workspace's or a user's window: one per pass,
# each narrow, with fixed-width columns first, so a scan reads little and decodes little per row (a single wide
# index was slower than the heap). analytics.selectors reads exactly these columns.
_CUBE_COLUMNS = [
    "rows_returned",
    "total_duration_ms",
    "query_execution_duration_ms",
    "tokens_in",
    "tokens_out",
    "cost",
    "analytics_key",
]
_SPREAD_COLUMNS = [
    "id",
    "ai_response_time_ms",
    "query_execution_duration_ms",
    "total_duration_ms",
    "status",
    "prompt_hash",
]


class PromptExecution(models.Model):
    # No index of their own: the covering indexes in Meta lead with them, and every index is written on
    # each execution INSERT and on each stage's UPDATE.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="executions", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="executions", db_index=False
    )
    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions")

    # The request, as received.
    prompt_text = models.TextField()
    name = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)
    save_prompt = models.BooleanField(default=False)
    ai_model = models.CharField(max_length=100)
    data_source_ids = models.JSONField(default=list)
    # The same sources as rows, so history and analytics filter by source in the database.
    data_sources = models.ManyToManyField("connectors.DataSource", blank=True, related_name="prompt_executions")
    schema_names = models.JSONField(default=list, blank=True)
    template = models.ForeignKey(
        "templates_app.PromptTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    template_parameters = models.JSONField(default=dict, blank=True)

    # Progress, as clients poll it.
    status = models.CharField(max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.PROCESSING)
    ai_processing_status = models.CharField(max_length=16, choices=StageStatus.choices, default=StageStatus.IN_PROGRESS)
    query_execution_status = models.CharField(max_length=16, choices=StageStatus.choices, null=True, blank=True)
    progress_percentage = models.PositiveSmallIntegerField(default=10)
    started_at = models.DateTimeField(default=timezone.now)
    ai_processing_started_at = models.DateTimeField(null=True, blank=True)
    ai_processing_completed_at = models.DateTimeField(null=True, blank=True)
    ai_response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    query_execution_started_at = models.DateTimeField(null=True, blank=True)
    query_execution_completed_at = models.DateTimeField(null=True, blank=True)
    query_execution_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    total_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    # Results.
    generated_query = models.ForeignKey(
        "GeneratedQuery", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rows_returned = models.PositiveIntegerField(null=True, blank=True)
    result_preview = models.JSONField(null=True, blank=True)
    result_columns = models.JSONField(default=list, blank=True)
    masked_columns = models.JSONField(default=list, blank=True)
    result_truncated = models.BooleanField(default=False)
    warnings = models.JSONField(default=list, blank=True)
    ai_metadata = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, choices=ErrorCode.choices, blank=True)

    # Worker bookkeeping: stage claims, liveness, cancellation.
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.QUEUED_AI)
    stage_claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    stage_attempts = models.PositiveSmallIntegerField(default=0)
    correction_round = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
    query_backend = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    hidden_from_history = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # For analytics, so a dashboard over a million runs reads one narrow index instead of joins and long text.
    # What the model cost, summed over every generated query of the run (each correction round): the pipeline
    # adds a query's tokens and cost here in the transaction that records it.
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.FloatField(default=0)
    # Kept by the database. prompt_text can't be indexed (up to 10,000 characters): top prompts group by its md5,
    # held as a uuid (16 bytes, where the hex digest takes 33).
    prompt_hash = models.GeneratedField(
        expression=Cast(MD5("prompt_text"), models.UUIDField()), output_field=models.UUIDField(), db_persist=True
    )
    # Every dimension the dashboard breaks runs down by, as one short string: grouping a million rows by one
    # column is far cheaper than by five. "status|error_code|template_id|data_source_ids|ai_model", the model
    # last since only it is free text; analytics.selectors.split_analytics_key() reads it back.
    analytics_key = models.GeneratedField(
        expression=Concat(
            "status",
            Value("|"),
            "error_code",
            Value("|"),
            Cast("template_id", models.TextField()),
            Value("|"),
            Cast("data_source_ids", models.TextField()),
            Value("|"),
            "ai_model",
            output_field=models.TextField(),
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # History pages: the caller's visible rows in order, workspace carried for the scope filter.
            models.Index(
                fields=["user", "hidden_from_history", "-created_at", "-id"],
                include=["workspace"],
                name="exec_user_history",
            ),
            # Query analytics over a workspace's window (an admin) or a user's own (everyone else).
            models.Index(fields=["workspace", "created_at"], include=_CUBE_COLUMNS, name="exec_ws_window_cube"),
            models.Index(
                fields=["workspace", "created_at"], include=["user", *_SPREAD_COLUMNS], name="exec_ws_window_spread"
            ),
            models.Index(
                fields=["user", "created_at"], include=["workspace", *_CUBE_COLUMNS], name="exec_user_window_cube"
            ),
            models.Index(
                fields=["user", "created_at"], include=["workspace", *_SPREAD_COLUMNS], name="exec_user_window_spread"
            ),
            models.Index(fields=["status", "stage", "heartbeat_at"], name="exec_status_stage_hb"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status}: {self.prompt_text[:60]}"


class GeneratedQuery(models.Model):
    """The SQL the model produced for an execution, with every try of the self-correction loop."""

    execution = models.ForeignKey(PromptExecution, on_delete=models.CASCADE, related_name="generated_queries")
    sql_text = models.TextField()
    sql_executed = models.TextField(blank=True, help_text="After row policies and limits were applied")
    dialect = models.CharField(max_length=16)
    model = models.CharField(max_length=100)
    attempts = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.FloatField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "generated queries"

    def __str__(self) -> str:
        return self.sql_text[:80]
