"""Data sources, their discovered catalog, and the governance operators edit in the admin."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Role, Workspace
from connectors.types import ENGINES

alias_validator = RegexValidator(
    r"^[a-z][a-z0-9_]{0,62}$",
    "An alias is a lowercase identifier: a letter, then letters, digits or underscores (max 63).",
)


class ConnectorType(models.TextChoices):
    POSTGRES = "postgres", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    SQLITE = "sqlite", "SQLite"
    DUCKDB = "duckdb", "DuckDB"


assert set(ConnectorType.values) == set(ENGINES)


class DiscoveryStatus(models.TextChoices):
    NEVER = "never", "Never run"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class DataSourceQuerySet(models.QuerySet["DataSource"]):
    def alive(self) -> DataSourceQuerySet:
        return self.filter(deleted_at__isnull=True)


class DataSource(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="data_sources")
    name = models.CharField(max_length=200)
    # Addresses the source's tables in federated SQL: <alias>.<schema>.<table>.
    alias = models.CharField(max_length=63, validators=[alias_validator])
    connector_type = models.CharField(max_length=16, choices=ConnectorType.choices)
    source_system_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)

    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    database = models.CharField(max_length=255, blank=True)
    username = models.CharField(max_length=255, blank=True)
    # Fernet token (connectors.crypto); never rendered anywhere.
    password_encrypted = models.TextField(blank=True, editable=False)
    path = models.CharField(max_length=1024, blank=True, help_text="SQLite / DuckDB file")
    options = models.JSONField(default=dict, blank=True)

    is_active = models.BooleanField(default=True)
    statement_timeout_ms = models.PositiveIntegerField(null=True, blank=True)
    row_cap = models.PositiveIntegerField(null=True, blank=True)

    discovery_status = models.CharField(max_length=16, choices=DiscoveryStatus.choices, default=DiscoveryStatus.NEVER)
    discovery_error = models.TextField(blank=True)
    discovered_at = models.DateTimeField(null=True, blank=True)
    discovery_changes = models.JSONField(default=dict, blank=True)
    catalog_version = models.PositiveIntegerField(default=0)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = DataSourceQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "alias"], condition=Q(deleted_at__isnull=True), name="uniq_live_source_alias"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.alias})"

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)


class CatalogTable(models.Model):
    data_source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="tables")
    schema_name = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=[("table", "Table"), ("view", "View")], default="table")
    row_estimate = models.BigIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["schema_name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["data_source", "schema_name", "name"], name="uniq_catalog_table")
        ]

    def __str__(self) -> str:
        return f"{self.schema_name}.{self.name}"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        result = super().delete(*args, **kwargs)
        bump_catalog_version(self.data_source_id)
        return result


class MaskingStyle(models.TextChoices):
    FULL = "full", "Full (***MASKED***)"
    PARTIAL = "partial", "Partial (j***@example.com)"
    HASH = "hash", "Hash"
    NULL = "null", "Null"


class CatalogColumn(models.Model):
    table = models.ForeignKey(CatalogTable, on_delete=models.CASCADE, related_name="columns")
    name = models.CharField(max_length=255)
    ordinal = models.PositiveIntegerField(default=0)
    data_type = models.CharField(max_length=128, blank=True)
    nullable = models.BooleanField(default=True)
    is_primary_key = models.BooleanField(default=False)
    fk_schema = models.CharField(max_length=255, blank=True)
    fk_table = models.CharField(max_length=255, blank=True)
    fk_column = models.CharField(max_length=255, blank=True)
    # Classification, edited by operators; re-discovery never overwrites it on existing columns.
    pii = models.BooleanField(default=False, verbose_name="PII")
    phi = models.BooleanField(default=False, verbose_name="PHI")
    masking_style = models.CharField(max_length=8, choices=MaskingStyle.choices, default=MaskingStyle.FULL)
    description = models.TextField(blank=True)
    sample_values = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["table_id", "ordinal", "name"]
        constraints = [models.UniqueConstraint(fields=["table", "name"], name="uniq_catalog_column")]

    def __str__(self) -> str:
        return f"{self.table}.{self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Classification edits change masking: cached catalogs of this source must be rebuilt.
        super().save(*args, **kwargs)
        bump_catalog_version(CatalogTable.objects.filter(pk=self.table_id).values("data_source_id")[:1])


def bump_catalog_version(data_source_id: Any) -> None:
    DataSource.objects.filter(pk=data_source_id).update(catalog_version=F("catalog_version") + 1)


class SourceAccess(models.Model):
    """Who may query a data source. No rules: every member may. Admins always may."""

    data_source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="access_rules")
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)

    class Meta:
        verbose_name = "source access rule"
        constraints = [
            models.CheckConstraint(
                condition=(Q(role="") & Q(user__isnull=False)) | (~Q(role="") & Q(user__isnull=True)),
                name="source_access_role_xor_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.data_source}: {self.role or self.user}"

    def clean(self) -> None:
        if bool(self.role) == bool(self.user_id):
            raise ValidationError("Give either a role or a user.")


class RowPolicy(models.Model):
    """A SQL predicate every query of `table` is filtered by, for the roles / users it applies to.

    Placeholders {{user.id}}, {{user.email}} and {{member.<attribute>}} are bound as literals.
    Several policies on one table combine with AND.
    """

    data_source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="row_policies")
    name = models.CharField(max_length=200)
    schema_name = models.CharField(max_length=255, blank=True, help_text="Default: the source's default schema")
    table_name = models.CharField(max_length=255)
    predicate = models.TextField(help_text="e.g. region_id = {{member.region_id}}")
    roles = models.JSONField(default=list, blank=True, help_text='Roles it applies to, e.g. ["analyst", "viewer"]')
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="row_policies")
    is_active = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "row policies"
        ordering = ["data_source_id", "table_name", "name"]

    def __str__(self) -> str:
        return f"{self.name} on {self.table_name}"

    def clean(self) -> None:
        bad = [r for r in (self.roles or []) if r not in Role.values]
        if bad:
            raise ValidationError({"roles": f"Unknown roles: {', '.join(bad)}"})
