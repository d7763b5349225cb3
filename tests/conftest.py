from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.services import api_key_create
from tests.factories import MembershipFactory


@pytest.fixture(autouse=True)
def _fresh_throttle_cache():
    """Throttle counters live in the cache; tests must not inherit each other's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def jwt_for(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_for(user)}")
    return client


@pytest.fixture
def member(db):
    """An analyst in a workspace of their own organization."""
    return MembershipFactory(role="analyst")


@pytest.fixture
def admin_member(db, member):
    """An admin of the same workspace as `member`."""
    return MembershipFactory(role="admin", workspace=member.workspace)


@pytest.fixture
def viewer_member(db, member):
    return MembershipFactory(role="viewer", workspace=member.workspace)


@pytest.fixture
def outsider(db):
    """A member of another organization's workspace."""
    return MembershipFactory(role="admin")


@pytest.fixture
def member_client(member) -> APIClient:
    return client_for(member.user)


@pytest.fixture
def api_key_token(member) -> str:
    _, token = api_key_create(workspace=member.workspace, user=member.user, name="test key")
    return token


@pytest.fixture
def data_root(tmp_path, settings):
    """A folder SQLite / DuckDB data source files may live in (added to DATA_SOURCE_FILE_ROOTS)."""
    root = (tmp_path / "data").resolve()
    root.mkdir()
    settings.DATA_SOURCE_FILE_ROOTS = [*settings.DATA_SOURCE_FILE_ROOTS, root]
    return root


def _drop_broker_connections() -> None:
    # Celery keeps its broker connection and producer pools for the life of the process; drop them
    # so the next send connects to whatever CELERY_BROKER_URL says now.
    from config.celery import app

    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down(settings, monkeypatch):
    """CELERY_BROKER_URL points at a closed Redis port for the duration of the test."""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    # Celery prefers the environment variable over the settings (CI sets it).
    monkeypatch.setenv("CELERY_BROKER_URL", settings.CELERY_BROKER_URL)
    _drop_broker_connections()
    yield settings.CELERY_BROKER_URL
    _drop_broker_connections()
