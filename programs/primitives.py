"""The AI primitives a program calls: classify, summarize, extract, generate.

Each call is one chat completion (one `llm_usages` entry): `prompt_for` builds the messages and `parse_reply`
turns the model's text into the value the program gets back. When the platform's default model is the
offline `builtin` engine (the demo, the tests), `builtin_answer` answers deterministically instead:

- classify: keyword overlap between each input and each category (plus a small sentiment lexicon), the
  first category on a tie or no overlap;
- summarize: the input's first two sentences, cut at 280 characters;
- extract: each property of the JSON schema filled from `key: value` / `key = value` text, else from the
  first match of its type (number, email, ISO date, boolean), else null;
- generate: the instructions followed by a summary of the input.

Token counts for `builtin` are estimated as characters / 4 of the request and the reply.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

PRIMITIVE_NAMES = ("classify", "summarize", "extract", "generate")
SYSTEM_PROMPT = (
    "You are a function called from a data program. Follow the instructions exactly and answer with the "
    "requested value only: no preamble, no explanation, no markdown."
)
SUMMARY_SENTENCES = 2
SUMMARY_CHARS = 280

_JSON_BLOCK = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*(?:\.\d+)?")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_PHRASE_END = re.compile(r",|[.!?](?:\s|$)")  # a stated text value ends at a comma or a sentence's end

# Words that signal a category the input rarely names outright.
_LEXICON = {
    "positive": {"good", "great", "love", "loved", "excellent", "happy", "amazing", "fast", "thanks", "perfect"},
    "negative": {"bad", "terrible", "hate", "awful", "broken", "slow", "angry", "worst", "refund", "poor", "late"},
    "neutral": {"ok", "okay", "fine", "average"},
    "urgent": {"asap", "immediately", "urgent", "now", "critical", "outage", "down"},
    "question": {"how", "what", "why", "when", "where", "who", "can", "could"},
    "complaint": {"broken", "late", "refund", "disappointed", "terrible", "never", "worst"},
}


class PrimitiveArgumentError(ValueError):
    """The program called a primitive with arguments it cannot take (raised as ValueError in the program)."""


def check_arguments(name: str, kwargs: dict[str, Any]) -> None:
    if name not in PRIMITIVE_NAMES:
        raise PrimitiveArgumentError(f"unknown primitive {name!r}")
    if not isinstance(kwargs.get("instructions"), str):
        raise PrimitiveArgumentError(f"{name}() needs instructions as a string")
    if name == "classify":
        categories = kwargs.get("categories")
        if not isinstance(categories, list) or not categories or not all(isinstance(c, str) for c in categories):
            raise PrimitiveArgumentError("classify() needs categories as a non-empty list of strings")
        inputs = kwargs.get("inputs_to_classify")
        if not isinstance(inputs, str | list):
            raise PrimitiveArgumentError("classify() needs inputs_to_classify as a string or a list")
    if name == "extract" and not isinstance(kwargs.get("json_schema"), dict):
        raise PrimitiveArgumentError("extract() needs json_schema as a dict (a JSON schema)")


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _inputs(kwargs: dict[str, Any]) -> list[Any]:
    inputs = kwargs["inputs_to_classify"]
    return [inputs] if isinstance(inputs, str) else list(inputs)


# --- through an LLM ------------------------------------------------------------------------------


def prompt_for(name: str, kwargs: dict[str, Any]) -> list[dict[str, str]]:
    instructions = kwargs["instructions"].strip() or "(none)"
    if name == "classify":
        multiple = bool(kwargs.get("allow_multiple"))
        shape = (
            "a JSON array with one element per input, in order; each element is a JSON array of the categories "
            "that apply (at least one)"
            if multiple
            else "a JSON array with one element per input, in order; each element is exactly one category string"
        )
        user = (
            f"Classify each input into the categories.\nInstructions: {instructions}\n"
            f"Categories: {json.dumps(kwargs['categories'], ensure_ascii=False)}\n"
            f"Inputs: {json.dumps(_inputs(kwargs), ensure_ascii=False, default=str)}\n"
            f"Answer with {shape}."
        )
    elif name == "summarize":
        user = f"Summarize the input.\nInstructions: {instructions}\nInput:\n{_as_text(kwargs.get('input'))}"
    elif name == "extract":
        user = (
            f"Extract structured data from the input.\nInstructions: {instructions}\n"
            f"JSON schema: {json.dumps(kwargs['json_schema'], ensure_ascii=False)}\n"
            f"Input:\n{_as_text(kwargs.get('input'))}\n"
            "Answer with one JSON value that matches the schema (null for what the input does not say)."
        )
    else:
        user = f"Instructions: {instructions}\nInput:\n{_as_text(kwargs.get('input'))}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def _json_from(text: str) -> Any:
    block = _JSON_BLOCK.search(text)
    candidate = (block.group(1) if block else text).strip()
    try:
        return json.loads(candidate)
    except ValueError:
        pass
    # The first bracketed value in the text (models sometimes add a sentence around it).
    for opener, closer in (("[", "]"), ("{", "}")):
        start, end = candidate.find(opener), candidate.rfind(closer)
        if 0 <= start < end:
            try:
                return json.loads(candidate[start : end + 1])
            except ValueError:
                continue
    raise ValueError(f"the model did not answer with JSON: {text[:200]!r}")


def _match_category(value: Any, categories: list[str]) -> str:
    if isinstance(value, str):
        if value in categories:
            return value
        folded = {c.casefold(): c for c in categories}
        if value.strip().casefold() in folded:
            return folded[value.strip().casefold()]
    raise ValueError(f"the model answered {value!r}, which is not one of the categories {categories}")


def parse_reply(name: str, text: str, kwargs: dict[str, Any]) -> Any:
    if name in ("summarize", "generate"):
        return text.strip()
    if name == "extract":
        return _json_from(text)
    categories = kwargs["categories"]
    inputs = _inputs(kwargs)
    multiple = bool(kwargs.get("allow_multiple"))
    try:
        answer = _json_from(text)
    except ValueError:
        if len(inputs) != 1:
            raise
        answer = text.strip().strip("\"'")  # a bare category word for the one input
    if len(inputs) == 1:
        if not isinstance(answer, list):
            answer = [answer]
        elif multiple and answer and all(isinstance(item, str) for item in answer):
            answer = [answer]  # the categories of the one input, not one label per input
    if not isinstance(answer, list) or len(answer) != len(inputs):
        count = len(answer) if isinstance(answer, list) else 0
        raise ValueError(f"the model answered {count} labels for {len(inputs)} inputs")
    labels: list[Any]
    if multiple:
        labels = [
            [_match_category(v, categories) for v in (item if isinstance(item, list) else [item])] for item in answer
        ]
    else:
        labels = [_match_category(item[0] if isinstance(item, list) and item else item, categories) for item in answer]
    return labels[0] if isinstance(kwargs["inputs_to_classify"], str) else labels


# --- the offline builtin engine --------------------------------------------------------------------


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _category_score(text_words: set[str], category: str) -> int:
    stems = {_stem(w) for w in text_words}
    score = 0
    for word in _words(category):
        if word in text_words or _stem(word) in stems:
            score += 2
        score += len(_LEXICON.get(word, set()) & text_words)
    return score


def _classify_one(value: Any, categories: list[str], multiple: bool) -> Any:
    text_words = set(_words(_as_text(value)))
    scores = [_category_score(text_words, c) for c in categories]
    best = max(scores)
    if multiple:
        chosen = [c for c, s in zip(categories, scores, strict=True) if s > 0]
        return chosen or [categories[0]]
    return categories[scores.index(best)]  # the first on a tie, the first when nothing overlaps


def _summary(value: Any) -> str:
    text = " ".join(_as_text(value).split())
    summary = " ".join(_SENTENCE_END.split(text)[:SUMMARY_SENTENCES])
    return summary if len(summary) <= SUMMARY_CHARS else summary[: SUMMARY_CHARS - 1].rstrip() + "…"


def _coerce(raw: str, kind: Any) -> Any:
    raw = raw.strip().strip("\"'")
    if kind not in ("number", "integer"):
        raw = _PHRASE_END.split(raw)[0].strip().strip("\"'")
    if kind in ("number", "integer"):
        match = _NUMBER.search(raw)
        if not match:
            return None
        number = float(match.group().replace(",", ""))
        return int(number) if kind == "integer" or number.is_integer() else number
    if kind == "boolean":
        word = raw.casefold()
        return True if word in {"true", "yes", "y", "1"} else False if word in {"false", "no", "n", "0"} else None
    return raw


def _extract_field(text: str, key: str, spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    label = re.escape(key).replace("_", "[ _-]?")
    stated = re.search(rf"\b{label}\b\s*(?:is|[:=])\s*([^\n;]+)", text, re.IGNORECASE)
    if stated:
        return _coerce(stated.group(1), kind)
    if spec.get("format") == "email" or "email" in key.casefold():
        found = _EMAIL.search(text)
        return found.group() if found else None
    if spec.get("format") == "date" or "date" in key.casefold():
        found = _DATE.search(text)
        return found.group() if found else None
    if kind in ("number", "integer"):
        mentioned = re.search(rf"\b{label}\b", text, re.IGNORECASE)
        match = _NUMBER.search(text, mentioned.end() if mentioned else 0)
        return _coerce(match.group(), kind) if match else None
    return None


def _extract(schema: dict[str, Any], value: Any) -> Any:
    text = _as_text(value)
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else None
    if properties is None:  # a bare {"name": "string", ...} mapping
        properties = {
            k: {"type": v} if isinstance(v, str) else (v if isinstance(v, dict) else {}) for k, v in schema.items()
        }
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return [_extract(schema["items"], value)]
    return {key: _extract_field(text, key, spec if isinstance(spec, dict) else {}) for key, spec in properties.items()}


def builtin_answer(name: str, kwargs: dict[str, Any]) -> Any:
    if name == "classify":
        multiple = bool(kwargs.get("allow_multiple"))
        labels = [_classify_one(v, kwargs["categories"], multiple) for v in _inputs(kwargs)]
        return labels[0] if isinstance(kwargs["inputs_to_classify"], str) else labels
    if name == "summarize":
        return _summary(kwargs.get("input"))
    if name == "extract":
        return _extract(kwargs["json_schema"], kwargs.get("input"))
    return f"{kwargs['instructions'].strip()}\n\n{_summary(kwargs.get('input'))}".strip()


def estimate_tokens(value: Any) -> int:
    return max(1, math.ceil(len(_as_text(value)) / 4))
