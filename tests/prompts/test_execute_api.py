"""POST /api/v1/prompts/execute, GET /api/v1/prompt-executions/{id}, …/cancel — in the web process only.

No worker runs here: executions stay `processing` unless a test ends them, which is what these need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from connectors.models import SourceAccess
from prompts.models import ExecutionStatus, PromptExecution
from tests.conftest import client_for, jwt_for
from tests.factories import DataSourceFactory, MembershipFactory
from tests.prompts.pipeline_support import demo_source
from tests.workers.helpers import ROOT, Broker, database_url_for_subprocess, make_broker, publishing_to


@pytest.fixture(scope="module", autouse=True)
def _own_broker(tmp_path_factory):
    """Messages these tests enqueue go to a broker of their own, never to a shared queue."""
    with publishing_to(make_broker(tmp_path_factory.mktemp("execute-api-broker"))) as broker:
        yield broker


@pytest.fixture
def source(member):
    return demo_source(member)


def body(source, **overrides):
    return {
        "prompt_text": "Show me total sales by region for the last quarter",
        "selected_data_source_ids": [source.pk],
        **overrides,
    }


def post(client, payload):
    return client.post("/api/v1/prompts/execute", payload, format="json")


def assert_bad_request(response, field: str) -> dict:
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["success"] is False
    assert data["error"]["code"] == "BAD_REQUEST"
    assert field in data["error"]["details"], data
    assert not PromptExecution.objects.exists()
    return data


# --- accepted ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_accepts_the_spec_request_and_answers_the_processing_body(member_client, member, source):
    response = post(
        member_client,
        body(
            source,
            workspace_id=member.workspace_id,
            selected_schema_names=["main"],
            name="Q4 Sales Report",
            save_prompt=True,
            ai_model="builtin",
            tags=["sales", "quarterly"],
        ),
    )

    assert response.status_code == 200, response.content
    payload = response.json()
    assert payload["success"] is True
    assert payload["message"] == "Prompt execution started"
    data = payload["data"]
    execution = PromptExecution.objects.get()
    assert data == {
        "execution_id": execution.pk,
        "prompt_id": None,
        "status": "processing",
        "ai_processing_status": "in_progress",
        "query_execution_status": None,
        "started_at": data["started_at"],
        "progress_percentage": 10,
    }
    assert data["started_at"].endswith("Z")
    assert (execution.name, execution.tags, execution.save_prompt) == ("Q4 Sales Report", ["sales", "quarterly"], True)
    assert execution.ai_model == "builtin"


@pytest.mark.django_db
def test_it_defaults_the_model_and_the_optional_fields(member_client, source, settings):
    settings.AI_DEFAULT_MODEL = "builtin"

    response = post(member_client, body(source))

    assert response.status_code == 200, response.content
    execution = PromptExecution.objects.get()
    assert (execution.ai_model, execution.schema_names, execution.tags, execution.save_prompt) == (
        "builtin",
        [],
        [],
        False,
    )


# --- validation ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "   ", "x" * 10_001])
def test_it_rejects_a_prompt_text_that_is_empty_blank_or_too_long(member_client, source, text):
    assert_bad_request(post(member_client, body(source, prompt_text=text)), "prompt_text")


@pytest.mark.django_db
def test_it_rejects_a_missing_prompt_text(member_client, source):
    payload = body(source)
    del payload["prompt_text"]
    assert_bad_request(post(member_client, payload), "prompt_text")


@pytest.mark.django_db
def test_it_rejects_an_empty_data_source_selection(member_client, source):
    assert_bad_request(post(member_client, body(source, selected_data_source_ids=[])), "selected_data_source_ids")


@pytest.mark.django_db
def test_it_rejects_a_foreign_data_source(member_client, source, outsider):
    foreign = DataSourceFactory(workspace=outsider.workspace)
    data = assert_bad_request(
        post(member_client, body(source, selected_data_source_ids=[source.pk, foreign.pk])), "selected_data_source_ids"
    )
    assert str(foreign.pk) in data["error"]["message"]


@pytest.mark.django_db
def test_it_rejects_an_inactive_data_source(member_client, member, source):
    inactive = DataSourceFactory(workspace=member.workspace, is_active=False)
    assert_bad_request(
        post(member_client, body(source, selected_data_source_ids=[inactive.pk])), "selected_data_source_ids"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["never", "failed"])
def test_it_rejects_a_source_with_no_discovered_tables(member_client, member, source, status):
    undiscovered = DataSourceFactory(workspace=member.workspace, discovery_status=status)
    data = assert_bad_request(
        post(member_client, body(source, selected_data_source_ids=[source.pk, undiscovered.pk])),
        "selected_data_source_ids",
    )
    assert f"discovery: {status}" in data["error"]["details"]["selected_data_source_ids"][0]


@pytest.mark.django_db
def test_it_rejects_an_unknown_schema(member_client, source):
    data = assert_bad_request(
        post(member_client, body(source, selected_schema_names=["main", "analytics"])), "selected_schema_names"
    )
    assert "analytics" in data["error"]["message"]


@pytest.mark.django_db
def test_it_rejects_an_unknown_model_naming_the_allowed_ones(member_client, source, settings):
    settings.AI_MODELS = {"local-llama": {"model": "openai/llama", "api_base": "http://127.0.0.1:9/v1"}}

    data = assert_bad_request(post(member_client, body(source, ai_model="gpt-4")), "ai_model")

    assert "builtin" in data["error"]["message"]
    assert "local-llama" in data["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt_text", {"text": "sales"}),
        ("selected_data_source_ids", "1"),
        ("selected_data_source_ids", ["one"]),
        ("selected_schema_names", "main"),
        ("save_prompt", "perhaps"),
        ("tags", "sales"),
        ("workspace_id", "first"),
    ],
)
def test_it_rejects_wrong_types_naming_the_field(member_client, source, field, value):
    assert_bad_request(post(member_client, body(source, **{field: value})), field)


@pytest.mark.django_db
def test_it_rejects_a_request_without_a_token(api_client, source):
    response = post(api_client, body(source))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert not PromptExecution.objects.exists()


@pytest.mark.django_db
def test_it_forbids_a_source_the_callers_role_may_not_query(member_client, member, source):
    SourceAccess.objects.create(data_source=source, role="admin")

    response = post(member_client, body(source))

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "POLICY_VIOLATION"
    assert not PromptExecution.objects.exists()


@pytest.mark.django_db(transaction=True)  # enqueueing happens on commit
def test_a_broker_outage_answers_503_and_leaves_no_execution(member_client, source):
    with publishing_to(Broker("redis://127.0.0.1:1/0")):  # a closed port
        response = post(member_client, body(source))

    assert response.status_code == 503, response.content
    payload = response.json()
    assert payload["success"] is False
    assert payload["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert not PromptExecution.objects.exists()


# --- reading and cancelling ----------------------------------------------------------------------------


@pytest.fixture
def running(member_client, source) -> int:
    response = post(member_client, body(source))
    assert response.status_code == 200, response.content
    return response.json()["data"]["execution_id"]


@pytest.mark.django_db
def test_the_owner_reads_a_running_execution(member_client, running):
    response = member_client.get(f"/api/v1/prompt-executions/{running}")

    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["execution_id"], data["status"], data["error_code"]) == (running, "processing", None)


@pytest.mark.django_db
def test_another_users_execution_is_not_found(running, member, outsider):
    colleague = MembershipFactory(role="analyst", workspace=member.workspace)
    for other in (colleague, outsider):
        client = client_for(other.user)
        assert client.get(f"/api/v1/prompt-executions/{running}").status_code == 404
        assert client.post(f"/api/v1/prompt-executions/{running}/cancel").status_code == 404
    assert PromptExecution.objects.get(pk=running).status == ExecutionStatus.PROCESSING


@pytest.mark.django_db
def test_a_workspace_admin_reads_a_members_execution(running, admin_member):
    assert client_for(admin_member.user).get(f"/api/v1/prompt-executions/{running}").status_code == 200


@pytest.mark.django_db
def test_cancelling_a_running_execution_fails_it_with_cancelled(member_client, running):
    response = member_client.post(f"/api/v1/prompt-executions/{running}/cancel")

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["status"], data["error_code"], data["ai_processing_status"]) == ("failed", "CANCELLED", "failed")
    assert data["completed_at"]
    assert PromptExecution.objects.get(pk=running).cancel_requested


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED])
def test_cancelling_a_finished_execution_is_a_bad_request(member_client, running, status):
    PromptExecution.objects.filter(pk=running).update(status=status)

    response = member_client.post(f"/api/v1/prompt-executions/{running}/cancel")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_REQUEST"
    assert PromptExecution.objects.get(pk=running).status == status


@pytest.mark.django_db
def test_a_deactivated_user_with_a_valid_token_is_refused_everywhere(member, member_client, running, source):
    member.user.is_active = False
    member.user.save(update_fields=["is_active"])

    responses = [
        member_client.get(f"/api/v1/prompt-executions/{running}"),
        member_client.post(f"/api/v1/prompt-executions/{running}/cancel"),
        post(member_client, body(source)),
    ]

    assert [r.status_code for r in responses] == [401, 401, 401], [r.content for r in responses]
    assert PromptExecution.objects.get(pk=running).status == ExecutionStatus.PROCESSING
    assert PromptExecution.objects.count() == 1


@pytest.mark.django_db
def test_the_polled_read_returns_what_the_orm_reads(member_client, running):
    """The poll's fixed statement (config/rows.py) converts every field as a queryset would."""
    from prompts.api import execution_body

    execution = PromptExecution.objects.get(pk=running)
    execution.result_preview = [{"region": "North", "total": 12.5}]
    execution.ai_metadata = {"model": "builtin", "tokens_used": 0}
    execution.warnings = ["row cap applied"]
    execution.save()

    data = member_client.get(f"/api/v1/prompt-executions/{running}").json()["data"]

    expected = json.loads(json.dumps(execution_body(PromptExecution.objects.get(pk=running)), default=str))
    assert data["result_preview"] == [{"region": "North", "total": 12.5}]
    assert data["ai_metadata"] == {"model": "builtin", "tokens_used": 0}
    assert {k: v for k, v in data.items() if not k.endswith("_at")} == {
        k: v for k, v in expected.items() if not k.endswith("_at")
    }
    assert data["started_at"].endswith("Z")


