"""History review for operators: executions (timeline, SQL as generated and as run, attempts, cost,
masking, preview) with retry / cancel actions, and prompts including soft-deleted ones."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from accounts.models import Membership
from config.admin_scoping import OrgScopedAdmin, ReadOnlyAdmin
from config.errors import DomainError
from prompts.models import ExecutionStatus, GeneratedQuery, Prompt, PromptExecution
from prompts.services import execution_cancel, execution_create, prompt_restore


def _pre(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    return format_html('<pre style="white-space: pre-wrap; max-width: 100ch">{}</pre>', text or "—")


class GeneratedQueryInline(admin.StackedInline):
    model = GeneratedQuery
    extra = 0
    can_delete = False
    fields = [
        "model",
        "dialect",
        "sql_text",
        "sql_executed",
        "confidence",
        "tokens_in",
        "tokens_out",
        "cost",
        "latency_ms",
        "attempts_display",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="attempts")
    def attempts_display(self, obj: GeneratedQuery) -> str:
        return _pre(obj.attempts)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PromptExecution)
class PromptExecutionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "short_prompt",
        "user",
        "workspace",
        "status",
        "error_code",
        "ai_model",
        "progress_percentage",
        "total_duration_ms",
        "started_at",
    ]
    list_filter = [
        "status",
        "error_code",
        "ai_model",
        ("data_sources", admin.RelatedOnlyFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
        "started_at",
        "workspace",
    ]
    search_fields = ["prompt_text", "generated_query__sql_text", "name"]
    date_hierarchy = "started_at"
    list_select_related = ["user", "workspace"]
    actions = ["retry_failed", "cancel_running"]
    inlines = [GeneratedQueryInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "prompt_text",
                    "user",
                    "workspace",
                    "prompt",
                    "template",
                    "ai_model",
                    "status",
                    "error_code",
                    "error_message",
                ]
            },
        ),
        ("Timeline", {"fields": ["timeline"]}),
        ("SQL", {"fields": ["generated_sql", "executed_sql"]}),
        ("AI", {"fields": ["ai_metadata_display"]}),
        ("Result", {"fields": ["rows_returned", "masked_columns", "warnings", "preview"]}),
        (
            "Worker",
            {
                "fields": [
                    "stage",
                    "stage_attempts",
                    "correction_round",
                    "worker",
                    "heartbeat_at",
                    "query_backend",
                    "cancel_requested",
                ],
                "classes": ["collapse"],
            },
        ),
    ]
    # The detail page is read-only: every field shown is a read-only field.
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    @admin.display(description="prompt")
    def short_prompt(self, obj: PromptExecution) -> str:
        return obj.prompt_text[:80]

    @admin.display(description="timeline")
    def timeline(self, obj: PromptExecution) -> str:
        rows = [
            ("Accepted", obj.started_at, None),
            ("SQL generation started", obj.ai_processing_started_at, None),
            ("SQL generation finished", obj.ai_processing_completed_at, obj.ai_response_time_ms),
            ("Query started", obj.query_execution_started_at, None),
            ("Query finished", obj.query_execution_completed_at, obj.query_execution_duration_ms),
            ("Ended", obj.completed_at, obj.total_duration_ms),
        ]
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((label, at or "—", f"{ms} ms" if ms is not None else "") for label, at, ms in rows),
        )
        return format_html(
            '<table class="timeline"><tr><th>stage</th><th>at</th><th>duration</th></tr>{}</table>', body
        )

    @admin.display(description="generated SQL")
    def generated_sql(self, obj: PromptExecution) -> str:
        return _pre(obj.generated_query.sql_text if obj.generated_query else "")

    @admin.display(description="SQL actually run (after row policies and limits)")
    def executed_sql(self, obj: PromptExecution) -> str:
        return _pre(obj.generated_query.sql_executed if obj.generated_query else "")

    @admin.display(description="model, attempts, tokens and cost")
    def ai_metadata_display(self, obj: PromptExecution) -> str:
        return _pre(obj.ai_metadata)

    @admin.display(description="preview")
    def preview(self, obj: PromptExecution) -> str:
        rows = (obj.result_preview or [])[:20]
        if not rows:
            return "—"
        columns = list(rows[0].keys())
        head = format_html_join("", "<th>{}</th>", ((c,) for c in columns))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((row.get(c),) for c in columns)),) for row in rows),
        )
        return format_html('<table class="preview"><tr>{}</tr>{}</table>', head, body)

    @admin.action(description="Retry selected failed executions (as their original user)")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[PromptExecution]) -> None:
        retried = 0
        for execution in queryset.filter(status=ExecutionStatus.FAILED):
            membership = Membership.objects.filter(
                user_id=execution.user_id, workspace_id=execution.workspace_id
            ).first()
            if membership is None:
                continue
            try:
                execution_create(
                    membership=membership,
                    prompt_text=execution.prompt_text,
                    data_source_ids=execution.data_source_ids,
                    schema_names=execution.schema_names,
                    name=execution.name,
                    save_prompt=execution.save_prompt,
                    ai_model=execution.ai_model,
                    tags=execution.tags,
                    prompt=execution.prompt,
                    template_id=execution.template_id,
                    template_parameters=execution.template_parameters,
                )
                retried += 1
            except DomainError as exc:
                self.message_user(request, f"#{execution.pk}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Started {retried} new execution(s).")

    @admin.action(description="Cancel selected running executions")
    def cancel_running(self, request: HttpRequest, queryset: QuerySet[PromptExecution]) -> None:
        cancelled = 0
        for execution in queryset.filter(status=ExecutionStatus.PROCESSING):
            try:
                execution_cancel(execution=execution)
                cancelled += 1
            except DomainError:
                continue
        self.message_user(request, f"Cancelled {cancelled} execution(s).")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Read-only detail page; the change permission is what lets actions run on the list.
        return obj is None and self._operator(request)


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Live"), ("yes", "Soft-deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        return queryset


@admin.register(Prompt)
class PromptAdmin(OrgScopedAdmin):
    list_display = [
        "id",
        "name",
        "owner",
        "workspace",
        "status",
        "is_shared",
        "execution_count",
        "last_executed_at",
        "deleted_at",
    ]
    list_filter = [DeletedFilter, "status", "is_shared", "workspace"]
    search_fields = ["name", "prompt_text"]
    readonly_fields = ["execution_count", "last_executed_at", "created_at", "updated_at", "deleted_at"]
    actions = ["restore"]

    @admin.action(description="Restore selected soft-deleted prompts")
    def restore(self, request: HttpRequest, queryset: QuerySet[Prompt]) -> None:
        restored = 0
        for prompt in queryset.filter(deleted_at__isnull=False):
            prompt_restore(prompt=prompt)
            restored += 1
        self.message_user(request, f"Restored {restored} prompt(s).")
