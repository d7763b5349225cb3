"""Templates: define (placeholders ↔ declared parameters), render with typed values, execute."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

from django.db.models import F
from django.utils import timezone

from accounts.models import Membership, Role
from config.errors import BadRequest, Forbidden
from prompts.models import PromptExecution
from prompts.services import execution_create
from templates_app.models import PARAMETER_TYPES, PLACEHOLDER, PromptTemplate, TemplateCategory

MAX_VALUE_LENGTH = 500
MAX_PROMPT_LENGTH = 10_000  # as POST /prompts/execute
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(f"{field}: {message}", details={field: [message]})


def parameters_validate(*, template_text: str, parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every placeholder declared, every declared parameter used, each declaration well-formed."""
    cleaned: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, raw in enumerate(parameters):
        where = f"parameters[{i}]"
        if not isinstance(raw, dict):
            raise _bad(where, "Each parameter is an object with name and type.")
        name = raw.get("name")
        if not isinstance(name, str) or not _PARAM_NAME.match(name):
            raise _bad(f"{where}.name", "A parameter name is an identifier (letters, digits, underscores).")
        if name in names:
            raise _bad(f"{where}.name", f"Parameter {name!r} is declared twice.")
        names.add(name)
        kind = raw.get("type", "string")
        if kind not in PARAMETER_TYPES:
            raise _bad(f"{where}.type", f"Type must be one of {', '.join(PARAMETER_TYPES)}.")
        allowed = raw.get("allowed_values")
        if kind == "enum" and (not isinstance(allowed, list) or not allowed):
            raise _bad(f"{where}.allowed_values", "An enum parameter needs a non-empty list of allowed values.")
        param = {
            "name": name,
            "type": kind,
            "required": bool(raw.get("required", False)),
            "default": raw.get("default"),
            "allowed_values": [str(v) for v in allowed] if isinstance(allowed, list) else None,
            "description": str(raw.get("description", ""))[:500],
        }
        if param["default"] is not None:
            param["default"] = coerce_value(param, param["default"], field=f"{where}.default")
        cleaned.append(param)
    used = list(dict.fromkeys(PLACEHOLDER.findall(template_text)))
    undeclared = [n for n in used if n not in names]
    if undeclared:
        raise _bad("template_text", f"Placeholders without a declared parameter: {', '.join(undeclared)}.")
    unused = [n for n in names if n not in used]
    if unused:
        raise _bad("parameters", f"Declared parameters not used in template_text: {', '.join(unused)}.")
    return cleaned


def coerce_value(param: dict[str, Any], value: Any, *, field: str) -> Any:
    kind = param["type"]
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _bad(field, "A number is required.")
        try:
            number = float(value)
        except ValueError:
            raise _bad(field, f"A number is required, got {value!r}.") from None
        if not math.isfinite(number):  # "inf"/"nan" parse as floats but are no numbers for a question
            raise _bad(field, f"A finite number is required, got {value!r}.")
        return int(number) if number.is_integer() else number
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise _bad(field, f"A date (YYYY-MM-DD) is required, got {value!r}.") from None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise _bad(field, "A text value is required.")
    text = str(value)
    if len(text) > MAX_VALUE_LENGTH:
        raise _bad(field, f"At most {MAX_VALUE_LENGTH} characters.")
    if kind == "enum":
        # "last_30_days", "Last 30 Days" and "last 30 days" name the same choice: answer with the declared one.
        allowed = param.get("allowed_values") or []
        by_key = {_enum_key(v): v for v in allowed}
        if _enum_key(text) not in by_key:
            raise _bad(field, f"Must be one of: {', '.join(allowed)}.")
        return by_key[_enum_key(text)]
    return text


def _enum_key(value: str) -> str:
    return " ".join(re.split(r"[\s_\-]+", value.strip().lower()))


