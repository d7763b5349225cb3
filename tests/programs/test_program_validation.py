"""execute_program's request validation (422, spec 002's shape) and authentication (401)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import ApiKey
from programs.models import ProgramRun
from tests.programs.conftest import execute, program_request

pytestmark = pytest.mark.django_db

TEXT = {"identifier": "notes", "title": "Notes", "artifact_type": "text", "data": "hello"}
TABLE = {"identifier": "rows", "title": "Rows", "artifact_type": "table", "data": [{"a": 1}]}


def _without(body, key):
    return {k: v for k, v in body.items() if k != key}


def _errors(response):
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    for entry in detail:
        assert set(entry) == {"loc", "msg", "type"}
    return detail


def _locs(response):
    return [entry["loc"] for entry in _errors(response)]


def test_it_rejects_a_request_without_code(api_key_token):
    response = execute(_without(program_request(api_key_token, "print(1)"), "code"))

    assert _errors(response) == [{"loc": ["body", "code"], "msg": "This field is required.", "type": "missing"}]


@pytest.mark.parametrize("field", ["promptql_api_key", "ai_primitives_llm", "ddn", "artifacts"])
def test_it_rejects_a_request_missing_a_required_field(api_key_token, field):
    response = execute(_without(program_request(api_key_token, "print(1)"), field))

    assert _locs(response) == [["body", field]]


def test_it_rejects_code_that_is_not_a_string(api_key_token):
    response = execute(program_request(api_key_token, ["print(1)"]))

    assert _locs(response) == [["body", "code"]]


def test_it_rejects_an_unknown_artifact_type(api_key_token):
    artifact = {**TEXT, "artifact_type": "image"}
    response = execute(program_request(api_key_token, "print(1)", artifacts=[TABLE, artifact]))

    (error,) = _errors(response)
    assert error["loc"] == ["body", "artifacts", 1, "artifact_type"]
    assert error["type"] == "enum"


def test_it_rejects_a_text_artifact_whose_data_is_not_a_string(api_key_token):
    artifact = {**TEXT, "data": [{"a": 1}]}
    response = execute(program_request(api_key_token, "print(1)", artifacts=[artifact]))

    assert _locs(response) == [["body", "artifacts", 0, "data"]]


@pytest.mark.parametrize("data", ["a,b\n1,2", [1, 2], [{"a": 1}, "row"], {"a": 1}, None], ids=repr)
def test_it_rejects_table_artifact_data_that_is_not_a_list_of_objects(api_key_token, data):
    artifact = {**TABLE, "data": data}
    response = execute(program_request(api_key_token, "print(1)", artifacts=[TEXT, artifact]))

    assert _locs(response) == [["body", "artifacts", 1, "data"]]


def test_it_rejects_duplicate_artifact_identifiers(api_key_token):
    response = execute(program_request(api_key_token, "print(1)", artifacts=[TEXT, TABLE, {**TABLE, "data": []}]))

    (error,) = _errors(response)
    assert error["loc"] == ["body", "artifacts", 2, "identifier"]
    assert "rows" in error["msg"]


def test_it_rejects_an_artifact_missing_its_identifier(api_key_token):
    artifact = _without(TEXT, "identifier")
    response = execute(program_request(api_key_token, "print(1)", artifacts=[artifact]))

    assert _errors(response) == [
        {"loc": ["body", "artifacts", 0, "identifier"], "msg": "This field is required.", "type": "missing"}
    ]


def test_it_rejects_artifacts_that_are_not_a_list(api_key_token):
    response = execute(program_request(api_key_token, "print(1)", artifacts=TEXT))

    assert _locs(response) == [["body", "artifacts"]]


def test_it_rejects_an_unknown_provider(api_key_token):
    response = execute(program_request(api_key_token, "print(1)", ai_primitives_llm={"provider": "mistral"}))

    (error,) = _errors(response)
    assert error["loc"] == ["body", "ai_primitives_llm", "provider"]
    assert error["type"] == "enum"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("api_key", [None, ""], ids=["missing", "empty"])
def test_it_rejects_a_keyed_provider_without_api_key(api_key_token, provider, api_key):
    llm = {"provider": provider} if api_key is None else {"provider": provider, "api_key": api_key}
    response = execute(program_request(api_key_token, "print(1)", ai_primitives_llm=llm))

    (error,) = _errors(response)
    assert error["loc"] == ["body", "ai_primitives_llm", "api_key"]
    assert provider in error["msg"]


def test_it_rejects_an_api_base_that_is_not_an_http_url(api_key_token):
    llm = {"provider": "openai", "api_key": "sk-x", "api_base": "file:///etc/passwd"}
    response = execute(program_request(api_key_token, "print(1)", ai_primitives_llm=llm))

    assert _locs(response) == [["body", "ai_primitives_llm", "api_base"]]


def test_it_rejects_a_hasura_model_the_platform_does_not_serve(api_key_token):
    llm = {"provider": "hasura", "model": "gpt-99"}
    response = execute(program_request(api_key_token, "print(1)", ai_primitives_llm=llm))

    assert _locs(response) == [["body", "ai_primitives_llm", "model"]]


@pytest.mark.parametrize("url", ["ftp://example.com/sql", "not a url"])
def test_it_rejects_a_ddn_url_that_is_not_http(api_key_token, url):
    response = execute(program_request(api_key_token, "print(1)", ddn={"url": url, "headers": {}}))

    assert _locs(response) == [["body", "ddn", "url"]]


def test_it_rejects_ddn_headers_that_are_not_an_object_of_strings(api_key_token):
    response = execute(program_request(api_key_token, "print(1)", ddn={"url": "", "headers": ["x"]}))

    assert _locs(response) == [["body", "ddn", "headers"]]


def test_it_reports_every_invalid_field_at_once(api_key_token):
    body = program_request(
        api_key_token, None, ai_primitives_llm={"provider": "openai"}, artifacts=[{**TEXT, "data": 1}]
    )

    assert sorted(_locs(execute(body))) == sorted(
        [["body", "code"], ["body", "ai_primitives_llm", "api_key"], ["body", "artifacts", 0, "data"]]
    )


def test_it_rejects_a_body_that_is_not_json():
    from rest_framework.test import APIClient

    response = APIClient().post("/api/v1/execute_program", "{not json", content_type="application/json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_it_rejects_an_unknown_api_key_with_401():
    response = execute(program_request("ps_nothere_0000", "print(1)"))

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key"}
    assert not ProgramRun.objects.exists()


def test_it_rejects_a_revoked_api_key_with_401(api_key_token):
    ApiKey.objects.update(revoked_at=timezone.now())

    response = execute(program_request(api_key_token, "print(1)"))

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert not ProgramRun.objects.exists()


def test_it_rejects_a_key_whose_creator_left_the_workspace(api_key_token, member):
    member.delete()

    response = execute(program_request(api_key_token, "print(1)"))

    assert response.status_code == 401
