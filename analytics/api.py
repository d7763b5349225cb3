"""GET /api/v1/prompts/analytics/query-analytics."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.models import Role
from analytics import selectors
from config.api import request_api_key
from config.errors import Forbidden
from config.inputs import int_param
from config.responses import envelope
from prompts.models import PromptExecution


class QueryAnalyticsView(APIView):
    @extend_schema(
        tags=["prompt-studio"],
        parameters=[
            OpenApiParameter("period", str, enum=["24h", "7d", "30d", "90d", "custom"]),
            OpenApiParameter("from", str),
            OpenApiParameter("to", str),
            OpenApiParameter("workspace_id", int),
            OpenApiParameter("data_source_id", int),
            OpenApiParameter("user_id", int, description="Admins only"),
        ],
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        window = selectors.window_for(params.get("period"), params.get("from"), params.get("to"))
        api_key = request_api_key(request)
        workspace_id = int_param(request, "workspace_id")
        if workspace_id is not None:
            memberships = [
                account_selectors.membership_get(user=request.user, workspace_id=workspace_id, api_key=api_key)
            ]
        else:
            memberships = list(account_selectors.memberships_for(user=request.user, api_key=api_key))
        admin_ws = [m.workspace_id for m in memberships if m.role == Role.ADMIN]
        member_ws = [m.workspace_id for m in memberships]
        # Admins see their workspaces' executions; everyone else their own.
        qs = PromptExecution.objects.filter(
            Q(workspace_id__in=admin_ws) | Q(workspace_id__in=member_ws, user_id=request.user.id)
        )
        user_id = int_param(request, "user_id")
        if user_id is not None:
            if not admin_ws:
                raise Forbidden("Only workspace admins may filter analytics by user")
            qs = qs.filter(user_id=user_id, workspace_id__in=admin_ws)
        data_source_id = int_param(request, "data_source_id")
        if data_source_id is not None:
            qs = qs.filter(data_sources__id=data_source_id)
        body = selectors.query_analytics(qs, window)
        body["filters"] = {"workspace_id": workspace_id, "data_source_id": data_source_id, "user_id": user_id}
        return envelope(body, "Query analytics")
