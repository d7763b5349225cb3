"""/api/v1/spaces/{slug}/query/…: the SQL editor API of spec 004.

Bare bodies, errors as {"detail", "code"}, list pagination in X-Pagination-* headers. A caller who
is not a member of the space gets 404 before anything else is looked at.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import orjson
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import HOT_PATH_AUTHENTICATION
from accounts.models import Membership
from config.api import request_api_key
from config.errors import NotFound
from config.pagination import HeaderPagination
from config.throttling import UserRateThrottle
from query_editor import ai, export, selectors, services
from query_editor.models import HistoryStatus, QueryHistory, SavedQuery, TabDraft
from query_editor.throttling import QueryEditorThrottle

TAGS = ["query-editor"]


class IsSpaceMember(BasePermission):
    """Resolves the caller's membership of `{slug}` (404 when there is none) before throttling."""

    def has_permission(self, request: Request, view: Any) -> bool:
        view.membership = selectors.space_membership(
            user=request.user, slug=view.kwargs["slug"], api_key=request_api_key(request)
        )
        return True


class SpaceView(APIView):
    error_style = "detail"
    permission_classes = [IsAuthenticated, IsSpaceMember]
    membership: Membership


def _validated(serializer: serializers.Serializer) -> dict[str, Any]:
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _uuid_or_404(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"{what} {value} not found") from None


def _uuid_param(request: Request, name: str) -> UUID | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise serializers.ValidationError({name: [f"A UUID is required, got {raw!r}."]}) from None


# --- execute, connectors, autocomplete ----------------------------------------------------------


class ExecuteIn(serializers.Serializer):
    connector_id = serializers.UUIDField()
    sql = serializers.CharField(max_length=services.MAX_SQL_CHARS, trim_whitespace=False)
    row_limit = serializers.IntegerField(required=False, default=services.DEFAULT_ROW_LIMIT, min_value=1)


class ColumnOut(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    masked = serializers.BooleanField()


class ExecuteOut(serializers.Serializer):
    columns = ColumnOut(many=True)
    rows = serializers.ListField(child=serializers.DictField())
    row_count = serializers.IntegerField()
    execution_ms = serializers.IntegerField()
    warnings = serializers.ListField(child=serializers.CharField())


class ExecuteView(SpaceView):
    authentication_classes = HOT_PATH_AUTHENTICATION  # space_membership checks the user is active
    throttle_classes = [UserRateThrottle, QueryEditorThrottle]

    @extend_schema(tags=TAGS, request=ExecuteIn, responses=ExecuteOut)
    def post(self, request: Request, slug: str) -> HttpResponse:
        fields = _validated(ExecuteIn(data=request.data))
        result = services.query_execute(membership=self.membership, **fields)
        # Rows are already JSON-safe: they are written out once, by orjson, without a serializer.
        return _json_response(
            {
                "columns": [{"name": c.name, "type": c.type, "masked": c.masked} for c in result.columns],
                "rows": result.rows,
                "row_count": result.row_count,
                "execution_ms": result.execution_ms,
                "warnings": result.warnings,
            }
        )


def _json_response(body: dict[str, Any]) -> HttpResponse:
    """`body` as compact UTF-8 JSON, as DRF's JSONRenderer would write it, several times faster."""
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (a huge NUMERIC): the standard library takes any
        content = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return HttpResponse(content, content_type="application/json")


class ConnectorOut(serializers.Serializer):
    id = serializers.UUIDField(source="uuid")
    name = serializers.CharField()
    connector_type = serializers.SerializerMethodField()
    source_system_name = serializers.CharField()

    def get_connector_type(self, obj: Any) -> str:
        return f"query_{obj.connector_type}"


class ConnectorsView(SpaceView):
    @extend_schema(tags=TAGS, responses=ConnectorOut(many=True))
    def get(self, request: Request, slug: str) -> Response:
        return Response(ConnectorOut(selectors.connectors_queryable(membership=self.membership), many=True).data)


class AutocompleteTableOut(serializers.Serializer):
    name = serializers.CharField()
    schema = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField())
    connector_id = serializers.UUIDField()


class AutocompleteOut(serializers.Serializer):
    tables = AutocompleteTableOut(many=True)


class AutocompleteView(SpaceView):
    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("connector_id", str, description="Only this connector's tables (UUID)"),
            OpenApiParameter("prefix", str, description="Tables (or columns) whose name starts with this"),
        ],
        responses=AutocompleteOut,
    )
    def get(self, request: Request, slug: str) -> Response:
        tables = selectors.autocomplete_tables(
            membership=self.membership,
            connector_id=_uuid_param(request, "connector_id"),
            prefix=request.query_params.get("prefix", "")[:200],
        )
        return Response({"tables": tables})


# --- AI writer ----------------------------------------------------------------------------------