@pytest.mark.django_db
def test_a_token_that_expires_is_refused_although_it_was_accepted_before(member, running):
    """Validated tokens are remembered per process (polls repeat them); their expiry is checked each time."""
    import time
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(member.user)
    token.set_exp(lifetime=timedelta(seconds=1))
    client = client_for(member.user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(f"/api/v1/prompt-executions/{running}").status_code == 200

    time.sleep(1.2)

    assert client.get(f"/api/v1/prompt-executions/{running}").status_code == 401


# --- the web process stays light -------------------------------------------------------------------------

WEB_REQUEST = """
import json, sys
import django
django.setup()
from django.test import Client
response = Client().post(
    "/api/v1/prompts/execute", data=sys.argv[1], content_type="application/json", HTTP_AUTHORIZATION=sys.argv[2]
)
print(json.dumps({"status": response.status_code, "litellm": "litellm" in sys.modules}))
"""


@pytest.mark.django_db(transaction=True)
def test_the_web_process_answers_execute_without_importing_litellm(member, source, tmp_path):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url_for_subprocess(),
        CELERY_BROKER_URL="filesystem://",
        VAR_DIR=str(tmp_path),
        AI_MODELS=json.dumps({"stub": {"model": "openai/stub", "api_base": "http://127.0.0.1:9/v1"}}),
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WEB_REQUEST,
            json.dumps(body(source, ai_model="stub")),
            f"Bearer {jwt_for(member.user)}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 200, "litellm": False}, result.stderr
    assert PromptExecution.objects.get().ai_model == "stub"
