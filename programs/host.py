"""The sandbox's HostServices on the Django side: where `executor.run_sql` and `primitives.*` really go.

Runs in the worker, in the parent of the sandboxed child. Whatever is raised here reaches the program as an
exception at the line that made the call (the sandbox keeps KeyError/ValueError/TypeError/RuntimeError types,
anything else becomes RuntimeError), so messages are written for the program's author.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from accounts.models import Membership
from connectors.errors import GovernedQueryError
from connectors.governed import GovernedRequest, governed_execute
from programs import primitives
from programs.selectors import queryable_sources
from prompts.ai.client import AIError, complete
from prompts.ai.registry import ModelSpec, resolve_model

PROVIDERS = ("hasura", "anthropic", "openai")
# Used when the request names a provider but no model.
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-sonnet-20241022"}
MAX_REMOTE_SQL_BYTES = 50 * 1024**2
MIN_CALL_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class LlmChoice:
    provider: str  # hasura | anthropic | openai
    model: str | None = None
    api_key: str = ""
    api_base: str | None = None


def resolve_llm(choice: LlmChoice) -> tuple[ModelSpec | None, str]:
    """(the litellm model to call, or None for the offline builtin engine; the model name usages report)."""
    if choice.provider == "hasura":
        spec = resolve_model(choice.model, field="ai_primitives_llm.model")
        return (None if spec.is_builtin else spec), spec.name
    model = choice.model or DEFAULT_MODELS[choice.provider]
    return ModelSpec(name=model, litellm_model=f"{choice.provider}/{model}"), model


class ProgramHost:
    def __init__(
        self,
        *,
        membership: Membership,
        llm: LlmChoice,
        ddn_url: str = "",
        ddn_headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.membership = membership
        self.llm = llm
        self.ddn_url = ddn_url or ""
        self.ddn_headers = dict(ddn_headers or {})
        self.deadline = deadline  # time.monotonic() value the program's wall clock ends at
        self._sources: list | None = None

    def _timeout(self, ceiling: float) -> float:
        if self.deadline is None:
            return ceiling
        return max(MIN_CALL_TIMEOUT_S, min(ceiling, self.deadline - time.monotonic()))

    # --- executor.run_sql ---

    def run_sql(self, sql: str) -> list[dict[str, Any]]:
        if self.ddn_url:
            return self._remote_sql(sql)
        return self._governed_sql(sql)

    def _governed_sql(self, sql: str) -> list[dict[str, Any]]:
        if self._sources is None:
            self._sources = queryable_sources(membership=self.membership)
        if not self._sources:
            raise RuntimeError("run_sql: this workspace has no active data source you may query")
        request = GovernedRequest(membership=self.membership, sources=self._sources, sql=sql, purpose="program")
        try:
            return governed_execute(request).rows
        except GovernedQueryError as exc:
            raise RuntimeError(f"run_sql refused ({exc.code}): {exc.message}") from None

    def _remote_sql(self, sql: str) -> list[dict[str, Any]]:
        timeout = self._timeout(settings.QUERY_DEFAULT_TIMEOUT_MS / 1000 + 5)
        try:
            with (
                httpx.Client(timeout=timeout, follow_redirects=False) as client,
                client.stream("POST", self.ddn_url, json={"sql": sql}, headers=self.ddn_headers) as response,
            ):
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_REMOTE_SQL_BYTES:
                        raise RuntimeError(f"run_sql: the SQL endpoint's answer exceeds {MAX_REMOTE_SQL_BYTES} bytes")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise RuntimeError(f"run_sql: the SQL endpoint is unreachable ({type(exc).__name__}: {exc})") from None
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        if status >= 400:
            raise RuntimeError(f"run_sql: the SQL endpoint answered HTTP {status}: {_remote_message(payload, body)}")
        if not isinstance(payload, list) or not all(isinstance(row, dict) for row in payload):
            raise RuntimeError("run_sql: the SQL endpoint did not answer with a JSON array of row objects")
        return payload

    # --- primitives.* ---

    def primitive(self, name: str, kwargs: dict[str, Any]) -> tuple[object, dict[str, Any]]:
        primitives.check_arguments(name, kwargs)
        spec, model_name = resolve_llm(self.llm)
        if spec is None:
            result = primitives.builtin_answer(name, kwargs)
            tokens_in = primitives.estimate_tokens(primitives.prompt_for(name, kwargs)[1]["content"])
            tokens_out = primitives.estimate_tokens(result)
        else:
            try:
                completion = complete(
                    spec,
                    primitives.prompt_for(name, kwargs),
                    api_key=self.llm.api_key or None,
                    api_base=self.llm.api_base or None,
                    timeout=self._timeout(float(settings.AI_REQUEST_TIMEOUT)),
                )
            except AIError as exc:
                raise RuntimeError(f"primitives.{name}: the {self.llm.provider} model failed: {exc}") from None
            try:
                result = primitives.parse_reply(name, completion.text, kwargs)
            except ValueError as exc:
                raise ValueError(f"primitives.{name}: {exc}") from None
            tokens_in, tokens_out = completion.tokens_in, completion.tokens_out
        usage = {
            "provider": self.llm.provider,
            "model": model_name,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
        }
        return result, usage


def _remote_message(payload: Any, body: bytes | bytearray) -> str:
    if isinstance(payload, dict):
        for key in ("detail", "message", "error"):
            value = payload.get(key)
            if isinstance(value, str):
                return value[:500]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"][:500]
        return json.dumps(payload)[:500]
    if payload is not None:
        return json.dumps(payload)[:500]
    return bytes(body).decode("utf-8", "replace").strip()[:500] or "(empty body)"
