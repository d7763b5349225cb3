"""Prompt Studio: history, saved prompts (list, details, edit, soft delete, drafts, run), per-prompt analytics."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.models import Membership
from analytics.selectors import parse_moment, prompt_analytics, window_for
from config.api import request_api_key
from config.inputs import IdField, StrictBooleanField, StrictCharField, int_param
from config.pagination import EnvelopePagination
from config.responses import envelope
from prompts import selectors, services
from prompts.api import processing_body
from prompts.filters import HistoryFilter, PromptFilter
from prompts.models import ExecutionStatus, Prompt, PromptExecution

TAGS = ["prompt-studio"]


def history_item(execution: PromptExecution) -> dict[str, Any]:
    generated = execution.generated_query
    return {
        "execution_id": execution.pk,
        "prompt_id": execution.prompt_id,
        "prompt_text": execution.prompt_text,
        "name": execution.name,
        "tags": execution.tags,
        "status": execution.status,
        "error_code": execution.error_code or None,
        "ai_model": execution.ai_model,
        "data_source_ids": execution.data_source_ids,
        "template_id": execution.template_id,
        "generated_query_text": generated.sql_text if generated else None,
        "rows_returned": execution.rows_returned,
        "total_duration_ms": execution.total_duration_ms,
        "started_at": execution.started_at,
        "completed_at": execution.completed_at,
        "saved": execution.prompt_id is not None,
    }


def _filtered(request: Request, queryset: Any, filterset_class: type) -> Any:
    filterset = filterset_class(data=request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise serializers.ValidationError(filterset.errors)
    return filterset.qs


def _paginate(request: Request, queryset: Any, view: APIView, render: Any, message: str = "OK") -> Response:
    paginator = EnvelopePagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([render(item) for item in page], message)


def _paginate_executions(request: Request, queryset: Any, view: APIView, message: str) -> Response:
    """Count and page over ids only (an index-only scan on the history index), then load the page's rows.

    OFFSET over full rows would read every skipped row from the heap: page 500 would touch 10,000 rows.
    """
    paginator = EnvelopePagination()
    ids = paginator.paginate_queryset(queryset.values_list("id", flat=True), request, view=view)
    rows = PromptExecution.objects.select_related("generated_query").in_bulk(ids)
    return paginator.get_paginated_response([history_item(rows[i]) for i in ids if i in rows], message)


class HistoryView(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter(n, str)
            for n in (
                "status",
                "data_source_id",
                "ai_model",
                "tag",
                "from",
                "to",
                "q",
                "saved",
                "error_code",
                "page",
                "page_size",
            )
        ],
    )
    def get(self, request: Request) -> Response:
        qs = selectors.history_for(user=request.user, api_key=request_api_key(request))
        qs = _filtered(request, qs, HistoryFilter)
        return _paginate_executions(request, qs, self, "Prompt history")


class HistoryClearView(APIView):
    @extend_schema(tags=TAGS, parameters=[OpenApiParameter("before", str), OpenApiParameter("workspace_id", int)])
    def delete(self, request: Request) -> Response:
        before = None
        if request.query_params.get("before"):
            try:
                # A bare date means "before that day starts": the day itself is kept.
                before = parse_moment(request.query_params["before"], end=False)
            except ValueError as exc:
                raise serializers.ValidationError({"before": [str(exc)]}) from None
        memberships = account_selectors.memberships_for(user=request.user, api_key=request_api_key(request))
        workspace_ids = [m.workspace_id for m in memberships]
        wanted = int_param(request, "workspace_id")
        if wanted is not None:
            workspace_ids = [w for w in workspace_ids if w == wanted]
        cleared = services.history_clear(user_id=request.user.id, workspace_ids=workspace_ids, before=before)
        return envelope({"cleared": cleared}, f"Cleared {cleared} execution(s) from history")


class PromptIn(serializers.Serializer):
    prompt_text = StrictCharField(min_length=1, max_length=10_000)
    workspace_id = IdField(required=False, allow_null=True)
    data_source_ids = serializers.ListField(child=IdField(), min_length=1, max_length=20)
    schema_names = serializers.ListField(child=StrictCharField(max_length=255), required=False, default=list)
    name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
    tags = serializers.ListField(child=StrictCharField(max_length=50), required=False, default=list, max_length=20)
    ai_model = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    is_shared = StrictBooleanField(required=False, default=False)


class PromptPatch(serializers.Serializer):
    prompt_text = StrictCharField(min_length=1, max_length=10_000, required=False)
    data_source_ids = serializers.ListField(child=IdField(), min_length=1, max_length=20, required=False)
    schema_names = serializers.ListField(child=StrictCharField(max_length=255), required=False)
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    tags = serializers.ListField(child=StrictCharField(max_length=50), required=False, max_length=20)
    ai_model = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    is_shared = StrictBooleanField(required=False)


def prompt_item(prompt: Prompt) -> dict[str, Any]:
    return {
        "id": prompt.pk,
        "prompt_id": prompt.pk,
        "workspace_id": prompt.workspace_id,
        "owner_id": prompt.owner_id,
        "name": prompt.name,
        "prompt_text": prompt.prompt_text,
        "tags": prompt.tags,
        "data_source_ids": prompt.data_source_ids,
        "selected_schema_names": prompt.schema_names,
        "ai_model": prompt.ai_model,
        "status": prompt.status,
        "is_shared": prompt.is_shared,
        "execution_count": prompt.execution_count,
        "last_executed_at": prompt.last_executed_at,
        "created_at": prompt.created_at,
        "updated_at": prompt.updated_at,
    }


def _membership_for(request: Request, workspace_id: int) -> Membership:
    return account_selectors.membership_get(
        user=request.user, workspace_id=workspace_id, api_key=request_api_key(request)
    )


class PromptListView(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[OpenApiParameter(n, str) for n in ("tag", "status", "q", "ordering", "page", "page_size")],
    )
    def get(self, request: Request) -> Response:
        qs = selectors.prompts_visible(user=request.user, api_key=request_api_key(request)).order_by(
            "-created_at", "-id"
        )
        qs = _filtered(request, qs, PromptFilter)
        return _paginate(request, qs, self, prompt_item, "Prompts")

    @extend_schema(tags=TAGS, request=PromptIn)
    def post(self, request: Request) -> Response:
        data = PromptIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        membership = account_selectors.membership_resolve(
            user=request.user, workspace_id=v.pop("workspace_id", None), api_key=request_api_key(request)
        )
        prompt = services.prompt_create(membership=membership, **v)
        return envelope(prompt_item(prompt), "Prompt saved as draft", status=201)


class PromptDetailView(APIView):
    @extend_schema(tags=TAGS)
    def get(self, request: Request, prompt_id: int) -> Response:
        prompt = selectors.prompt_get(user=request.user, prompt_id=prompt_id, api_key=request_api_key(request))
        executions = PromptExecution.objects.filter(prompt=prompt)
        stats = executions.aggregate(
            total=Count("id"),
            completed=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
            failed=Count("id", filter=Q(status=ExecutionStatus.FAILED)),
        )
        finished = stats["completed"] + stats["failed"]
        last = executions.select_related("generated_query").order_by("-created_at", "-id").first()
        body = prompt_item(prompt)
        body.update(
            {
                "execution_count": stats["total"],
                "success_rate": round(stats["completed"] / finished, 4) if finished else None,
                "last_execution": history_item(last) if last else None,
            }
        )
        return envelope(body, "Prompt details")

    @extend_schema(tags=TAGS, request=PromptPatch)
    def patch(self, request: Request, prompt_id: int) -> Response:
        prompt = selectors.prompt_get(user=request.user, prompt_id=prompt_id, api_key=request_api_key(request))
        data = PromptPatch(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        prompt = services.prompt_update(
            membership=_membership_for(request, prompt.workspace_id), prompt=prompt, **changes
        )
        return envelope(prompt_item(prompt), "Prompt updated")

    @extend_schema(tags=TAGS)
    def delete(self, request: Request, prompt_id: int) -> Response:
        prompt = selectors.prompt_get(user=request.user, prompt_id=prompt_id, api_key=request_api_key(request))
        services.prompt_delete(membership=_membership_for(request, prompt.workspace_id), prompt=prompt)
        return envelope({"id": prompt_id, "deleted": True}, "Prompt deleted")


class PromptExecutionsView(APIView):
    @extend_schema(tags=TAGS)
    def get(self, request: Request, prompt_id: int) -> Response:
        prompt = selectors.prompt_get(user=request.user, prompt_id=prompt_id, api_key=request_api_key(request))
        qs = (
            PromptExecution.objects.filter(prompt=prompt)
            .select_related("generated_query")
            .order_by("-created_at", "-id")
        )
        return _paginate(request, qs, self, history_item, "Prompt executions")


class PromptAnalyticsView(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("period", str, enum=["24h", "7d", "30d", "90d", "custom"]),
            OpenApiParameter("from", str),
            OpenApiParameter("to", str),
        ],
    )
    def get(self, request: Request, prompt_id: int) -> Response:
        prompt = selectors.prompt_get(user=request.user, prompt_id=prompt_id, api_key=request_api_key(request))
        params = request.query_params
        window = window_for(params.get("period"), params.get("from"), params.get("to"), default="30d")
        body = prompt_analytics(PromptExecution.objects.filter(prompt=prompt), window)
        body["prompt_id"] = prompt.pk
        return envelope(body, "Prompt analytics")


class PromptExecuteView(APIView):
    @extend_schema(tags=TAGS, request=None)
    def post(self, request: Request, prompt_id: int) -> Response:
        prompt = selectors.prompt_get(user=request.user, prompt_id=prompt_id, api_key=request_api_key(request))
        execution = services.prompt_execute(membership=_membership_for(request, prompt.workspace_id), prompt=prompt)
        return envelope(processing_body(execution), "Prompt execution started")
