import sqlite3
from datetime import date
from pathlib import Path

import pytest

from connectors.demo_data import generate_sales_db
from connectors.types import ColumnInfo, ForeignKey, SourceCatalog, TableInfo
from prompts.ai.builtin import BuiltinAnswer, BuiltinCannotAnswer, explain_sql, generate_sql, refine_sql

TODAY = date(2025, 11, 15)  # a Saturday in Q4: last quarter is 2025-07-01 .. 2025-09-30


def sqlite_catalog(path: Path, alias: str = "sales") -> SourceCatalog:
    """What discovery would build: columns, PKs, FKs, and sample values of low-cardinality text columns."""
    conn = sqlite3.connect(path)
    try:
        tables = []
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in names:
            fks = {r[3]: ForeignKey("main", r[2], r[4]) for r in conn.execute(f"PRAGMA foreign_key_list({table})")}
            columns = []
            for _, name, data_type, notnull, _, pk in conn.execute(f"PRAGMA table_info({table})"):
                samples: tuple[str, ...] = ()
                if data_type.upper() == "TEXT":
                    distinct = conn.execute(f"SELECT COUNT(DISTINCT {name}) FROM {table}").fetchone()[0]
                    if distinct <= 25:
                        rows = conn.execute(f"SELECT DISTINCT {name} FROM {table} ORDER BY 1").fetchall()
                        samples = tuple(str(r[0]) for r in rows)
                columns.append(ColumnInfo(name, data_type, not notnull, bool(pk), fks.get(name), sample_values=samples))
            tables.append(TableInfo("main", table, tuple(columns)))
        return SourceCatalog(alias=alias, engine="sqlite", tables=tables, default_schema="main")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SourceCatalog]:
    path = tmp_path_factory.mktemp("builtin") / "sales.db"
    generate_sales_db(path, orders=3000, seed=7, today=TODAY)
    return path, sqlite_catalog(path)


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(round(v, 2) if isinstance(v, float) else v for v in row) for row in conn.execute(sql)]
    finally:
        conn.close()


def ask(demo, question: str, **kwargs) -> BuiltinAnswer:
    _, catalog = demo
    return generate_sql(question, catalogs=[catalog], dialect="sqlite", today=TODAY, **kwargs)


def assert_same_result(demo, question: str, reference: str, *, ordered: bool = True) -> BuiltinAnswer:
    path, _ = demo
    answer = ask(demo, question)
    got, want = rows(path, answer.sql), rows(path, reference)
    assert want, f"reference for {question!r} returns no rows: the test data should make it meaningful"
    if not ordered:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert got == want, f"{question!r} -> {answer.sql}"
    return answer


# --- the spec example ------------------------------------------------------------------------------------


def test_it_answers_total_sales_by_region_for_the_last_quarter(demo):
    answer = assert_same_result(
        demo,
        "Show me total sales by region for the last quarter",
        "SELECT r.name, ROUND(SUM(o.total_amount), 2) AS total FROM orders o JOIN regions r ON r.id = o.region_id "
        "WHERE o.order_date BETWEEN '2025-07-01' AND '2025-09-30' GROUP BY r.name ORDER BY total DESC",
    )
    assert "JOIN regions AS r ON r.id = o.region_id" in answer.sql
    assert "GROUP BY r.name" in answer.sql
    assert answer.confidence == 0.95
    assert answer.unmatched_terms == []
    assert "2025-07-01" in answer.explanation
    assert "2025-09-30" in answer.explanation


# --- aggregates --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("how many orders", "SELECT COUNT(*) FROM orders"),
        ("number of customers", "SELECT COUNT(*) FROM customers"),
        ("total revenue", "SELECT ROUND(SUM(total_amount), 2) FROM orders"),
        ("average order value", "SELECT ROUND(AVG(total_amount), 2) FROM orders"),
        ("highest order value", "SELECT MAX(total_amount) FROM orders"),
        ("maximum order value", "SELECT MAX(total_amount) FROM orders"),
        ("lowest order value", "SELECT MIN(total_amount) FROM orders"),
        ("minimum order value", "SELECT MIN(total_amount) FROM orders"),
        ("how many purchases did clients make", "SELECT COUNT(*) FROM orders"),
        ("average quantity", "SELECT ROUND(AVG(quantity), 2) FROM order_items"),
    ],
)
def test_it_computes_single_aggregates(demo, question, reference):
    assert_same_result(demo, question, reference)


