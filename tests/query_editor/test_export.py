"""POST /export: streamed CSV / JSON, masked, capped at 2,000 rows, recorded; server-side cursor on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import psycopg
import pytest
from django.http import StreamingHttpResponse

from accounts.models import AuditLog
from query_editor.export import export_open
from query_editor.models import QueryHistory
from tests.conftest import client_for
from tests.query_editor.conftest import PG_DATABASE, PG_WIDE_COLUMNS, space_url
from tests.query_editor.test_execute import assert_error

pytestmark = pytest.mark.django_db


def export(client, slug: str, source, sql: str, fmt: str):
    body = {"connector_id": str(source.uuid), "sql": sql, "format": fmt}
    return client.post(space_url(slug, "export"), body, format="json")


def content(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def test_csv_export_streams_an_attachment_that_parses(analyst_client, slug, sales):
    response = export(analyst_client, slug, sales, "SELECT id, name FROM regions ORDER BY id", "csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(content(response))))
    assert rows[0] == ["id", "name"]
    assert len(rows) == 6
    assert rows[1][0] == "1"


def test_json_export_streams_a_valid_array(analyst_client, slug, sales):
    response = export(analyst_client, slug, sales, "SELECT id, name FROM regions ORDER BY id", "json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].endswith('.json"')
    data = json.loads(content(response))
    assert isinstance(data, list)
    assert data[0] == {"id": 1, "name": data[0]["name"]}
    assert len(data) == 5


def test_an_empty_result_is_a_valid_json_array_and_a_csv_header(analyst_client, slug, sales):
    sql = "SELECT id FROM regions WHERE id < 0"
    assert json.loads(content(export(analyst_client, slug, sales, sql, "json"))) == []
    assert content(export(analyst_client, slug, sales, sql, "csv")).strip() == "id"


def test_exports_stop_at_2000_rows(analyst_client, slug, sales):
    sql = "SELECT o.id, r.name FROM orders o CROSS JOIN regions r"  # 3,000 rows
    assert len(json.loads(content(export(analyst_client, slug, sales, sql, "json")))) == 2000
    assert len(list(csv.reader(io.StringIO(content(export(analyst_client, slug, sales, sql, "csv")))))) == 2001


def test_pii_is_masked_in_exports_without_pii_access(analyst_client, slug, sales):
    sql = "SELECT id, email FROM customers ORDER BY id"
    data = json.loads(content(export(analyst_client, slug, sales, sql, "json")))
    assert {row["email"] for row in data} == {"***MASKED***"}
    rows = list(csv.DictReader(io.StringIO(content(export(analyst_client, slug, sales, sql, "csv")))))
    assert {row["email"] for row in rows} == {"***MASKED***"}


def test_pii_is_exported_to_a_member_with_pii_access(pii_member, slug, sales):
    sql = "SELECT id, email FROM customers ORDER BY id"
    data = json.loads(content(export(client_for(pii_member.user), slug, sales, sql, "json")))
    assert all("@" in row["email"] for row in data)


def test_dml_export_is_403(analyst_client, slug, sales):
    assert_error(export(analyst_client, slug, sales, "DELETE FROM orders", "csv"), 403, "DML_BLOCKED")


def test_bad_export_input_is_400(analyst_client, slug, sales):
    assert_error(export(analyst_client, slug, sales, "SELECT id FROM regions", "xlsx"), 400, "BAD_REQUEST")
    assert_error(export(analyst_client, slug, sales, "SELECT nope FROM regions", "csv"), 400, "SQL_VALIDATION_ERROR")


def test_an_export_of_a_foreign_space_is_404(slug, sales, outsider):
    assert_error(export(client_for(outsider.user), slug, sales, "SELECT 1", "csv"), 404, "NOT_FOUND")


def test_exports_are_recorded_in_history(analyst_client, member, slug, sales):
    content(export(analyst_client, slug, sales, "SELECT id FROM regions", "csv"))
    export(analyst_client, slug, sales, "DROP TABLE orders", "json")
    ok, refused = QueryHistory.objects.filter(user=member.user).order_by("executed_at")
    assert (ok.kind, ok.status, ok.row_count) == ("export", "success", 5)
    assert (refused.kind, refused.status, refused.error_code) == ("export", "error", "DML_BLOCKED")


def test_an_export_abandoned_by_the_client_is_recorded_as_interrupted(member, sales):
    body = export_open(
        membership=member, connector_id=sales.uuid, sql="SELECT o.id FROM orders o CROSS JOIN regions r", fmt="csv"
    )
    next(iter(body))
    body.close()  # what the server does when the client goes away
    (entry,) = QueryHistory.objects.filter(user=member.user)
    assert (entry.status, entry.error_code) == ("error", "EXPORT_INTERRUPTED")


def test_exports_count_against_the_rate_limit(analyst_client, slug, sales, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "query_editor": "1/min"},
    }
    content(export(analyst_client, slug, sales, "SELECT id FROM regions", "csv"))
    assert_error(export(analyst_client, slug, sales, "SELECT id FROM regions", "csv"), 429, "RATE_LIMITED")


# --- PostgreSQL: a server-side cursor ----------------------------------------------------------


def test_a_postgres_export_reads_through_a_server_side_cursor(analyst_client, slug, warehouse):
    response = export(analyst_client, slug, warehouse, "SELECT * FROM wide ORDER BY id", "csv")
    assert response.status_code == 200, response.content
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert first.startswith(b"id,email,c00")
    # Mid-stream, the source's session is fetching from a named cursor, not holding a full result.
    with psycopg.connect(
        host=warehouse.host, port=warehouse.port, dbname=PG_DATABASE, user=warehouse.username, autocommit=True
    ) as conn:
        fetching = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            " AND query LIKE 'FETCH FORWARD %%'",
            [PG_DATABASE],
        ).fetchall()
    assert fetching, "expected the export to be fetching from a server-side cursor"
    rest = b"".join(chunks)
    rows = list(csv.reader(io.StringIO((first + rest).decode())))
    assert len(rows) == 2001  # header + the 2,000-row cap of the 2,500-row table
    assert len(rows[0]) == PG_WIDE_COLUMNS
    assert {r[1] for r in rows[1:]} == {"***MASKED***"}


def test_a_postgres_export_as_json_parses(pii_member, slug, warehouse):
    response = export(client_for(pii_member.user), slug, warehouse, "SELECT id, email, score FROM people", "json")
    data = json.loads(content(response))
    assert len(data) == 2000
    assert "@" in data[0]["email"]


def test_a_postgres_execution_error_is_400_with_the_databases_message(analyst_client, slug, warehouse):
    response = analyst_client.post(
        space_url(slug, "execute"),
        {"connector_id": str(warehouse.uuid), "sql": "SELECT score / 0 AS x FROM people"},
        format="json",
    )
    body = assert_error(response, 400, "QUERY_EXECUTION_ERROR")
    assert "division by zero" in body["detail"]


def test_a_postgres_execute_masks_pii(analyst_client, slug, warehouse):
    response = analyst_client.post(
        space_url(slug, "execute"),
        {"connector_id": str(warehouse.uuid), "sql": "SELECT id, email FROM people ORDER BY id"},
        format="json",
    )
    body = response.json()
    assert body["row_count"] == 500
    assert body["rows"][0]["email"] == "***MASKED***"


def test_every_export_is_written_to_the_audit_log(analyst_client, slug, sales):
    response = export(analyst_client, slug, sales, "SELECT id, email FROM customers", "json")
    content(response)
    entry = AuditLog.objects.get(action="export.json")
    assert entry.object_id == str(sales.pk)
    assert entry.after["sql"] == "SELECT id, email FROM customers"
    assert entry.after["masked_columns"] == ["email"]
    assert entry.workspace_id == sales.workspace_id
