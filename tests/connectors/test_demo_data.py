import hashlib
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from connectors.demo_data import generate_sales_db

TODAY = date(2025, 11, 15)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("demo") / "sales.db"
    counts = generate_sales_db(path, orders=5000, seed=7, today=TODAY)
    return path, counts


def _query(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_it_reports_the_row_counts_it_wrote(demo_db):
    path, counts = demo_db
    assert counts["orders"] == 5000
    assert counts["regions"] == 5
    assert 50 <= counts["products"] <= 80
    for table, count in counts.items():
        assert _query(path, f"SELECT COUNT(*) FROM {table}") == [(count,)]


def test_default_size_has_at_least_50000_orders_and_2000_customers(tmp_path):
    counts = generate_sales_db(tmp_path / "big.db", today=TODAY)
    assert counts["orders"] >= 50000
    assert counts["customers"] == 2000
    assert counts["order_items"] > counts["orders"]


def test_orders_span_the_24_months_ending_today(demo_db):
    path, _ = demo_db
    ((first, last),) = _query(path, "SELECT MIN(order_date), MAX(order_date) FROM orders")
    assert date.fromisoformat(last) <= TODAY
    assert date.fromisoformat(last) >= TODAY - timedelta(days=7)
    assert date.fromisoformat(first) > TODAY - timedelta(days=731)
    assert date.fromisoformat(first) < TODAY - timedelta(days=700)


def test_every_foreign_key_points_at_a_row(demo_db):
    path, _ = demo_db
    assert _query(path, "PRAGMA foreign_key_check") == []
    orphans = "SELECT COUNT(*) FROM order_items oi LEFT JOIN orders o ON o.id = oi.order_id WHERE o.id IS NULL"
    assert _query(path, orphans) == [(0,)]


def test_foreign_keys_and_indexes_are_declared_for_discovery(demo_db):
    path, _ = demo_db
    fks = {(row[2], row[3]) for row in _query(path, "PRAGMA foreign_key_list(orders)")}
    assert fks == {("customers", "customer_id"), ("regions", "region_id")}
    fks = {(row[2], row[3]) for row in _query(path, "PRAGMA foreign_key_list(order_items)")}
    assert fks == {("orders", "order_id"), ("products", "product_id")}
    indexed = {row[0] for row in _query(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_orders_order_date", "ix_orders_customer_id", "ix_order_items_product_id"} <= indexed


def test_order_totals_match_their_items(demo_db):
    path, _ = demo_db
    mismatches = _query(
        path,
        "SELECT COUNT(*) FROM orders o JOIN (SELECT order_id, SUM(quantity * unit_price) AS t FROM order_items "
        "GROUP BY order_id) i ON i.order_id = o.id WHERE ABS(i.t - o.total_amount) > 0.01",
    )
    assert mismatches == [(0,)]


def test_values_look_realistic(demo_db):
    path, _ = demo_db
    assert {r for (r,) in _query(path, "SELECT name FROM regions")} == {"North", "South", "East", "West", "Central"}
    statuses = {s for (s,) in _query(path, "SELECT DISTINCT status FROM orders")}
    assert statuses == {"completed", "shipped", "pending", "cancelled", "returned"}
    ((email, phone),) = _query(path, "SELECT email, phone FROM customers WHERE id = 1")
    assert email.endswith("@example.com")
    assert "." in email.split("@")[0]
    assert phone.startswith("+1-555-")
    assert _query(
        path, "SELECT COUNT(*) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.created_at > o.order_date"
    ) == [(0,)]


def test_grouped_answers_are_not_flat(demo_db):
    path, _ = demo_db
    per_region = [n for (n,) in _query(path, "SELECT COUNT(*) FROM orders GROUP BY region_id")]
    assert max(per_region) > 1.5 * min(per_region)
    per_month = dict(_query(path, "SELECT substr(order_date, 6, 2), COUNT(*) FROM orders GROUP BY 1"))
    assert per_month["12"] > 1.3 * per_month["02"]


def test_it_is_deterministic_for_a_seed_and_today(tmp_path):
    def digest(path: Path) -> str:
        rows = _query(path, "SELECT * FROM orders") + _query(path, "SELECT * FROM customers")
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    generate_sales_db(tmp_path / "a.db", orders=500, seed=3, today=TODAY)
    generate_sales_db(tmp_path / "b.db", orders=500, seed=3, today=TODAY)
    generate_sales_db(tmp_path / "c.db", orders=500, seed=4, today=TODAY)
    assert digest(tmp_path / "a.db") == digest(tmp_path / "b.db")
    assert digest(tmp_path / "a.db") != digest(tmp_path / "c.db")


def test_it_replaces_an_existing_file_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sales.db"
    target.write_text("not a database")
    generate_sales_db(target, orders=200, today=TODAY)
    assert _query(target, "SELECT COUNT(*) FROM orders") == [(200,)]
    assert [p.name for p in tmp_path.iterdir()] == ["sales.db"]
