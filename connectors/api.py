"""/api/v1/data-sources: list, create, get, patch, delete (soft), test, discover, schema."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from config.api import request_api_key
from config.inputs import IdField, int_param
from config.pagination import EnvelopePagination
from config.responses import envelope
from connectors import selectors, services
from connectors.models import CatalogColumn, CatalogTable, ConnectorType, DataSource

TAGS = ["data-sources"]


class ConnectionIn(serializers.Serializer):
    host = serializers.CharField(required=False, allow_blank=True, max_length=255)
    port = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=65535)
    database = serializers.CharField(required=False, allow_blank=True, max_length=255)
    user = serializers.CharField(required=False, allow_blank=True, max_length=255)
    password = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, write_only=True, max_length=1024, trim_whitespace=False
    )
    path = serializers.CharField(required=False, allow_blank=True, max_length=1024)
    options = serializers.DictField(required=False)


class DataSourceIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    connector_type = serializers.ChoiceField(choices=ConnectorType.choices)
    workspace_id = IdField(required=False, allow_null=True)
    alias = serializers.RegexField(
        r"^[a-z][a-z0-9_]{0,62}$",
        required=False,
        max_length=63,
        error_messages={"invalid": "A lowercase identifier: a letter, then letters, digits or underscores."},
    )
    connection = ConnectionIn()
    source_system_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
    statement_timeout_ms = serializers.IntegerField(required=False, allow_null=True, min_value=100)
    row_cap = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class DataSourcePatch(DataSourceIn):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, partial=True, **kwargs)


class DataSourceOut(serializers.ModelSerializer):
    workspace_id = serializers.IntegerField()
    connection = serializers.SerializerMethodField()
    discovery = serializers.SerializerMethodField()

    class Meta:
        model = DataSource
        fields = [
            "id",
            "uuid",
            "workspace_id",
            "name",
            "alias",
            "connector_type",
            "source_system_name",
            "description",
            "connection",
            "is_active",
            "statement_timeout_ms",
            "row_cap",
            "discovery",
            "created_at",
            "updated_at",
        ]

    def get_connection(self, obj: DataSource) -> dict[str, Any]:
        return {
            "host": obj.host,
            "port": obj.port,
            "database": obj.database,
            "user": obj.username,
            "path": obj.path,
            "options": obj.options,
            "has_password": obj.has_password,
        }

    def get_discovery(self, obj: DataSource) -> dict[str, Any]:
        return {
            "status": obj.discovery_status,
            "error": obj.discovery_error or None,
            "discovered_at": obj.discovered_at,
            "changes": obj.discovery_changes or {},
        }


def _dotted(errors: Any, prefix: str = "") -> dict[str, Any]:
    """Nested serializer errors as one level keyed by dotted field names ("connection.port"), the
    names the service's own checks use, so a client finds every bad field the same way."""
    if not isinstance(errors, dict):
        return {prefix or "non_field_errors": errors}
    flat: dict[str, Any] = {}
    for key, value in errors.items():
        # A nested object's own error ("expected a dictionary") belongs to the object's name.
        name = prefix if prefix and key == "non_field_errors" else f"{prefix}.{key}" if prefix else str(key)
        flat.update(_dotted(value, name) if isinstance(value, dict) else {name: value})
    return flat


def _validated(serializer: serializers.Serializer) -> dict[str, Any]:
    if not serializer.is_valid():
        raise serializers.ValidationError(_dotted(serializer.errors))
    return dict(serializer.validated_data)


def _membership_for_source(request: Request, source: DataSource):  # noqa: ANN202
    return account_selectors.membership_get(
        user=request.user, workspace_id=source.workspace_id, api_key=request_api_key(request)
    )


class DataSourceListView(APIView):
    pagination_class = EnvelopePagination

    @extend_schema(tags=TAGS, responses=DataSourceOut(many=True))
    def get(self, request: Request) -> Response:
        qs = selectors.data_sources_visible(user=request.user, api_key=request_api_key(request))
        params = request.query_params
        workspace_id = int_param(request, "workspace_id")
        if workspace_id is not None:
            qs = qs.filter(workspace_id=workspace_id)
        if params.get("connector_type"):
            if params["connector_type"] not in ConnectorType.values:
                raise serializers.ValidationError({"connector_type": [f"One of {', '.join(ConnectorType.values)}."]})
            qs = qs.filter(connector_type=params["connector_type"])
        if params.get("is_active") in ("true", "false"):
            qs = qs.filter(is_active=params["is_active"] == "true")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs.order_by("name", "id"), request, view=self)
        return paginator.get_paginated_response(DataSourceOut(page, many=True).data)

    @extend_schema(tags=TAGS, request=DataSourceIn, responses={201: DataSourceOut})
    def post(self, request: Request) -> Response:
        fields = _validated(DataSourceIn(data=request.data))
        membership = account_selectors.membership_resolve(
            user=request.user, workspace_id=fields.pop("workspace_id", None), api_key=request_api_key(request)
        )
        source = services.data_source_create(membership=membership, **fields)
        return envelope(DataSourceOut(source).data, "Data source created", status=201)


