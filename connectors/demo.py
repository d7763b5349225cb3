"""The demo data source: a generated SQLite sales database, discovered, with one row policy and masked PII."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from accounts.models import Membership
from connectors.demo_data import generate_sales_db
from connectors.discovery import discovery_run
from connectors.models import CatalogColumn, DataSource, MaskingStyle, RowPolicy

DEMO_ALIAS = "sales"
DEMO_POLICY = "Analysts see their own region's customers"
NORTH_REGION_ID = 1


def demo_database_path() -> Path:
    return Path(settings.VAR_DIR) / "demo" / "sales.sqlite3"


def _ensure_database(path: Path) -> None:
    """Generate once a day, so the data always spans the last 24 months up to today."""
    stamp = path.with_suffix(".json")
    today = timezone.localdate()
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()).get("generated_on") == today.isoformat():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = generate_sales_db(path, today=today)
    stamp.write_text(json.dumps({"generated_on": today.isoformat(), "rows": counts}))


def seed_demo_source(*, analyst: Membership) -> DataSource:
    path = demo_database_path()
    _ensure_database(path)
    source = DataSource.objects.alive().filter(workspace=analyst.workspace, alias=DEMO_ALIAS).first()
    if source is None:
        source = DataSource.objects.create(
            workspace=analyst.workspace,
            name="Demo Sales",
            alias=DEMO_ALIAS,
            connector_type="sqlite",
            path=str(path),
            source_system_name="demo-sales",
            description="Generated sales data: regions, products, customers, orders, order items (24 months).",
        )
    elif source.path != str(path):
        source.path = str(path)
        source.save(update_fields=["path", "updated_at"])
    discovery_run(source_id=source.pk)

    # Masked PII the analyst can see in action: emails partially, phones fully.
    for column, style in (("email", MaskingStyle.PARTIAL), ("phone", MaskingStyle.FULL)):
        for col in CatalogColumn.objects.filter(table__data_source=source, table__name="customers", name=column):
            if not col.pii or col.masking_style != style:
                col.pii, col.masking_style = True, style
                col.save()

    # A row policy bound to the member's attribute: the analyst sees North's customers only.
    RowPolicy.objects.update_or_create(
        data_source=source,
        name=DEMO_POLICY,
        defaults={
            "table_name": "customers",
            "predicate": "region_id = {{member.region_id}}",
            "roles": ["analyst"],
            "description": "Each analyst sees the customers of the region in their membership attributes.",
        },
    )
    if analyst.attributes.get("region_id") != NORTH_REGION_ID:
        analyst.attributes = {**analyst.attributes, "region_id": NORTH_REGION_ID}
        analyst.save(update_fields=["attributes"])
    source.refresh_from_db()
    return source
