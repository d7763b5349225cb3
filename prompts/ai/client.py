"""litellm behind one function: a chat completion with tokens, cost and latency, errors sorted
into transient (retry with backoff) and permanent (fail the stage at once)."""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from django.conf import settings

from prompts.ai.registry import ModelSpec

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map


class AIError(Exception):
    pass


class TransientAIError(AIError):
    """Rate limit, timeout, connection or 5xx from the provider: worth retrying."""


class PermanentAIError(AIError):
    """Bad key, unknown model, bad request: retrying will not help."""


@dataclass
class Completion:
    text: str
    model: str
    tokens_in: int
    tokens_out: int
    cost: float
    latency_ms: int


_litellm: ModuleType | None = None


def _load_litellm() -> ModuleType:
    # Imported on first use, in workers only: the import takes seconds the web process must not pay.
    global _litellm
    if _litellm is None:
        module = importlib.import_module("litellm")
        module.telemetry = False
        module.suppress_debug_info = True
        _litellm = module
    return _litellm


def _classify(litellm: ModuleType, exc: Exception) -> AIError:
    transient = tuple(
        getattr(litellm, name)
        for name in (
            "RateLimitError",
            "Timeout",
            "APIConnectionError",
            "ServiceUnavailableError",
            "InternalServerError",
            "APIError",
        )
        if hasattr(litellm, name)
    )
    permanent = tuple(
        getattr(litellm, name)
        for name in (
            "AuthenticationError",
            "NotFoundError",
            "BadRequestError",
            "PermissionDeniedError",
            "ContextWindowExceededError",
            "UnprocessableEntityError",
        )
        if hasattr(litellm, name)
    )
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    if permanent and isinstance(exc, permanent):
        return PermanentAIError(message)
    if transient and isinstance(exc, transient):
        return TransientAIError(message)
    if isinstance(exc, TimeoutError | ConnectionError):
        return TransientAIError(message)
    return PermanentAIError(message)


def complete(
    spec: ModelSpec,
    messages: list[dict[str, str]],
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    temperature: float = 0.0,
    timeout: float | None = None,
    max_tokens: int | None = None,
) -> Completion:
    litellm = _load_litellm()
    kwargs: dict[str, Any] = {
        "model": spec.litellm_model,
        "messages": messages,
        "temperature": temperature,
        "timeout": timeout or settings.AI_REQUEST_TIMEOUT,
        "num_retries": 0,  # retries are the task's job, with backoff, so they are visible and bounded
    }
    if api_base or spec.api_base:
        kwargs["api_base"] = api_base or spec.api_base
    if api_key or spec.api_key:
        kwargs["api_key"] = api_key or spec.api_key
    if max_tokens:
        kwargs["max_tokens"] = max_tokens
    started = time.monotonic()
    try:
        response = litellm.completion(**kwargs)
    except Exception as exc:  # litellm raises many types; sorted into ours
        raise _classify(litellm, exc) from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    choice = response.choices[0]
    text = (choice.message.content or "") if hasattr(choice, "message") else ""
    usage = getattr(response, "usage", None)
    tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
    tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
    try:
        cost = float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # models missing from the local cost map have no price: cost 0, not a failure
        cost = 0.0
    return Completion(
        text=text,
        model=str(getattr(response, "model", spec.litellm_model) or spec.litellm_model),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=cost,
        latency_ms=latency_ms,
    )
