"""Shared pieces of the Prompt Studio management tests: factories for prompts and executions, the
demo SQLite source, and envelope assertions."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import factory
from django.utils import timezone

from connectors.demo_data import generate_sales_db
from connectors.discovery import discovery_run
from connectors.models import DataSource
from prompts.models import ExecutionStatus, GeneratedQuery, Prompt, PromptExecution, Stage, StageStatus
from tests.factories import DataSourceFactory

TODAY = date(2025, 6, 30)


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    workspace = factory.LazyAttribute(lambda o: o.owner_membership.workspace)
    owner = factory.LazyAttribute(lambda o: o.owner_membership.user)
    name = factory.Sequence(lambda n: f"Saved prompt {n}")
    prompt_text = factory.Sequence(lambda n: f"total sales by region number {n}")
    ai_model = "builtin"
    status = "completed"

    class Params:
        owner_membership = None


def prompt_for(membership: Any, **kwargs: Any) -> Prompt:
    return PromptFactory(owner_membership=membership, **kwargs)


def execution_for(
    membership: Any,
    *,
    status: str = ExecutionStatus.COMPLETED,
    created_at: datetime | None = None,
    sources: list[DataSource] = (),  # type: ignore[assignment]
    tokens: tuple[int, int] | None = None,
    cost: float = 0.0,
    **fields: Any,
) -> PromptExecution:
    """An execution row as the pipeline leaves it, written directly (no worker)."""
    created_at = created_at or timezone.now()
    finished = status != ExecutionStatus.PROCESSING
    values: dict[str, Any] = {
        "workspace_id": membership.workspace_id,
        "user_id": membership.user_id,
        "prompt_text": "total sales by region",
        "ai_model": "builtin",
        "status": status,
        "ai_processing_status": StageStatus.COMPLETED if finished else StageStatus.IN_PROGRESS,
        "stage": Stage.DONE if finished else Stage.QUEUED_AI,
        "started_at": created_at,
        "created_at": created_at,
        "completed_at": created_at + timedelta(seconds=1) if finished else None,
        "data_source_ids": [s.pk for s in sources],
    }
    values.update(fields)
    execution = PromptExecution.objects.create(**values)
    execution.data_sources.set(sources)
    if tokens is not None:
        generated = GeneratedQuery.objects.create(
            execution=execution,
            sql_text="SELECT 1",
            dialect="sqlite",
            model=execution.ai_model,
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            cost=cost,
        )
        execution.generated_query = generated
        execution.save(update_fields=["generated_query"])
    return execution


def sales_db(directory: Path) -> Path:
    path = directory / "sales.sqlite3"
    if not path.exists():
        generate_sales_db(path, orders=300, seed=7, today=TODAY)
    return path


def discovered_sales_source(membership: Any, path: Path, *, alias: str = "sales") -> DataSource:
    source = DataSourceFactory(workspace=membership.workspace, alias=alias, name=f"Sales {alias}", path=str(path))
    source = discovery_run(source_id=source.pk)
    assert source.discovery_status == "succeeded", source.discovery_error
    return source


def assert_error(response: Any, status: int, code: str, *fields: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    for field in fields:
        assert field in body["error"]["details"], body["error"]
    return body


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is True
    return body["data"]
