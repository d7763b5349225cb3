"""The admin is tenant-scoped: an organization's operator sees their organization's objects only, a staff
flag alone shows nothing, superusers see everything."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.support import Tenant, make_tenant, staff_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# (admin url name, attribute of Tenant holding that model's object)
SCOPED = [
    ("prompts_promptexecution", "execution"),
    ("connectors_datasource", "source"),
    ("connectors_rowpolicy", "policy"),
    ("connectors_catalogcolumn", "email_column"),
    ("connectors_sourceaccess", "access"),
    ("prompts_prompt", "prompt"),
    ("accounts_auditlog", "audit"),
]


@pytest.fixture
def org_a(data_root) -> Tenant:
    return make_tenant("a", data_root)


@pytest.fixture
def org_b(data_root) -> Tenant:
    return make_tenant("b", data_root)


def listed_ids(response) -> set[int]:
    assert response.status_code == 200, response.status_code
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.mark.parametrize(("name", "attr"), SCOPED)
def test_org_admin_lists_only_their_organizations_objects(org_a, org_b, name, attr):
    client = staff_client(org_a.operator.user)
    ids = listed_ids(client.get(reverse(f"admin:{name}_changelist")))
    assert getattr(org_a, attr).pk in ids
    assert getattr(org_b, attr).pk not in ids


@pytest.mark.parametrize(("name", "attr"), SCOPED)
def test_org_admin_cannot_open_another_organizations_object(org_a, org_b, name, attr):
    client = staff_client(org_a.operator.user)
    own = client.get(reverse(f"admin:{name}_change", args=[getattr(org_a, attr).pk]))
    assert own.status_code == 200
    foreign = client.get(reverse(f"admin:{name}_change", args=[getattr(org_b, attr).pk]))
    # Django's admin answers a missing object with a redirect to the index and a "doesn't exist" message.
    assert foreign.status_code in (302, 404)
    if foreign.status_code == 302:
        assert foreign["Location"] == reverse("admin:index")


def test_org_admin_cannot_delete_another_organizations_source(org_a, org_b):
    client = staff_client(org_a.operator.user)
    response = client.post(reverse("admin:connectors_datasource_delete", args=[org_b.source.pk]), {"post": "yes"})
    assert response.status_code in (302, 404)
    org_b.source.refresh_from_db()
    assert org_b.source.deleted_at is None
    assert type(org_b.source).objects.filter(pk=org_b.source.pk).exists()


def test_changelist_pages_never_name_another_organization(org_a, org_b):
    """Not in rows, not in the filter sidebar (workspaces, data sources, users)."""
    client = staff_client(org_a.operator.user)
    for name, _ in SCOPED:
        body = client.get(reverse(f"admin:{name}_changelist")).content.decode()
        for needle in (org_b.source.name, org_b.analyst.user.username, org_b.operator.workspace.name, "Policy b"):
            assert needle not in body, (name, needle)


def test_foreign_key_choices_are_scoped(org_a, org_b):
    client = staff_client(org_a.operator.user)
    form = client.get(reverse("admin:connectors_rowpolicy_add")).context["adminform"].form
    assert list(form.fields["data_source"].queryset) == [org_a.source]
    users = set(form.fields["users"].queryset)
    assert org_a.analyst.user in users
    assert org_b.analyst.user not in users
    assert org_b.operator.user not in users

    form = client.get(reverse("admin:connectors_datasource_add")).context["adminform"].form
    assert list(form.fields["workspace"].queryset) == [org_a.operator.workspace]
    assert org_b.operator.user not in set(form.fields["created_by"].queryset)

    form = client.get(reverse("admin:connectors_sourceaccess_add")).context["adminform"].form
    assert list(form.fields["data_source"].queryset) == [org_a.source]


def test_row_policy_form_cannot_point_at_another_organizations_source(org_a, org_b):
    client = staff_client(org_a.operator.user)
    response = client.post(
        reverse("admin:connectors_rowpolicy_add"),
        {
            "data_source": org_b.source.pk,
            "name": "sneaky",
            "table_name": "customers",
            "predicate": "1 = 1",
            "roles": "[]",
            "is_active": "on",
            "created_at_0": "2025-01-01",
            "created_at_1": "00:00:00",
        },
    )
    assert response.status_code == 200  # the form again, with an error
    assert "data_source" in response.context["adminform"].form.errors
    assert not org_b.source.row_policies.filter(name="sneaky").exists()


def test_staff_without_an_admin_membership_sees_nothing(org_a, org_b):
    clerk = UserFactory(username="clerk", is_staff=True)
    org_a.analyst.user.is_staff = True
    org_a.analyst.user.save()
    for user in (clerk, org_a.analyst.user):  # no membership at all / an analyst membership
        client = staff_client(user)
        index = client.get(reverse("admin:index"))
        assert index.status_code == 200
        assert index.context["app_list"] == []
        for app in ("prompts", "connectors", "accounts"):
            assert client.get(reverse("admin:app_list", args=[app])).status_code in (403, 404)
        for name, attr in SCOPED:
            assert client.get(reverse(f"admin:{name}_changelist")).status_code == 403, name
            assert client.get(reverse(f"admin:{name}_change", args=[getattr(org_a, attr).pk])).status_code in (
                302,
                403,
            )
        assert client.get(reverse("admin:connectors_rowpolicy_preview")).status_code == 403


def test_superuser_sees_every_organization(org_a, org_b):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = staff_client(root)
    for name, attr in SCOPED:
        ids = listed_ids(client.get(reverse(f"admin:{name}_changelist")))
        assert {getattr(org_a, attr).pk, getattr(org_b, attr).pk} <= ids, name
    assert client.get(reverse("admin:connectors_datasource_change", args=[org_b.source.pk])).status_code == 200


def test_org_admin_can_look_up_their_organizations_users_only(org_a, org_b):
    client = staff_client(org_a.operator.user)
    listed = client.get(reverse("admin:auth_user_changelist"))
    assert {u.username for u in listed.context["cl"].result_list} == {"op-a", "analyst-a"}
    found = client.get(
        "/admin/autocomplete/",
        {"app_label": "accounts", "model_name": "membership", "field_name": "user", "term": "analyst"},
    )
    assert found.status_code == 200
    assert [r["text"] for r in found.json()["results"]] == ["analyst-a"]


def test_org_admin_cannot_change_or_add_users(org_a, org_b):
    client = staff_client(org_a.operator.user)
    own_user = org_a.analyst.user
    response = client.post(reverse("admin:auth_user_change", args=[own_user.pk]), {"username": "renamed"})
    assert response.status_code == 403
    assert client.get(reverse("admin:auth_user_add")).status_code == 403
    own_user.refresh_from_db()
    assert own_user.username == "analyst-a"
