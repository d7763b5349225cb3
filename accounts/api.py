"""Auth, API keys and the current user."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer

from accounts import selectors, services
from accounts.models import ApiKey
from config.api import request_api_key
from config.errors import NotFound, Unauthorized
from config.inputs import IdField
from config.pagination import EnvelopePagination
from config.responses import envelope

TokenPair = inline_serializer("TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()})


class TokenObtainView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "anon"

    @extend_schema(tags=["auth"], request=TokenObtainPairSerializer, responses=TokenPair)
    def post(self, request: Request) -> Response:
        serializer = TokenObtainPairSerializer(data=request.data, context={"request": request})
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise Unauthorized(str(exc)) from None
        return Response(
            {"access": serializer.validated_data["access"], "refresh": serializer.validated_data["refresh"]}
        )


class TokenRefreshView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(tags=["auth"], request=TokenRefreshSerializer, responses=TokenPair)
    def post(self, request: Request) -> Response:
        serializer = TokenRefreshSerializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise Unauthorized(f"Invalid refresh token: {exc}") from None
        data = serializer.validated_data
        return Response({"access": data["access"], "refresh": data.get("refresh", request.data.get("refresh"))})


class ApiKeyOut(serializers.ModelSerializer):
    workspace_id = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username")
    is_active = serializers.BooleanField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "workspace_id",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]


class ApiKeyIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    workspace_id = IdField(required=False, allow_null=True)


class ApiKeyListCreateView(APIView):
    pagination_class = EnvelopePagination

    @extend_schema(tags=["auth"], responses=ApiKeyOut(many=True))
    def get(self, request: Request) -> Response:
        keys = selectors.api_keys_visible(user=request.user, api_key=request_api_key(request))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(keys, request, view=self)
        return paginator.get_paginated_response(ApiKeyOut(page, many=True).data)

    @extend_schema(tags=["auth"], request=ApiKeyIn, responses={201: ApiKeyOut})
    def post(self, request: Request) -> Response:
        data = ApiKeyIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = selectors.membership_resolve(
            user=request.user, workspace_id=data.validated_data.get("workspace_id"), api_key=request_api_key(request)
        )
        key, token = services.api_key_create(
            workspace=membership.workspace, user=request.user, name=data.validated_data["name"]
        )
        body = dict(ApiKeyOut(key).data)
        body["key"] = token
        return envelope(body, "API key created; the key is shown only once", status=201)


class ApiKeyDetailView(APIView):
    @extend_schema(tags=["auth"], responses=ApiKeyOut)
    def delete(self, request: Request, key_id: int) -> Response:
        key = selectors.api_keys_visible(user=request.user, api_key=request_api_key(request)).filter(pk=key_id).first()
        if key is None:
            raise NotFound(f"API key {key_id} not found")
        services.api_key_revoke(key=key)
        return envelope(ApiKeyOut(key).data, "API key revoked")


class MeView(APIView):
    @extend_schema(tags=["auth"], responses=inline_serializer("Me", {"user": serializers.DictField()}))
    def get(self, request: Request) -> Response:
        user = request.user
        memberships = selectors.memberships_for(user=user, api_key=request_api_key(request))
        organizations: dict[int, dict] = {}
        workspaces = []
        for m in memberships:
            org = m.workspace.organization
            organizations.setdefault(
                org.pk, {"id": org.pk, "name": org.name, "slug": org.slug, "is_personal": org.is_personal}
            )
            workspaces.append(
                {
                    "id": m.workspace.pk,
                    "name": m.workspace.name,
                    "slug": m.workspace.slug,
                    "organization_id": org.pk,
                    "role": m.role,
                    "pii_access": m.pii_access,
                    "phi_access": m.phi_access,
                }
            )
        key = request_api_key(request)
        return envelope(
            {
                "user": {"id": user.pk, "username": user.get_username(), "email": getattr(user, "email", "")},
                "auth": {"method": "api_key", "api_key_id": key.pk} if key else {"method": "jwt"},
                "organizations": list(organizations.values()),
                "workspaces": workspaces,
            }
        )
