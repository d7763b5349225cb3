"""The program API (spec 002): POST /api/v1/execute_program, and the DDN-style SQL endpoint programs call."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.validators import URLValidator
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts.authentication import authenticate_api_key
from accounts.models import Membership
from accounts.selectors import membership_by_slug
from config.api import request_api_key
from config.throttling import SlidingWindowMixin
from programs import services
from programs.docs import EXAMPLE_REQUEST, EXAMPLE_RESPONSE, PROGRAM_API_DESCRIPTION, SQL_ENDPOINT_DESCRIPTION
from programs.host import PROVIDERS
from programs.models import ProgramRun
from programs.sandbox.protocol import ARTIFACT_TYPES
from prompts.ai.registry import served_models

TAGS = ["programs"]
MAX_CODE_CHARS = 200_000
KEYED_PROVIDERS = ("anthropic", "openai")

_http_url = URLValidator(schemes=["http", "https"])


class ArtifactIn(serializers.Serializer):
    identifier = serializers.CharField(max_length=255)
    title = serializers.CharField(max_length=1000, allow_blank=True, trim_whitespace=False)
    artifact_type = serializers.ChoiceField(choices=sorted(ARTIFACT_TYPES))
    data = serializers.JSONField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        data = attrs.get("data")
        if attrs["artifact_type"] == "text" and not isinstance(data, str):
            raise serializers.ValidationError(
                {"data": ["A text artifact's data must be a string."]}, code="string_type"
            )
        if attrs["artifact_type"] == "table" and not (
            isinstance(data, list) and all(isinstance(row, dict) for row in data)
        ):
            raise serializers.ValidationError(
                {"data": ["A table artifact's data must be a list of objects (one per row)."]}, code="list_type"
            )
        return attrs


class AiPrimitivesLlmIn(serializers.Serializer):
    provider = serializers.ChoiceField(choices=list(PROVIDERS))
    api_key = serializers.CharField(required=False, allow_blank=True, max_length=4096, trim_whitespace=True)
    model = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=200)
    api_base = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=2048)

    def validate_api_base(self, value: str | None) -> str | None:
        if value:
            _http_url(value)
        return value or None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        provider = attrs["provider"]
        if provider in KEYED_PROVIDERS and not attrs.get("api_key"):
            raise serializers.ValidationError(
                {"api_key": [f"api_key is required for provider {provider!r}."]}, code="missing"
            )
        if provider == "hasura" and attrs.get("api_base"):
            raise serializers.ValidationError(
                {"api_base": ["api_base applies to the anthropic and openai providers, not hasura."]}
            )
        if provider == "hasura" and attrs.get("model"):
            served = served_models()
            if attrs["model"] not in served:
                allowed = ", ".join(sorted(served))
                raise serializers.ValidationError(
                    {"model": [f"Model {attrs['model']!r} is not served here; allowed: {allowed}."]}, code="enum"
                )
        return attrs


class DdnIn(serializers.Serializer):
    url = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=2048, default="")
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=8192, trim_whitespace=False),
        required=False,
        default=dict,
    )

    def validate_url(self, value: str | None) -> str:
        if value:
            _http_url(value)
        return value or ""


class ExecuteProgramIn(serializers.Serializer):
    code = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_CODE_CHARS)
    promptql_api_key = serializers.CharField(max_length=512)
    ai_primitives_llm = AiPrimitivesLlmIn()
    ddn = DdnIn()
    artifacts = ArtifactIn(many=True)

    def validate_artifacts(self, artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        errors: list[dict[str, Any]] = []
        for artifact in artifacts:
            identifier = artifact["identifier"]
            errors.append(
                {"identifier": [f"Duplicate artifact identifier {identifier!r}."]} if identifier in seen else {}
            )
            seen.add(identifier)
        if any(errors):
            raise serializers.ValidationError(errors, code="duplicate")
        return artifacts


class ExecuteProgramOut(serializers.Serializer):
    output = serializers.CharField()
    error = serializers.CharField(allow_null=True)
    accessed_artifact_ids = serializers.ListField(child=serializers.CharField())
    modified_artifacts = serializers.ListField(child=serializers.DictField())
    llm_usages = serializers.ListField(child=serializers.DictField())


ValidationErrorOut = inline_serializer(
    "ProgramValidationError",
    fields={
        "detail": serializers.ListField(
            child=inline_serializer(
                "ProgramValidationErrorItem",
                fields={
                    "loc": serializers.ListField(child=serializers.JSONField()),
                    "msg": serializers.CharField(),
                    "type": serializers.CharField(),
                },
            )
        )
    },
)


def program_body(run: ProgramRun) -> dict[str, Any]:
    return {
        "output": run.output,
        "error": run.error,
        "accessed_artifact_ids": run.accessed_artifact_ids,
        "modified_artifacts": run.modified_artifacts,
        "llm_usages": run.llm_usages,
    }


class ProgramKeyThrottle(SlidingWindowMixin, SimpleRateThrottle):
    """Per API key (the request has no other identity); per client address when the key is missing."""

    scope = "programs"

    def get_rate(self) -> str:
        return str(getattr(settings, "PROGRAM_API_RATE", "120/min"))

    def get_cache_key(self, request: Request, view: Any) -> str:
        token = request.data.get("promptql_api_key") if isinstance(request.data, dict) else None
        ident = hashlib.sha256(token.encode()).hexdigest()[:32] if isinstance(token, str) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def _key_membership(token: str) -> tuple[Any, Membership]:
    key = authenticate_api_key(token)
    membership = (
        Membership.objects.select_related("workspace", "user")
        .filter(user_id=key.created_by_id, workspace_id=key.workspace_id)
        .first()
    )
    if membership is None:
        raise exceptions.AuthenticationFailed("The API key's creator is no longer a member of its workspace")
    return key, membership


class ExecuteProgramView(APIView):
    authentication_classes: list[Any] = []  # the key is `promptql_api_key` in the body
    permission_classes = [AllowAny]
    throttle_classes = [ProgramKeyThrottle]
    error_style = "validation422"

    @extend_schema(
        tags=TAGS,
        summary="Run a program on your data",
        description=PROGRAM_API_DESCRIPTION,
        auth=[],
        request=ExecuteProgramIn,
        responses={
            200: ExecuteProgramOut,
            401: OpenApiResponse(description='Invalid or revoked promptql_api_key: {"detail": "…"}'),
            422: ValidationErrorOut,
            503: OpenApiResponse(description="The task queue is unavailable; nothing was run"),
        },
        examples=[
            OpenApiExample("Worked example", value=EXAMPLE_REQUEST, request_only=True),
            OpenApiExample("Worked example", value=EXAMPLE_RESPONSE, response_only=True, status_codes=["200"]),
        ],
    )
    def post(self, request: Request) -> Response:
        data = ExecuteProgramIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        key, membership = _key_membership(v["promptql_api_key"])
        run = services.run_create(
            api_key=key,
            membership=membership,
            code=v["code"],
            artifacts=[dict(a) for a in v["artifacts"]],
            ai_primitives_llm=dict(v["ai_primitives_llm"]),
            ddn=dict(v["ddn"]),
        )
        run = services.run_wait(run_id=run.pk, timeout_s=services.wait_budget_s())
        return Response(program_body(run), headers={"X-Program-Run-Id": str(run.pk)})


class SqlIn(serializers.Serializer):
    sql = serializers.CharField(max_length=100_000)


class SpaceSqlView(APIView):
    error_style = "detail"

    @extend_schema(
        tags=TAGS,
        summary="Run read-only SQL on the space's data sources (DDN-style SQL endpoint)",
        description=SQL_ENDPOINT_DESCRIPTION,
        request=SqlIn,
        responses={
            200: OpenApiResponse(
                response={"type": "array", "items": {"type": "object", "additionalProperties": True}},
                description="The rows, one JSON object each, keyed by output column name",
            )
        },
        examples=[
            OpenApiExample("Query", value={"sql": "SELECT name, region_id FROM customers LIMIT 2"}, request_only=True),
            OpenApiExample(
                "Rows",
                value=[{"name": "Ada Byrne", "region_id": 1}, {"name": "Li Wei", "region_id": 3}],
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        membership = membership_by_slug(user=request.user, slug=slug, api_key=request_api_key(request))
        data = SqlIn(data=request.data)
        data.is_valid(raise_exception=True)
        rows = services.sql_endpoint_execute(membership=membership, sql=data.validated_data["sql"])
        return Response(rows)
