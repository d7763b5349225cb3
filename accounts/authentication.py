"""Bearer authentication: workspace API keys (`ps_…`) and JWT access tokens share the header."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token

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


_VALIDATED_TOKENS: OrderedDict[bytes, Token] = OrderedDict()
_VALIDATED_LOCK = Lock()
_VALIDATED_SIZE = 2048


class BearerJWTAuthentication(JWTAuthentication):
    def authenticate(self, request: Request):  # noqa: ANN201
        token = bearer_token(request)
        if token is None:
            return None
        return super().authenticate(request)

    def get_validated_token(self, raw_token: bytes) -> Token:
        """Signature checks are remembered per token (a client polls with the same one); expiry is not."""
        with _VALIDATED_LOCK:
            token = _VALIDATED_TOKENS.get(raw_token)
            if token is not None:
                _VALIDATED_TOKENS.move_to_end(raw_token)
        if token is not None:
            try:
                token.check_exp(current_time=datetime.now(tz=UTC))  # not the time it was first read
                return token
            except TokenError:
                with _VALIDATED_LOCK:
                    _VALIDATED_TOKENS.pop(raw_token, None)
        token = super().get_validated_token(raw_token)  # raises InvalidToken with the reason
        with _VALIDATED_LOCK:
            _VALIDATED_TOKENS[raw_token] = token
            while len(_VALIDATED_TOKENS) > _VALIDATED_SIZE:
                _VALIDATED_TOKENS.popitem(last=False)
        return token


class TokenIdentity:
    """The user a valid JWT names, not yet read from the database.

    Hot endpoints (the polled execution, execute) check `is_active` inside the one query they run
    anyway — joined to the membership they need — instead of a separate user read per request.
    Anything that needs the full user calls `accounts.selectors.user_require_active`.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True  # as far as the token goes; the caller's query enforces it
    is_staff = False
    is_superuser = False

    def __init__(self, user_id: int) -> None:
        self.id = self.pk = user_id

    def __str__(self) -> str:
        return f"user {self.id}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (TokenIdentity, User)) and other.pk == self.pk

    def __hash__(self) -> int:
        return hash(self.pk)


class DeferredUserJWTAuthentication(BearerJWTAuthentication):
    """JWT bearer auth for views whose own query checks that the user exists and is active."""

    def get_user(self, validated_token: Any) -> TokenIdentity:  # type: ignore[override]
        try:
            return TokenIdentity(int(validated_token[jwt_settings.USER_ID_CLAIM]))
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("Token contained no recognizable user identification") from None


HOT_PATH_AUTHENTICATION = [ApiKeyAuthentication, DeferredUserJWTAuthentication]