class GenerateIn(serializers.Serializer):
    prompt = serializers.CharField(max_length=ai.MAX_PROMPT_CHARS)
    connector_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class GenerateOut(serializers.Serializer):
    sql = serializers.CharField()
    dialect = serializers.CharField()


class ExplainIn(serializers.Serializer):
    sql = serializers.CharField(max_length=services.MAX_SQL_CHARS)
    connector_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class ExplainOut(serializers.Serializer):
    explanation = serializers.CharField()


class RefineIn(serializers.Serializer):
    current_sql = serializers.CharField(max_length=services.MAX_SQL_CHARS)
    instruction = serializers.CharField(max_length=ai.MAX_PROMPT_CHARS)
    connector_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class RefineOut(serializers.Serializer):
    sql = serializers.CharField()


class AIGenerateView(SpaceView):
    @extend_schema(tags=TAGS, request=GenerateIn, responses=GenerateOut)
    def post(self, request: Request, slug: str) -> Response:
        ai.ensure_enabled(self.membership)  # 403 before any input is judged
        written = ai.ai_generate(membership=self.membership, **_validated(GenerateIn(data=request.data)))
        return Response({"sql": written.sql, "dialect": written.dialect})


class AIExplainView(SpaceView):
    @extend_schema(tags=TAGS, request=ExplainIn, responses=ExplainOut)
    def post(self, request: Request, slug: str) -> Response:
        ai.ensure_enabled(self.membership)
        explanation = ai.ai_explain(membership=self.membership, **_validated(ExplainIn(data=request.data)))
        return Response({"explanation": explanation})


class AIRefineView(SpaceView):
    @extend_schema(tags=TAGS, request=RefineIn, responses=RefineOut)
    def post(self, request: Request, slug: str) -> Response:
        ai.ensure_enabled(self.membership)
        written = ai.ai_refine(membership=self.membership, **_validated(RefineIn(data=request.data)))
        return Response({"sql": written.sql})


# --- saved queries ------------------------------------------------------------------------------


class SavedQueryIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    sql_text = serializers.CharField(max_length=services.MAX_SQL_CHARS, trim_whitespace=False)
    connector_id = serializers.UUIDField()
    is_shared = serializers.BooleanField(required=False, default=False)


class SavedQueryUpdateIn(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    sql_text = serializers.CharField(max_length=services.MAX_SQL_CHARS, trim_whitespace=False, required=False)
    connector_id = serializers.UUIDField(required=False)
    is_shared = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give at least one of title, sql_text, connector_id, is_shared.")
        return attrs


class SavedQueryOut(serializers.ModelSerializer):
    connector_id = serializers.UUIDField(source="data_source.uuid")
    owner_id = serializers.IntegerField()
    is_owner = serializers.SerializerMethodField()

    class Meta:
        model = SavedQuery
        fields = [
            "id",
            "title",
            "sql_text",
            "connector_id",
            "is_shared",
            "owner_id",
            "is_owner",
            "created_at",
            "updated_at",
        ]

    def get_is_owner(self, obj: SavedQuery) -> bool:
        return obj.owner_id == self.context["user_id"]


class SavedListView(SpaceView):
    pagination_class = HeaderPagination

    @extend_schema(tags=TAGS, responses=SavedQueryOut(many=True))
    def get(self, request: Request, slug: str) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.saved_queries_visible(membership=self.membership), request, self)
        context = {"user_id": self.membership.user_id}
        return paginator.get_paginated_response(SavedQueryOut(page, many=True, context=context).data)

    @extend_schema(tags=TAGS, request=SavedQueryIn, responses={201: SavedQueryOut})
    def post(self, request: Request, slug: str) -> Response:
        query = services.saved_query_create(membership=self.membership, **_validated(SavedQueryIn(data=request.data)))
        return Response(SavedQueryOut(query, context={"user_id": self.membership.user_id}).data, status=201)


class SavedDetailView(SpaceView):
    @extend_schema(tags=TAGS, request=SavedQueryUpdateIn, responses=SavedQueryOut)
    def put(self, request: Request, slug: str, query_id: str) -> Response:
        query_uuid = _uuid_or_404(query_id, "Saved query")
        selectors.saved_query_for_owner(membership=self.membership, query_id=query_uuid)  # 404 / 403 before 400
        changes = _validated(SavedQueryUpdateIn(data=request.data))
        query = services.saved_query_update(membership=self.membership, query_id=query_uuid, **changes)
        return Response(SavedQueryOut(query, context={"user_id": self.membership.user_id}).data)

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request: Request, slug: str, query_id: str) -> Response:
        services.saved_query_delete(membership=self.membership, query_id=_uuid_or_404(query_id, "Saved query"))
        return Response(status=204)


# --- drafts -------------------------------------------------------------------------------------


