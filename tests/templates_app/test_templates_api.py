"""/api/v1/prompt-templates: list, get, create, patch, delete, execute (spec 003)."""

from __future__ import annotations

import pytest

from connectors.models import CatalogTable
from prompts.models import PromptExecution
from templates_app.models import PromptTemplate
from tests.conftest import client_for
from tests.factories import DataSourceFactory, MembershipFactory
from tests.prompts.studio_support import assert_error, ok

pytestmark = pytest.mark.django_db

TEMPLATES = "/api/v1/prompt-templates"
SYSTEM_NAMES = {
    "Metric by dimension over a period",
    "Top N by a measure",
    "Monthly trend",
    "Count over a period",
    "Breakdown by status",
    "Average per segment",
}

PARAMS = [
    {"name": "metric", "type": "string", "required": True},
    {"name": "dimension", "type": "enum", "allowed_values": ["region", "category"], "default": "region"},
    {"name": "limit", "type": "number", "default": 10},
    {"name": "since", "type": "date", "required": False},
]
TEXT = "Top {{limit}} {{dimension}} by {{metric}} since {{ since }}"


def template_for(membership, **fields) -> PromptTemplate:
    values = {
        "organization_id": membership.workspace.organization_id,
        "owner": membership.user,
        "name": "Mine",
        "template_text": TEXT,
        "parameters": [
            {**p, "required": p.get("required", False), "default": p.get("default"), "description": ""} for p in PARAMS
        ],
    }
    values.update(fields)
    return PromptTemplate.objects.create(**values)


def names(data: dict) -> set[str]:
    return {t["name"] for t in data["items"]}


@pytest.fixture
def source(member):
    """A discovered source (execute refuses one with no tables); nothing here runs a query on it."""
    source = DataSourceFactory(workspace=member.workspace, discovery_status="succeeded")
    CatalogTable.objects.create(data_source=source, schema_name="main", name="orders")
    return source


# --- list / get -----------------------------------------------------------------------------------


def test_list_includes_the_seeded_system_templates(member_client):
    data = ok(member_client.get(TEMPLATES, {"scope": "system", "page_size": 100}))
    assert names(data) == SYSTEM_NAMES
    assert all(t["is_system"] and t["category"] for t in data["items"])


def test_list_shows_system_public_and_own_but_not_colleagues_private(member, admin_member, member_client, outsider):
    mine = template_for(member, name="mine private")
    public = template_for(admin_member, name="colleague public", is_public=True)
    template_for(admin_member, name="colleague private")
    template_for(outsider, name="other org public", is_public=True)
    data = ok(member_client.get(TEMPLATES, {"page_size": 100}))
    assert names(data) == SYSTEM_NAMES | {mine.name, public.name}
    assert data["pagination"]["total"] == len(SYSTEM_NAMES) + 2


def test_list_filters_by_scope(member, admin_member, member_client):
    template_for(member, name="mine")
    template_for(admin_member, name="shared", is_public=True)
    assert names(ok(member_client.get(TEMPLATES, {"scope": "mine"}))) == {"mine"}
    assert names(ok(member_client.get(TEMPLATES, {"scope": "public"}))) == {"shared"}


def test_list_filters_by_category(member_client):
    assert names(ok(member_client.get(TEMPLATES, {"category": "operations"}))) == {
        "Count over a period",
        "Breakdown by status",
    }


def test_list_searches_name_description_and_text(member, member_client):
    template_for(member, name="zebra finder", description="")
    assert names(ok(member_client.get(TEMPLATES, {"q": "ZEBRA"}))) == {"zebra finder"}
    assert names(ok(member_client.get(TEMPLATES, {"q": "segment"}))) == {"Average per segment"}


