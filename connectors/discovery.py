"""Schema discovery: read a source's catalog, merge it into ours, keep operators' edits, report changes."""

from __future__ import annotations

import logging
import re

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors import engines
from connectors.models import CatalogColumn, CatalogTable, DataSource, DiscoveryStatus
from connectors.selectors import connection_spec
from connectors.types import ColumnInfo, TableInfo

logger = logging.getLogger("prompt_studio.discovery")

# Column names that look personal or health-related: proposed as PII / PHI on first discovery only.
_PII = re.compile(
    r"(^|_)(e?mail|email_address|phone|phone_number|mobile|cell|fax|ssn|social_security|national_id|passport|"
    r"driver_?licen[cs]e|tax_id|iban|credit_card|card_number|address|street|address_line\d?|zip|zip_code|"
    r"postal_code|postcode|birth_?date|date_of_birth|dob|birthday|first_name|last_name|full_name|surname|"
    r"ip_address|ip_addr)($|_)",
    re.IGNORECASE,
)
_PHI = re.compile(
    r"(^|_)(diagnosis|diagnoses|icd\d*|icd_code|mrn|medical_record|patient_notes|prescription|medication|"
    r"allergy|allergies|blood_type|condition|treatment|health_plan|insurance_member_id|lab_result)($|_)",
    re.IGNORECASE,
)


def proposed_classification(name: str) -> tuple[bool, bool]:
    return bool(_PII.search(name)), bool(_PHI.search(name))


def _column_fields(col: ColumnInfo, ordinal: int) -> dict[str, object]:
    fk = col.foreign_key
    return {
        "ordinal": ordinal,
        "data_type": col.data_type[:128],
        "nullable": col.nullable,
        "is_primary_key": col.is_primary_key,
        "fk_schema": fk.schema if fk else "",
        "fk_table": fk.table if fk else "",
        "fk_column": fk.column if fk else "",
        "sample_values": list(col.sample_values),
    }


@transaction.atomic
def catalog_sync(*, source: DataSource, discovered: list[TableInfo]) -> dict[str, list[str]]:
    """Merge `discovered` into the catalog. Existing columns keep PII/PHI flags, masking and descriptions."""
    changes: dict[str, list[str]] = {
        "tables_added": [],
        "tables_removed": [],
        "columns_added": [],
        "columns_removed": [],
        "columns_changed": [],
    }
    existing = {(t.schema_name, t.name): t for t in CatalogTable.objects.filter(data_source=source)}
    seen: set[tuple[str, str]] = set()
    for info in discovered:
        key = (info.schema, info.name)
        seen.add(key)
        table = existing.get(key)
        if table is None:
            table = CatalogTable(data_source=source, schema_name=info.schema, name=info.name)
            changes["tables_added"].append(f"{info.schema}.{info.name}")
        table.kind, table.row_estimate = info.kind, info.row_estimate
        if info.description and not table.description:
            table.description = info.description
        table.save()
        new_columns = []
        columns = {c.name: c for c in table.columns.all()}
        wanted = {c.name for c in info.columns}
        for ordinal, col in enumerate(info.columns):
            fields = _column_fields(col, ordinal)
            current = columns.get(col.name)
            if current is None:
                pii, phi = proposed_classification(col.name)
                if pii or phi:
                    fields["sample_values"] = []  # never keep values of personal columns (AI context, API)
                new_columns.append(CatalogColumn(table=table, name=col.name, pii=pii, phi=phi, **fields))
                if key in existing:
                    changes["columns_added"].append(f"{info.schema}.{info.name}.{col.name}")
                continue
            if (current.data_type, current.nullable) != (fields["data_type"], fields["nullable"]):
                changes["columns_changed"].append(
                    f"{info.schema}.{info.name}.{col.name}: {current.data_type} -> {fields['data_type']}"
                )
            if current.pii or current.phi:
                fields["sample_values"] = []
            CatalogColumn.objects.filter(pk=current.pk).update(**fields)
        CatalogColumn.objects.bulk_create(new_columns)  # bulk: one catalog-version bump at the end
        gone = [name for name in columns if name not in wanted]
        if gone:
            CatalogColumn.objects.filter(table=table, name__in=gone).delete()
            changes["columns_removed"].extend(f"{info.schema}.{info.name}.{n}" for n in gone)
    for key, table in existing.items():
        if key not in seen:
            changes["tables_removed"].append(f"{key[0]}.{key[1]}")
            CatalogTable.objects.filter(pk=table.pk).delete()
    DataSource.objects.filter(pk=source.pk).update(catalog_version=F("catalog_version") + 1)
    return changes


def discovery_run(*, source_id: int) -> DataSource:
    """Discover one source now (the worker's `workers.discover_data_source`, or seed_demo)."""
    source = DataSource.objects.get(pk=source_id)
    DataSource.objects.filter(pk=source_id).update(discovery_status=DiscoveryStatus.RUNNING, discovery_error="")
    try:
        tables = engines.discover(connection_spec(source))
    except engines.EngineError as exc:
        DataSource.objects.filter(pk=source_id).update(
            discovery_status=DiscoveryStatus.FAILED, discovery_error=exc.message
        )
        logger.warning("discovery of source %s failed: %s", source_id, exc.message)
        source.refresh_from_db()
        return source
    changes = catalog_sync(source=source, discovered=tables)
    DataSource.objects.filter(pk=source_id).update(
        discovery_status=DiscoveryStatus.SUCCEEDED, discovered_at=timezone.now(), discovery_changes=changes
    )
    logger.info("discovered source %s: %d tables", source_id, len(tables))
    source.refresh_from_db()
    return source
