"""POST /ai/generate, /ai/explain, /ai/refine with `builtin` and with a litellm model served by a local stub."""

from __future__ import annotations

import pytest

from query_editor.models import QueryHistory
from tests.conftest import client_for
from tests.factories import DataSourceFactory
from tests.llm_stub import LLMStub, Reply, sql_reply
from tests.query_editor.conftest import space_url
from tests.query_editor.test_execute import assert_error, execute

pytestmark = pytest.mark.django_db


def post(client, slug: str, path: str, body: dict):
    return client.post(space_url(slug, path), body, format="json")


@pytest.fixture
def stub_model(settings, monkeypatch):
    """Point the default model at an OpenAI-compatible stub; the test gives it a script."""

    def start(script: list) -> LLMStub:
        stub = LLMStub(script)
        settings.AI_MODELS = {"stub": {"model": "openai/stub", "api_base": stub.base_url, "api_key_env": "STUB_KEY"}}
        settings.AI_DEFAULT_MODEL = "stub"
        monkeypatch.setenv("STUB_KEY", "sk-stub")
        return stub

    return start


# --- builtin ------------------------------------------------------------------------------------


def test_generate_writes_sql_that_runs(analyst_client, slug, sales):
    response = post(analyst_client, slug, "ai/generate", {"prompt": "number of orders by status"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dialect"] == "sqlite"
    assert "status" in body["sql"].lower()
    result = execute(analyst_client, slug, body["sql"], sales.uuid)
    assert result.status_code == 200, result.content
    assert result.json()["row_count"] >= 2


def test_generate_with_a_connector_id(analyst_client, slug, sales):
    body = post(
        analyst_client, slug, "ai/generate", {"prompt": "total sales by region", "connector_id": str(sales.uuid)}
    ).json()
    assert "region" in body["sql"].lower()


def test_generate_does_not_execute_anything(analyst_client, member, slug, sales):
    post(analyst_client, slug, "ai/generate", {"prompt": "number of orders by status"})
    assert not QueryHistory.objects.filter(user=member.user).exists()


def test_generate_needs_a_connector_id_when_the_space_has_several(analyst_client, member, slug, sales):
    DataSourceFactory(workspace=member.workspace, name="Second", path=sales.path)
    body = assert_error(post(analyst_client, slug, "ai/generate", {"prompt": "orders by status"}), 400, "BAD_REQUEST")
    assert "connector_id" in body["detail"]


def test_generate_of_a_question_the_engine_cannot_map_is_400(analyst_client, slug, sales):
    response = post(analyst_client, slug, "ai/generate", {"prompt": "zebra quantum flux capacitor"})
    assert_error(response, 400, "AI_GENERATION_ERROR")


def test_generate_rejects_a_prompt_over_2000_characters(analyst_client, slug, sales):
    body = assert_error(post(analyst_client, slug, "ai/generate", {"prompt": "x" * 2001}), 400, "BAD_REQUEST")
    assert "prompt" in body["detail"]


def test_generate_rejects_an_empty_prompt(analyst_client, slug, sales):
    assert_error(post(analyst_client, slug, "ai/generate", {"prompt": "  "}), 400, "BAD_REQUEST")


def test_explain_describes_the_query(analyst_client, slug, sales):
    sql = "SELECT status, COUNT(*) AS order_count FROM orders GROUP BY status"
    response = post(analyst_client, slug, "ai/explain", {"sql": sql})
    assert response.status_code == 200, response.content
    explanation = response.json()["explanation"]
    assert "orders" in explanation.lower()
    assert "status" in explanation.lower()


def test_explain_rejects_sql_over_50000_characters(analyst_client, slug, sales):
    body = assert_error(
        post(analyst_client, slug, "ai/explain", {"sql": "SELECT 1 " + "-" * 50_000}), 400, "BAD_REQUEST"
    )
    assert "sql" in body["detail"]


def test_refine_changes_the_query(analyst_client, slug, sales):
    body = post(
        analyst_client,
        slug,
        "ai/refine",
        {"current_sql": "SELECT status, COUNT(*) AS order_count FROM orders GROUP BY status", "instruction": "top 3"},
    )
    assert body.status_code == 200, body.content
    sql = body.json()["sql"]
    assert "LIMIT 3" in sql.upper()
    assert execute(analyst_client, slug, sql, sales.uuid).json()["row_count"] <= 3


def test_refine_rejects_long_inputs(analyst_client, slug, sales):
    too_long_sql = {"current_sql": "SELECT 1 " + "-" * 50_000, "instruction": "top 3"}
    assert_error(post(analyst_client, slug, "ai/refine", too_long_sql), 400, "BAD_REQUEST")
    too_long_instruction = {"current_sql": "SELECT id FROM orders", "instruction": "y" * 2001}
    assert_error(post(analyst_client, slug, "ai/refine", too_long_instruction), 400, "BAD_REQUEST")


def test_refine_of_an_instruction_the_engine_cannot_map_is_400(analyst_client, slug, sales):
    response = post(
        analyst_client, slug, "ai/refine", {"current_sql": "SELECT id FROM orders", "instruction": "make it purple"}
    )
    assert_error(response, 400, "AI_GENERATION_ERROR")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("ai/generate", {"prompt": "orders by status"}),
        ("ai/explain", {"sql": "SELECT id FROM orders"}),
        ("ai/refine", {"current_sql": "SELECT id FROM orders", "instruction": "top 3"}),
    ],
)
def test_a_disabled_query_writer_is_403(analyst_client, member, slug, sales, path, body):
    member.workspace.features = {"ai.query_writer_enabled": False}
    member.workspace.save()
    assert_error(post(analyst_client, slug, path, body), 403, "FEATURE_DISABLED")