# --- grouping ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("orders by status", "SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY n DESC"),
        (
            "number of customers per segment",
            "SELECT segment, COUNT(*) AS n FROM customers GROUP BY segment ORDER BY n DESC",
        ),
        (
            "sales by category",
            "SELECT p.category, ROUND(SUM(oi.quantity * oi.unit_price), 2) AS s FROM order_items oi "
            "JOIN products p ON p.id = oi.product_id GROUP BY p.category ORDER BY s DESC",
        ),
        (
            "average order value by city",
            "SELECT c.city, ROUND(AVG(o.total_amount), 2) AS a FROM orders o JOIN customers c ON c.id = o.customer_id "
            "GROUP BY c.city ORDER BY a DESC",
        ),
        (
            "how many orders by region and status",
            "SELECT r.name, o.status, COUNT(*) AS n FROM orders o JOIN regions r ON r.id = o.region_id "
            "GROUP BY r.name, o.status ORDER BY n DESC, r.name, o.status",
        ),
        (
            "revenue per month in 2024",
            "SELECT substr(order_date, 1, 7) AS m, ROUND(SUM(total_amount), 2) FROM orders "
            "WHERE order_date LIKE '2024-%' GROUP BY m ORDER BY m",
        ),
    ],
)
def test_it_groups_by_columns_tables_and_months(demo, question, reference):
    assert_same_result(demo, question, reference)


def test_it_joins_along_foreign_keys_across_two_hops(demo):
    answer = assert_same_result(
        demo,
        "total sales by customer segment for the Electronics category",
        "SELECT c.segment, ROUND(SUM(oi.quantity * oi.unit_price), 2) AS s FROM order_items oi "
        "JOIN products p ON p.id = oi.product_id JOIN orders o ON o.id = oi.order_id "
        "JOIN customers c ON c.id = o.customer_id WHERE p.category = 'Electronics' GROUP BY c.segment ORDER BY s DESC",
    )
    assert answer.sql.count(" JOIN ") == 3


# --- top N -------------------------------------------------------------------------------------------------


def test_it_ranks_groups_for_top_n(demo):
    answer = assert_same_result(
        demo,
        "top 5 customers by revenue",
        "SELECT c.id, c.first_name, c.last_name, ROUND(SUM(o.total_amount), 2) AS s FROM orders o "
        "JOIN customers c ON c.id = o.customer_id GROUP BY c.id ORDER BY s DESC LIMIT 5",
    )
    assert answer.sql.endswith("LIMIT 5")


def test_it_ranks_rows_when_the_measure_is_on_the_subject_itself(demo):
    assert_same_result(
        demo, "top 10 orders by total amount", "SELECT * FROM orders ORDER BY total_amount DESC LIMIT 10"
    )


def test_it_ranks_by_a_count(demo):
    assert_same_result(
        demo,
        "top 3 products by number of order items",
        "SELECT p.name, COUNT(*) AS n FROM order_items oi JOIN products p ON p.id = oi.product_id "
        "GROUP BY p.name ORDER BY n DESC LIMIT 3",
    )


def test_it_answers_which_x_has_the_most(demo):
    assert_same_result(
        demo,
        "which region has the most orders",
        "SELECT r.name, COUNT(*) AS n FROM orders o JOIN regions r ON r.id = o.region_id "
        "GROUP BY r.name ORDER BY n DESC LIMIT 1",
    )


def test_bottom_n_sorts_ascending(demo):
    assert_same_result(
        demo,
        "bottom 2 regions by sales",
        "SELECT r.name, ROUND(SUM(o.total_amount), 2) AS s FROM orders o JOIN regions r ON r.id = o.region_id "
        "GROUP BY r.name ORDER BY s ASC LIMIT 2",
    )


# --- filters on known values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        (
            "how many orders in the North region",
            "SELECT COUNT(*) FROM orders o JOIN regions r ON r.id = o.region_id WHERE r.name = 'North'",
        ),
        ("how many cancelled orders", "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'"),
        (
            "total sales for the Electronics category",
            "SELECT ROUND(SUM(oi.quantity * oi.unit_price), 2) FROM order_items oi "
            "JOIN products p ON p.id = oi.product_id WHERE p.category = 'Electronics'",
        ),
        (
            "number of completed or shipped orders",
            "SELECT COUNT(*) FROM orders WHERE status IN ('completed', 'shipped')",
        ),
        (
            "total sales excluding cancelled orders",
            "SELECT ROUND(SUM(total_amount), 2) FROM orders WHERE status <> 'cancelled'",
        ),
        ("how many customers in Chicago", "SELECT COUNT(*) FROM customers WHERE city = 'Chicago'"),
        ("how many orders over 1000", "SELECT COUNT(*) FROM orders WHERE total_amount > 1000"),
    ],
)
def test_it_filters_on_known_values(demo, question, reference):
    assert_same_result(demo, question, reference)