def template_render(*, template: PromptTemplate, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Substitute {{param}}s (defaults applied, types and allowed values checked); → (text, resolved values)."""
    declared = {p["name"]: p for p in template.parameters}
    unknown = [k for k in values if k not in declared]
    if unknown:
        raise BadRequest(
            f"parameters: unknown parameters {', '.join(unknown)}",
            details={"parameters": [f"Unknown parameter {k!r}." for k in unknown]},
        )
    resolved: dict[str, Any] = {}
    missing = []
    for name, param in declared.items():
        if name in values and values[name] is not None and values[name] != "":
            resolved[name] = coerce_value(param, values[name], field=f"parameters.{name}")
        elif param.get("default") is not None:
            resolved[name] = param["default"]
        elif param.get("required"):
            missing.append(name)
        else:
            resolved[name] = ""
    if missing:
        raise BadRequest(
            f"parameters: missing required parameters {', '.join(missing)}",
            details={f"parameters.{n}": ["This parameter is required."] for n in missing},
        )
    text = PLACEHOLDER.sub(lambda m: str(resolved.get(m.group(1), "")), template.template_text)
    # An empty optional value leaves a double space; collapse those but keep the template's line breaks.
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    if not text:
        raise BadRequest("parameters: the rendered prompt is empty", details={"parameters": ["The prompt is empty."]})
    if len(text) > MAX_PROMPT_LENGTH:
        raise BadRequest(
            "parameters: the rendered prompt is too long",
            details={"parameters": [f"The rendered prompt has {len(text)} characters; at most {MAX_PROMPT_LENGTH}."]},
        )
    return text, resolved


def template_create(
    *,
    membership: Membership,
    name: str,
    template_text: str,
    parameters: list[dict[str, Any]],
    description: str = "",
    category: TemplateCategory | None = None,
    is_public: bool = False,
) -> PromptTemplate:
    if membership.role == Role.VIEWER:
        raise Forbidden("Viewers may not create templates")
    cleaned = parameters_validate(template_text=template_text, parameters=parameters)
    return PromptTemplate.objects.create(
        organization_id=membership.workspace.organization_id,
        owner=membership.user,
        name=name,
        description=description,
        category=category,
        template_text=template_text,
        parameters=cleaned,
        is_public=is_public,
    )


def _require_editable(template: PromptTemplate, membership: Membership) -> None:
    if template.is_system:
        raise Forbidden("System templates are read-only")
    if template.owner_id != membership.user_id and membership.role != Role.ADMIN:
        raise Forbidden("Only the template's owner or a workspace admin may change it")


def template_update(*, membership: Membership, template: PromptTemplate, **changes: Any) -> PromptTemplate:
    _require_editable(template, membership)
    text = changes.get("template_text", template.template_text)
    params = changes.get("parameters", template.parameters)
    if "template_text" in changes or "parameters" in changes:
        changes["parameters"] = parameters_validate(template_text=text, parameters=params)
    for key, value in changes.items():
        setattr(template, key, value)
    template.save()
    return template


def template_delete(*, membership: Membership, template: PromptTemplate) -> None:
    _require_editable(template, membership)
    template.deleted_at = timezone.now()
    template.save(update_fields=["deleted_at", "updated_at"])


def template_execute(
    *,
    membership: Membership,
    template: PromptTemplate,
    values: dict[str, Any],
    data_source_ids: list[int],
    schema_names: list[str],
    save_prompt: bool,
    ai_model: str | None = None,
) -> PromptExecution:
    text, resolved = template_render(template=template, values=values)
    execution = execution_create(
        membership=membership,
        prompt_text=text,
        data_source_ids=data_source_ids,
        schema_names=schema_names,
        name=template.name,
        save_prompt=save_prompt,
        ai_model=ai_model,
        tags=["template"],
        template_id=template.pk,
        template_parameters=resolved,
    )
    PromptTemplate.objects.filter(pk=template.pk).update(usage_count=F("usage_count") + 1)
    return execution
