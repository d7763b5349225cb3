"""The query editor's own error codes (spec 004), on top of config.errors and connectors.errors."""

from __future__ import annotations

from config.errors import BadRequest, DomainError, Forbidden


class DmlBlocked(Forbidden):
    code = "DML_BLOCKED"
    default_message = "Only read-only SELECT queries may run in the query editor"


class ConnectorNotQueryable(BadRequest):
    code = "CONNECTOR_NOT_QUERYABLE"
    default_message = "The connector is not a queryable connector of this space"


class FeatureDisabled(Forbidden):
    code = "FEATURE_DISABLED"
    default_message = "This feature is disabled for the space"


class GeneratedSqlInvalid(BadRequest):
    """Generated or refined SQL failed one of the spec's checks; `check` names it."""

    code = "SQL_VALIDATION_ERROR"

    def __init__(self, message: str, *, check: str) -> None:
        super().__init__(message, details={"check": check})
        self.check = check


class AIGenerationError(BadRequest):
    code = "AI_GENERATION_ERROR"
    default_message = "The AI query writer could not answer"


class AIProviderError(DomainError):
    """The configured model failed (bad key, unknown model, provider down)."""

    code = "AI_PROVIDER_ERROR"
    status = 502
    default_message = "The AI model could not be reached"
