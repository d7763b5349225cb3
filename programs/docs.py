"""The program API's documentation for OpenAPI (/docs): the program's world and a worked example."""

from __future__ import annotations

EXAMPLE_CODE = """\
rows = executor.run_sql(
    "SELECT r.name AS region, COUNT(*) AS orders "
    "FROM orders o JOIN regions r ON r.id = o.region_id "
    "GROUP BY r.name ORDER BY orders DESC, region LIMIT 3"
)
executor.store_artifact("top_regions", "Top regions by orders", "table", rows)
note = executor.get_artifact("feedback")
label = primitives.classify(
    instructions="The customer's sentiment",
    inputs_to_classify=[note],
    categories=["positive", "negative"],
    allow_multiple=False,
)
print("Top region:", rows[0]["region"], "| feedback:", label[0])
"""

EXAMPLE_REQUEST = {
    "code": EXAMPLE_CODE,
    "promptql_api_key": "ps_ab12cd34_…",
    "ai_primitives_llm": {"provider": "hasura"},
    "ddn": {"url": "", "headers": {}},
    "artifacts": [
        {
            "identifier": "feedback",
            "title": "Customer feedback",
            "artifact_type": "text",
            "data": "Great service, the delivery was fast. Thanks!",
        }
    ],
}

# What the demo workspace (`make demo`) answers to EXAMPLE_REQUEST.
EXAMPLE_RESPONSE = {
    "output": "Top region: East | feedback: positive\n",
    "error": None,
    "accessed_artifact_ids": ["feedback"],
    "modified_artifacts": [
        {
            "identifier": "top_regions",
            "title": "Top regions by orders",
            "artifact_type": "table",
            "data": [
                {"region": "East", "orders": 15793},
                {"region": "North", "orders": 13899},
                {"region": "West", "orders": 12865},
            ],
        }
    ],
    "llm_usages": [{"provider": "hasura", "model": "builtin", "input_tokens": 71, "output_tokens": 3}],
}

PROGRAM_API_DESCRIPTION = """\
Runs a PromptQL-style Python program against your data and answers with what it printed, the artifacts it
read and wrote, and the LLM tokens its AI primitives used. Authentication is the `promptql_api_key` field
(a workspace API key): no Authorization header. The program runs as the key's workspace with the
permissions of the key's creator (role, row policies, PII/PHI grants).

**The program's world** (nothing else: no files, no network, imports only from `json`, `math`, `re`,
`datetime`, `statistics`, `collections`, `itertools`, `functools`):

- `executor.run_sql(sql) -> list[dict]`: read-only SQL, governed. With `ddn.url` set it is POSTed as
  `{"sql": …}` with `ddn.headers` to that endpoint (e.g. this platform's `/api/v1/spaces/{slug}/sql`);
  with an empty URL it runs on the key's workspace sources (one source: plain table names; several:
  `alias.schema.table`).
- `executor.get_artifact(identifier)`: the `data` of an input artifact (or of one the program stored);
  recorded in `accessed_artifact_ids`.
- `executor.store_artifact(identifier, title, artifact_type, data)`: create or replace an artifact, `text`
  (a str) or `table` (a list of dicts); returned in `modified_artifacts`.
- `executor.print(*args)` / `print(*args)`: append to `output`.
- `primitives.classify(instructions, inputs_to_classify, categories, allow_multiple=False)`: one category per
  input (a list of categories per input with `allow_multiple`); a single string input gets a single answer.
- `primitives.summarize(instructions, input)`: a summary string.
- `primitives.extract(json_schema, instructions, input)`: a value matching the JSON schema.
- `primitives.generate(instructions, input)`: generated text.

Each primitive call is one LLM call and one `llm_usages` entry. `ai_primitives_llm.provider`: `hasura`
(the platform's default model; with the offline `builtin` engine the primitives are deterministic
heuristics), `openai` or `anthropic` (with your `api_key`; optional `model`, and `api_base` for a
self-hosted OpenAI-compatible server).

**Limits**: a fresh sandboxed process per run with CPU, memory, output and wall-clock limits (30 s by
default). A program error is not an HTTP error: the answer is 200 with `error` set to a message carrying the
program's line number, e.g. `line 3: KeyError: "no artifact with identifier 'x'"`. Invalid requests answer
422 `{"detail": [{"loc", "msg", "type"}]}`; a bad or revoked key 401.
"""

SQL_ENDPOINT_DESCRIPTION = """\
A DDN-style SQL endpoint: `{"sql": "SELECT …"}` → a JSON array of row objects, run read-only through the
governed path (validation, row policies, row caps, PII/PHI masking) on every active data source of the
space the caller may query — plain table names with one source, `alias.schema.table` with several.
Programs reach it through `ddn.url` with an `Authorization: Bearer <api key>` header. Writes answer 403;
non-members 404; errors `{"detail", "code"}`.
"""
