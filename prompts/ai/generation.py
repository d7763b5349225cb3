"""NL → SQL for one execution: the builtin engine or an LLM, validated, self-corrected.

Confidence is computed, not asked of the model:
- `builtin`: the engine's own measure (share of the question it mapped; see prompts.ai.builtin).
- LLM: 0.9 when the first reply passed validation, 0.75 after one correction, 0.6 after two;
  the query stage lowers it by 0.1 when the query then needed an execution-error correction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from connectors.errors import GovernedQueryError
from connectors.types import SourceCatalog
from prompts.ai import builtin, context
from prompts.ai.client import complete
from prompts.ai.registry import ModelSpec

MAX_TRIES = 3  # the first try and up to 2 corrections
LLM_CONFIDENCE = {1: 0.9, 2: 0.75, 3: 0.6}


class GenerationFailed(Exception):
    def __init__(self, code: str, message: str, attempts: list[dict]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.attempts = attempts


@dataclass
class GenerationResult:
    sql: str
    model: str
    confidence: float
    attempts: list[dict] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency_ms: int = 0
    explanation: str = ""
    assumptions: list[str] = field(default_factory=list)  # builtin: choices it made (see its confidence)


Validator = Callable[[str], None]  # raises GovernedQueryError when the SQL may not run


def generate(
    *,
    question: str,
    catalogs: list[SourceCatalog],
    dialect: str,
    federated: bool,
    spec: ModelSpec,
    validate: Validator,
    today: date,
    examples: list[tuple[str, str]] | None = None,
    prior_errors: list[dict] | None = None,
) -> GenerationResult:
    if spec.is_builtin:
        return _generate_builtin(
            question=question, catalogs=catalogs, dialect=dialect, federated=federated, validate=validate, today=today
        )
    return _generate_llm(
        question=question,
        catalogs=catalogs,
        dialect=dialect,
        federated=federated,
        spec=spec,
        validate=validate,
        today=today,
        examples=examples or [],
        prior_errors=prior_errors or [],
    )


def _generate_builtin(
    *, question: str, catalogs: list[SourceCatalog], dialect: str, federated: bool, validate: Validator, today: date
) -> GenerationResult:
    try:
        answer = builtin.generate_sql(question, catalogs=catalogs, dialect=dialect, today=today, federated=federated)
    except builtin.BuiltinCannotAnswer as exc:
        raise GenerationFailed("AI_GENERATION_ERROR", f"The builtin engine could not answer: {exc}", []) from None
    attempt = {"try": 1, "sql": answer.sql, "error": None, "tokens_in": 0, "tokens_out": 0}
    try:
        validate(answer.sql)
    except GovernedQueryError as exc:
        attempt["error"] = exc.message
        raise GenerationFailed(exc.code, f"Generated SQL was refused: {exc.message}", [attempt]) from None
    return GenerationResult(
        sql=answer.sql,
        model="builtin",
        confidence=round(answer.confidence, 2),
        attempts=[attempt],
        explanation=answer.explanation,
        assumptions=answer.assumptions,
    )


def _generate_llm(
    *,
    question: str,
    catalogs: list[SourceCatalog],
    dialect: str,
    federated: bool,
    spec: ModelSpec,
    validate: Validator,
    today: date,
    examples: list[tuple[str, str]],
    prior_errors: list[dict],
) -> GenerationResult:
    schema = context.schema_context(catalogs, question=question, federated=federated)
    messages = [
        {"role": "system", "content": context.system_prompt(dialect=dialect, federated=federated, today=today)},
        {"role": "user", "content": context.user_prompt(question=question, schema=schema, examples=examples)},
    ]
    for prior in prior_errors:  # an execution error from the query stage comes back here to be corrected
        messages.append({"role": "assistant", "content": f"```sql\n{prior['sql']}\n```"})
        messages.append({"role": "user", "content": _correction(prior["error"])})
    attempts: list[dict] = []
    result = GenerationResult(sql="", model=spec.name, confidence=0.0)
    last_code, last_error = "AI_GENERATION_ERROR", "The model returned no SQL"
    for n in range(1, MAX_TRIES + 1):
        completion = complete(spec, messages)
        result.tokens_in += completion.tokens_in
        result.tokens_out += completion.tokens_out
        result.cost += completion.cost
        result.latency_ms += completion.latency_ms
        result.model = completion.model or spec.name
        sql = context.extract_sql(completion.text)
        attempt = {
            "try": n,
            "sql": sql,
            "error": None,
            "tokens_in": completion.tokens_in,
            "tokens_out": completion.tokens_out,
            "latency_ms": completion.latency_ms,
        }
        attempts.append(attempt)
        if not sql:
            last_code, last_error = "AI_GENERATION_ERROR", "The model's reply contained no SQL query"
        else:
            try:
                validate(sql)
            except GovernedQueryError as exc:
                last_code, last_error = exc.code, exc.message
            else:
                result.sql, result.attempts = sql, attempts
                result.confidence = LLM_CONFIDENCE[n] - 0.1 * len(prior_errors)
                return result
        attempt["error"] = last_error
        messages.append({"role": "assistant", "content": completion.text})
        messages.append({"role": "user", "content": _correction(last_error)})
    raise GenerationFailed(last_code, f"No valid SQL after {MAX_TRIES} tries: {last_error}", attempts)


def _correction(error: str) -> str:
    return (
        f"That query failed: {error}\n"
        "Write a corrected query using only the listed tables and columns. Answer with SQL only."
    )