def test_a_listing_question_returns_the_matching_rows(demo):
    assert_same_result(
        demo,
        "cancelled orders in the last 30 days",
        "SELECT * FROM orders WHERE status = 'cancelled' AND order_date >= '2025-10-17' ORDER BY order_date DESC",
        ordered=False,
    )


# --- relative dates ----------------------------------------------------------------------------------------

DATE_PHRASES = [
    ("today", "2025-11-15", "2025-11-16"),
    ("yesterday", "2025-11-14", "2025-11-15"),
    ("in the last 7 days", "2025-11-09", "2025-11-16"),
    ("in the last 30 days", "2025-10-17", "2025-11-16"),
    ("in the last 90 days", "2025-08-18", "2025-11-16"),
    ("last week", "2025-11-03", "2025-11-10"),
    ("this week", "2025-11-10", "2025-11-17"),
    ("last month", "2025-10-01", "2025-11-01"),
    ("this month", "2025-11-01", "2025-12-01"),
    ("last quarter", "2025-07-01", "2025-10-01"),
    ("this quarter", "2025-10-01", "2026-01-01"),
    ("last year", "2024-01-01", "2025-01-01"),
    ("this year", "2025-01-01", "2026-01-01"),
    ("in 2024", "2024-01-01", "2025-01-01"),
    ("in March 2025", "2025-03-01", "2025-04-01"),
]


@pytest.mark.parametrize(("phrase", "start", "end"), DATE_PHRASES)
def test_it_filters_relative_dates_on_the_tables_date_column(demo, phrase, start, end):
    assert_same_result(
        demo,
        f"how many orders {phrase}",
        f"SELECT COUNT(*) FROM orders WHERE order_date >= '{start}' AND order_date < '{end}'",
    )


def test_a_date_phrase_reaches_the_date_of_a_joined_table(demo):
    assert_same_result(
        demo,
        "total quantity by category last month",
        "SELECT p.category, SUM(oi.quantity) AS q FROM order_items oi JOIN products p ON p.id = oi.product_id "
        "JOIN orders o ON o.id = oi.order_id WHERE o.order_date >= '2025-10-01' AND o.order_date < '2025-11-01' "
        "GROUP BY p.category ORDER BY q DESC",
    )


def test_customers_are_dated_by_their_own_date_column(demo):
    assert_same_result(
        demo,
        "how many customers this year",
        "SELECT COUNT(*) FROM customers WHERE created_at >= '2025-01-01' AND created_at < '2026-01-01'",
    )