@pytest.mark.parametrize("path", ["ai/generate", "ai/explain", "ai/refine"])
def test_the_writer_of_a_foreign_space_is_404(slug, sales, outsider, path):
    assert_error(post(client_for(outsider.user), slug, path, {}), 404, "NOT_FOUND")


# --- a litellm model on the local OpenAI-compatible stub ----------------------------------------


def test_generate_with_a_model_returns_its_validated_sql(analyst_client, slug, sales, stub_model):
    with stub_model([sql_reply("SELECT status, COUNT(*) AS n FROM orders GROUP BY status")]) as stub:
        response = post(analyst_client, slug, "ai/generate", {"prompt": "orders per status"})
    assert response.status_code == 200, response.content
    assert response.json() == {"sql": "SELECT status, COUNT(*) AS n FROM orders GROUP BY status", "dialect": "sqlite"}
    (request,) = stub.requests
    assert "orders" in request["messages"][1]["content"]  # the schema context reached the model


def test_generate_with_a_model_answering_an_unknown_column_is_400_naming_the_check(
    analyst_client, slug, sales, stub_model
):
    with stub_model([sql_reply("SELECT shoe_size FROM customers")]) as stub:
        response = post(analyst_client, slug, "ai/generate", {"prompt": "shoe sizes of customers"})
    body = assert_error(response, 400, "SQL_VALIDATION_ERROR")
    assert "unknown_column" in body["detail"]
    assert "shoe_size" in body["detail"]
    assert len(stub.requests) >= 1


def test_generate_with_a_model_answering_a_delete_is_400_naming_the_check(analyst_client, slug, sales, stub_model):
    with stub_model([sql_reply("DELETE FROM orders")]):
        response = post(analyst_client, slug, "ai/generate", {"prompt": "remove the orders"})
    body = assert_error(response, 400, "SQL_VALIDATION_ERROR")
    assert "read_only" in body["detail"]


def test_generate_with_a_model_that_corrects_itself_succeeds(analyst_client, slug, sales, stub_model):
    script = [sql_reply("SELECT shoe_size FROM customers"), sql_reply("SELECT city FROM customers")]
    with stub_model(script):
        response = post(analyst_client, slug, "ai/generate", {"prompt": "customer cities"})
    assert response.status_code == 200, response.content
    assert response.json()["sql"] == "SELECT city FROM customers"


def test_refine_with_a_model_answering_an_unknown_table_is_400_naming_the_check(
    analyst_client, slug, sales, stub_model
):
    with stub_model([sql_reply("SELECT id FROM invoices")]):
        response = post(
            analyst_client, slug, "ai/refine", {"current_sql": "SELECT id FROM orders", "instruction": "use invoices"}
        )
    body = assert_error(response, 400, "SQL_VALIDATION_ERROR")
    assert "unknown_table" in body["detail"]


def test_refine_with_a_model(analyst_client, slug, sales, stub_model):
    with stub_model([sql_reply("SELECT id FROM orders WHERE status = 'completed'")]) as stub:
        response = post(
            analyst_client,
            slug,
            "ai/refine",
            {"current_sql": "SELECT id FROM orders", "instruction": "only completed orders"},
        )
    assert response.status_code == 200, response.content
    assert response.json() == {"sql": "SELECT id FROM orders WHERE status = 'completed'"}
    assert "only completed orders" in stub.requests[0]["messages"][-1]["content"]


def test_explain_with_a_model(analyst_client, slug, sales, stub_model):
    with stub_model([Reply(content="It lists the ids of all orders.")]):
        response = post(analyst_client, slug, "ai/explain", {"sql": "SELECT id FROM orders"})
    assert response.status_code == 200, response.content
    assert response.json() == {"explanation": "It lists the ids of all orders."}


def test_a_failing_model_is_a_502(analyst_client, slug, sales, stub_model):
    with stub_model([Reply(status=401, error="bad key")]):
        response = post(analyst_client, slug, "ai/explain", {"sql": "SELECT id FROM orders"})
    assert_error(response, 502, "AI_PROVIDER_ERROR")