def test_list_paginates(member_client):
    data = ok(member_client.get(TEMPLATES, {"page_size": 4, "page": 2}))
    assert len(data["items"]) == 2
    assert data["pagination"] == {"page": 2, "page_size": 4, "total": 6, "total_pages": 2}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"scope": "everything"}, "scope"), ({"category": "no-such"}, "category"), ({"page": "3"}, "page")],
)
def test_list_rejects_bad_filters_naming_them(member_client, params, field):
    assert_error(member_client.get(TEMPLATES, params), 400, "BAD_REQUEST", field)


def test_get_returns_the_template_with_its_placeholders(member, member_client):
    template = template_for(member)
    data = ok(member_client.get(f"{TEMPLATES}/{template.pk}"))
    assert data["placeholders"] == ["limit", "dimension", "metric", "since"]
    assert [p["name"] for p in data["parameters"]] == ["metric", "dimension", "limit", "since"]
    assert data["owner_id"] == member.user_id


def test_get_answers_404_for_another_orgs_private_template(member_client, outsider):
    assert_error(member_client.get(f"{TEMPLATES}/{template_for(outsider).pk}"), 404, "NOT_FOUND")


def test_get_answers_404_for_another_orgs_public_template(member_client, outsider):
    assert_error(member_client.get(f"{TEMPLATES}/{template_for(outsider, is_public=True).pk}"), 404, "NOT_FOUND")


def test_get_answers_404_for_a_colleagues_private_template(member_client, admin_member):
    assert_error(member_client.get(f"{TEMPLATES}/{template_for(admin_member).pk}"), 404, "NOT_FOUND")


# --- create ---------------------------------------------------------------------------------------


def test_create_stores_a_private_template_with_cleaned_parameters(member, member_client):
    body = {"name": "Top", "template_text": TEXT, "parameters": PARAMS, "category": "sales"}
    data = ok(member_client.post(TEMPLATES, body, format="json"), 201)
    assert (data["is_public"], data["is_system"], data["owner_id"]) == (False, False, member.user_id)
    assert data["category"]["slug"] == "sales"
    template = PromptTemplate.objects.get(pk=data["id"])
    assert template.organization_id == member.workspace.organization_id
    by_name = {p["name"]: p for p in template.parameters}
    assert by_name["limit"] == {
        "name": "limit",
        "type": "number",
        "required": False,
        "default": 10,
        "allowed_values": None,
        "description": "",
    }
    assert by_name["dimension"]["allowed_values"] == ["region", "category"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"template_text": "by {{metric}} and {{dimension}}", "parameters": [{"name": "metric"}]}, "template_text"),
        ({"template_text": "by {{metric}}", "parameters": [{"name": "metric"}, {"name": "extra"}]}, "parameters"),
        (
            {"template_text": "{{kind}}", "parameters": [{"name": "kind", "type": "enum"}]},
            "parameters[0].allowed_values",
        ),
        (
            {"template_text": "{{kind}}", "parameters": [{"name": "kind", "type": "enum", "allowed_values": []}]},
            "parameters[0].allowed_values",
        ),
        (
            {"template_text": "{{n}}", "parameters": [{"name": "n", "type": "number", "default": "ten"}]},
            "parameters[0].default",
        ),
        ({"template_text": "{{n}}", "parameters": [{"name": "n", "type": "colour"}]}, "parameters"),
        ({"template_text": "{{n}}", "parameters": [{"name": "n"}, {"name": "n"}]}, "parameters[1].name"),
        ({"template_text": "{{x}}", "parameters": [{"name": "9x"}]}, "parameters[0].name"),
        ({"template_text": "", "parameters": []}, "template_text"),
        ({"template_text": "hi", "parameters": [], "category": "nope"}, "category"),
        ({"template_text": "hi", "parameters": [], "name": ""}, "name"),
        (
            {
                "template_text": "{{k}}",
                "parameters": [{"name": "k", "type": "enum", "allowed_values": ["a"], "default": "b"}],
            },
            "parameters[0].default",
        ),
    ],
    ids=[
        "undeclared-placeholder",
        "unused-parameter",
        "enum-without-values",
        "enum-empty-values",
        "number-default-not-number",
        "unknown-type",
        "declared-twice",
        "bad-name",
        "empty-text",
        "unknown-category",
        "empty-name",
        "enum-default-not-allowed",
    ],
)
def test_create_rejects_bad_definitions_naming_the_field(member_client, body, field):
    body = {"name": "T", **body}
    body_error = assert_error(member_client.post(TEMPLATES, body, format="json"), 400, "BAD_REQUEST")
    details = body_error["error"]["details"]
    assert any(key == field or key.startswith(field) for key in details), details


