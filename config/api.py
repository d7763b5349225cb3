"""Small helpers shared by API views."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path, register_converter
from rest_framework.request import Request

from accounts.models import ApiKey
from config.inputs import IdConverter

# `<id:name>` in every route that takes an id: every urls.py imports `both` from here, so the
# converter is registered before any of them builds a route.
register_converter(IdConverter, "id")


def both(route: str, view: Any, name: str) -> list[URLPattern]:
    """The same view with and without a trailing slash (DESIGN.md: both are accepted)."""
    route = route.rstrip("/")
    return [path(route, view, name=name), path(route + "/", view, name=f"{name}-slash")]


def request_api_key(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None
