"""/api/v1/prompt-templates: list, get, create, patch, delete, execute (spec 003)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.models import Membership
from config.api import request_api_key
from config.inputs import IdField, StrictBooleanField, StrictCharField, int_param
from config.pagination import EnvelopePagination
from config.responses import envelope
from prompts.api import execution_body
from templates_app import selectors, services
from templates_app.models import PromptTemplate, TemplateCategory

TAGS = ["prompt-studio"]
SCOPES = ("system", "public", "mine")


class ParameterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=["string", "number", "date", "enum"], default="string")
    required = serializers.BooleanField(default=False)
    default = serializers.JSONField(required=False, allow_null=True)
    allowed_values = serializers.ListField(child=serializers.CharField(max_length=500), required=False, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)


class TemplateIn(serializers.Serializer):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, default="")
    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=TemplateCategory.objects.all(), required=False, allow_null=True
    )
    template_text = StrictCharField(min_length=1, max_length=10_000)
    parameters = ParameterSerializer(many=True, required=False, default=list)
    is_public = StrictBooleanField(required=False, default=False)
    workspace_id = IdField(required=False, allow_null=True)


class TemplatePatch(TemplateIn):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, partial=True, **kwargs)


class TemplateOut(serializers.ModelSerializer):
    category = serializers.SerializerMethodField()
    owner_id = serializers.IntegerField(allow_null=True)
    organization_id = serializers.IntegerField(allow_null=True)
    placeholders = serializers.SerializerMethodField()

    class Meta:
        model = PromptTemplate
        fields = [
            "id",
            "name",
            "description",
            "category",
            "template_text",
            "parameters",
            "placeholders",
            "is_system",
            "is_public",
            "owner_id",
            "organization_id",
            "usage_count",
            "created_at",
            "updated_at",
        ]

    def get_category(self, obj: PromptTemplate) -> dict[str, Any] | None:
        c = obj.category
        return {"id": c.pk, "slug": c.slug, "name": c.name} if c else None

    def get_placeholders(self, obj: PromptTemplate) -> list[str]:
        return obj.placeholders()


class TemplateExecuteIn(serializers.Serializer):
    workspace_id = IdField(required=False, allow_null=True)
    selected_data_source_ids = serializers.ListField(child=IdField(), min_length=1, max_length=20)
    selected_schema_names = serializers.ListField(child=StrictCharField(max_length=255), required=False, default=list)
    parameters = serializers.DictField(required=False, default=dict)
    save_prompt = StrictBooleanField(required=False, default=False)
    ai_model = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=100)


def _membership(request: Request, workspace_id: int | None = None) -> Membership:
    if workspace_id is None:
        workspace_id = int_param(request, "workspace_id")
    return account_selectors.membership_resolve(
        user=request.user, workspace_id=workspace_id, api_key=request_api_key(request)
    )


class TemplateListView(APIView):
    pagination_class = EnvelopePagination

    @extend_schema(tags=TAGS, responses=TemplateOut(many=True))
    def get(self, request: Request) -> Response:
        membership = _membership(request)
        qs = selectors.templates_visible(membership=membership)
        params = request.query_params
        if params.get("category"):
            category = TemplateCategory.objects.filter(
                Q(slug=params["category"]) | Q(name__iexact=params["category"])
            ).first()
            if category is None:
                raise serializers.ValidationError({"category": [f"Unknown category {params['category']!r}."]})
            qs = qs.filter(category=category)
        scope = params.get("scope")
        if scope:
            if scope not in SCOPES:
                raise serializers.ValidationError({"scope": [f"One of {', '.join(SCOPES)}."]})
            qs = {
                "system": qs.filter(is_system=True),
                "public": qs.filter(is_public=True, is_system=False),
                "mine": qs.filter(owner_id=membership.user_id),
            }[scope]
        if params.get("q"):
            q = params["q"]
            qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q) | Q(template_text__icontains=q))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs.order_by("-is_system", "name", "id"), request, view=self)
        return paginator.get_paginated_response(TemplateOut(page, many=True).data)

    @extend_schema(tags=TAGS, request=TemplateIn, responses={201: TemplateOut})
    def post(self, request: Request) -> Response:
        data = TemplateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        membership = _membership(request, v.pop("workspace_id", None))
        template = services.template_create(membership=membership, **v)
        return envelope(TemplateOut(template).data, "Template created", status=201)


class TemplateDetailView(APIView):
    @extend_schema(tags=TAGS, responses=TemplateOut)
    def get(self, request: Request, template_id: int) -> Response:
        template = selectors.template_get(membership=_membership(request), template_id=template_id)
        return envelope(TemplateOut(template).data)

    @extend_schema(tags=TAGS, request=TemplatePatch, responses=TemplateOut)
    def patch(self, request: Request, template_id: int) -> Response:
        membership = _membership(request)
        template = selectors.template_get(membership=membership, template_id=template_id)
        data = TemplatePatch(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        changes.pop("workspace_id", None)
        template = services.template_update(membership=membership, template=template, **changes)
        return envelope(TemplateOut(template).data, "Template updated")

    @extend_schema(tags=TAGS)
    def delete(self, request: Request, template_id: int) -> Response:
        membership = _membership(request)
        template = selectors.template_get(membership=membership, template_id=template_id)
        services.template_delete(membership=membership, template=template)
        return envelope({"id": template_id, "deleted": True}, "Template deleted")


class TemplateExecuteView(APIView):
    @extend_schema(tags=TAGS, request=TemplateExecuteIn)
    def post(self, request: Request, template_id: int) -> Response:
        data = TemplateExecuteIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        membership = _membership(request, v.get("workspace_id"))
        template = selectors.template_get(membership=membership, template_id=template_id)
        execution = services.template_execute(
            membership=membership,
            template=template,
            values=v["parameters"],
            data_source_ids=v["selected_data_source_ids"],
            schema_names=v["selected_schema_names"],
            save_prompt=v["save_prompt"],
            ai_model=v.get("ai_model") or None,
        )
        body = execution_body(execution)
        body["template_id"] = template.pk
        body["prompt_text"] = execution.prompt_text
        body["parameters"] = execution.template_parameters
        return envelope(body, "Template execution started")
