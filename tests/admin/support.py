"""Two organizations with governance and history, for the admin tests: what org A's operator must see and
what org B's objects must never show them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditLog, Membership
from connectors.discovery import discovery_run
from connectors.models import CatalogColumn, DataSource, RowPolicy, SourceAccess
from prompts.models import ExecutionStatus, GeneratedQuery, Prompt, PromptExecution, Stage, StageStatus
from tests.factories import DataSourceFactory, MembershipFactory, UserFactory

SHOP_SQL = """
CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES regions(id)
);
"""


def make_shop_db(path: Path) -> Path:
    """Twelve customers in three regions; customer i lives in region 1 + i % 3."""
    conn = sqlite3.connect(path)
    conn.executescript(SHOP_SQL)
    conn.executemany("INSERT INTO regions VALUES (?, ?)", [(1, "North"), (2, "South"), (3, "East")])
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?)",
        [(i, f"Customer {i}", f"c{i}@example.com", 1 + i % 3) for i in range(1, 13)],
    )
    conn.commit()
    conn.close()
    return path


def execution_row(
    membership: Membership,
    *,
    prompt_text: str,
    status: str = ExecutionStatus.COMPLETED,
    sources: list[DataSource] | None = None,
    error_code: str = "",
    ai_model: str = "builtin",
    sql: str = "",
    sql_executed: str = "",
    preview: list[dict[str, Any]] | None = None,
    started_at: Any = None,
    tokens: tuple[int, int] = (0, 0),
    cost: float = 0.0,
) -> PromptExecution:
    """An execution as the pipeline leaves it, written directly (no worker)."""
    started = started_at or timezone.now() - timedelta(minutes=5)
    finished = status != ExecutionStatus.PROCESSING
    sources = sources or []
    execution = PromptExecution.objects.create(
        workspace_id=membership.workspace_id,
        user_id=membership.user_id,
        prompt_text=prompt_text,
        ai_model=ai_model,
        status=status,
        error_code=error_code,
        error_message=f"{error_code} happened" if error_code else "",
        ai_processing_status=StageStatus.COMPLETED if finished else StageStatus.IN_PROGRESS,
        stage=Stage.DONE if finished else Stage.QUERY,
        started_at=started,
        created_at=started,
        ai_processing_started_at=started + timedelta(milliseconds=10),
        ai_processing_completed_at=started + timedelta(milliseconds=410) if finished else None,
        ai_response_time_ms=400 if finished else None,
        query_execution_started_at=started + timedelta(milliseconds=420) if finished else None,
        query_execution_completed_at=started + timedelta(milliseconds=470) if finished else None,
        query_execution_duration_ms=50 if finished else None,
        completed_at=started + timedelta(milliseconds=480) if finished else None,
        total_duration_ms=480 if finished else None,
        data_source_ids=[s.pk for s in sources],
        result_preview=preview,
        rows_returned=len(preview) if preview is not None else None,
    )
    execution.data_sources.set(sources)
    if sql:
        generated = GeneratedQuery.objects.create(
            execution=execution,
            sql_text=sql,
            sql_executed=sql_executed,
            dialect="sqlite",
            model=ai_model,
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            cost=cost,
            attempts=[{"sql": sql, "error": None}],
        )
        execution.generated_query = generated
        execution.save(update_fields=["generated_query"])
    return execution


@dataclass
class Tenant:
    """One organization's operator, analyst and objects; every name carries `tag` so pages can be searched."""

    tag: str
    operator: Membership
    analyst: Membership
    source: DataSource
    email_column: CatalogColumn
    policy: RowPolicy
    access: SourceAccess
    execution: PromptExecution
    prompt: Prompt
    audit: AuditLog


def make_tenant(tag: str, data_root: Path) -> Tenant:
    operator = MembershipFactory(role="admin", user=UserFactory(username=f"op-{tag}", is_staff=True))
    workspace = operator.workspace
    workspace.name = f"Workspace {tag}"
    workspace.save(update_fields=["name"])
    analyst = MembershipFactory(role="analyst", workspace=workspace, user=UserFactory(username=f"analyst-{tag}"))
    analyst.attributes = {"region_id": 1}
    analyst.save(update_fields=["attributes"])
    path = make_shop_db(data_root / f"shop-{tag}.sqlite3")
    source = DataSourceFactory(workspace=workspace, name=f"Shop {tag}", alias=f"shop_{tag}", path=str(path))
    discovery_run(source_id=source.pk)
    email = CatalogColumn.objects.get(table__data_source=source, table__name="customers", name="email")
    email.description = f"email-column-{tag}"
    email.save()
    policy = RowPolicy.objects.create(
        data_source=source,
        name=f"Policy {tag}",
        table_name="customers",
        predicate="region_id = {{member.region_id}}",
        roles=["analyst"],
    )
    access = SourceAccess.objects.create(data_source=source, role="analyst")
    execution = execution_row(
        analyst,
        prompt_text=f"how many customers {tag}",
        sources=[source],
        sql="SELECT COUNT(*) FROM customers",
        sql_executed="SELECT COUNT(*) FROM (SELECT * FROM customers WHERE region_id = 1) LIMIT 10000",
        preview=[{"count": 4}],
    )
    prompt = Prompt.objects.create(
        workspace=workspace, owner=analyst.user, name=f"Saved {tag}", prompt_text=f"saved prompt {tag}"
    )
    audit = audit_record(actor=operator.user, action="row_policy.update", obj=policy, after={"note": f"audit-{tag}"})
    return Tenant(tag, operator, analyst, source, email, policy, access, execution, prompt, audit)


def staff_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