def test_create_is_forbidden_to_a_viewer(viewer_member):
    body = {"name": "T", "template_text": "hi", "parameters": []}
    assert_error(client_for(viewer_member.user).post(TEMPLATES, body, format="json"), 403, "FORBIDDEN")


def test_a_public_template_is_visible_to_the_whole_organization(member, member_client):
    body = {"name": "Org-wide", "template_text": "hi", "parameters": [], "is_public": True}
    template_id = ok(member_client.post(TEMPLATES, body, format="json"), 201)["id"]
    # Another workspace of the same organization.
    other = MembershipFactory(workspace__organization=member.workspace.organization)
    assert ok(client_for(other.user).get(f"{TEMPLATES}/{template_id}"))["name"] == "Org-wide"


# --- patch / delete -------------------------------------------------------------------------------


def test_owner_patches_a_template(member, member_client):
    template = template_for(member)
    data = ok(member_client.patch(f"{TEMPLATES}/{template.pk}", {"name": "Renamed", "is_public": True}, format="json"))
    assert (data["name"], data["is_public"]) == ("Renamed", True)
    template.refresh_from_db()
    assert template.parameters[0]["name"] == "metric"  # a partial update keeps the parameters


def test_patch_revalidates_text_against_parameters(member, member_client):
    template = template_for(member)
    response = member_client.patch(f"{TEMPLATES}/{template.pk}", {"template_text": "just {{metric}}"}, format="json")
    assert_error(response, 400, "BAD_REQUEST", "parameters")


def test_a_colleague_may_not_patch_a_public_template(member, admin_member):
    template = template_for(admin_member, is_public=True)
    response = client_for(member.user).patch(f"{TEMPLATES}/{template.pk}", {"name": "x"}, format="json")
    assert_error(response, 403, "FORBIDDEN")


def test_a_viewer_may_not_patch_a_public_template(member, viewer_member):
    template = template_for(member, is_public=True)
    response = client_for(viewer_member.user).patch(f"{TEMPLATES}/{template.pk}", {"name": "x"}, format="json")
    assert_error(response, 403, "FORBIDDEN")


def test_system_templates_are_read_only_even_for_admins(admin_member):
    template = PromptTemplate.objects.filter(is_system=True).first()
    client = client_for(admin_member.user)
    assert_error(client.patch(f"{TEMPLATES}/{template.pk}", {"name": "x"}, format="json"), 403, "FORBIDDEN")
    assert_error(client.delete(f"{TEMPLATES}/{template.pk}"), 403, "FORBIDDEN")


def test_patch_answers_404_for_another_orgs_template(member_client, outsider):
    template = template_for(outsider, is_public=True)
    assert_error(member_client.patch(f"{TEMPLATES}/{template.pk}", {"name": "x"}, format="json"), 404, "NOT_FOUND")


def test_owner_deletes_a_template_softly(member, member_client):
    template = template_for(member)
    assert ok(member_client.delete(f"{TEMPLATES}/{template.pk}")) == {"id": template.pk, "deleted": True}
    assert_error(member_client.get(f"{TEMPLATES}/{template.pk}"), 404, "NOT_FOUND")
    assert "Mine" not in names(ok(member_client.get(TEMPLATES, {"page_size": 100})))
    template.refresh_from_db()
    assert template.deleted_at is not None


def test_a_colleague_may_not_delete_a_public_template(member, admin_member):
    template = template_for(admin_member, is_public=True)
    assert_error(client_for(member.user).delete(f"{TEMPLATES}/{template.pk}"), 403, "FORBIDDEN")


