"""Catalogs shared by the sqlgov tests, and the tests of the catalog itself."""

from __future__ import annotations

from connectors.sqlgov import prepare_query
from connectors.sqlgov.catalog import catalog_index
from connectors.types import ColumnInfo, Grants, RowPolicySpec, SourceCatalog, TableInfo


def col(name: str, data_type: str = "text", **flags) -> ColumnInfo:
    return ColumnInfo(name=name, data_type=data_type, **flags)


def crm_catalog(alias: str = "crm", engine: str = "postgres", schema: str = "public") -> SourceCatalog:
    users = TableInfo(
        schema=schema,
        name="users",
        columns=(
            col("id", "integer", is_primary_key=True),
            col("email", pii=True, masking_style="partial"),
            col("phone", pii=True, masking_style="hash"),
            col("name"),
            col("region"),
            col("owner_email"),
        ),
    )
    orders = TableInfo(
        schema=schema,
        name="orders",
        columns=(col("id", "integer"), col("user_id", "integer"), col("amount", "numeric"), col("product_id")),
    )
    products = TableInfo(schema=schema, name="products", columns=(col("id", "integer"), col("title")))
    patients = TableInfo(
        schema=schema,
        name="patients",
        columns=(
            col("id", "integer"),
            col("diagnosis", phi=True, masking_style="null"),
            col("email", pii=True, masking_style="partial"),
        ),
    )
    filler = [TableInfo(schema=schema, name=f"t{i}", columns=tuple(col(f"c{j}") for j in range(8))) for i in range(6)]
    audit = TableInfo(schema="audit", name="events", columns=(col("id", "integer"), col("kind")))
    default_schema = schema
    return SourceCatalog(
        alias=alias,
        engine=engine,
        tables=[users, orders, products, patients, *filler, audit],
        default_schema=default_schema,
    )


CRM = crm_catalog()


def prepare(sql: str, *, sources=None, grants: Grants | None = None, policies=(), bindings=None, **kwargs):
    return prepare_query(
        sql,
        sources=sources or [CRM],
        allowed_schemas=kwargs.pop("allowed_schemas", None),
        policies=list(policies),
        bindings=bindings or {},
        row_cap=kwargs.pop("row_cap", 1000),
        grants=grants or Grants(),
        **kwargs,
    )


def region_policy(alias: str = "crm", schema: str = "public") -> RowPolicySpec:
    return RowPolicySpec(
        source_alias=alias, schema=schema, table="users", predicate="region = {{ member.region }}", name="region"
    )


def test_it_reuses_the_catalog_index_for_the_same_catalog_objects():
    first = catalog_index([CRM], dialect="postgres")
    assert catalog_index([CRM], dialect="postgres") is first


def test_it_rebuilds_the_catalog_index_for_a_new_catalog_object():
    first = catalog_index([CRM], dialect="postgres")
    assert catalog_index([crm_catalog()], dialect="postgres") is not first


def test_it_sees_a_table_added_to_a_cached_catalog():
    catalog = crm_catalog()
    prepare("SELECT id FROM users", sources=[catalog])
    catalog.tables.append(TableInfo(schema="public", name="late", columns=(col("x"),)))
    assert prepare("SELECT x FROM late", sources=[catalog]).tables == [("crm", "public", "late")]
