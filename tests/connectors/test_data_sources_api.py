"""/api/v1/data-sources: CRUD, roles, tenancy, bad input, secrets, connection tests, discovery, schema."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import psycopg
import pymysql
import pytest
from django.contrib.auth.models import User
from django.test import Client

from connectors.crypto import decrypt
from connectors.discovery import discovery_run
from connectors.models import CatalogColumn, CatalogTable, DataSource, DiscoveryStatus
from tests.conftest import client_for
from tests.factories import DataSourceFactory
from tests.services import require

pytestmark = pytest.mark.django_db

BASE = "/api/v1/data-sources"
SECRET = "s3cret-Pa55word-never-shown"

SHOP_SQL = """
CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT,
    segment TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES regions(id)
);
CREATE TABLE legacy (id INTEGER PRIMARY KEY, note TEXT);
"""


def make_shop_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(SHOP_SQL)
    conn.executemany("INSERT INTO regions VALUES (?, ?)", [(1, "North"), (2, "South"), (3, "East")])
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
        [
            (i, f"Customer {i}", f"c{i}@example.com", f"+1 555 010{i % 10}", ("retail", "wholesale")[i % 2], 1 + i % 3)
            for i in range(1, 61)
        ],
    )
    conn.commit()
    conn.close()
    return path


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["message"]
    return body


def assert_ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is True
    assert isinstance(body["message"], str)
    return body["data"]


@pytest.fixture
def shop_path(data_root) -> Path:
    return make_shop_db(data_root / "shop.sqlite3")


@pytest.fixture
def admin_client(admin_member):
    return client_for(admin_member.user)


@pytest.fixture
def source(member, shop_path) -> DataSource:
    return DataSourceFactory(workspace=member.workspace, name="Shop", alias="shop", path=str(shop_path))


@pytest.fixture
def discovered(source) -> DataSource:
    return discovery_run(source_id=source.pk)


def postgres_body(**connection) -> dict:
    return {
        "name": "Warehouse",
        "connector_type": "postgres",
        "connection": {"host": "127.0.0.1", "port": 5432, "database": "dw", "user": "reader", **connection},
    }


def columns_by_name(schema: dict, table: str) -> dict[str, dict]:
    (tables,) = [s["tables"] for s in schema["schemas"] if s["name"] == "main"]
    (found,) = [t for t in tables if t["name"] == table]
    return {c["name"]: c for c in found["columns"]}


# --- create, get, list, patch, delete ---------------------------------------------------------


def test_an_admin_creates_a_sqlite_source(admin_client, admin_member, shop_path):
    response = admin_client.post(
        BASE, {"name": "Shop DB", "connector_type": "sqlite", "connection": {"path": str(shop_path)}}, format="json"
    )
    data = assert_ok(response, 201)
    assert data["workspace_id"] == admin_member.workspace_id
    assert data["alias"] == "shop_db"
    assert data["connection"]["path"] == str(shop_path)
    assert data["connection"]["has_password"] is False
    assert data["discovery"] == {"status": "never", "error": None, "discovered_at": None, "changes": {}}
    assert DataSource.objects.get(pk=data["id"]).uuid.hex == data["uuid"].replace("-", "")


def test_get_returns_the_source_in_the_envelope(member_client, source):
    data = assert_ok(member_client.get(f"{BASE}/{source.pk}"))
    assert data["id"] == source.pk
    assert data["uuid"] == str(source.uuid)
    assert set(data["connection"]) == {"host", "port", "database", "user", "path", "options", "has_password"}
    assert data["created_at"].endswith("Z")


@pytest.mark.parametrize("suffix", ["", "/"], ids=["no-slash", "slash"])
def test_every_endpoint_answers_with_and_without_a_trailing_slash(admin_client, discovered, suffix):
    detail = f"{BASE}/{discovered.pk}"
    assert assert_ok(admin_client.get(BASE + suffix))["pagination"]["total"] == 1
    assert assert_ok(admin_client.get(detail + suffix))["id"] == discovered.pk
    assert assert_ok(admin_client.patch(detail + suffix, {"description": "x"}, format="json"))["description"] == "x"
    assert assert_ok(admin_client.post(f"{detail}/test{suffix}"))["ok"] is True
    assert assert_ok(admin_client.get(f"{detail}/schema{suffix}"))["data_source_id"] == discovered.pk
    assert assert_ok(admin_client.post(f"{detail}/discover{suffix}"), 202)["status"] == "queued"
    assert assert_ok(admin_client.delete(detail + suffix))["deleted"] is True


def test_the_list_is_paginated(member, member_client, data_root):
    for n in range(3):
        DataSourceFactory(workspace=member.workspace, name=f"S{n}", path=str(data_root / f"{n}.db"))
    first = assert_ok(member_client.get(BASE, {"page_size": 2}))
    assert [i["name"] for i in first["items"]] == ["S0", "S1"]
    assert first["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2}
    second = assert_ok(member_client.get(BASE, {"page_size": 2, "page": 2}))
    assert [i["name"] for i in second["items"]] == ["S2"]


def test_the_list_rejects_a_page_size_over_100(member_client):
    body = assert_error(member_client.get(BASE, {"page_size": 101}), 400, "BAD_REQUEST")
    assert "page_size" in body["error"]["details"]


def test_the_list_filters_by_connector_type_and_activity(member, member_client, data_root):
    DataSourceFactory(workspace=member.workspace, name="lite", path=str(data_root / "a.db"))
    DataSourceFactory(workspace=member.workspace, name="off", path=str(data_root / "b.db"), is_active=False)
    DataSourceFactory(workspace=member.workspace, name="pg", connector_type="postgres", host="db", database="x")
    names = lambda **q: [i["name"] for i in assert_ok(member_client.get(BASE, q))["items"]]  # noqa: E731
    assert names(connector_type="postgres") == ["pg"]
    assert names(connector_type="sqlite", is_active="true") == ["lite"]
    assert names(is_active="false") == ["off"]
    assert names(workspace_id=member.workspace_id) == ["lite", "off", "pg"]


def test_the_list_names_a_bad_connector_type_filter(member_client):
    body = assert_error(member_client.get(BASE, {"connector_type": "oracle"}), 400, "BAD_REQUEST")
    assert "connector_type" in body["error"]["details"]


def test_the_list_shows_only_the_callers_workspaces(member_client, source, outsider, data_root):
    DataSourceFactory(workspace=outsider.workspace, name="theirs", path=str(data_root / "t.db"))
    data = assert_ok(member_client.get(BASE))
    assert [i["id"] for i in data["items"]] == [source.pk]


def test_an_admin_patches_fields(admin_client, source):
    data = assert_ok(
        admin_client.patch(
            f"{BASE}/{source.pk}", {"name": "Shop 2", "row_cap": 50, "statement_timeout_ms": 2000}, format="json"
        )
    )
    assert (data["name"], data["row_cap"], data["statement_timeout_ms"]) == ("Shop 2", 50, 2000)
    source.refresh_from_db()
    assert source.row_cap == 50


def test_a_patch_without_a_password_keeps_the_stored_one(admin_client, admin_member):
    created = assert_ok(admin_client.post(BASE, postgres_body(password=SECRET), format="json"), 201)
    data = assert_ok(
        admin_client.patch(f"{BASE}/{created['id']}", {"connection": {"host": "db.internal"}}, format="json")
    )
    assert data["connection"]["host"] == "db.internal"
    assert data["connection"]["has_password"] is True
    assert decrypt(DataSource.objects.get(pk=created["id"]).password_encrypted) == SECRET


def test_a_patch_with_a_password_replaces_it(admin_client):
    created = assert_ok(admin_client.post(BASE, postgres_body(password=SECRET), format="json"), 201)
    admin_client.patch(f"{BASE}/{created['id']}", {"connection": {"password": "other"}}, format="json")
    assert decrypt(DataSource.objects.get(pk=created["id"]).password_encrypted) == "other"


def test_delete_is_soft_and_the_source_is_then_gone_from_the_api(admin_client, source):
    data = assert_ok(admin_client.delete(f"{BASE}/{source.pk}"))
    assert data == {"id": source.pk, "deleted": True}
    assert_error(admin_client.get(f"{BASE}/{source.pk}"), 404, "NOT_FOUND")
    assert assert_ok(admin_client.get(BASE))["items"] == []
    source.refresh_from_db()
    assert source.deleted_at is not None
    assert source.is_active is False


def test_a_deleted_sources_alias_can_be_reused(admin_client, source, shop_path):
    admin_client.delete(f"{BASE}/{source.pk}")
    body = {"name": "Shop again", "alias": "shop", "connector_type": "sqlite", "connection": {"path": str(shop_path)}}
    assert assert_ok(admin_client.post(BASE, body, format="json"), 201)["alias"] == "shop"


# --- roles ------------------------------------------------------------------------------------


@pytest.fixture(params=["member", "viewer_member"], ids=["analyst", "viewer"])
def reader(request):
    return request.getfixturevalue(request.param)


def test_analysts_and_viewers_read_sources_and_schemas(reader, discovered):
    client = client_for(reader.user)
    assert assert_ok(client.get(BASE))["pagination"]["total"] == 1
    assert assert_ok(client.get(f"{BASE}/{discovered.pk}"))["id"] == discovered.pk
    assert assert_ok(client.get(f"{BASE}/{discovered.pk}/schema"))["schemas"]


def test_analysts_and_viewers_may_not_create_sources(reader, shop_path):
    body = {"name": "x", "connector_type": "sqlite", "connection": {"path": str(shop_path)}}
    assert_error(client_for(reader.user).post(BASE, body, format="json"), 403, "FORBIDDEN")
    assert not DataSource.objects.exists()


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("patch", "", {"name": "renamed"}), ("delete", "", None), ("post", "/discover", None)],
    ids=["patch", "delete", "discover"],
)
def test_analysts_and_viewers_may_not_change_delete_or_discover(reader, source, method, suffix, body):
    client = client_for(reader.user)
    response = getattr(client, method)(f"{BASE}/{source.pk}{suffix}", body, format="json")
    assert_error(response, 403, "FORBIDDEN")
    source.refresh_from_db()
    assert (source.name, source.deleted_at, source.discovery_status) == ("Shop", None, DiscoveryStatus.NEVER)


# --- tenancy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/test"),
        ("post", "/discover"),
        ("get", "/schema"),
    ],
)
def test_another_organizations_source_is_404_everywhere(member, outsider, data_root, method, suffix):
    theirs = DataSourceFactory(workspace=outsider.workspace, path=str(make_shop_db(data_root / "theirs.db")))
    admin = client_for(member.user)
    member.role = "admin"
    member.save()
    response = getattr(admin, method)(f"{BASE}/{theirs.pk}{suffix}", {"name": "mine now"}, format="json")
    assert_error(response, 404, "NOT_FOUND")
    theirs.refresh_from_db()
    assert (theirs.name, theirs.deleted_at, theirs.discovery_status) == (theirs.name, None, DiscoveryStatus.NEVER)
    assert theirs.name != "mine now"


def test_creating_in_another_organizations_workspace_is_404(admin_client, outsider, shop_path):
    body = {
        "name": "x",
        "connector_type": "sqlite",
        "workspace_id": outsider.workspace_id,
        "connection": {"path": str(shop_path)},
    }
    assert_error(admin_client.post(BASE, body, format="json"), 404, "NOT_FOUND")


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "connection": {"path": "/tmp/x"}}, "connector_type"),
        ({"name": "x", "connector_type": "oracle", "connection": {}}, "connector_type"),
        ({"connector_type": "sqlite", "connection": {}}, "name"),
        (postgres_body(host=""), "connection.host"),
        ({"name": "x", "connector_type": "mysql", "connection": {"host": "h", "user": "u"}}, "connection.database"),
        ({"name": "x", "connector_type": "sqlite", "connection": {}}, "connection.path"),
        ({"name": "x", "connector_type": "sqlite", "connection": {"path": "/etc/passwd"}}, "connection.path"),
        (postgres_body(port="five"), "connection.port"),
        (postgres_body(port=70000), "connection.port"),
        ({**postgres_body(), "connection": "host=db"}, "connection"),
        ({**postgres_body(), "row_cap": "many"}, "row_cap"),
        ({**postgres_body(), "statement_timeout_ms": 5}, "statement_timeout_ms"),
        ({**postgres_body(), "is_active": "perhaps"}, "is_active"),
        ({**postgres_body(), "alias": "Not An Alias"}, "alias"),
        ({**postgres_body(), "workspace_id": "abc"}, "workspace_id"),
        ({**postgres_body(), "alias": "memory"}, "alias"),
        (postgres_body(options={"password": "in-clear"}), "connection.options"),
        (postgres_body(options={"sslpassword": "in-clear"}), "connection.options"),
        (postgres_body(options="sslmode=require"), "connection.options"),
    ],
    ids=[
        "missing-connector-type",
        "unknown-connector-type",
        "missing-name",
        "postgres-without-host",
        "mysql-without-database",
        "sqlite-without-path",
        "sqlite-path-outside-roots",
        "port-not-a-number",
        "port-out-of-range",
        "connection-not-an-object",
        "row-cap-not-a-number",
        "timeout-too-small",
        "is-active-not-a-boolean",
        "alias-not-an-identifier",
        "workspace-id-not-a-number",
        "alias-reserved-by-the-federation-engine",
        "password-hidden-in-options",
        "ssl-password-in-options",
        "options-not-an-object",
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin_client, body, field):
    body = assert_error(admin_client.post(BASE, body, format="json"), 400, "BAD_REQUEST")
    assert field in body["error"]["details"], body
    assert not DataSource.objects.exists()


def test_a_sqlite_path_escaping_the_root_with_dot_dot_is_refused(admin_client, data_root):
    path = str(data_root / ".." / "elsewhere.db")
    body = {"name": "x", "connector_type": "sqlite", "connection": {"path": path}}
    details = assert_error(admin_client.post(BASE, body, format="json"), 400, "BAD_REQUEST")["error"]["details"]
    assert "DATA_SOURCE_FILE_ROOTS" in details["connection.path"][0]


def test_an_alias_already_used_in_the_workspace_is_a_400(admin_client, source, shop_path):
    body = {"name": "Other", "alias": "shop", "connector_type": "sqlite", "connection": {"path": str(shop_path)}}
    details = assert_error(admin_client.post(BASE, body, format="json"), 400, "BAD_REQUEST")["error"]["details"]
    assert "alias" in details


def test_patching_to_an_alias_already_used_is_a_400(admin_client, source, member, data_root):
    other = DataSourceFactory(workspace=member.workspace, alias="other", path=str(data_root / "o.db"))
    response = admin_client.patch(f"{BASE}/{other.pk}", {"alias": "shop"}, format="json")
    assert "alias" in assert_error(response, 400, "BAD_REQUEST")["error"]["details"]


def test_a_name_that_slugs_to_a_reserved_alias_gets_another_alias(admin_client, shop_path):
    body = {"name": "Main", "connector_type": "sqlite", "connection": {"path": str(shop_path)}}
    assert assert_ok(admin_client.post(BASE, body, format="json"), 201)["alias"] == "main_2"


def test_patching_to_a_reserved_alias_is_a_400(admin_client, source):
    response = admin_client.patch(f"{BASE}/{source.pk}", {"alias": "system"}, format="json")
    assert "alias" in assert_error(response, 400, "BAD_REQUEST")["error"]["details"]


def test_patching_a_sqlite_path_outside_the_roots_is_a_400(admin_client, source):
    response = admin_client.patch(f"{BASE}/{source.pk}", {"connection": {"path": "/etc/hosts"}}, format="json")
    assert "connection.path" in assert_error(response, 400, "BAD_REQUEST")["error"]["details"]
    source.refresh_from_db()
    assert source.path != "/etc/hosts"


def test_moving_a_source_to_another_workspace_is_a_400(admin_client, source, outsider):
    response = admin_client.patch(f"{BASE}/{source.pk}", {"workspace_id": outsider.workspace_id}, format="json")
    assert "workspace_id" in assert_error(response, 400, "BAD_REQUEST")["error"]["details"]


# --- the password -----------------------------------------------------------------------------


def test_the_password_is_stored_encrypted(admin_client):
    created = assert_ok(admin_client.post(BASE, postgres_body(password=SECRET), format="json"), 201)
    stored = DataSource.objects.values_list("password_encrypted", flat=True).get(pk=created["id"])
    assert stored
    assert SECRET not in stored
    assert decrypt(stored) == SECRET


def test_the_password_never_appears_in_a_response(admin_client):
    responses = [admin_client.post(BASE, postgres_body(password=SECRET, port=1), format="json")]
    source_id = responses[0].json()["data"]["id"]
    responses += [
        admin_client.get(BASE),
        admin_client.get(f"{BASE}/{source_id}"),
        admin_client.patch(f"{BASE}/{source_id}", {"name": "renamed"}, format="json"),
        admin_client.post(f"{BASE}/{source_id}/test"),
        admin_client.get(f"{BASE}/{source_id}/schema"),
    ]
    stored = DataSource.objects.get(pk=source_id).password_encrypted
    for response in responses:
        assert response.status_code < 500
        assert SECRET not in response.content.decode()
        assert stored not in response.content.decode()
        assert "password" not in response.json()["data"].get("connection", {})


def test_the_password_never_appears_in_the_logs(admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    created = assert_ok(admin_client.post(BASE, postgres_body(password=SECRET, port=1), format="json"), 201)
    admin_client.post(f"{BASE}/{created['id']}/test")
    admin_client.patch(f"{BASE}/{created['id']}", {"connection": {"password": SECRET + "2"}}, format="json")
    discovery_run(source_id=created["id"])  # fails: nothing listens on port 1, and says so in a log line
    assert caplog.records
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)


def test_the_password_never_appears_in_the_django_admin(admin_client):
    created = assert_ok(admin_client.post(BASE, postgres_body(password=SECRET), format="json"), 201)
    operator = User.objects.create_superuser("operator", "op@example.com", "op-pass-123")
    browser = Client()
    browser.force_login(operator)
    stored = DataSource.objects.get(pk=created["id"]).password_encrypted
    for url in ("/admin/connectors/datasource/", f"/admin/connectors/datasource/{created['id']}/change/"):
        page = browser.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "Warehouse" in html
        assert SECRET not in html
        assert stored not in html


def test_saving_in_the_django_admin_without_a_new_password_keeps_it(admin_client, admin_member):
    created = assert_ok(admin_client.post(BASE, postgres_body(password=SECRET), format="json"), 201)
    operator = User.objects.create_superuser("operator", "op@example.com", "op-pass-123")
    browser = Client()
    browser.force_login(operator)
    form = {
        "workspace": admin_member.workspace_id,
        "name": "Warehouse renamed",
        "alias": "warehouse",
        "connector_type": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "database": "dw",
        "username": "reader",
        "options": "{}",
        "is_active": "on",
        "new_password": "",
        "access_rules-TOTAL_FORMS": 0,
        "access_rules-INITIAL_FORMS": 0,
        "tables-TOTAL_FORMS": 0,
        "tables-INITIAL_FORMS": 0,
    }
    response = browser.post(f"/admin/connectors/datasource/{created['id']}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    source = DataSource.objects.get(pk=created["id"])
    assert source.name == "Warehouse renamed"
    assert decrypt(source.password_encrypted) == SECRET


# --- POST {id}/test ---------------------------------------------------------------------------


def test_testing_a_sqlite_source_reports_version_and_latency(member_client, source):
    data = assert_ok(member_client.post(f"{BASE}/{source.pk}/test"))
    assert data["ok"] is True
    assert data["server_version"].startswith("SQLite ")
    assert isinstance(data["latency_ms"], int)
    assert data["latency_ms"] >= 0
    assert data["error_code"] is None


def test_testing_a_postgres_source_on_a_closed_port_is_a_clear_failure_not_a_500(admin_client):
    created = assert_ok(admin_client.post(BASE, postgres_body(port=1, password=SECRET), format="json"), 201)
    response = admin_client.post(f"{BASE}/{created['id']}/test")
    data = assert_ok(response)
    assert data["ok"] is False
    assert data["error_code"] == "DATA_SOURCE_UNAVAILABLE"
    assert "127.0.0.1:1" in data["error_message"]
    assert response.json()["message"] == "Connection failed"


def test_testing_a_missing_sqlite_file_says_so(admin_client, data_root):
    body = {"name": "gone", "connector_type": "sqlite", "connection": {"path": str(data_root / "gone.db")}}
    created = assert_ok(admin_client.post(BASE, body, format="json"), 201)
    data = assert_ok(admin_client.post(f"{BASE}/{created['id']}/test"))
    assert (data["ok"], data["error_code"]) == (False, "DATA_SOURCE_UNAVAILABLE")
    assert "does not exist" in data["error_message"]


MYSQL_USER = "ps_api_test_user"
MYSQL_PASSWORD = "right-password"


@pytest.fixture(scope="module")
def mysql_user() -> tuple[str, int]:
    url = require("mysql")
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])
    conn = pymysql.connect(host=host, port=port, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS ps_api_test")
            cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (MYSQL_USER, MYSQL_PASSWORD))
            cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (MYSQL_USER, MYSQL_PASSWORD))
            cur.execute("GRANT SELECT ON *.* TO %s@'%%'", (MYSQL_USER,))
    finally:
        conn.close()
    return host, port


def mysql_body(port: int, *, password: str, database: str = "ps_api_test") -> dict:
    connection = {"host": "127.0.0.1", "port": port, "database": database, "user": MYSQL_USER, "password": password}
    return {"name": "Maria", "connector_type": "mysql", "connection": connection}


def test_testing_a_mariadb_source_succeeds_with_the_right_password(admin_client, mysql_user):
    created = assert_ok(admin_client.post(BASE, mysql_body(mysql_user[1], password=MYSQL_PASSWORD), format="json"), 201)
    data = assert_ok(admin_client.post(f"{BASE}/{created['id']}/test"))
    assert data["ok"] is True, data
    assert data["server_version"]


def test_testing_a_mariadb_source_with_a_wrong_password_says_authentication_failed(admin_client, mysql_user):
    body = mysql_body(mysql_user[1], password=SECRET)
    created = assert_ok(admin_client.post(BASE, body, format="json"), 201)
    data = assert_ok(admin_client.post(f"{BASE}/{created['id']}/test"))
    assert (data["ok"], data["error_code"]) == (False, "DATA_SOURCE_UNAVAILABLE")
    assert "Authentication failed" in data["error_message"]
    assert MYSQL_USER in data["error_message"]
    assert SECRET not in data["error_message"]


def test_testing_a_mariadb_source_whose_database_is_missing_says_it_does_not_exist(admin_client, mysql_user):
    body = mysql_body(mysql_user[1], password=MYSQL_PASSWORD, database="ps_no_such_database")
    created = assert_ok(admin_client.post(BASE, body, format="json"), 201)
    data = assert_ok(admin_client.post(f"{BASE}/{created['id']}/test"))
    assert (data["ok"], data["error_code"]) == (False, "DATA_SOURCE_UNAVAILABLE")
    assert "'ps_no_such_database' does not exist" in data["error_message"]


def test_testing_a_postgres_source_whose_database_is_missing_says_it_does_not_exist(admin_client):
    url = require("postgres")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'ps_no_such_database'").fetchone() is None
    body = postgres_body(port=port, user="postgres", database="ps_no_such_database")
    created = assert_ok(admin_client.post(BASE, body, format="json"), 201)
    data = assert_ok(admin_client.post(f"{BASE}/{created['id']}/test"))
    assert (data["ok"], data["error_code"]) == (False, "DATA_SOURCE_UNAVAILABLE")
    assert "'ps_no_such_database' does not exist" in data["error_message"]


# --- POST {id}/discover -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_discover_queues_discovery_and_answers_202(admin_member, shop_path):
    source = DataSourceFactory(workspace=admin_member.workspace, path=str(shop_path))
    response = client_for(admin_member.user).post(f"{BASE}/{source.pk}/discover")
    data = assert_ok(response, 202)
    assert data["status"] == "queued"
    source.refresh_from_db()
    assert source.discovery_status == DiscoveryStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_discover_with_the_broker_down_is_a_503_and_the_status_is_restored(admin_member, shop_path, broker_down):
    source = DataSourceFactory(
        workspace=admin_member.workspace,
        path=str(shop_path),
        discovery_status=DiscoveryStatus.FAILED,
        discovery_error="the previous run's error",
    )
    response = client_for(admin_member.user).post(f"{BASE}/{source.pk}/discover")
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    source.refresh_from_db()
    assert (source.discovery_status, source.discovery_error) == (DiscoveryStatus.FAILED, "the previous run's error")


# --- GET {id}/schema --------------------------------------------------------------------------


def test_the_schema_is_empty_before_discovery(member_client, source):
    data = assert_ok(member_client.get(f"{BASE}/{source.pk}/schema"))
    assert data == {"data_source_id": source.pk, "discovery_status": "never", "discovered_at": None, "schemas": []}


def test_the_schema_nests_schemas_tables_and_columns(member_client, discovered):
    data = assert_ok(member_client.get(f"{BASE}/{discovered.pk}/schema"))
    assert data["discovery_status"] == "succeeded"
    assert data["discovered_at"].endswith("Z")
    assert [s["name"] for s in data["schemas"]] == ["main"]
    tables = {t["name"]: t for t in data["schemas"][0]["tables"]}
    assert set(tables) == {"customers", "legacy", "regions"}
    assert tables["customers"]["kind"] == "table"
    assert tables["customers"]["row_estimate"] == 60


def test_the_schema_carries_types_nullability_and_keys(member_client, discovered):
    columns = columns_by_name(assert_ok(member_client.get(f"{BASE}/{discovered.pk}/schema")), "customers")
    assert list(columns) == ["id", "name", "email", "phone", "segment", "region_id"]
    assert (columns["id"]["type"], columns["id"]["primary_key"], columns["id"]["nullable"]) == ("integer", True, False)
    assert (columns["phone"]["type"], columns["phone"]["nullable"]) == ("text", True)
    assert columns["region_id"]["foreign_key"] == {"schema": "main", "table": "regions", "column": "id"}
    assert columns["name"]["foreign_key"] is None


def test_first_discovery_proposes_email_and_phone_as_pii(member_client, discovered):
    columns = columns_by_name(assert_ok(member_client.get(f"{BASE}/{discovered.pk}/schema")), "customers")
    assert {n for n, c in columns.items() if c["pii"]} == {"email", "phone"}
    assert not any(c["phi"] for c in columns.values())


def test_low_cardinality_text_columns_carry_sample_values(member_client, discovered):
    data = assert_ok(member_client.get(f"{BASE}/{discovered.pk}/schema"))
    assert columns_by_name(data, "customers")["segment"]["sample_values"] == ["retail", "wholesale"]
    assert columns_by_name(data, "regions")["name"]["sample_values"] == ["East", "North", "South"]


def test_pii_columns_carry_no_sample_values_even_for_a_member_with_pii_access(member, member_client, discovered):
    member.pii_access = True
    member.save()
    columns = columns_by_name(assert_ok(member_client.get(f"{BASE}/{discovered.pk}/schema")), "customers")
    assert columns["phone"]["sample_values"] == []  # ten distinct phones: low-cardinality, but personal
    assert not CatalogColumn.objects.get(table__data_source=discovered, name="phone").sample_values


def test_rediscovery_keeps_operator_edits_and_reports_changes(member_client, discovered, shop_path):
    phone = CatalogColumn.objects.get(table__data_source=discovered, table__name="customers", name="phone")
    phone.pii = False
    phone.description = "Switchboard number, not personal"
    phone.save()
    conn = sqlite3.connect(shop_path)
    conn.executescript(
        "DROP TABLE legacy; ALTER TABLE customers ADD COLUMN loyalty_tier TEXT;"
        "ALTER TABLE customers DROP COLUMN segment; CREATE TABLE coupons (code TEXT PRIMARY KEY);"
    )
    conn.close()

    discovery_run(source_id=discovered.pk)

    data = assert_ok(member_client.get(f"{BASE}/{discovered.pk}"))
    assert data["discovery"]["changes"] == {
        "tables_added": ["main.coupons"],
        "tables_removed": ["main.legacy"],
        "columns_added": ["main.customers.loyalty_tier"],
        "columns_removed": ["main.customers.segment"],
        "columns_changed": [],
    }
    columns = columns_by_name(assert_ok(member_client.get(f"{BASE}/{discovered.pk}/schema")), "customers")
    assert (columns["phone"]["pii"], columns["phone"]["description"]) == (False, "Switchboard number, not personal")
    assert columns["email"]["pii"] is True
    assert "segment" not in columns
    assert not CatalogTable.objects.filter(data_source=discovered, name="legacy").exists()
