"""The demo sales database: a realistic, deterministic SQLite file for the demo workspace and tests.

`generate_sales_db` writes regions, products, customers, orders and order_items with declared
primary and foreign keys (so discovery finds the joins) and indexes on the FK and date columns.
Orders span the 24 months ending `today`, with seasonality (a December peak, a summer dip) and
regional differences in volume and basket size, so grouped answers are not flat. The same seed
and `today` always give the same file contents.

The file is built beside the target and renamed over it, so a reader never sees half a database.
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HISTORY_DAYS = 730  # the 24 months ending today

SCHEMA = """
CREATE TABLE regions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    unit_price NUMERIC NOT NULL
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    phone TEXT,
    city TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES regions(id),
    segment TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    region_id INTEGER NOT NULL REFERENCES regions(id),
    order_date DATE NOT NULL,
    status TEXT NOT NULL,
    total_amount NUMERIC NOT NULL
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price NUMERIC NOT NULL
);
CREATE INDEX ix_customers_region_id ON customers(region_id);
CREATE INDEX ix_customers_created_at ON customers(created_at);
CREATE INDEX ix_orders_customer_id ON orders(customer_id);
CREATE INDEX ix_orders_region_id ON orders(region_id);
CREATE INDEX ix_orders_order_date ON orders(order_date);
CREATE INDEX ix_order_items_order_id ON order_items(order_id);
CREATE INDEX ix_order_items_product_id ON order_items(product_id);
"""

# name, share of customers, basket-size multiplier
REGIONS = [
    ("North", 0.24, 1.15),
    ("South", 0.18, 0.9),
    ("East", 0.27, 1.05),
    ("West", 0.21, 1.25),
    ("Central", 0.10, 0.8),
]

CITIES = {
    "North": ["Minneapolis", "Chicago", "Detroit", "Milwaukee"],
    "South": ["Atlanta", "Houston", "Miami", "Nashville"],
    "East": ["New York", "Boston", "Philadelphia", "Baltimore"],
    "West": ["Seattle", "San Francisco", "Los Angeles", "Portland"],
    "Central": ["Denver", "Kansas City", "Omaha", "St. Louis"],
}

# category -> (price range, product nouns)
CATALOG = {
    "Electronics": ((49.0, 1299.0), ["Laptop", "Monitor", "Headphones", "Tablet", "Smartwatch", "Speaker", "Camera"]),
    "Furniture": ((39.0, 899.0), ["Desk", "Office Chair", "Bookshelf", "Filing Cabinet", "Standing Mat", "Lamp"]),
    "Office Supplies": ((2.5, 59.0), ["Notebook", "Pen Set", "Stapler", "Paper Ream", "Binder", "Label Maker"]),
    "Clothing": ((12.0, 180.0), ["Jacket", "T-Shirt", "Sneakers", "Hoodie", "Backpack", "Cap"]),
    "Home & Kitchen": ((9.0, 320.0), ["Coffee Maker", "Blender", "Knife Set", "Cookware Set", "Kettle", "Toaster"]),
}
MODELS = ["Pro", "Lite", "Max", "Classic", "Plus", "Mini"]

FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Priya", "Emily",
    "Wei", "Olivia", "Ahmed", "Sofia", "Kevin", "Grace", "Brian", "Chloe", "Luis", "Hannah",
]  # fmt: skip
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Nguyen", "Hill", "Patel", "Chen", "Kim", "Baker",
]  # fmt: skip
SEGMENTS = [("Consumer", 0.55), ("Corporate", 0.3), ("Small Business", 0.15)]
STATUSES = [("completed", 0.82), ("shipped", 0.02), ("pending", 0.02), ("cancelled", 0.08), ("returned", 0.06)]

# relative order volume per calendar month (Jan..Dec): a holiday peak and a summer dip
SEASONALITY = [0.8, 0.75, 0.9, 0.95, 1.0, 0.9, 0.8, 0.85, 1.0, 1.1, 1.35, 1.6]


def generate_sales_db(path: Path, *, orders: int = 60000, seed: int = 7, today: date | None = None) -> dict[str, int]:
    """Write the demo sales database to `path` (replacing it) and return the row count per table."""
    today = today or datetime.now(tz=UTC).date()
    rng = random.Random(seed)
    regions = [(i, name) for i, (name, _, _) in enumerate(REGIONS, start=1)]
    products = _products(rng)
    customers = _customers(rng, today, count=max(50, min(2000, orders // 25)))
    order_rows, item_rows = _orders(rng, today, orders, customers, products)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp_name)
        try:
            conn.executescript(SCHEMA)
            with conn:
                conn.executemany("INSERT INTO regions VALUES (?, ?)", regions)
                conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", products)
                conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", customers)
                conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", order_rows)
                conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", item_rows)
            conn.execute("ANALYZE")
        finally:
            conn.close()
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return {
        "regions": len(regions),
        "products": len(products),
        "customers": len(customers),
        "orders": len(order_rows),
        "order_items": len(item_rows),
    }


def _products(rng: random.Random) -> list[tuple]:
    rows: list[tuple] = []
    for category, ((low, high), nouns) in CATALOG.items():
        names = [f"{noun} {model}" for noun in nouns for model in MODELS]
        for name in sorted(rng.sample(names, 12)):
            price = round(rng.uniform(low, high), 2)
            rows.append((len(rows) + 1, name, category, price))
    return rows


def _customers(rng: random.Random, today: date, count: int) -> list[tuple]:
    region_weights = [share for _, share, _ in REGIONS]
    segments, segment_weights = zip(*SEGMENTS, strict=True)
    rows: list[tuple] = []
    seen_emails: set[str] = set()
    for customer_id in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first.lower()}.{last.lower()}@example.com"
        if email in seen_emails:
            email = f"{first.lower()}.{last.lower()}{customer_id}@example.com"
        seen_emails.add(email)
        region_id = rng.choices(range(1, len(REGIONS) + 1), weights=region_weights)[0]
        city = rng.choice(CITIES[REGIONS[region_id - 1][0]])
        rows.append(
            (
                customer_id,
                first,
                last,
                email,
                f"+1-555-{rng.randint(100, 999):03d}-{rng.randint(0, 9999):04d}",
                city,
                region_id,
                rng.choices(segments, weights=segment_weights)[0],
                _signup(rng, today - timedelta(days=rng.randint(30, 3 * 365))),
            )
        )
    return rows


def _signup(rng: random.Random, day: date) -> str:
    return f"{day.isoformat()} {rng.randint(8, 20):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def _orders(
    rng: random.Random, today: date, count: int, customers: list[tuple], products: list[tuple]
) -> tuple[list[tuple], list[tuple]]:
    days = [today - timedelta(days=back) for back in range(HISTORY_DAYS)]
    # weekends are quieter; the business grows ~15% a year
    day_weights = [
        SEASONALITY[d.month - 1] * (0.8 if d.weekday() >= 5 else 1.0) * (1.0 - 0.15 * back / 365)
        for back, d in enumerate(days)
    ]
    statuses, status_weights = zip(*STATUSES, strict=True)
    basket = {i: mult for i, (_, _, mult) in enumerate(REGIONS, start=1)}
    # some customers buy much more often than others
    customer_weights = [rng.paretovariate(2.0) for _ in customers]
    product_weights = [1.0 / (1 + (i % 12)) ** 0.6 for i in range(len(products))]
    order_dates = sorted(rng.choices(days, weights=day_weights, k=count))
    buyers = rng.choices(customers, weights=customer_weights, k=count)

    order_rows: list[tuple] = []
    item_rows: list[tuple] = []
    for order_id, (order_date, customer) in enumerate(zip(order_dates, buyers, strict=True), start=1):
        region_id = customer[6]
        # recent orders are more likely still in flight
        age = (today - order_date).days
        if age <= 3:
            status = rng.choices(["pending", "shipped", "cancelled"], weights=[0.6, 0.35, 0.05])[0]
        elif age <= 10:
            status = rng.choices(["shipped", "completed", "cancelled"], weights=[0.5, 0.45, 0.05])[0]
        else:
            status = rng.choices(statuses, weights=status_weights)[0]
        total = 0.0
        lines = 1 + min(5, int(rng.expovariate(1.0 / basket[region_id])))
        for product in rng.choices(products, weights=product_weights, k=lines):
            quantity = 1 + int(rng.expovariate(0.9))
            price = product[3]
            item_rows.append((len(item_rows) + 1, order_id, product[0], quantity, price))
            total += quantity * price
        order_rows.append((order_id, customer[0], region_id, order_date.isoformat(), status, round(total, 2)))
    # nobody orders before signing up: pull sign-up dates back to before each first order
    first_order: dict[int, str] = {}
    for row in order_rows:
        first_order.setdefault(row[1], row[3])
    for index, customer in enumerate(customers):
        first = first_order.get(customer[0])
        if first and customer[8][:10] >= first:
            signed_up = date.fromisoformat(first) - timedelta(days=rng.randint(1, 60))
            customers[index] = (*customer[:8], _signup(rng, signed_up))
    return order_rows, item_rows
