"""Real services the tests talk to, and how a missing one is reported.

A test that needs PostgreSQL, MariaDB or Redis calls `require("postgres")`: without the
service it is skipped with a loud reason, unless `REQUIRE_SERVICES=1` (CI), where it fails.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from urllib.parse import urlparse

import pytest

DEFAULT_URLS = {
    "postgres": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mysql": "mysql://root@127.0.0.1:3306/test",
    "redis": "redis://127.0.0.1:6379/15",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
ENV_VARS = {
    "postgres": "TEST_POSTGRES_URL",
    "mysql": "TEST_MYSQL_URL",
    "redis": "TEST_REDIS_URL",
    "rabbitmq": "TEST_RABBITMQ_URL",
}


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def service_url(name: str) -> str:
    return os.environ.get(ENV_VARS[name], DEFAULT_URLS[name])


@cache
def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=1):
            return True
    except OSError:
        return False


def require(name: str) -> str:
    """Return the service URL, or skip (fail under REQUIRE_SERVICES=1) when it is not reachable."""
    url = service_url(name)
    if not _reachable(url):
        message = f"SERVICE MISSING: {name} is not reachable at {url} (set {ENV_VARS[name]})"
        if services_required():
            pytest.fail(message + " and REQUIRE_SERVICES=1")
        pytest.skip(message)
    return url


def require_binary(path_or_name: str, what: str) -> str:
    """Return the path of an executable, or skip (fail under REQUIRE_SERVICES=1)."""
    import shutil

    found = shutil.which(path_or_name)
    if not found:
        message = f"TOOL MISSING: {what} ({path_or_name}) is not installed"
        if services_required():
            pytest.fail(message + " and REQUIRE_SERVICES=1")
        pytest.skip(message)
    return found
