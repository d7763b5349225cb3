"""Program runs without a worker process: the task body, the wait, the broker outage, the host services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey
from programs import primitives, services
from programs.host import LlmChoice, ProgramHost
from programs.models import ProgramRun, RunStatus
from tests.llm_stub import LLMStub, Reply
from tests.programs.conftest import execute, program_request
from tests.programs.worker import Broker, filesystem_broker, publishing_to
from workers.tasks import run_program


def _create(member, code: str, **kwargs) -> ProgramRun:
    key = ApiKey.objects.filter(workspace=member.workspace).first()
    return services.run_create(
        api_key=key,
        membership=member,
        code=code,
        artifacts=kwargs.get("artifacts", []),
        ai_primitives_llm=kwargs.get("llm", {"provider": "hasura"}),
        ddn=kwargs.get("ddn", {"url": "", "headers": {}}),
    )


@pytest.mark.django_db
def test_the_task_runs_a_queued_run_once_and_ignores_a_duplicate_delivery(member, api_key_token):
    run = _create(member, "print(6 * 7)", llm={"provider": "openai", "api_key": "sk-secret", "model": "m"})
    assert run.status == RunStatus.QUEUED
    assert run.secrets_encrypted
    assert "sk-secret" not in run.secrets_encrypted

    run_program(run.pk)
    run.refresh_from_db()
    first = (run.status, run.output, run.finished_at, run.timings)
    run_program(run.pk)  # redelivered
    run.refresh_from_db()

    assert first[:2] == (RunStatus.COMPLETED, "42\n")
    assert (run.status, run.output, run.finished_at, run.timings) == first
    assert run.secrets_encrypted == ""
    assert run.request["ai_primitives_llm"] == {"provider": "openai", "model": "m", "api_base": None}


@pytest.mark.django_db
def test_a_run_whose_key_creator_left_fails_without_running(member, api_key_token):
    run = _create(member, "print('ran')")
    member.delete()

    run_program(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.output == ""
    assert "no longer a member" in run.error


@pytest.mark.django_db(transaction=True)
def test_the_api_gives_up_when_no_worker_takes_the_run(settings, tmp_path, api_key_token):
    settings.PROGRAM_WALL_CLOCK_S = 0.2
    settings.PROGRAM_WAIT_MARGIN_S = 0.3
    with publishing_to(filesystem_broker(tmp_path)):  # a queue nobody consumes
        response = execute(program_request(api_key_token, "print(1)"))

    assert response.status_code == 200
    body = response.json()
    assert body["error"].startswith("timed out waiting for a worker")
    assert body["output"] == ""
    run = ProgramRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.secrets_encrypted == ""
    run_program(run.pk)  # the message is delivered late: the run stays as the client was told
    run.refresh_from_db()
    assert run.error.startswith("timed out waiting for a worker")


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_answers_503_and_records_the_failed_run(api_key_token):
    with publishing_to(Broker("redis://127.0.0.1:1/0")):
        response = execute(program_request(api_key_token, "print(1)"))

    assert response.status_code == 503
    assert "task queue is unavailable" in response.json()["detail"]
    run = ProgramRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.secrets_encrypted == ""


# --- the host services -------------------------------------------------------------------------------


@pytest.fixture
def builtin_host(member) -> ProgramHost:
    return ProgramHost(membership=member, llm=LlmChoice(provider="hasura"))


@pytest.mark.django_db
def test_builtin_classify_matches_keywords_and_sentiment(builtin_host):
    labels, usage = builtin_host.primitive(
        "classify",
        {
            "instructions": "Route it",
            "inputs_to_classify": ["My invoice shows a double charge", "Love the new app, great work", "hmm"],
            "categories": ["bug", "invoice", "positive"],
            "allow_multiple": False,
        },
    )

    assert labels == ["invoice", "positive", "bug"]  # no overlap: the first category
    assert usage["provider"] == "hasura"
    assert usage["model"] == "builtin"
    assert usage["input_tokens"] > 0


@pytest.mark.django_db
def test_builtin_classify_with_allow_multiple_and_a_single_input(builtin_host):
    kwargs = {"instructions": "", "categories": ["billing", "refund", "other"], "allow_multiple": True}
    labels, _ = builtin_host.primitive("classify", {**kwargs, "inputs_to_classify": "Refund my billing error"})

    assert labels == ["billing", "refund"]


@pytest.mark.django_db
def test_builtin_summarize_keeps_the_first_sentences(builtin_host):
    summary, _ = builtin_host.primitive(
        "summarize", {"instructions": "", "input": "First point.  Second point! Third point? Fourth."}
    )

    assert summary == "First point. Second point!"


@pytest.mark.django_db
def test_builtin_extract_fills_the_schema_from_the_text(builtin_host):
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "amount": {"type": "number"},
            "contact_email": {"type": "string"},
            "due_date": {"type": "string", "format": "date"},
            "paid": {"type": "boolean"},
            "missing": {"type": "string"},
        },
    }
    text = "Name: Ada Lovelace\nThe amount is 1,250.50 due 2024-07-01. Paid = no. Write to ada@example.com"

    value, _ = builtin_host.primitive("extract", {"json_schema": schema, "instructions": "", "input": text})

    assert value == {
        "name": "Ada Lovelace",
        "amount": 1250.5,
        "contact_email": "ada@example.com",
        "due_date": "2024-07-01",
        "paid": False,
        "missing": None,
    }


@pytest.mark.django_db
def test_builtin_generate_is_a_deterministic_template(builtin_host):
    first, _ = builtin_host.primitive("generate", {"instructions": "Write a title", "input": {"region": "North"}})
    second, _ = builtin_host.primitive("generate", {"instructions": "Write a title", "input": {"region": "North"}})

    assert first == second == 'Write a title\n\n{"region": "North"}'


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("classify", {"instructions": "x", "inputs_to_classify": ["a"], "categories": []}),
        ("classify", {"instructions": "x", "inputs_to_classify": 3, "categories": ["a"]}),
        ("extract", {"instructions": "x", "json_schema": "name", "input": "a"}),
        ("summarize", {"instructions": None, "input": "a"}),
    ],
)
def test_primitives_reject_arguments_they_cannot_take(builtin_host, name, kwargs):
    with pytest.raises(ValueError, match=name):
        builtin_host.primitive(name, kwargs)


@pytest.mark.django_db
def test_hasura_uses_the_platform_default_model_when_one_is_configured(settings, monkeypatch, member):
    with LLMStub([Reply(content="A short summary.", prompt_tokens=33, completion_tokens=4)]) as stub:
        monkeypatch.setenv("PROGRAM_TEST_LLM_KEY", "sk-platform")
        settings.AI_MODELS = {
            "house": {"model": "openai/house-model", "api_base": stub.base_url, "api_key_env": "PROGRAM_TEST_LLM_KEY"}
        }
        settings.AI_DEFAULT_MODEL = "house"
        host = ProgramHost(membership=member, llm=LlmChoice(provider="hasura"))

        result, usage = host.primitive("summarize", {"instructions": "", "input": "Long text."})

    assert result == "A short summary."
    assert usage == {"provider": "hasura", "model": "house", "input_tokens": 33, "output_tokens": 4}
    assert stub.requests[0]["model"] == "house-model"


@pytest.mark.django_db
def test_remote_sql_reports_an_unreachable_endpoint(member):
    host = ProgramHost(membership=member, llm=LlmChoice(provider="hasura"), ddn_url="http://127.0.0.1:1/sql")

    with pytest.raises(RuntimeError, match="unreachable"):
        host.run_sql("SELECT 1")


@pytest.mark.django_db
def test_remote_sql_refuses_an_answer_that_is_not_rows(member):
    with LLMStub([Reply(content="not rows")]) as stub:  # answers a JSON object, not an array
        host = ProgramHost(membership=member, llm=LlmChoice(provider="hasura"), ddn_url=f"{stub.base_url}/sql")

        with pytest.raises(RuntimeError, match="JSON array of row objects"):
            host.run_sql("SELECT 1")

    assert stub.requests == [{"sql": "SELECT 1"}]


@pytest.mark.django_db
def test_remote_sql_surfaces_the_endpoints_error_message(member):
    with LLMStub([Reply(status=500, error="relation does not exist")]) as stub:
        host = ProgramHost(membership=member, llm=LlmChoice(provider="hasura"), ddn_url=f"{stub.base_url}/sql")

        with pytest.raises(RuntimeError, match="HTTP 500: relation does not exist"):
            host.run_sql("SELECT 1")


@pytest.mark.django_db
def test_workspace_sql_without_sources_says_so(member):
    host = ProgramHost(membership=member, llm=LlmChoice(provider="hasura"))

    with pytest.raises(RuntimeError, match="no active data source"):
        host.run_sql("SELECT 1")


# --- parsing model replies ---------------------------------------------------------------------------

CLASSIFY = {"instructions": "", "inputs_to_classify": ["a", "b"], "categories": ["Yes", "No"]}


@pytest.mark.parametrize(
    ("kwargs", "reply", "expected"),
    [
        (CLASSIFY, '```json\n["Yes", "no"]\n```', ["Yes", "No"]),
        (CLASSIFY, 'Sure: ["No", "Yes"]', ["No", "Yes"]),
        ({**CLASSIFY, "inputs_to_classify": "a"}, "yes", "Yes"),
        ({**CLASSIFY, "inputs_to_classify": ["a"], "allow_multiple": True}, '["Yes", "No"]', [["Yes", "No"]]),
        ({**CLASSIFY, "allow_multiple": True}, '[["Yes"], "No"]', [["Yes"], ["No"]]),
    ],
)
def test_classify_replies_are_parsed_into_categories(kwargs, reply, expected):
    assert primitives.parse_reply("classify", reply, kwargs) == expected


@pytest.mark.parametrize("reply", ['["Maybe", "Yes"]', '["Yes"]', "no json here"])
def test_classify_replies_that_do_not_fit_are_errors(reply):
    with pytest.raises(ValueError, match="model"):
        primitives.parse_reply("classify", reply, CLASSIFY)


def test_extract_replies_are_parsed_as_json():
    assert primitives.parse_reply("extract", 'Here: {"a": 1}', {}) == {"a": 1}


# --- documentation and operators ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_openapi_schema_documents_the_program_api():
    schema = APIClient().get("/api/schema", {"format": "json"}).json()

    operation = schema["paths"]["/api/v1/execute_program"]["post"]
    assert operation["tags"] == ["programs"]
    assert "executor.run_sql" in operation["description"]
    assert "primitives.classify" in operation["description"]
    assert "/api/v1/spaces/{slug}/sql" in schema["paths"]
    assert schema["paths"]["/api/v1/spaces/{slug}/sql"]["post"]["tags"] == ["programs"]


@pytest.mark.django_db
def test_operators_see_runs_read_only_in_the_admin(member, api_key_token):
    run = _create(member, "print(1)")
    admin = User.objects.create_superuser("root", "root@example.com", "pass-word-123")
    client = APIClient()
    client.force_login(admin)

    listing = client.get("/admin/programs/programrun/")
    detail = client.get(f"/admin/programs/programrun/{run.pk}/change/")

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert b"secrets_encrypted" not in detail.content
    assert client.get("/admin/programs/programrun/add/").status_code == 403


@pytest.mark.django_db
def test_the_reaper_ends_a_run_nobody_will_finish_and_leaves_fresh_ones(member, api_key_token):
    stranded = _create(member, "print(1)", llm={"provider": "openai", "api_key": "sk-secret", "model": "m"})
    fresh = _create(member, "print(2)")
    long_ago = timezone.now() - timedelta(hours=2)
    ProgramRun.objects.filter(pk=stranded.pk).update(status=RunStatus.RUNNING, created_at=long_ago)

    assert services.reap_stranded_runs() == 1

    stranded.refresh_from_db()
    fresh.refresh_from_db()
    assert stranded.status == RunStatus.FAILED
    assert "abandoned" in stranded.error
    assert stranded.secrets_encrypted == ""
    assert fresh.status == RunStatus.QUEUED
