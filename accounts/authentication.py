"""Bearer authentication: workspace API keys (`ps_…`) and JWT access tokens share the header."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import ApiKey, hash_api_key

API_KEY_PREFIX = "ps_"
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def bearer_token(request: Request) -> str | None:
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        return parts[1].decode()
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("Malformed bearer token") from None


def authenticate_api_key(token: str) -> ApiKey:
    """The active key for a token, or AuthenticationFailed. Used by the header auth and the program API."""
    key = ApiKey.objects.select_related("created_by", "workspace").filter(key_hash=hash_api_key(token)).first()
    if key is None or not key.created_by.is_active:
        raise exceptions.AuthenticationFailed("Invalid API key")
    if key.revoked_at is not None:
        raise exceptions.AuthenticationFailed("API key has been revoked")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        # Coarse on purpose: one write a minute per key, not one per request.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request):  # noqa: ANN201 - DRF's signature
        token = bearer_token(request)
        if token is None or not token.startswith(API_KEY_PREFIX):
            return None
        key = authenticate_api_key(token)
        return key.created_by, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class BearerJWTAuthentication(JWTAuthentication):
    def authenticate(self, request: Request):  # noqa: ANN201
        token = bearer_token(request)
        if token is None:
            return None
        return super().authenticate(request)
