"""Prompt Studio: execute a prompt, poll its execution, cancel it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.authentication import HOT_PATH_AUTHENTICATION
from config.api import request_api_key
from config.inputs import IdField, StrictBooleanField, StrictCharField
from config.responses import envelope
from prompts import selectors, services
from prompts.models import ExecutionStatus, PromptExecution

TAGS = ["prompt-studio"]


class ExecutePromptIn(serializers.Serializer):
    prompt_text = StrictCharField(min_length=1, max_length=10_000)
    workspace_id = IdField(required=False, allow_null=True)
    selected_data_source_ids = serializers.ListField(child=IdField(), min_length=1, max_length=20)
    selected_schema_names = serializers.ListField(
        child=StrictCharField(max_length=255), required=False, default=list, max_length=50
    )
    name = StrictCharField(required=False, allow_blank=True, max_length=200, default="")
    save_prompt = StrictBooleanField(required=False, default=False)
    ai_model = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    tags = serializers.ListField(child=StrictCharField(max_length=50), required=False, default=list, max_length=20)


def execution_body(execution: PromptExecution) -> dict[str, Any]:
    """Every field of spec 001's processing / completed / failed bodies, plus sources, columns, masking."""
    generated = execution.generated_query
    return {
        "execution_id": execution.pk,
        "prompt_id": execution.prompt_id,
        "status": execution.status,
        "ai_processing_status": execution.ai_processing_status,
        "query_execution_status": execution.query_execution_status,
        "progress_percentage": execution.progress_percentage,
        "started_at": execution.started_at,
        "ai_processing_started_at": execution.ai_processing_started_at,
        "ai_processing_completed_at": execution.ai_processing_completed_at,
        "ai_response_time_ms": execution.ai_response_time_ms,
        "query_execution_started_at": execution.query_execution_started_at,
        "query_execution_completed_at": execution.query_execution_completed_at,
        "query_execution_duration_ms": execution.query_execution_duration_ms,
        "total_duration_ms": execution.total_duration_ms,
        "completed_at": execution.completed_at,
        "generated_query_id": generated.pk if generated else None,
        "generated_query_text": generated.sql_text if generated else None,
        "rows_returned": execution.rows_returned,
        "result_preview": execution.result_preview,
        "columns": execution.result_columns,
        "masked_columns": execution.masked_columns,
        "warnings": execution.warnings,
        "ai_metadata": execution.ai_metadata or None,
        "data_source_ids": execution.data_source_ids,
        "selected_schema_names": execution.schema_names,
        "ai_model": execution.ai_model,
        "error_message": execution.error_message or None,
        "error_code": execution.error_code or None,
    }


def processing_body(execution: PromptExecution) -> dict[str, Any]:
    return {
        "execution_id": execution.pk,
        "prompt_id": execution.prompt_id,
        "status": execution.status,
        "ai_processing_status": execution.ai_processing_status,
        "query_execution_status": execution.query_execution_status,
        "started_at": execution.started_at,
        "progress_percentage": execution.progress_percentage,
    }


MESSAGES = {
    ExecutionStatus.PROCESSING: "Prompt execution in progress",
    ExecutionStatus.COMPLETED: "Prompt executed successfully",
    ExecutionStatus.FAILED: "Prompt execution failed",
}


class ExecutePromptView(APIView):
    authentication_classes = HOT_PATH_AUTHENTICATION  # membership_resolve checks the user is active

    @extend_schema(
        tags=TAGS,
        request=ExecutePromptIn,
        examples=[
            OpenApiExample(
                "Spec example",
                value={
                    "prompt_text": "Show me total sales by region for the last quarter",
                    "workspace_id": 1,
                    "selected_data_source_ids": [1],
                    "selected_schema_names": [],
                    "name": "Q4 Sales Report",
                    "save_prompt": True,
                    "ai_model": "builtin",
                    "tags": ["sales", "quarterly"],
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = ExecutePromptIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        membership = account_selectors.membership_resolve(
            user=request.user, workspace_id=v.get("workspace_id"), api_key=request_api_key(request)
        )
        execution = services.execution_create(
            membership=membership,
            prompt_text=v["prompt_text"],
            data_source_ids=v["selected_data_source_ids"],
            schema_names=v["selected_schema_names"],
            name=v["name"],
            save_prompt=v["save_prompt"],
            ai_model=v.get("ai_model") or None,
            tags=v["tags"],
        )
        return envelope(processing_body(execution), "Prompt execution started")


class ExecutionDetailView(APIView):
    authentication_classes = HOT_PATH_AUTHENTICATION  # polled: execution_get checks the user is active

    @extend_schema(tags=TAGS)
    def get(self, request: Request, execution_id: int) -> Response:
        execution = selectors.execution_get(
            user=request.user, execution_id=execution_id, api_key=request_api_key(request)
        )
        return envelope(execution_body(execution), MESSAGES[execution.status])


class ExecutionCancelView(APIView):
    authentication_classes = HOT_PATH_AUTHENTICATION

    @extend_schema(tags=TAGS, request=None)
    def post(self, request: Request, execution_id: int) -> Response:
        execution = selectors.execution_get(
            user=request.user, execution_id=execution_id, api_key=request_api_key(request)
        )
        execution = services.execution_cancel(execution=execution)
        return envelope(execution_body(execution), "Prompt execution cancelled")