def test_delete_answers_404_for_another_orgs_template(member_client, outsider):
    assert_error(member_client.delete(f"{TEMPLATES}/{template_for(outsider).pk}"), 404, "NOT_FOUND")


# --- execute (spec 003) ---------------------------------------------------------------------------


def execute(client, template, source, parameters, **extra):
    body = {"selected_data_source_ids": [source.pk], "parameters": parameters, **extra}
    return client.post(f"{TEMPLATES}/{template.pk}/execute", body, format="json")


def test_execute_substitutes_parameters_with_defaults_and_records_them(member, member_client, source):
    template = template_for(member)
    data = ok(execute(member_client, template, source, {"metric": "sales", "since": "2025-01-31"}))
    assert data["status"] == "processing"
    assert data["ai_processing_status"] == "in_progress"
    assert data["template_id"] == template.pk
    execution = PromptExecution.objects.get(pk=data["execution_id"])
    assert execution.prompt_text == "Top 10 region by sales since 2025-01-31"
    assert data["prompt_text"] == execution.prompt_text
    assert execution.template_id == template.pk
    assert execution.template_parameters == {
        "metric": "sales",
        "dimension": "region",
        "limit": 10,
        "since": "2025-01-31",
    }
    template.refresh_from_db()
    assert template.usage_count == 1


def test_execute_a_system_template_with_its_defaults(member_client, source):
    template = PromptTemplate.objects.get(is_system=True, name="Metric by dimension over a period")
    data = ok(execute(member_client, template, source, {}))
    execution = PromptExecution.objects.get(pk=data["execution_id"])
    assert execution.prompt_text == "Show me total sales by region for the last quarter"


def test_execute_accepts_the_specs_spelling_of_an_enum_value(member_client, source):
    # Spec 003's example sends "last_30_days"; the system template declares "last 30 days".
    template = PromptTemplate.objects.get(is_system=True, name="Metric by dimension over a period")
    data = ok(execute(member_client, template, source, {"metric": "sales", "time_period": "last_30_days"}))
    execution = PromptExecution.objects.get(pk=data["execution_id"])
    assert execution.prompt_text == "Show me total sales by region for the last 30 days"
    assert execution.template_parameters["time_period"] == "last 30 days"


def test_execute_lists_every_missing_required_parameter(member, member_client, source):
    template = template_for(
        member,
        template_text="{{a}} {{b}} {{c}}",
        parameters=[
            {"name": "a", "type": "string", "required": True, "default": None},
            {"name": "b", "type": "string", "required": True, "default": None},
            {"name": "c", "type": "string", "required": False, "default": None},
        ],
    )
    body = assert_error(
        execute(member_client, template, source, {}), 400, "BAD_REQUEST", "parameters.a", "parameters.b"
    )
    assert "parameters.c" not in body["error"]["details"]
    assert not PromptExecution.objects.exists()


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"metric": "sales", "colour": "red"}, "parameters"),
        ({"metric": "sales", "limit": "ten"}, "parameters.limit"),
        ({"metric": "sales", "limit": True}, "parameters.limit"),
        ({"metric": "sales", "limit": "inf"}, "parameters.limit"),
        ({"metric": "sales", "limit": "nan"}, "parameters.limit"),
        ({"metric": "sales", "since": "31/01/2025"}, "parameters.since"),
        ({"metric": "sales", "since": "2025-02-30"}, "parameters.since"),
        ({"metric": "sales", "dimension": "planet"}, "parameters.dimension"),
        ({"metric": "x" * 501}, "parameters.metric"),
        ({"metric": {"nested": 1}}, "parameters.metric"),
    ],
    ids=[
        "unknown",
        "number-text",
        "number-bool",
        "number-infinite",
        "number-nan",
        "date-format",
        "date-impossible",
        "enum-not-allowed",
        "too-long",
        "object-value",
    ],
)
def test_execute_rejects_bad_parameter_values_naming_them(member, member_client, source, parameters, field):
    template = template_for(member)
    assert_error(execute(member_client, template, source, parameters), 400, "BAD_REQUEST", field)
    template.refresh_from_db()
    assert template.usage_count == 0


