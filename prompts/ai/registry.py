"""The models this platform serves: `builtin` always, plus AI_MODELS from settings.

No litellm import here: the web process validates `ai_model` against this registry and must
stay fast to start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings

from config.errors import BadRequest

BUILTIN = "builtin"


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what clients send as `ai_model`
    litellm_model: str  # e.g. "openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"
    api_base: str | None = None
    api_key_env: str | None = None  # environment variable holding the key (else litellm's default)

    @property
    def is_builtin(self) -> bool:
        return self.name == BUILTIN

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


def served_models() -> dict[str, ModelSpec]:
    models = {BUILTIN: ModelSpec(name=BUILTIN, litellm_model=BUILTIN)}
    for name, entry in (settings.AI_MODELS or {}).items():
        if isinstance(entry, str):
            entry = {"model": entry}
        models[name] = ModelSpec(
            name=name,
            litellm_model=entry.get("model", name),
            api_base=entry.get("api_base"),
            api_key_env=entry.get("api_key_env"),
        )
    return models


def default_model_name() -> str:
    return settings.AI_DEFAULT_MODEL or BUILTIN


def resolve_model(name: str | None, *, field: str = "ai_model") -> ModelSpec:
    models = served_models()
    chosen = name or default_model_name()
    if chosen not in models:
        allowed = ", ".join(sorted(models))
        raise BadRequest(
            f"{field}: model {chosen!r} is not served here; allowed: {allowed}",
            details={field: [f"Unknown model {chosen!r}. Allowed: {allowed}."]},
        )
    return models[chosen]