# --- a second catalog with other names ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def billing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SourceCatalog]:
    """No declared foreign keys: `client_id` must be recognised as pointing at `clients`."""
    path = tmp_path_factory.mktemp("billing") / "billing.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE clients (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL);
        CREATE TABLE invoices (invoice_id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL, issued_on DATE NOT NULL,
                               amount NUMERIC NOT NULL, state TEXT NOT NULL);
        """
    )
    countries = ["Germany", "France", "Spain", "Canada"]
    conn.executemany(
        "INSERT INTO clients VALUES (?, ?, ?)", [(i, f"Client {i:02d}", countries[i % 4]) for i in range(1, 21)]
    )
    states = ["paid", "open", "void"]
    conn.executemany(
        "INSERT INTO invoices VALUES (?, ?, ?, ?, ?)",
        [
            (
                i,
                1 + (i * 7) % 20,
                f"{2024 + i % 2}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                100 + (i * 37) % 900,
                states[i % 3],
            )
            for i in range(1, 301)
        ],
    )
    conn.commit()
    conn.close()
    return path, sqlite_catalog(path, alias="billing")


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        (
            "total amount by country",
            "SELECT c.country, ROUND(SUM(i.amount), 2) AS s FROM invoices i JOIN clients c ON c.id = i.client_id "
            "GROUP BY c.country ORDER BY s DESC",
        ),
        ("how many invoices in 2024", "SELECT COUNT(*) FROM invoices WHERE issued_on LIKE '2024-%'"),
        ("revenue from paid invoices", "SELECT ROUND(SUM(amount), 2) FROM invoices WHERE state = 'paid'"),
        (
            "top 3 customers by revenue",
            "SELECT c.name, ROUND(SUM(i.amount), 2) AS s FROM invoices i JOIN clients c ON c.id = i.client_id "
            "GROUP BY c.name ORDER BY s DESC LIMIT 3",
        ),
        (
            "number of bills by state for clients in Germany",
            "SELECT i.state, COUNT(*) AS n FROM invoices i JOIN clients c ON c.id = i.client_id "
            "WHERE c.country = 'Germany' GROUP BY i.state ORDER BY n DESC",
        ),
    ],
)
def test_it_works_from_any_catalogs_names(billing, question, reference):
    assert_same_result(billing, question, reference)


# --- refusing instead of guessing --------------------------------------------------------------------------


def test_it_refuses_a_question_about_nothing_in_the_catalog(demo):
    with pytest.raises(BuiltinCannotAnswer, match="weather"):
        ask(demo, "what is the weather on Mars")


def test_it_refuses_a_dimension_that_matches_nothing(demo):
    with pytest.raises(BuiltinCannotAnswer, match="planet"):
        ask(demo, "total sales by planet")


def test_it_refuses_an_unknown_filter_value(demo):
    with pytest.raises(BuiltinCannotAnswer, match="atlantis"):
        ask(demo, "how many orders from Atlantis")


def test_it_refuses_a_money_word_when_no_column_holds_money(billing):
    _, catalog = billing
    clients_only = SourceCatalog("b", "sqlite", [t for t in catalog.tables if t.name == "clients"], "main")
    with pytest.raises(BuiltinCannotAnswer, match="revenue"):
        generate_sql("total revenue", catalogs=[clients_only], dialect="sqlite", today=TODAY)


def test_unknown_words_lower_confidence_and_are_reported(demo):
    answer = ask(demo, "how many orders quickly")
    assert answer.unmatched_terms == ["quickly"]
    assert answer.confidence < 0.95


# --- dialects and addressing -------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite", "duckdb"])
def test_output_is_valid_in_each_dialect(demo, dialect):
    import sqlglot

    _, catalog = demo
    answer = generate_sql(
        "Show me total sales by region for the last quarter", catalogs=[catalog], dialect=dialect, today=TODAY
    )
    sqlglot.parse_one(answer.sql, read=dialect)
    if dialect in ("postgres", "duckdb", "mysql"):
        assert "CAST('2025-07-01' AS DATE)" in answer.sql


def test_federated_queries_address_alias_schema_table(demo):
    _, catalog = demo
    answer = generate_sql("orders by status", catalogs=[catalog], dialect="duckdb", today=TODAY, federated=True)
    assert "FROM sales.main.orders AS o" in answer.sql


def test_a_non_default_schema_is_named(demo):
    _, catalog = demo
    moved = SourceCatalog(
        "pg", "postgres", [TableInfo("analytics", t.name, t.columns) for t in catalog.tables], "public"
    )
    answer = generate_sql("how many orders", catalogs=[moved], dialect="postgres", today=TODAY)
    assert "FROM analytics.orders AS o" in answer.sql


def test_every_column_is_qualified(demo):
    import sqlglot
    from sqlglot import exp

    answer = ask(demo, "top 3 categories by sales last year")
    columns = list(sqlglot.parse_one(answer.sql, read="sqlite").find_all(exp.Column))
    assert all(c.table for c in columns if c.name not in ("total_sales",))


def test_it_is_deterministic(demo):
    assert ask(demo, "sales by category this year") == ask(demo, "sales by category this year")


# --- explain -----------------------------------------------------------------------------------------------


def test_explain_describes_a_grouped_count():
    assert explain_sql("SELECT status, COUNT(*) FROM orders GROUP BY status", dialect="sqlite") == (
        "Counts orders grouped by status."
    )


def test_explain_describes_joins_filters_order_and_limit():
    text = explain_sql(
        "SELECT r.name, SUM(o.total_amount) AS s FROM orders o JOIN regions r ON r.id = o.region_id "
        "WHERE o.status = 'completed' AND o.order_date >= DATE '2025-07-01' AND o.order_date < DATE '2025-10-01' "
        "GROUP BY r.name ORDER BY s DESC LIMIT 3",
        dialect="postgres",
    )
    assert text == (
        "Sums orders.total_amount from orders, joined with regions, grouped by regions.name, "
        "where orders.status is 'completed' and orders.order_date is between 2025-07-01 and 2025-09-30, "
        "sorted by s descending, limited to 3 rows."
    )


def test_explain_describes_a_listing():
    text = explain_sql("SELECT id, email FROM customers WHERE email IS NOT NULL", dialect="sqlite")
    assert text == "Lists id and email from customers where email is not null."


def test_explain_refuses_what_is_not_sql():
    with pytest.raises(BuiltinCannotAnswer):
        explain_sql("SELECT FROM WHERE (", dialect="sqlite")


# --- refine ------------------------------------------------------------------------------------------------

LISTING = "SELECT o.id, o.status, o.total_amount, o.order_date FROM orders AS o ORDER BY o.order_date DESC LIMIT 100"
BY_REGION = (
    "SELECT r.name AS region, SUM(o.total_amount) AS total_sales FROM orders AS o "
    "JOIN regions AS r ON r.id = o.region_id GROUP BY r.name"
)


def refine(demo, sql: str, instruction: str) -> str:
    _, catalog = demo
    return refine_sql(sql, instruction, catalogs=[catalog], dialect="sqlite", today=TODAY)


@pytest.mark.parametrize(
    ("sql", "instruction", "reference"),
    [
        (
            LISTING,
            "only completed orders",
            "SELECT id, status, total_amount, order_date FROM orders WHERE status = 'completed' "
            "ORDER BY order_date DESC LIMIT 100",
        ),
        (
            LISTING,
            "exclude cancelled orders",
            "SELECT id, status, total_amount, order_date FROM orders WHERE status <> 'cancelled' "
            "ORDER BY order_date DESC LIMIT 100",
        ),
        (
            LISTING,
            "add a filter status is not null",
            "SELECT id, status, total_amount, order_date FROM orders WHERE status IS NOT NULL "
            "ORDER BY order_date DESC LIMIT 100",
        ),
        (
            LISTING,
            "where total amount > 2000",
            "SELECT id, status, total_amount, order_date FROM orders WHERE total_amount > 2000 "
            "ORDER BY order_date DESC LIMIT 100",
        ),
        (
            LISTING,
            "limit 50",
            "SELECT id, status, total_amount, order_date FROM orders ORDER BY order_date DESC LIMIT 50",
        ),
        (
            LISTING,
            "remove the limit",
            "SELECT id, status, total_amount, order_date FROM orders ORDER BY order_date DESC",
        ),
        (
            LISTING,
            "order by total amount descending",
            "SELECT id, status, total_amount, order_date FROM orders ORDER BY total_amount DESC LIMIT 100",
        ),
        (
            BY_REGION,
            "top 2",
            "SELECT r.name, SUM(o.total_amount) AS s FROM orders o JOIN regions r ON r.id = o.region_id "
            "GROUP BY r.name ORDER BY s DESC LIMIT 2",
        ),
        (
            BY_REGION,
            "last 30 days",
            "SELECT r.name, SUM(o.total_amount) AS s FROM orders o JOIN regions r ON r.id = o.region_id "
            "WHERE o.order_date >= '2025-10-17' GROUP BY r.name",
        ),
        (
            LISTING,
            "group by region",
            "SELECT r.name, COUNT(*) FROM orders o JOIN regions r ON r.id = o.region_id GROUP BY r.name",
        ),
        (
            BY_REGION,
            "group by status",
            "SELECT o.status, r.name, SUM(o.total_amount) FROM orders o JOIN regions r ON r.id = o.region_id "
            "GROUP BY o.status, r.name",
        ),
    ],
)
def test_refine_edits_the_query(demo, sql, instruction, reference):
    path, _ = demo
    refined = refine(demo, sql, instruction)
    got, want = rows(path, refined), rows(path, reference)
    if "ORDER BY" not in reference:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert got == want, refined


def test_refine_replaces_an_existing_date_filter(demo):
    first = refine(demo, BY_REGION, "last 30 days")
    second = refine(demo, first, "in 2024")
    assert "2025-10-17" not in second
    assert "2024-01-01" in second


def test_refine_refuses_an_instruction_it_does_not_understand(demo):
    with pytest.raises(BuiltinCannotAnswer, match="pretty"):
        refine(demo, LISTING, "make it pretty")