def test_execute_accepts_a_value_at_the_length_cap(member, member_client, source):
    template = template_for(member)
    data = ok(execute(member_client, template, source, {"metric": "m" * 500}))
    assert "m" * 500 in PromptExecution.objects.get(pk=data["execution_id"]).prompt_text


def test_execute_inserts_values_as_text_without_resubstituting(member, member_client, source):
    template = template_for(member)
    data = ok(execute(member_client, template, source, {"metric": "{{limit}}"}))
    assert PromptExecution.objects.get(pk=data["execution_id"]).prompt_text == "Top 10 region by {{limit}} since"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"selected_data_source_ids": [], "parameters": {"metric": "m"}}, "selected_data_source_ids"),
        ({"parameters": {"metric": "m"}}, "selected_data_source_ids"),
        ({"selected_data_source_ids": [999999], "parameters": {"metric": "m"}}, "selected_data_source_ids"),
        ({"selected_data_source_ids": "x", "parameters": {"metric": "m"}}, "selected_data_source_ids"),
        ({"selected_data_source_ids": "SOURCE", "parameters": ["metric"]}, "parameters"),
        ({"selected_data_source_ids": "SOURCE", "parameters": {"metric": "m"}, "ai_model": "nope"}, "ai_model"),
    ],
    ids=["empty-sources", "no-sources", "unknown-source", "sources-not-list", "parameters-not-object", "bad-model"],
)
def test_execute_rejects_bad_request_bodies(member, member_client, source, body, field):
    template = template_for(member)
    if body.get("selected_data_source_ids") == "SOURCE":
        body = {**body, "selected_data_source_ids": [source.pk]}
    response = member_client.post(f"{TEMPLATES}/{template.pk}/execute", body, format="json")
    assert_error(response, 400, "BAD_REQUEST", field)


def test_execute_rejects_a_rendered_prompt_over_10000_characters(member, member_client, source):
    template = template_for(
        member,
        template_text="x" * 9_900 + " {{metric}}",
        parameters=[{"name": "metric", "type": "string", "required": True, "default": None}],
    )
    assert_error(execute(member_client, template, source, {"metric": "m" * 200}), 400, "BAD_REQUEST", "parameters")


def test_execute_keeps_the_templates_line_breaks(member, member_client, source):
    template = template_for(
        member,
        template_text="Sales by {{metric}}\nper   region",
        parameters=[{"name": "metric", "type": "string", "required": False, "default": None}],
    )
    data = ok(execute(member_client, template, source, {"metric": "month"}))
    assert PromptExecution.objects.get(pk=data["execution_id"]).prompt_text == "Sales by month\nper region"


def test_execute_answers_404_for_another_orgs_private_template(member_client, source, outsider):
    assert_error(execute(member_client, template_for(outsider), source, {"metric": "m"}), 404, "NOT_FOUND")


def test_execute_answers_404_for_a_deleted_template(member, member_client, source):
    template = template_for(member)
    ok(member_client.delete(f"{TEMPLATES}/{template.pk}"))
    assert_error(execute(member_client, template, source, {"metric": "m"}), 404, "NOT_FOUND")


def test_execute_a_colleagues_public_template_runs_as_the_caller(member, admin_member, member_client, source):
    template = template_for(admin_member, is_public=True)
    data = ok(execute(member_client, template, source, {"metric": "m"}))
    execution = PromptExecution.objects.get(pk=data["execution_id"])
    assert (execution.user_id, execution.template_id) == (member.user_id, template.pk)


def test_execute_with_save_prompt_is_recorded_on_the_execution(member, member_client, source):
    template = template_for(member)
    data = ok(execute(member_client, template, source, {"metric": "m"}, save_prompt=True))
    assert PromptExecution.objects.get(pk=data["execution_id"]).save_prompt is True