class TabIn(serializers.Serializer):
    id = serializers.CharField(max_length=100)
    title = serializers.CharField(max_length=200, allow_blank=True, required=False, default="Untitled")
    sql_text = serializers.CharField(max_length=services.MAX_SQL_CHARS, allow_blank=True, required=False, default="")
    connector_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class DraftsIn(serializers.Serializer):
    tabs = TabIn(many=True, max_length=services.MAX_DRAFT_TABS, allow_empty=True)
    active_tab_id = serializers.CharField(max_length=100, required=False, allow_null=True, default=None)


class DraftsOut(serializers.Serializer):
    tabs = TabIn(many=True)
    active_tab_id = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


def _drafts_body(draft: TabDraft | None) -> dict[str, Any]:
    if draft is None:
        return {"tabs": [], "active_tab_id": None, "updated_at": None}
    return DraftsOut(draft).data


class DraftsView(SpaceView):
    @extend_schema(tags=TAGS, responses=DraftsOut)
    def get(self, request: Request, slug: str) -> Response:
        return Response(_drafts_body(selectors.draft_get(membership=self.membership)))

    @extend_schema(tags=TAGS, request=DraftsIn, responses=DraftsOut)
    def put(self, request: Request, slug: str) -> Response:
        fields = _validated(DraftsIn(data=request.data))
        tabs = [{**t, "connector_id": str(t["connector_id"]) if t["connector_id"] else None} for t in fields["tabs"]]
        draft = services.draft_save(membership=self.membership, tabs=tabs, active_tab_id=fields["active_tab_id"])
        return Response(_drafts_body(draft))


# --- history ------------------------------------------------------------------------------------


class HistoryOut(serializers.ModelSerializer):
    error_message = serializers.SerializerMethodField()

    class Meta:
        model = QueryHistory
        fields = [
            "id",
            "connector_id",
            "sql_text",
            "row_count",
            "execution_ms",
            "status",
            "error_message",
            "executed_at",
        ]

    def get_error_message(self, obj: QueryHistory) -> str | None:
        return obj.error_message or None


class AdminHistoryOut(HistoryOut):
    user_email = serializers.EmailField(source="user.email")
    user_id = serializers.IntegerField()

    class Meta(HistoryOut.Meta):
        fields = [*HistoryOut.Meta.fields, "user_id", "user_email", "kind"]


HISTORY_PARAMS = [
    OpenApiParameter("status", str, enum=HistoryStatus.values),
    OpenApiParameter("connector_id", str, description="UUID of a connector"),
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int),
]


def _history_filters(request: Request) -> dict[str, Any]:
    status = request.query_params.get("status") or None
    if status is not None and status not in HistoryStatus.values:
        raise serializers.ValidationError({"status": [f"One of {', '.join(HistoryStatus.values)}."]})
    return {"status": status, "connector_id": _uuid_param(request, "connector_id")}


class HistoryView(SpaceView):
    pagination_class = HeaderPagination

    @extend_schema(tags=TAGS, parameters=HISTORY_PARAMS, responses=HistoryOut(many=True))
    def get(self, request: Request, slug: str) -> Response:
        qs = selectors.history_for_user(membership=self.membership, **_history_filters(request))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, self)
        return paginator.get_paginated_response(HistoryOut(page, many=True).data)


class AdminHistoryView(SpaceView):
    pagination_class = HeaderPagination

    @extend_schema(tags=TAGS, parameters=HISTORY_PARAMS, responses=AdminHistoryOut(many=True))
    def get(self, request: Request, slug: str) -> Response:
        qs = selectors.history_for_space(membership=self.membership, **_history_filters(request))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, self)
        return paginator.get_paginated_response(AdminHistoryOut(page, many=True).data)


# --- export -------------------------------------------------------------------------------------


class ExportIn(serializers.Serializer):
    connector_id = serializers.UUIDField()
    sql = serializers.CharField(max_length=services.MAX_SQL_CHARS, trim_whitespace=False)
    format = serializers.ChoiceField(choices=sorted(export.FORMATS))


class ExportView(SpaceView):
    authentication_classes = HOT_PATH_AUTHENTICATION  # space_membership checks the user is active
    throttle_classes = [UserRateThrottle, QueryEditorThrottle]

    @extend_schema(tags=TAGS, request=ExportIn, responses={(200, "text/csv"): bytes, (200, "application/json"): bytes})
    def post(self, request: Request, slug: str) -> StreamingHttpResponse:
        fields = _validated(ExportIn(data=request.data))
        fmt = fields["format"]
        body = export.export_open(
            membership=self.membership, connector_id=fields["connector_id"], sql=fields["sql"], fmt=fmt
        )
        response = StreamingHttpResponse(body, content_type=export.FORMATS[fmt])
        response["Content-Disposition"] = f'attachment; filename="{export.export_filename(fmt)}"'
        response["Cache-Control"] = "no-store"
        return response
