"""The AI query writer: generate, explain and refine SQL for review, never executing it.

The model is the platform's default (settings.AI_DEFAULT_MODEL): the offline `builtin` engine or a
litellm model. Generated and refined SQL goes through `governed_prepare` — single read-only
statement, the connector's dialect, known tables and columns, no external schema — and a failure
is a 400 naming the check that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.utils import timezone

from accounts.models import Membership
from config.errors import BadRequest, ServiceUnavailable
from connectors.errors import GovernedQueryError
from connectors.governed import GovernedRequest, governed_prepare
from connectors.models import DataSource
from connectors.selectors import source_catalog
from connectors.types import SourceCatalog
from prompts.ai import builtin, context
from prompts.ai.client import AIError, TransientAIError, complete
from prompts.ai.generation import GenerationFailed, generate
from prompts.ai.registry import ModelSpec, resolve_model
from query_editor import selectors
from query_editor.errors import (
    AIGenerationError,
    AIProviderError,
    ConnectorNotQueryable,
    FeatureDisabled,
    GeneratedSqlInvalid,
)

FEATURE = "ai.query_writer_enabled"
MAX_PROMPT_CHARS = 2_000
# What clients call each engine's SQL dialect.
DIALECT_NAMES = {"postgres": "postgresql", "mysql": "mysql", "sqlite": "sqlite", "duckdb": "duckdb"}

EXPLAIN_SYSTEM = (
    "You explain SQL queries to analysts in plain language: what the query returns, from which tables, "
    "how it filters, groups and orders. Two to four sentences, no SQL, no preamble."
)


@dataclass
class WrittenSql:
    sql: str
    dialect: str


def ensure_enabled(membership: Membership) -> None:
    if not membership.workspace.feature_enabled(FEATURE):
        raise FeatureDisabled(f"The AI query writer ({FEATURE}) is disabled for this space")


def _writer_source(membership: Membership, connector_id: UUID | None) -> DataSource:
    """The given connector, or the space's only queryable one when none is given."""
    if connector_id is not None:
        return selectors.connector_for_query(membership=membership, connector_id=connector_id)
    sources = selectors.connectors_queryable(membership=membership)
    if not sources:
        raise ConnectorNotQueryable("This space has no queryable connector to write SQL for")
    if len(sources) > 1:
        raise BadRequest(
            "connector_id is required: this space has several queryable connectors",
            details={"connector_id": ["Required when the space has several queryable connectors."]},
        )
    return sources[0]


def _validator(membership: Membership, source: DataSource, failures: list[GovernedQueryError]):  # noqa: ANN202
    def validate(sql: str) -> None:
        try:
            governed_prepare(GovernedRequest(membership=membership, sources=[source], sql=sql, purpose="editor"))
        except GovernedQueryError as exc:
            failures.append(exc)
            raise

    return validate


def _invalid(what: str, exc: GovernedQueryError) -> GeneratedSqlInvalid:
    check = exc.check or exc.code.lower()
    return GeneratedSqlInvalid(f"{what} SQL failed validation (check: {check}): {exc.message}", check=check)


def _provider_error(exc: AIError) -> Exception:
    if isinstance(exc, TransientAIError):
        return ServiceUnavailable(f"The AI model is unavailable right now: {exc}", code="AI_UNAVAILABLE")
    return AIProviderError(f"The AI model failed: {exc}")


def ai_generate(*, membership: Membership, prompt: str, connector_id: UUID | None) -> WrittenSql:
    ensure_enabled(membership)
    source = _writer_source(membership, connector_id)
    catalog = source_catalog(source)
    failures: list[GovernedQueryError] = []
    try:
        result = generate(
            question=prompt,
            catalogs=[catalog],
            dialect=catalog.dialect,
            federated=False,
            spec=resolve_model(None),
            validate=_validator(membership, source, failures),
            today=timezone.localdate(),
        )
    except GenerationFailed as exc:
        if failures and exc.code != "AI_GENERATION_ERROR":
            raise _invalid("Generated", failures[-1]) from None
        raise AIGenerationError(exc.message) from None
    except AIError as exc:
        raise _provider_error(exc) from None
    return WrittenSql(sql=result.sql, dialect=DIALECT_NAMES[catalog.engine])


def ai_refine(*, membership: Membership, current_sql: str, instruction: str, connector_id: UUID | None) -> WrittenSql:
    ensure_enabled(membership)
    source = _writer_source(membership, connector_id)
    catalog = source_catalog(source)
    spec = resolve_model(None)
    today = timezone.localdate()
    if spec.is_builtin:
        try:
            sql = builtin.refine_sql(current_sql, instruction, catalogs=[catalog], dialect=catalog.dialect, today=today)
        except builtin.BuiltinCannotAnswer as exc:
            raise AIGenerationError(f"The builtin engine could not refine the query: {exc}") from None
    else:
        sql = _llm_refine(spec, catalog, current_sql=current_sql, instruction=instruction, today=today)
    failures: list[GovernedQueryError] = []
    try:
        _validator(membership, source, failures)(sql)
    except GovernedQueryError as exc:
        raise _invalid("Refined", exc) from None
    return WrittenSql(sql=sql, dialect=DIALECT_NAMES[catalog.engine])


def _llm_refine(spec: ModelSpec, catalog: SourceCatalog, *, current_sql: str, instruction: str, today) -> str:  # noqa: ANN001
    schema = context.schema_context([catalog], question=f"{instruction} {current_sql}", federated=False)
    messages = [
        {"role": "system", "content": context.system_prompt(dialect=catalog.dialect, federated=False, today=today)},
        {
            "role": "user",
            "content": (
                f"Schema:\n{schema}\n\nCurrent query:\n```sql\n{current_sql}\n```\n\n"
                f"Change the query as follows: {instruction}\nAnswer with the complete modified query."
            ),
        },
    ]
    try:
        reply = complete(spec, messages)
    except AIError as exc:
        raise _provider_error(exc) from None
    sql = context.extract_sql(reply.text)
    if not sql:
        raise AIGenerationError("The model's reply contained no SQL query")
    return sql


def ai_explain(*, membership: Membership, sql: str, connector_id: UUID | None = None) -> str:
    ensure_enabled(membership)
    source: DataSource | None = None
    if connector_id is not None:
        source = selectors.connector_for_query(membership=membership, connector_id=connector_id)
    else:
        sources = selectors.connectors_queryable(membership=membership)
        source = sources[0] if len(sources) == 1 else None
    catalog = source_catalog(source) if source is not None else None
    dialect = catalog.dialect if catalog is not None else "postgres"
    spec = resolve_model(None)
    if spec.is_builtin:
        try:
            return builtin.explain_sql(sql, dialect=dialect)
        except builtin.BuiltinCannotAnswer as exc:
            raise AIGenerationError(f"The builtin engine could not explain the query: {exc}") from None
    schema = context.schema_context([catalog], question=sql, federated=False) if catalog is not None else ""
    content = (f"Schema:\n{schema}\n\n" if schema else "") + f"Explain this {dialect} query:\n```sql\n{sql}\n```"
    try:
        reply = complete(spec, [{"role": "system", "content": EXPLAIN_SYSTEM}, {"role": "user", "content": content}])
    except AIError as exc:
        raise _provider_error(exc) from None
    explanation = reply.text.strip()
    if not explanation:
        raise AIGenerationError("The model returned an empty explanation")
    return explanation
