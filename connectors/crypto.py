"""Credentials at rest: Fernet with FIELD_ENCRYPTION_KEY (generated under var/ for the demo)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _fernet() -> Fernet:
    key = settings.FIELD_ENCRYPTION_KEY
    if not key:
        # Only reachable with DEBUG on (settings require the key otherwise): make one for this machine.
        path = Path(settings.FIELD_ENCRYPTION_KEY_FILE)
        key = Fernet.generate_key().decode()
        path.write_text(key)
        path.chmod(0o600)
    try:
        return Fernet(key.encode() if isinstance(key, str) else key)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64 bytes)"
        ) from None


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored credential cannot be decrypted: FIELD_ENCRYPTION_KEY differs from the key it was stored with"
        ) from None