class DataSourceDetailView(APIView):
    @extend_schema(tags=TAGS, responses=DataSourceOut)
    def get(self, request: Request, source_id: int) -> Response:
        source = selectors.data_source_get(user=request.user, source_id=source_id, api_key=request_api_key(request))
        return envelope(DataSourceOut(source).data)

    @extend_schema(tags=TAGS, request=DataSourcePatch, responses=DataSourceOut)
    def patch(self, request: Request, source_id: int) -> Response:
        source = selectors.data_source_get(user=request.user, source_id=source_id, api_key=request_api_key(request))
        changes = _validated(DataSourcePatch(data=request.data))
        if "workspace_id" in changes and changes.pop("workspace_id") not in (None, source.workspace_id):
            raise serializers.ValidationError({"workspace_id": ["A data source cannot move to another workspace."]})
        source = services.data_source_update(
            membership=_membership_for_source(request, source), source=source, **changes
        )
        return envelope(DataSourceOut(source).data, "Data source updated")

    @extend_schema(tags=TAGS, responses=DataSourceOut)
    def delete(self, request: Request, source_id: int) -> Response:
        source = selectors.data_source_get(user=request.user, source_id=source_id, api_key=request_api_key(request))
        services.data_source_delete(membership=_membership_for_source(request, source), source=source)
        return envelope({"id": source.pk, "deleted": True}, "Data source deleted")


class DataSourceTestView(APIView):
    @extend_schema(tags=TAGS, request=None)
    def post(self, request: Request, source_id: int) -> Response:
        source = selectors.data_source_get(user=request.user, source_id=source_id, api_key=request_api_key(request))
        result = services.data_source_test(source=source)
        body = {
            "ok": result.ok,
            "server_version": result.server_version,
            "latency_ms": result.latency_ms,
            "error_code": result.error_code,
            "error_message": result.error_message,
        }
        return envelope(body, "Connection succeeded" if result.ok else "Connection failed")


class DataSourceDiscoverView(APIView):
    @extend_schema(tags=TAGS, request=None)
    def post(self, request: Request, source_id: int) -> Response:
        source = selectors.data_source_get(user=request.user, source_id=source_id, api_key=request_api_key(request))
        source = services.discovery_enqueue(membership=_membership_for_source(request, source), source=source)
        return envelope(DataSourceOut(source).data["discovery"], "Schema discovery queued", status=202)


class DataSourceSchemaView(APIView):
    @extend_schema(tags=TAGS)
    def get(self, request: Request, source_id: int) -> Response:
        source = selectors.data_source_get(user=request.user, source_id=source_id, api_key=request_api_key(request))
        membership = _membership_for_source(request, source)
        tables = (
            CatalogTable.objects.filter(data_source=source)
            .prefetch_related(Prefetch("columns", queryset=CatalogColumn.objects.order_by("ordinal", "name")))
            .order_by("schema_name", "name")
        )
        schemas: dict[str, list[dict[str, Any]]] = {}
        for table in tables:
            schemas.setdefault(table.schema_name, []).append(
                {
                    "name": table.name,
                    "kind": table.kind,
                    "row_estimate": table.row_estimate,
                    "description": table.description,
                    "columns": [_column_out(c, membership) for c in table.columns.all()],
                }
            )
        return envelope(
            {
                "data_source_id": source.pk,
                "discovery_status": source.discovery_status,
                "discovered_at": source.discovered_at,
                "schemas": [{"name": name, "tables": items} for name, items in schemas.items()],
            }
        )


def _column_out(column: CatalogColumn, membership) -> dict[str, Any]:  # noqa: ANN001
    hidden = (column.pii and not membership.pii_access) or (column.phi and not membership.phi_access)
    return {
        "name": column.name,
        "type": column.data_type,
        "nullable": column.nullable,
        "primary_key": column.is_primary_key,
        "foreign_key": {"schema": column.fk_schema, "table": column.fk_table, "column": column.fk_column}
        if column.fk_table
        else None,
        "pii": column.pii,
        "phi": column.phi,
        "masking_style": column.masking_style,
        "description": column.description,
        "sample_values": [] if hidden else column.sample_values,
    }
