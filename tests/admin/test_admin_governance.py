"""Governance in the admin and its audit trail: bulk column classification, row policies, data source changes
through the API, re-discovery, and the "preview as user" tool."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import AuditLog, Membership
from connectors.governed import GovernedRequest, governed_execute
from connectors.models import CatalogColumn, DataSource, RowPolicy
from tests.admin.support import Tenant, make_shop_db, make_tenant, staff_client
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

SECRET = "hunter2-never-in-the-audit-log"


@pytest.fixture
def org(data_root) -> Tenant:
    return make_tenant("a", data_root)


@pytest.fixture
def other_org(data_root) -> Tenant:
    return make_tenant("b", data_root)


def changelist_post_data(response, changes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The list_editable formset of a changelist page as the browser would submit it, with `changes` applied."""
    formset = response.context["cl"].formset
    data: dict[str, Any] = {
        f"{formset.prefix}-TOTAL_FORMS": str(formset.total_form_count()),
        f"{formset.prefix}-INITIAL_FORMS": str(formset.initial_form_count()),
        f"{formset.prefix}-MIN_NUM_FORMS": "0",
        f"{formset.prefix}-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for form in formset.forms:
        values = {name: form.initial.get(name) for name in form.fields}
        values["id"] = form.instance.pk
        values.update(changes.get(form.instance.pk, {}))
        for name, value in values.items():
            if isinstance(value, bool):
                if value:
                    data[f"{form.prefix}-{name}"] = "on"
            elif value is not None:
                data[f"{form.prefix}-{name}"] = value
    return data


def analyst_reads_names(tenant: Tenant) -> list[str]:
    tenant.source.refresh_from_db()  # as every request and task does: the catalog version decides the cache
    result = governed_execute(
        GovernedRequest(
            membership=tenant.analyst, sources=[tenant.source], sql="SELECT name FROM customers", purpose="test"
        )
    )
    return [row["name"] for row in result.rows]


def test_bulk_pii_flags_are_audited_and_mask_from_the_next_query(org):
    name_column = CatalogColumn.objects.get(table__data_source=org.source, table__name="customers", name="name")
    assert all(n.startswith("Customer ") for n in analyst_reads_names(org))  # also warms the catalog cache
    version = DataSource.objects.get(pk=org.source.pk).catalog_version

    client = staff_client(org.operator.user)
    url = reverse("admin:connectors_catalogcolumn_changelist")
    page = client.get(url, {"table__data_source__id__exact": org.source.pk})
    response = client.post(
        url + f"?table__data_source__id__exact={org.source.pk}",
        changelist_post_data(page, {name_column.pk: {"pii": True, "masking_style": "full"}}),
    )
    assert response.status_code == 302, response.context["cl"].formset.errors if response.context else response

    name_column.refresh_from_db()
    assert name_column.pii is True
    assert DataSource.objects.get(pk=org.source.pk).catalog_version > version
    entry = AuditLog.objects.get(action="catalogcolumn.update", object_id=str(name_column.pk))
    assert entry.actor == org.operator.user
    assert entry.workspace_id is None or entry.workspace_id == org.source.workspace_id
    assert entry.before == {"pii": False}
    assert entry.after == {"pii": True}
    # Unchanged rows of the formset are not logged.
    assert AuditLog.objects.filter(action="catalogcolumn.update").count() == 1

    assert not any(n.startswith("Customer ") for n in analyst_reads_names(org))


def test_row_policy_change_is_audited_with_before_and_after(org):
    client = staff_client(org.operator.user)
    url = reverse("admin:connectors_rowpolicy_change", args=[org.policy.pk])
    form = client.get(url).context["adminform"].form
    created = form.initial["created_at"]
    response = client.post(
        url,
        {
            "data_source": org.source.pk,
            "name": org.policy.name,
            "schema_name": "",
            "table_name": "customers",
            "predicate": "region_id IN (1, 2)",
            "roles": json.dumps(["analyst", "viewer"]),
            "is_active": "on",
            "description": "",
            "created_at_0": created.date().isoformat(),
            "created_at_1": created.time().replace(microsecond=0).isoformat(),
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditLog.objects.get(action="rowpolicy.update", object_id=str(org.policy.pk))
    assert entry.actor == org.operator.user
    assert entry.organization_id == org.operator.workspace.organization_id
    assert entry.before["predicate"] == "region_id = {{member.region_id}}"
    assert entry.after["predicate"] == "region_id IN (1, 2)"
    assert entry.after["roles"] == ["analyst", "viewer"]
    assert "name" not in entry.after  # only what changed

    audit_page = client.get(reverse("admin:accounts_auditlog_change", args=[entry.pk]))
    assert audit_page.status_code == 200
    assert "region_id IN (1, 2)" in audit_page.content.decode()


def test_row_policy_delete_is_audited(org):
    client = staff_client(org.operator.user)
    response = client.post(reverse("admin:connectors_rowpolicy_delete", args=[org.policy.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not RowPolicy.objects.filter(pk=org.policy.pk).exists()
    entry = AuditLog.objects.get(action="rowpolicy.delete")
    assert entry.before["predicate"] == "region_id = {{member.region_id}}"
    assert entry.organization_id == org.operator.workspace.organization_id


def test_audit_log_is_read_only_in_the_admin(org):
    client = staff_client(org.operator.user)
    page = client.get(reverse("admin:accounts_auditlog_change", args=[org.audit.pk])).content.decode()
    assert 'name="_save"' not in page
    assert client.get(reverse("admin:accounts_auditlog_add")).status_code == 403
    response = client.post(reverse("admin:accounts_auditlog_delete", args=[org.audit.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert AuditLog.objects.filter(pk=org.audit.pk).exists()


def test_data_source_api_changes_are_audited_without_the_password(org, data_root):
    client = client_for(org.operator.user)
    path = make_shop_db(data_root / "audited.sqlite3")
    created = client.post(
        "/api/v1/data-sources",
        {
            "name": "Audited",
            "connector_type": "postgres",
            "workspace_id": org.operator.workspace_id,
            "connection": {"host": "db.internal", "database": "shop", "user": "reader", "password": SECRET},
        },
        format="json",
    )
    assert created.status_code in (200, 201), created.content
    source_id = created.json()["data"]["id"]
    patched = client.patch(
        f"/api/v1/data-sources/{source_id}",
        {"name": "Audited v2", "connection": {"password": SECRET + "-rotated"}},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert client.delete(f"/api/v1/data-sources/{source_id}").status_code in (200, 204)

    entries = list(AuditLog.objects.filter(object_id=str(source_id), object_type="connectors.DataSource"))
    by_action = {e.action: e for e in entries}
    assert set(by_action) == {"data_source.create", "data_source.update", "data_source.delete"}
    for entry in entries:
        assert entry.actor == org.operator.user
        assert entry.workspace_id == org.operator.workspace_id
        assert entry.organization_id == org.operator.workspace.organization_id
        dumped = json.dumps([entry.before, entry.after])
        assert SECRET not in dumped
    create = by_action["data_source.create"]
    assert create.before is None
    assert create.after["host"] == "db.internal"
    assert create.after["password_encrypted"].startswith("***")
    update = by_action["data_source.update"]
    assert update.before["name"] == "Audited"
    assert update.after["name"] == "Audited v2"
    # A rotated password shows as changed, never as itself.
    assert update.before["password_encrypted"] != update.after["password_encrypted"]
    assert update.after["password_encrypted"].startswith("***")
    delete = by_action["data_source.delete"]
    assert delete.before["deleted_at"] is None
    assert delete.after["deleted_at"]
    assert path.exists()


def test_rediscover_action_refreshes_the_catalog_and_is_audited(org):
    client = staff_client(org.operator.user)
    response = client.post(
        reverse("admin:connectors_datasource_changelist"),
        {"action": "rediscover", "_selected_action": [org.source.pk], "index": "0"},
        follow=True,
    )
    assert "succeeded" in response.content.decode()
    assert AuditLog.objects.filter(action="data_source.discover", object_id=str(org.source.pk)).exists()


def preview(client, *, member: Membership, source: DataSource, table: str = "customers"):
    return client.post(
        reverse("admin:connectors_rowpolicy_preview"),
        {"member": member.pk, "data_source": source.pk, "table": table, "limit": 20},
    )


def test_preview_as_user_shows_the_rewritten_sql_and_their_masked_rows():
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    analyst = Membership.objects.get(user__username="demo", workspace__slug="demo")
    source = DataSource.objects.alive().get(workspace=analyst.workspace, alias="sales")
    operator = Membership.objects.get(user__username="operator", workspace__slug="demo")
    client = staff_client(operator.user)

    page = client.get(reverse("admin:connectors_rowpolicy_preview"))
    assert page.status_code == 200
    response = preview(client, member=analyst, source=source)
    assert response.status_code == 200
    context = response.context
    assert "error" not in context, context.get("error")
    assert "region_id = 1" in context["rewritten_sql"]
    assert 0 < len(context["rows"]) <= 20
    columns = context["columns"]
    region = columns.index("region_id")
    assert {row[region] for row in context["rows"]} == {1}
    email = columns.index("email")
    assert all("@" not in str(row[email]) or "*" in str(row[email]) for row in context["rows"])
    assert "email" in context["result"].masked_columns
    body = response.content.decode()
    assert 'id="rewritten-sql"' in body
    assert 'id="preview-rows"' in body

    # The same table through a member who holds the PII grant: emails in clear.
    analyst.pii_access = True
    analyst.save(update_fields=["pii_access"])
    context = preview(client, member=analyst, source=source).context
    assert all("@" in str(row[email]) and "*" not in str(row[email]) for row in context["rows"])


def test_preview_cannot_look_through_another_organizations_member(org, other_org):
    client = staff_client(org.operator.user)
    response = preview(client, member=other_org.analyst, source=other_org.source)
    assert response.status_code == 200
    assert "rows" not in response.context
    form = response.context["form"]
    assert "member" in form.errors
    assert "data_source" in form.errors
