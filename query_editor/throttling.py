"""The editor's rate limit: executions and exports per user and space, counted in the shared cache."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from config.throttling import SlidingWindowMixin


class QueryEditorThrottle(SlidingWindowMixin, SimpleRateThrottle):
    """REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["query_editor"] (env QUERY_EDITOR_RATE_LIMIT).

    The cache is Django's default (CACHE_URL: Redis in production), so every web process counts
    against the same window.
    """

    scope = "query_editor"

    def get_rate(self) -> str | None:
        # Read at request time, not import time (DRF's default), so a settings change applies at once.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # unauthenticated requests are refused before they get here
        return self.cache_format % {"scope": self.scope, "ident": f"{request.user.pk}:{view.kwargs.get('slug', '')}"}
