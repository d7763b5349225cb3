"""execute_program end to end: the API, a real Celery worker on the `programs` queue, the sandbox, the data."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from accounts.services import api_key_create
from programs.docs import EXAMPLE_CODE  # the documented example is the one that must work
from programs.models import ProgramRun, RunStatus
from tests.factories import MembershipFactory
from tests.llm_stub import LLMStub, Reply
from tests.programs.conftest import execute, make_sales_source, program_request

pytestmark = pytest.mark.django_db(transaction=True)

RESPONSE_KEYS = {"output", "error", "accessed_artifact_ids", "modified_artifacts", "llm_usages"}


def _region_counts(path: str) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT r.name, COUNT(*) AS n FROM orders o JOIN regions r ON r.id = o.region_id "
            "GROUP BY r.name ORDER BY n DESC, r.name LIMIT 3"
        ).fetchall()


def test_the_spec_example_request_runs_end_to_end_through_a_worker(live_worker, api_key_token, sales_source):
    feedback = {
        "identifier": "feedback",
        "title": "Customer feedback",
        "artifact_type": "text",
        "data": "Great service, the delivery was fast. Thanks!",
    }

    response = execute(program_request(api_key_token, EXAMPLE_CODE, artifacts=[feedback]))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == RESPONSE_KEYS
    expected = [{"region": name, "orders": n} for name, n in _region_counts(sales_source.path)]
    assert body["error"] is None
    assert body["output"] == f"Top region: {expected[0]['region']} | feedback: positive\n"
    assert body["accessed_artifact_ids"] == ["feedback"]
    assert body["modified_artifacts"] == [
        {"identifier": "top_regions", "title": "Top regions by orders", "artifact_type": "table", "data": expected}
    ]
    (usage,) = body["llm_usages"]
    assert usage["provider"] == "hasura"
    assert usage["model"] == "builtin"
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    run = ProgramRun.objects.get(pk=int(response["X-Program-Run-Id"]))
    assert run.status == RunStatus.COMPLETED
    assert run.worker.startswith("test-")  # the test worker, by name
    assert run.secrets_encrypted == ""
    assert run.timings["total_ms"] >= run.timings["run_ms"] >= 0


def test_artifacts_go_in_and_come_out(live_worker, api_key_token):
    code = (
        "orders = executor.get_artifact('orders')\n"
        "for row in orders:\n"
        "    row['total'] = row['qty'] * row['price']\n"
        "executor.store_artifact('orders', 'Orders with totals', 'table', orders)\n"
        "summary = 'Grand total: ' + str(sum(r['total'] for r in orders))\n"
        "executor.store_artifact('summary', 'Summary', 'text', summary)\n"
        "print(executor.get_artifact('summary'))\n"
    )
    artifacts = [
        {"identifier": "unused", "title": "Never read", "artifact_type": "text", "data": "-"},
        {
            "identifier": "orders",
            "title": "Orders",
            "artifact_type": "table",
            "data": [{"qty": 2, "price": 3.5}, {"qty": 1, "price": 10}],
        },
    ]

    body = execute(program_request(api_key_token, code, artifacts=artifacts)).json()

    assert body["error"] is None
    assert body["output"] == "Grand total: 17.0\n"
    assert body["accessed_artifact_ids"] == ["orders", "summary"]
    assert body["modified_artifacts"] == [
        {
            "identifier": "orders",
            "title": "Orders with totals",
            "artifact_type": "table",
            "data": [{"qty": 2, "price": 3.5, "total": 7.0}, {"qty": 1, "price": 10, "total": 10}],
        },
        {"identifier": "summary", "title": "Summary", "artifact_type": "text", "data": "Grand total: 17.0"},
    ]
    assert body["llm_usages"] == []


def test_a_program_error_answers_200_with_the_line_number(live_worker, api_key_token):
    code = "print('before')\nx = executor.get_artifact('missing')\nprint('after')"

    response = execute(program_request(api_key_token, code))

    assert response.status_code == 200
    body = response.json()
    assert body["output"] == "before\n"
    assert body["error"].startswith("line 2: KeyError:")
    assert "no artifact with identifier 'missing'" in body["error"]
    assert ProgramRun.objects.get().status == RunStatus.FAILED


def _stub_reply(request: dict) -> Reply:
    prompt = request["messages"][-1]["content"]
    if prompt.startswith("Classify"):
        return Reply(content='```json\n["billing", "bug"]\n```', prompt_tokens=90, completion_tokens=7)
    if prompt.startswith("Summarize"):
        return Reply(content="Two tickets: a double charge and a crash.", prompt_tokens=80, completion_tokens=11)
    if prompt.startswith("Extract"):
        return Reply(content='{"amount": 42.5, "currency": "EUR"}', prompt_tokens=70, completion_tokens=9)
    return Reply(content="Dear customer, we are on it.", prompt_tokens=60, completion_tokens=8)


def test_primitives_call_an_openai_compatible_server_and_report_usage(live_worker, api_key_token):
    code = (
        "tickets = executor.get_artifact('tickets')\n"
        "texts = [t['text'] for t in tickets]\n"
        "labels = primitives.classify('Route the ticket', texts, ['billing', 'bug', 'other'], False)\n"
        "summary = primitives.summarize('One sentence', texts)\n"
        "charge = primitives.extract({'type': 'object', 'properties': {'amount': {'type': 'number'}, "
        "'currency': {'type': 'string'}}}, 'The charge', texts[0])\n"
        "reply = primitives.generate('Reply to the customer', texts[0])\n"
        "print(labels, summary, charge['amount'], charge['currency'], reply, sep='|')\n"
    )
    tickets = {
        "identifier": "tickets",
        "title": "Tickets",
        "artifact_type": "table",
        "data": [{"text": "I was charged 42.50 EUR twice"}, {"text": "The app crashes on login"}],
    }
    with LLMStub([_stub_reply]) as stub:
        llm = {"provider": "openai", "api_key": "sk-test-secret", "model": "stub-model", "api_base": stub.base_url}
        response = execute(program_request(api_key_token, code, ai_primitives_llm=llm, artifacts=[tickets]))

    body = response.json()
    assert body["error"] is None, body["error"]
    assert body["output"] == (
        "['billing', 'bug']|Two tickets: a double charge and a crash.|42.5|EUR|Dear customer, we are on it.\n"
    )
    assert body["llm_usages"] == [
        {"provider": "openai", "model": "stub-model", "input_tokens": 90, "output_tokens": 7},
        {"provider": "openai", "model": "stub-model", "input_tokens": 80, "output_tokens": 11},
        {"provider": "openai", "model": "stub-model", "input_tokens": 70, "output_tokens": 9},
        {"provider": "openai", "model": "stub-model", "input_tokens": 60, "output_tokens": 8},
    ]
    assert [r["model"] for r in stub.requests] == ["stub-model"] * 4
    assert "I was charged 42.50 EUR twice" in stub.requests[0]["messages"][-1]["content"]
    run = ProgramRun.objects.get()
    assert "sk-test-secret" not in json.dumps(run.request)
    assert run.secrets_encrypted == ""


def test_a_failing_llm_call_is_a_program_error_at_its_line(live_worker, api_key_token):
    with LLMStub([Reply(status=401, error="bad key")]) as stub:
        llm = {"provider": "openai", "api_key": "sk-wrong", "model": "stub-model", "api_base": stub.base_url}
        body = execute(
            program_request(api_key_token, "x = 1\nprimitives.generate('hi', 'there')", ai_primitives_llm=llm)
        ).json()

    assert body["error"].startswith("line 2: RuntimeError: primitives.generate: the openai model failed")
    assert body["llm_usages"] == []


def test_run_sql_without_ddn_url_uses_the_workspace_sources(live_worker, api_key_token, sales_source):
    code = "rows = executor.run_sql('SELECT COUNT(*) AS n FROM orders')\nprint(rows[0]['n'])"

    body = execute(program_request(api_key_token, code, ddn={"headers": {}})).json()

    assert body == {**body, "error": None, "output": "300\n"}


def test_run_sql_federates_several_workspace_sources(live_worker, member, api_key_token, data_root):
    make_sales_source(member.workspace, data_root, name="East", alias="east", orders=120)
    make_sales_source(member.workspace, data_root, name="West", alias="west", orders=80)
    code = (
        "rows = executor.run_sql('SELECT (SELECT COUNT(*) FROM east.main.orders) AS e, "
        "(SELECT COUNT(*) FROM west.main.orders) AS w')\n"
        "print(rows[0]['e'], rows[0]['w'])"
    )

    body = execute(program_request(api_key_token, code)).json()

    assert body["error"] is None, body["error"]
    assert body["output"] == "120 80\n"


def test_run_sql_via_ddn_url_reaches_the_sql_endpoint_of_a_live_server(
    live_worker, live_server, member, api_key_token, sales_source
):
    code = (
        "rows = executor.run_sql('SELECT id, name FROM regions ORDER BY id LIMIT 2')\n"
        "executor.store_artifact('regions', 'Regions', 'table', rows)\n"
        "print(len(rows))"
    )
    ddn = {
        "url": f"{live_server.url}/api/v1/spaces/{member.workspace.slug}/sql",
        "headers": {"Authorization": f"Bearer {api_key_token}"},
    }

    body = execute(program_request(api_key_token, code, ddn=ddn)).json()

    assert body["error"] is None, body["error"]
    assert body["output"] == "2\n"
    with sqlite3.connect(sales_source.path) as conn:
        expected = [{"id": i, "name": n} for i, n in conn.execute("SELECT id, name FROM regions ORDER BY id LIMIT 2")]
    assert body["modified_artifacts"][0]["data"] == expected
    run = ProgramRun.objects.get()
    assert api_key_token not in json.dumps(run.request)
    assert run.request["ddn"]["header_names"] == ["Authorization"]


def test_run_sql_via_ddn_url_surfaces_the_endpoints_error(
    live_worker, live_server, member, api_key_token, sales_source
):
    ddn = {
        "url": f"{live_server.url}/api/v1/spaces/{member.workspace.slug}/sql",
        "headers": {"Authorization": f"Bearer {api_key_token}"},
    }

    body = execute(program_request(api_key_token, "executor.run_sql('DROP TABLE orders')", ddn=ddn)).json()

    assert body["error"].startswith("line 1: RuntimeError: run_sql: the SQL endpoint answered HTTP 403")


def test_sql_that_mutates_is_refused_by_the_governed_path(live_worker, api_key_token, sales_source):
    code = "executor.run_sql('DELETE FROM orders')\nprint('deleted')"

    body = execute(program_request(api_key_token, code)).json()

    assert body["output"] == ""
    assert body["error"].startswith("line 1: RuntimeError: run_sql refused (SQL_VALIDATION_ERROR)")
    with sqlite3.connect(sales_source.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone() == (300,)


def test_run_sql_cannot_reach_another_workspaces_tables(live_worker, api_key_token, sales_source, tmp_path):
    other = MembershipFactory(role="admin")
    make_sales_source(other.workspace, tmp_path, name="Theirs", alias="theirs")
    code = "print(executor.run_sql('SELECT COUNT(*) AS n FROM theirs.main.customers'))"

    body = execute(program_request(api_key_token, code)).json()

    assert body["output"] == ""
    assert body["error"].startswith("line 1: RuntimeError: run_sql refused")


def test_run_sql_via_ddn_url_cannot_reach_another_workspaces_space(
    live_worker, live_server, api_key_token, sales_source, tmp_path
):
    other = MembershipFactory(role="admin")
    make_sales_source(other.workspace, tmp_path, name="Theirs", alias="theirs")
    _, their_token = api_key_create(workspace=other.workspace, user=other.user, name="theirs")
    ddn = {
        "url": f"{live_server.url}/api/v1/spaces/{other.workspace.slug}/sql",
        "headers": {"Authorization": f"Bearer {api_key_token}"},
    }

    body = execute(program_request(api_key_token, "executor.run_sql('SELECT * FROM customers')", ddn=ddn)).json()

    assert "HTTP 404" in body["error"]
    assert their_token not in body["error"]


ESCAPES = {
    "import_os": ("import os\nos.system('touch /tmp/pwned-by-program')", "ImportError"),
    "open_file": ("print(open('/etc/passwd').read())", "NameError"),
    "dunder_import": ("__import__('os').system('id')", "SyntaxError"),
    "subclasses_walk": ("().__class__.__bases__[0].__subclasses__()", "SyntaxError"),
    "generator_frame": ("g = (x for x in [1])\nprint(g.gi_frame.f_back.f_globals)", "SyntaxError"),
    "str_format_walk": ("print('{0.__class__}'.format(1))", "AttributeError"),
    "attribute_error_obj": ("try:\n    executor.nope\nexcept AttributeError as e:\n    print(e.obj)", "AttributeError"),
    "type_three_args": ("type('X', (), {})", "NameError"),
    "executor_write": ("executor.run_sql = print", "TypeError"),
    "infinite_loop": ("while True:\n    pass", "CPU limit"),
    "memory_bomb": ("x = 'x' * 10**10", "MemoryError"),
    "output_flood": ("while True:\n    print('x' * 1000)", "output limit exceeded"),
    "deep_recursion": ("def f(n):\n    return f(n + 1)\nf(0)", "RecursionError"),
}


@pytest.mark.parametrize(("code", "expected"), list(ESCAPES.values()), ids=list(ESCAPES))
def test_an_escape_attempt_answers_200_with_an_error_and_the_worker_survives(
    live_worker, api_key_token, code, expected
):
    response = execute(program_request(api_key_token, code))

    assert response.status_code == 200
    body = response.json()
    assert body["error"] is not None
    assert expected in body["error"]
    assert body["modified_artifacts"] == []
    assert not os.path.exists("/tmp/pwned-by-program")  # noqa: S108
    assert execute(program_request(api_key_token, "print('still here')")).json()["output"] == "still here\n"
