import dataclasses
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from connectors.demo_data import generate_sales_db
from connectors.types import ColumnInfo, ForeignKey, SourceCatalog, TableInfo
from prompts.ai.builtin import BuiltinAnswer, BuiltinCannotAnswer, explain_sql, generate_sql, refine_sql
from prompts.ai.builtin.catalog import SchemaIndex

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


def ask(demo, question: str, *, today: date = TODAY, **kwargs) -> BuiltinAnswer:
    _, catalog = demo
    return generate_sql(question, catalogs=[catalog], dialect="sqlite", today=today, **kwargs)


def assert_same_result(
    demo, question: str, reference: str, *, ordered: bool = True, today: date = TODAY
) -> BuiltinAnswer:
    """`question` on a (path, catalog) fixture returns what `reference` returns on that database."""
    path, _ = demo
    answer = ask(demo, question, today=today)
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
    assert answer.assumptions == []
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


def test_a_listing_returns_every_matching_row_not_a_first_hundred(demo):
    """The governed path caps rows and says so; the engine adds no LIMIT of its own."""
    answer = assert_same_result(
        demo, "all cancelled orders", "SELECT * FROM orders WHERE status = 'cancelled'", ordered=False
    )
    assert "LIMIT" not in answer.sql
    assert len(rows(demo[0], answer.sql)) > 100


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


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("how many orders were reopened", "reopened"),
        ("what is the median order amount", "median"),
        ("what percentage of orders were cancelled", "percentage"),
    ],
)
def test_a_word_it_cannot_place_is_refused_and_named_instead_of_dropped(demo, question, named):
    with pytest.raises(BuiltinCannotAnswer, match=f"did not understand: {named}"):
        ask(demo, question)


@pytest.mark.parametrize(
    "question",
    [
        "Delete all cancelled orders",
        "update all orders to delivered",
        "update the total amount of order 5 to 15",
        "set every order status to shipped",
    ],
)
def test_a_request_to_change_data_is_refused_as_such(demo, question):
    with pytest.raises(BuiltinCannotAnswer, match="asks to change data; Prompt Studio only reads it"):
        ask(demo, question)


def test_filler_words_do_not_stop_an_answer(demo):
    assert ask(demo, "could you quickly tell me how many orders there are right now").sql.startswith("SELECT COUNT(*)")


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        (
            "revenue by region, status",
            "SELECT r.name, o.status, ROUND(SUM(o.total_amount), 2) AS s FROM orders o JOIN regions r "
            "ON r.id = o.region_id GROUP BY r.id, r.name, o.status ORDER BY s DESC",
        ),
        (
            "how much did we sell last month",
            "SELECT ROUND(SUM(total_amount), 2) FROM orders "
            "WHERE order_date >= '2025-10-01' AND order_date < '2025-11-01'",
        ),
        (
            "break down revenue by status",
            "SELECT status, ROUND(SUM(total_amount), 2) AS s FROM orders GROUP BY status ORDER BY s DESC",
        ),
        (
            "compare revenue by status",
            "SELECT status, ROUND(SUM(total_amount), 2) AS s FROM orders GROUP BY status ORDER BY s DESC",
        ),
        ("hey could you tell me how many customers we have", "SELECT COUNT(*) FROM customers"),
        (
            "revenue since january",
            "SELECT ROUND(SUM(total_amount), 2) FROM orders "
            "WHERE order_date >= '2025-01-01' AND order_date < '2025-11-16'",
        ),
        (
            "how many orders between jan 1 2025 and march 31 2025",
            "SELECT COUNT(*) FROM orders WHERE order_date >= '2025-01-01' AND order_date < '2025-04-01'",
        ),
        (
            "How many orders from January to March 2025?",
            "SELECT COUNT(*) FROM orders WHERE order_date >= '2025-01-01' AND order_date < '2025-04-01'",
        ),
        ("how many orders since 2025", "SELECT COUNT(*) FROM orders WHERE order_date >= '2025-01-01'"),
        ("how many orders after 2024", "SELECT COUNT(*) FROM orders WHERE order_date >= '2025-01-01'"),
        ("how many orders before 2025", "SELECT COUNT(*) FROM orders WHERE order_date < '2025-01-01'"),
        (
            "top 3 customers by total amount paid",
            "SELECT c.id, c.first_name, c.last_name, ROUND(SUM(o.total_amount), 2) AS s FROM orders o "
            "JOIN customers c ON c.id = o.customer_id GROUP BY c.id ORDER BY s DESC LIMIT 3",
        ),
        (
            "how many orders so far this year",
            "SELECT COUNT(*) FROM orders WHERE order_date >= '2025-01-01' AND order_date < '2025-11-16'",
        ),
    ],
)
def test_it_answers_the_way_people_type(demo, question, reference):
    assert_same_result(demo, question, reference)


# --- a helpdesk: dates kept as text, `<x>_name` labels, namesakes, several dates per table ---------------------

HELPDESK_TODAY = date(2025, 6, 18)  # a Wednesday


@pytest.fixture(scope="module")
def helpdesk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SourceCatalog]:
    path = tmp_path_factory.mktemp("helpdesk") / "helpdesk.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE teams (team_id INTEGER PRIMARY KEY, team_name TEXT NOT NULL);
        CREATE TABLE agents (agent_id INTEGER PRIMARY KEY, agent_name TEXT NOT NULL, job_title TEXT NOT NULL,
                             team_id INTEGER NOT NULL REFERENCES teams (team_id), is_active INTEGER NOT NULL,
                             is_full_time INTEGER NOT NULL);
        CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, agent_id INTEGER NOT NULL REFERENCES agents (agent_id),
                              priority TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, closed_at TEXT);
        CREATE TABLE visits (visit_id INTEGER PRIMARY KEY, agent_id INTEGER NOT NULL REFERENCES agents (agent_id),
                             started_on TEXT NOT NULL, ended_on TEXT NOT NULL);
        """
    )
    conn.executemany("INSERT INTO teams VALUES (?, ?)", [(1, "Billing"), (2, "Platform")])
    # two different agents called "Sam Lee": their tickets must not be added up
    names = ["Sam Lee", "Ada Park", "Sam Lee", "Ivo Berg", "Lia Moss", "Tom Ruiz", "Nia Voss"]
    titles = [
        "Support Engineer",
        "Team Lead",
        "Support Engineer",
        "Support Engineer",
        "Analyst",
        "Team Lead",
        "Analyst",
    ]
    conn.executemany(  # agent 7 is new: no tickets yet
        "INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?)",
        [(i + 1, names[i], titles[i], 1 + i % 2, int(i not in (2, 5)), int(i % 3 != 0)) for i in range(7)],
    )
    tickets = []
    for i in range(1, 601):
        created = date(2025, 1, 1).toordinal() + (i * 37) % 169  # 2025-01-01 .. 2025-06-18
        status = ["open", "closed", "closed", "pending"][i % 4]
        closed = date.fromordinal(min(created + i % 9, HELPDESK_TODAY.toordinal())) if status == "closed" else None
        tickets.append(
            (
                i,
                [1, 1, 2, 3, 3, 3, 4, 5, 6, 6, 6][i % 11],
                ["low", "high", "urgent"][i % 3],
                status,
                f"{date.fromordinal(created).isoformat()} {i % 24:02d}:{i % 60:02d}:00",
                f"{closed.isoformat()} 12:00:00" if closed else None,
            )
        )
    conn.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?)", tickets)
    visits = [
        (i, 1 + i % 6, date.fromordinal(date(2025, 3, 1).toordinal() + i).isoformat(),
         date.fromordinal(date(2025, 3, 1).toordinal() + i + 40).isoformat())
        for i in range(1, 90)
    ]  # fmt: skip
    conn.executemany("INSERT INTO visits VALUES (?, ?, ?, ?)", visits)
    conn.commit()
    conn.close()
    return path, sqlite_catalog(path, alias="helpdesk")


def ask_helpdesk(helpdesk, question: str, **kwargs) -> BuiltinAnswer:
    return ask(helpdesk, question, today=HELPDESK_TODAY, **kwargs)


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        (
            "How many tickets yesterday?",
            "SELECT COUNT(*) FROM tickets WHERE created_at >= '2025-06-17' AND created_at < '2025-06-18'",
        ),
        (
            "Number of tickets by priority last month",
            "SELECT priority, COUNT(*) AS n FROM tickets WHERE created_at >= '2025-05-01' "
            "AND created_at < '2025-06-01' GROUP BY priority ORDER BY n DESC",
        ),
        (
            "Tickets per month this year",
            "SELECT strftime('%Y-%m', created_at) AS m, COUNT(*) FROM tickets WHERE created_at >= '2025-01-01' "
            "AND created_at < '2026-01-01' GROUP BY m ORDER BY m",
        ),
        (
            "How many tickets were closed last week?",
            "SELECT COUNT(*) FROM tickets WHERE status = 'closed' AND closed_at >= '2025-06-09' "
            "AND closed_at < '2025-06-16'",
        ),
        (
            "How many Support Engineers are there?",
            "SELECT COUNT(*) FROM agents WHERE job_title = 'Support Engineer'",
        ),
    ],
)
def test_it_answers_on_dates_kept_as_text_and_the_date_the_question_names(helpdesk, question, reference):
    answer = assert_same_result(helpdesk, question, reference, today=HELPDESK_TODAY)
    assert answer.confidence == 0.95
    assert answer.assumptions == []


def test_a_table_is_shown_by_its_name_column_and_namesakes_stay_apart(helpdesk):
    path, _ = helpdesk
    answer = ask_helpdesk(helpdesk, "Number of tickets per agent")
    assert "a.agent_name AS agent" in answer.sql
    got = sorted(rows(path, answer.sql))
    want = sorted(
        rows(path, "SELECT a.agent_name, COUNT(*) FROM tickets t JOIN agents a USING (agent_id) GROUP BY a.agent_id")
    )
    assert got == want
    assert [name for name, _ in got].count("Sam Lee") == 2


def test_which_x_verb_the_most_ranks_and_keeps_a_value_verb_as_a_filter(helpdesk):
    path, _ = helpdesk
    answer = ask_helpdesk(helpdesk, "Which agent closed the most tickets?")
    reference = (
        "SELECT a.agent_name, COUNT(*) AS n FROM tickets t JOIN agents a USING (agent_id) "
        "WHERE t.status = 'closed' GROUP BY a.agent_id ORDER BY n DESC LIMIT 1"
    )
    assert rows(path, answer.sql) == rows(path, reference), answer.sql


def test_a_date_chosen_among_several_is_an_assumption_that_lowers_confidence(helpdesk):
    answer = ask_helpdesk(helpdesk, "How many visits last month?")
    assert answer.assumptions == ["dated visits by started_on (not ended_on)"]
    assert answer.confidence == 0.85
    assert ask_helpdesk(helpdesk, "How many visits ended last month?").confidence == 0.95


@pytest.mark.parametrize(("engine", "federated"), [("postgres", False), ("sqlite", True)])
def test_dates_kept_as_text_are_cast_where_text_and_dates_do_not_compare(helpdesk, engine, federated):
    catalog = dataclasses.replace(helpdesk[1], engine=engine)
    dialect = "postgres" if engine == "postgres" else "sqlite"
    sql = generate_sql(
        "tickets per month last quarter", catalogs=[catalog], dialect=dialect, today=HELPDESK_TODAY, federated=federated
    ).sql
    assert "CAST(t.created_at AS TIMESTAMP)" in sql


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("How many active agents are there?", "SELECT COUNT(*) FROM agents WHERE is_active = 1"),
        ("How many inactive agents?", "SELECT COUNT(*) FROM agents WHERE is_active = 0"),
        ("Number of agents that are not active", "SELECT COUNT(*) FROM agents WHERE is_active = 0"),
        (
            "Tickets of active agents by priority",
            "SELECT t.priority, COUNT(*) AS n FROM tickets t JOIN agents a USING (agent_id) WHERE a.is_active = 1 "
            "GROUP BY t.priority ORDER BY n DESC",
        ),
    ],
)
def test_yes_no_columns_filter_by_their_word(helpdesk, question, reference):
    assert_same_result(helpdesk, question, reference, today=HELPDESK_TODAY)


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("How many full-time agents are there?", "SELECT COUNT(*) FROM agents WHERE is_full_time = 1"),
        ("number of agents that are not full time", "SELECT COUNT(*) FROM agents WHERE is_full_time = 0"),
        ("How many non-full-time agents?", "SELECT COUNT(*) FROM agents WHERE is_full_time = 0"),
    ],
)
def test_a_yes_no_column_of_several_words(helpdesk, question, reference):
    assert_same_result(helpdesk, question, reference, today=HELPDESK_TODAY)


def test_a_mysql_boolean_is_a_yes_no_column(helpdesk):
    """MySQL's BOOLEAN is tinyint(1): "escalated tickets" filters on it, it is not a number to count."""
    tables = [
        dataclasses.replace(t, columns=(*t.columns, ColumnInfo("escalated", "tinyint(1)")))
        if t.name == "tickets"
        else t
        for t in helpdesk[1].tables
    ]
    catalog = dataclasses.replace(helpdesk[1], engine="mysql", tables=tables)
    sql = generate_sql("How many tickets were not escalated?", catalogs=[catalog], dialect="mysql", today=TODAY).sql
    assert "WHERE t.escalated = 0" in sql
    assert sql.startswith("SELECT COUNT(*)")


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("Show me the 5 most recent tickets", "SELECT * FROM tickets ORDER BY created_at DESC LIMIT 5"),
        ("the latest 3 tickets", "SELECT * FROM tickets ORDER BY created_at DESC LIMIT 3"),
        ("last 4 tickets", "SELECT * FROM tickets ORDER BY created_at DESC LIMIT 4"),
        ("the 2 oldest tickets", "SELECT * FROM tickets ORDER BY created_at LIMIT 2"),
    ],
)
def test_latest_and_oldest_list_rows_by_their_date(helpdesk, question, reference):
    assert_same_result(helpdesk, question, reference, today=HELPDESK_TODAY)


def test_an_average_per_row_of_the_measures_own_table_is_one_average(demo):
    assert_same_result(
        demo, "What is the average quantity per order item?", "SELECT ROUND(AVG(quantity), 2) FROM order_items"
    )


def test_an_average_of_counts_is_refused_not_answered_with_the_counts(demo):
    with pytest.raises(BuiltinCannotAnswer, match="average of a count is not supported"):
        ask(demo, "Average number of orders per customer")


def test_a_person_whose_name_is_pii_is_shown_and_grouped_by_key(demo):
    """Governance refuses GROUP BY on a masked column: the engine never labels rows with PII."""
    path, catalog = demo
    sensitive = ("first_name", "last_name", "email")
    tables = [
        dataclasses.replace(t, columns=tuple(dataclasses.replace(c, pii=c.name in sensitive) for c in t.columns))
        for t in catalog.tables
    ]
    answer = generate_sql(
        "top 3 customers by revenue",
        catalogs=[dataclasses.replace(catalog, tables=tables)],
        dialect="sqlite",
        today=TODAY,
    )
    assert not any(name in answer.sql for name in sensitive)
    assert "GROUP BY c.id" in answer.sql
    reference = (
        "SELECT customer_id, ROUND(SUM(total_amount), 2) AS s FROM orders GROUP BY customer_id ORDER BY s DESC LIMIT 3"
    )
    assert rows(path, answer.sql) == rows(path, reference)


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("What is the earliest ticket created at?", "SELECT MIN(created_at) FROM tickets"),
        ("latest closed at of urgent tickets", "SELECT MAX(closed_at) FROM tickets WHERE priority = 'urgent'"),
        ("the most recent ticket", "SELECT * FROM tickets ORDER BY created_at DESC LIMIT 1"),
        ("the most recent tickets", "SELECT * FROM tickets ORDER BY created_at DESC LIMIT 10"),
    ],
)
def test_latest_of_a_date_is_its_max_and_the_latest_row_is_one_row(helpdesk, question, reference):
    assert_same_result(helpdesk, question, reference, today=HELPDESK_TODAY)


def test_a_date_phrase_dates_the_event_table_the_question_names(demo, helpdesk):
    """ "customers who placed an order last month" counts customers by their orders' date, not by when
    the customer was created; each customer once."""
    assert_same_result(
        demo,
        "How many customers placed an order last month?",
        "SELECT COUNT(DISTINCT customer_id) FROM orders WHERE order_date >= '2025-10-01' AND order_date < '2025-11-01'",
    )
    path, _ = helpdesk
    answer = ask_helpdesk(helpdesk, "How many agents had tickets yesterday?")
    reference = (
        "SELECT COUNT(DISTINCT agent_id) FROM tickets WHERE created_at >= '2025-06-17' AND created_at < '2025-06-18'"
    )
    assert rows(path, answer.sql) == rows(path, reference), answer.sql


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("How many agents have tickets?", "SELECT COUNT(DISTINCT agent_id) FROM tickets"),
        ("How many agents are there?", "SELECT COUNT(*) FROM agents"),
        (
            "number of agents with urgent tickets by job title",
            "SELECT a.job_title, COUNT(DISTINCT a.agent_id) AS n FROM agents a JOIN tickets t USING (agent_id) "
            "WHERE t.priority = 'urgent' GROUP BY a.job_title ORDER BY n DESC",
        ),
    ],
)
def test_counting_x_with_y_counts_only_the_xs_that_have_one(helpdesk, question, reference):
    assert_same_result(helpdesk, question, reference, today=HELPDESK_TODAY)


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        (
            "How many tickets by agents of the Billing team?",
            "SELECT COUNT(*) FROM tickets t JOIN agents a USING (agent_id) JOIN teams tm USING (team_id) "
            "WHERE tm.team_name = 'Billing'",
        ),
        (
            "How many tickets were handled by Support Engineers?",
            "SELECT COUNT(*) FROM tickets t JOIN agents a USING (agent_id) WHERE a.job_title = 'Support Engineer'",
        ),
        (
            "How many tickets were closed by Support Engineers?",
            "SELECT COUNT(*) FROM tickets t JOIN agents a USING (agent_id) "
            "WHERE a.job_title = 'Support Engineer' AND t.status = 'closed'",
        ),
    ],
)
def test_by_who_did_it_filters_instead_of_grouping(helpdesk, question, reference):
    assert_same_result(helpdesk, question, reference, today=HELPDESK_TODAY)


def test_a_join_goes_through_the_table_the_question_names(tmp_path):
    """Bookings reach clubs through members or through classes (both two hops): "bookings of
    Riverside members" must count the members' club, not the club where the class is held."""
    path = tmp_path / "gym.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE clubs (club_id INTEGER PRIMARY KEY, club_name TEXT NOT NULL);
        CREATE TABLE members (member_id INTEGER PRIMARY KEY, club_id INTEGER NOT NULL REFERENCES clubs (club_id));
        CREATE TABLE classes (class_id INTEGER PRIMARY KEY, club_id INTEGER NOT NULL REFERENCES clubs (club_id));
        CREATE TABLE bookings (booking_id INTEGER PRIMARY KEY,
                               member_id INTEGER NOT NULL REFERENCES members (member_id),
                               class_id INTEGER NOT NULL REFERENCES classes (class_id));
        INSERT INTO clubs VALUES (1, 'Riverside'), (2, 'Harbor');
        """
    )
    conn.executemany("INSERT INTO members VALUES (?, ?)", [(i, 1 + i % 2) for i in range(1, 21)])
    conn.executemany("INSERT INTO classes VALUES (?, ?)", [(i, 1 + (i % 3 == 0)) for i in range(1, 10)])
    conn.executemany("INSERT INTO bookings VALUES (?, ?, ?)", [(i, 1 + i % 20, 1 + i % 9) for i in range(1, 201)])
    conn.commit()
    conn.close()
    gym = (path, sqlite_catalog(path, alias="gym"))
    assert_same_result(
        gym,
        "How many bookings of Riverside members?",
        "SELECT COUNT(*) FROM bookings b JOIN members m USING (member_id) JOIN clubs c ON c.club_id = m.club_id "
        "WHERE c.club_name = 'Riverside'",
    )
    assert_same_result(
        gym,
        "How many bookings for classes at Riverside?",
        "SELECT COUNT(*) FROM bookings b JOIN classes k USING (class_id) JOIN clubs c ON c.club_id = k.club_id "
        "WHERE c.club_name = 'Riverside'",
    )


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        (
            "number of tickets by agent in the Billing team",
            "SELECT a.agent_name, COUNT(*) AS n FROM tickets t JOIN agents a USING (agent_id) "
            "JOIN teams tm USING (team_id) WHERE tm.team_name = 'Billing' GROUP BY a.agent_id ORDER BY n DESC",
        ),
        ("how many tickets where the priority is urgent", "SELECT COUNT(*) FROM tickets WHERE priority = 'urgent'"),
        (
            "how many urgent tickets did agents take last week",
            "SELECT COUNT(*) FROM tickets WHERE priority = 'urgent' AND created_at >= '2025-06-09' "
            "AND created_at < '2025-06-16'",
        ),
    ],
)
def test_by_a_singular_table_in_a_value_still_groups(helpdesk, question, reference):
    assert_same_result(helpdesk, question, reference, today=HELPDESK_TODAY)


def test_column_names_by_their_first_word_hyphen_but_never_by_an_aggregate_word():
    orders = TableInfo(
        "main",
        "orders",
        (
            ColumnInfo("id", "INTEGER", is_primary_key=True),
            ColumnInfo("total_amount", "NUMERIC"),
            ColumnInfo("tip_amount", "NUMERIC"),
            ColumnInfo("drop_in_price", "NUMERIC"),
        ),
    )
    index = SchemaIndex([SourceCatalog(alias="s", engine="sqlite", tables=[orders], default_schema="main")])
    assert [c.name for _, c in index.columns_named(("tip",))] == ["tip_amount"]
    assert [c.name for _, c in index.columns_named(("drop-in", "price"))] == ["drop_in_price"]
    assert index.columns_named(("total",)) == []


def test_latest_with_a_measure_is_refused(helpdesk):
    with pytest.raises(BuiltinCannotAnswer, match="'latest' / 'oldest' lists rows"):
        ask_helpdesk(helpdesk, "latest tickets by priority")


# --- a subscription business: words shared by values, columns and time grains ----------------------------------

SAAS_TODAY = date(2024, 12, 31)


@pytest.fixture(scope="module")
def saas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SourceCatalog]:
    path = tmp_path_factory.mktemp("saas") / "saas.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE plans (plan_id INTEGER PRIMARY KEY, plan_name TEXT NOT NULL, monthly_price NUMERIC NOT NULL);
        CREATE TABLE accounts (account_id INTEGER PRIMARY KEY, account_name TEXT NOT NULL,
                               employee_count INTEGER NOT NULL, is_partner INTEGER NOT NULL,
                               is_enterprise INTEGER NOT NULL,
                               registered_on TEXT NOT NULL, founded_on TEXT NOT NULL);
        CREATE TABLE subscriptions (subscription_id INTEGER PRIMARY KEY,
                                    account_id INTEGER NOT NULL REFERENCES accounts (account_id),
                                    plan_id INTEGER NOT NULL REFERENCES plans (plan_id), billing_cycle TEXT NOT NULL,
                                    is_trial BOOLEAN NOT NULL, duration_months INTEGER NOT NULL,
                                    mrr NUMERIC NOT NULL, started_at TIMESTAMP NOT NULL);
        CREATE TABLE payments (payment_id INTEGER PRIMARY KEY,
                               subscription_id INTEGER NOT NULL REFERENCES subscriptions (subscription_id),
                               amount NUMERIC NOT NULL, method TEXT NOT NULL, paid_on TEXT NOT NULL);
        """
    )
    conn.executemany(
        "INSERT INTO plans VALUES (?, ?, ?)",
        [(1, "Basic", 49), (2, "Team", 199), (3, "Scale", 990), (4, "Enterprise", 0)],
    )
    conn.executemany(
        "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (i, f"Account {i:03d}", (i * 97) % 1200, int(i % 5 == 0), int(i % 9 == 0),
             date.fromordinal(date(2023, 1, 1).toordinal() + (i * 13) % 730).isoformat(),
             date.fromordinal(date(1990, 1, 1).toordinal() + (i * 211) % 9000).isoformat())
            for i in range(1, 201)
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (i, 1 + i % 200, 1 + i % 3, ["monthly", "annual"][i % 2], int(i % 7 == 0), 1 + i % 24,
             [49, 199, 990][i % 3] * (1 + i % 4),
             f"{date.fromordinal(date(2024, 1, 1).toordinal() + (i * 7) % 366)} 09:30:00")
            for i in range(1, 501)
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO payments VALUES (?, ?, ?, ?, ?)",
        [
            (i, 1 + i % 500, 10 + (i * 31) % 400, ["credit card", "bank transfer"][i % 2],
             date.fromordinal(date(2024, 1, 1).toordinal() + (i * 11) % 500).isoformat())
            for i in range(1, 801)
        ],
    )  # fmt: skip
    conn.commit()
    conn.close()
    return path, sqlite_catalog(path, alias="saas")


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("What is the average monthly price of plans?", "SELECT ROUND(AVG(monthly_price), 2) FROM plans"),
        (
            "Total mrr of annual subscriptions",
            "SELECT ROUND(SUM(mrr), 2) FROM subscriptions WHERE billing_cycle = 'annual'",
        ),
        ("monthly subscriptions", "SELECT * FROM subscriptions WHERE billing_cycle = 'monthly'"),
        (
            "How many accounts registered in Q4 2024?",
            "SELECT COUNT(*) FROM accounts WHERE registered_on >= '2024-10-01' AND registered_on < '2025-01-01'",
        ),
        (
            "How many accounts were founded between March 2000 and May 2001?",
            "SELECT COUNT(*) FROM accounts WHERE founded_on >= '2000-03-01' AND founded_on < '2001-06-01'",
        ),
        ("The 3 most recently registered accounts", "SELECT * FROM accounts ORDER BY registered_on DESC LIMIT 3"),
        ("How many partner accounts?", "SELECT COUNT(*) FROM accounts WHERE is_partner = 1"),
        ("What is the most expensive plan?", "SELECT * FROM plans ORDER BY monthly_price DESC LIMIT 1"),
        ("the cheapest plan", "SELECT * FROM plans ORDER BY monthly_price LIMIT 1"),
        # the question names accounts: their yes/no column, not the plan called Enterprise
        ("How many accounts are not enterprise?", "SELECT COUNT(*) FROM accounts WHERE is_enterprise = 0"),
        ("How many subscriptions are not trials?", "SELECT COUNT(*) FROM subscriptions WHERE NOT is_trial"),
        ("How many non-trial subscriptions?", "SELECT COUNT(*) FROM subscriptions WHERE NOT is_trial"),
        ("How many accounts with more than 500 employees?", "SELECT COUNT(*) FROM accounts WHERE employee_count > 500"),
        ("What is the maximum subscription duration?", "SELECT MAX(duration_months) FROM subscriptions"),
        (
            "Total amount paid by credit card in 2024",
            "SELECT ROUND(SUM(amount), 2) FROM payments WHERE method = 'credit card' "
            "AND paid_on >= '2024-01-01' AND paid_on < '2025-01-01'",
        ),
    ],
)
def test_words_shared_by_values_columns_and_grains_are_read_as_the_schema_means_them(saas, question, reference):
    path, catalog = saas
    answer = generate_sql(question, catalogs=[catalog], dialect="sqlite", today=SAAS_TODAY)
    got, want = rows(path, answer.sql), rows(path, reference)
    if "ORDER BY" not in reference:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert got == want, f"{question!r} -> {answer.sql}"


def test_a_row_is_not_dated_by_a_parent_that_is_not_its_header(saas):
    """Subscriptions without a date of their own are not dated by when their account registered."""
    path, catalog = saas
    undated = [
        dataclasses.replace(t, columns=tuple(c for c in t.columns if c.name != "started_at"))
        if t.name == "subscriptions"
        else t
        for t in catalog.tables
    ]
    with pytest.raises(BuiltinCannotAnswer, match="'subscriptions' has no date column for 'last month'"):
        generate_sql(
            "How many subscriptions last month?",
            catalogs=[dataclasses.replace(catalog, tables=undated)],
            dialect="sqlite",
            today=SAAS_TODAY,
        )


def test_a_yes_no_column_kept_as_an_integer_is_compared_with_a_number(saas):
    catalog = dataclasses.replace(saas[1], engine="postgres")
    partner = generate_sql("How many partner accounts?", catalogs=[catalog], dialect="postgres", today=SAAS_TODAY)
    trial = generate_sql("How many trial subscriptions?", catalogs=[catalog], dialect="postgres", today=SAAS_TODAY)
    assert "a.is_partner = 1" in partner.sql  # PostgreSQL has no integer = boolean
    assert "s.is_trial = TRUE" in trial.sql


# --- real estate and freight: verbs that are values, prices on the row, deadlines, units ------------------------

REALTY_TODAY = date(2025, 4, 16)


@pytest.fixture(scope="module")
def realty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SourceCatalog]:
    path = tmp_path_factory.mktemp("realty") / "realty.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE listings (listing_id INTEGER PRIMARY KEY, property_type TEXT NOT NULL, status TEXT NOT NULL,
                               list_price NUMERIC NOT NULL, listed_on TEXT NOT NULL);
        CREATE TABLE sales (sale_id INTEGER PRIMARY KEY, listing_id INTEGER NOT NULL REFERENCES listings (listing_id),
                            sale_price NUMERIC NOT NULL, sold_on TEXT NOT NULL);
        CREATE TABLE shipments (shipment_id INTEGER PRIMARY KEY, freight_cost NUMERIC NOT NULL,
                                departed_at TIMESTAMP NOT NULL, arrived_at TIMESTAMP NOT NULL, due_on DATE NOT NULL,
                                cargo_weight_kg NUMERIC NOT NULL);
        CREATE TABLE parcels (parcel_id INTEGER PRIMARY KEY,
                              shipment_id INTEGER NOT NULL REFERENCES shipments (shipment_id),
                              declared_value NUMERIC NOT NULL);
        CREATE TABLE machines (machine_id INTEGER PRIMARY KEY, machine_name TEXT NOT NULL, machine_type TEXT NOT NULL);
        CREATE TABLE work_orders (work_order_id INTEGER PRIMARY KEY,
                                  machine_id INTEGER NOT NULL REFERENCES machines (machine_id), cost NUMERIC NOT NULL);
        """
    )
    day = date(2025, 1, 1).toordinal()
    conn.executemany(
        "INSERT INTO listings VALUES (?, ?, ?, ?, ?)",
        [
            (i, ["house", "apartment"][i % 2], ["active", "sold"][i % 3 == 0], 100_000 + (i * 7919) % 900_000,
             date.fromordinal(day + (i * 3) % 100).isoformat())
            for i in range(1, 301)
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO sales VALUES (?, ?, ?, ?)",
        [(n, i, 90_000 + (i * 6007) % 800_000, date.fromordinal(day + 30 + (i * 5) % 70).isoformat())
         for n, i in enumerate(range(3, 301, 3), start=1)],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO shipments VALUES (?, ?, ?, ?, ?, ?)",
        [
            (i, 50 + (i * 37) % 3000, f"{date.fromordinal(day + i % 100)} 08:00:00",
             f"{date.fromordinal(day + i % 100 + 2)} 17:00:00", date.fromordinal(day + 200 - i % 50).isoformat(),
             (i * 53) % 20000)
            for i in range(1, 201)
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO parcels VALUES (?, ?, ?)", [(i, 1 + i % 200, (i * 911) % 5000) for i in range(1, 801)]
    )
    conn.executemany(
        "INSERT INTO machines VALUES (?, ?, ?)", [(i, f"M-{i:03d}", ["press", "lathe"][i % 2]) for i in range(1, 13)]
    )
    conn.executemany(
        "INSERT INTO work_orders VALUES (?, ?, ?)",
        [(i, 1 + (i * i) % 12, 100 + (i * 131) % 5000) for i in range(1, 401)],
    )
    conn.commit()
    conn.close()
    return path, sqlite_catalog(path, alias="realty")


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("How many sold listings?", "SELECT COUNT(*) FROM listings WHERE status = 'sold'"),
        ("How many listings are not sold?", "SELECT COUNT(*) FROM listings WHERE status <> 'sold'"),
        (
            "How many listings were sold last month?",
            "SELECT COUNT(DISTINCT l.listing_id) FROM listings l JOIN sales s USING (listing_id) "
            "WHERE l.status = 'sold' AND s.sold_on >= '2025-03-01' AND s.sold_on < '2025-04-01'",
        ),
        ("How many houses?", "SELECT COUNT(*) FROM listings WHERE property_type = 'house'"),
        ("Which sale was the cheapest?", "SELECT * FROM sales ORDER BY sale_price LIMIT 1"),
        ("What is the most expensive shipment?", "SELECT * FROM shipments ORDER BY freight_cost DESC LIMIT 1"),
        ("The 3 most recent shipments", "SELECT * FROM shipments ORDER BY departed_at DESC, shipment_id LIMIT 3"),
        ("When was the latest sale?", "SELECT MAX(sold_on) FROM sales"),
        ("What is the latest arrival time?", "SELECT MAX(arrived_at) FROM shipments"),
        ("When did the earliest shipment depart?", "SELECT MIN(departed_at) FROM shipments"),
        ("Total cargo weight", "SELECT ROUND(SUM(cargo_weight_kg), 2) FROM shipments"),
        ("How many shipments over 10000 kg?", "SELECT COUNT(*) FROM shipments WHERE cargo_weight_kg > 10000"),
        ("How many shipments in total?", "SELECT COUNT(*) FROM shipments"),
        (
            "Top 3 machines by total work order cost",
            "SELECT m.machine_name, SUM(w.cost) AS s FROM work_orders w JOIN machines m USING (machine_id) "
            "GROUP BY m.machine_id ORDER BY s DESC LIMIT 3",
        ),
    ],
)
def test_verbs_that_are_values_prices_on_the_row_deadlines_and_units(realty, question, reference):
    path, _ = realty
    answer = ask(realty, question, today=REALTY_TODAY)
    got, want = rows(path, answer.sql), rows(path, reference)
    if "most recent" in question:  # ties on departed_at: compare the dates
        got, want = [r[2] for r in got], [r[2] for r in want]
    assert got == want, f"{question!r} -> {answer.sql}"


# --- a hotel and an app store: prices on the row, check-in / check-out, a dimension of the named table ---------

HOTEL_TODAY = date(2025, 3, 12)


@pytest.fixture(scope="module")
def hotel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SourceCatalog]:
    path = tmp_path_factory.mktemp("hotel") / "hotel.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE rooms (room_id INTEGER PRIMARY KEY, room_type TEXT NOT NULL, nightly_rate NUMERIC NOT NULL);
        CREATE TABLE reservations (reservation_id INTEGER PRIMARY KEY,
                                   room_id INTEGER NOT NULL REFERENCES rooms (room_id), status TEXT NOT NULL,
                                   booked_on TEXT NOT NULL, check_in TEXT NOT NULL, check_out TEXT NOT NULL,
                                   total_price NUMERIC NOT NULL);
        CREATE TABLE developers (developer_id INTEGER PRIMARY KEY, country TEXT NOT NULL);
        CREATE TABLE apps (app_id INTEGER PRIMARY KEY, developer_id INTEGER NOT NULL, size_mb NUMERIC NOT NULL);
        CREATE TABLE downloads (download_id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL, device TEXT NOT NULL,
                                country TEXT NOT NULL);
        """
    )
    rooms = [(i, ["single", "double", "suite"][i % 3], 60 + (i * 37) % 600) for i in range(1, 41)]
    conn.executemany("INSERT INTO rooms VALUES (?, ?, ?)", rooms)
    day = date(2024, 10, 1).toordinal()
    reservations = []
    for i in range(1, 601):
        check_in = day + (i * 7) % 200
        booked, check_out = check_in - 20 - i % 30, check_in + 1 + i % 6
        status = ["confirmed", "cancelled", "no_show"][i % 5 % 3]
        dates = [date.fromordinal(d).isoformat() for d in (booked, check_in, check_out)]
        reservations.append((i, 1 + i % 40, status, *dates, 100 + (i * 53) % 2000))
    conn.executemany("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?)", reservations)
    countries = ["USA", "Brazil", "India", "Germany"]
    conn.executemany("INSERT INTO developers VALUES (?, ?)", [(i, countries[i % 2]) for i in range(1, 9)])
    conn.executemany("INSERT INTO apps VALUES (?, ?, ?)", [(i, 1 + i % 8, 20 + (i * 89) % 900) for i in range(1, 31)])
    conn.executemany(
        "INSERT INTO downloads VALUES (?, ?, ?, ?)",
        [(i, 1 + i % 30, ["phone", "tablet"][i % 3 == 0], countries[(i * 7) % 4]) for i in range(1, 1001)],
    )
    conn.commit()
    conn.close()
    return path, sqlite_catalog(path, alias="hotel")


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        ("What is the most expensive room?", "SELECT * FROM rooms ORDER BY nightly_rate DESC, room_id LIMIT 1"),
        ("the cheapest room", "SELECT * FROM rooms ORDER BY nightly_rate, room_id LIMIT 1"),
        (
            "How many reservations with check in last month?",
            "SELECT COUNT(*) FROM reservations WHERE check_in >= '2025-02-01' AND check_in < '2025-03-01'",
        ),
        (
            "How many reservations checked in last month?",
            "SELECT COUNT(*) FROM reservations WHERE check_in >= '2025-02-01' AND check_in < '2025-03-01'",
        ),
        (
            "Number of reservations checking out in January 2025",
            "SELECT COUNT(*) FROM reservations WHERE check_out >= '2025-01-01' AND check_out < '2025-02-01'",
        ),
        ("What was the earliest check-in date?", "SELECT MIN(check_in) FROM reservations"),
        (
            "Number of cancelled or no-show reservations",
            "SELECT COUNT(*) FROM reservations WHERE status IN ('cancelled', 'no_show')",
        ),
        (
            "Downloads by device and country",
            "SELECT device, country, COUNT(*) AS n FROM downloads GROUP BY device, country ORDER BY n DESC",
        ),
        ("How many apps are bigger than 500 MB?", "SELECT COUNT(*) FROM apps WHERE size_mb > 500"),
        ("How many downloads were not on phones?", "SELECT COUNT(*) FROM downloads WHERE device <> 'phone'"),
    ],
)
def test_prices_on_the_row_check_in_and_out_and_dimensions_of_the_named_table(hotel, question, reference):
    path, _ = hotel
    answer = ask(hotel, question, today=HOTEL_TODAY)
    got, want = rows(path, answer.sql), rows(path, reference)
    if "most expensive" in question or "cheapest" in question:  # ties on the rate: compare the rate
        got, want = [r[2] for r in got], [r[2] for r in want]
    assert got == want, f"{question!r} -> {answer.sql}"


def test_the_most_expensive_row_without_a_price_of_its_own_is_refused(hotel):
    with pytest.raises(BuiltinCannotAnswer, match="'developers' has no price column of its own"):
        ask(hotel, "What is the most expensive developer?", today=HOTEL_TODAY)


def test_sqlite_compares_text_dates_as_they_are(helpdesk):
    assert "CAST" not in ask_helpdesk(helpdesk, "tickets per month last quarter").sql


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


@pytest.fixture(scope="module")
def split_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], list[SourceCatalog]]:
    """Customers and regions in one database, orders in another: no key can be declared across them."""
    folder = tmp_path_factory.mktemp("split")
    paths = {"crm": folder / "crm.db", "sales": folder / "sales.db"}
    crm = sqlite3.connect(paths["crm"])
    crm.executescript(
        """
        CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, segment TEXT NOT NULL,
                                region_id INTEGER NOT NULL REFERENCES regions (id));
        INSERT INTO regions VALUES (1, 'North'), (2, 'South'), (3, 'East');
        """
    )
    crm.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?)",
        [(i, f"Customer {i}", ["SMB", "Enterprise"][i % 2], 1 + i % 3) for i in range(1, 41)],
    )
    crm.commit()
    crm.close()
    sales = sqlite3.connect(paths["sales"])
    sales.execute(
        "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, "
        "total_amount NUMERIC NOT NULL, order_date DATE NOT NULL)"
    )
    sales.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?)",
        [(i, 1 + (i * 7) % 40, 10 + (i * 13) % 500, f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}") for i in range(1, 401)],
    )
    sales.commit()
    sales.close()
    return paths, [sqlite_catalog(paths["crm"], alias="crm"), sqlite_catalog(paths["sales"], alias="sales")]


def federated_rows(paths: dict[str, Path], sql: str) -> list[tuple]:
    import duckdb

    from connectors.engines.federation import extension_path

    conn = duckdb.connect()
    try:
        conn.execute(f"LOAD '{extension_path('sqlite')}'")
        for alias, path in paths.items():
            conn.execute(f"ATTACH '{path}' AS {alias} (TYPE sqlite, READ_ONLY)")
        return [
            tuple(round(float(v), 2) if isinstance(v, float) else v for v in r) for r in conn.execute(sql).fetchall()
        ]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("question", "reference"),
    [
        (
            "total sales by region",
            "SELECT r.name, ROUND(SUM(o.total_amount), 2) AS s FROM sales.main.orders o "
            "JOIN crm.main.customers c ON c.id = o.customer_id JOIN crm.main.regions r ON r.id = c.region_id "
            "GROUP BY r.id, r.name ORDER BY s DESC",
        ),
        (
            "number of orders by customer segment",
            "SELECT c.segment, COUNT(*) AS n FROM sales.main.orders o "
            "JOIN crm.main.customers c ON c.id = o.customer_id GROUP BY c.segment ORDER BY n DESC",
        ),
        (
            "revenue from Enterprise customers in the North region",
            "SELECT ROUND(SUM(o.total_amount), 2) FROM sales.main.orders o JOIN crm.main.customers c "
            "ON c.id = o.customer_id JOIN crm.main.regions r ON r.id = c.region_id "
            "WHERE c.segment = 'Enterprise' AND r.name = 'North'",
        ),
    ],
)
def test_a_federated_question_joins_across_sources_along_thing_id(split_shop, question, reference):
    paths, catalogs = split_shop
    answer = generate_sql(question, catalogs=catalogs, dialect="duckdb", today=TODAY, federated=True)
    assert "crm.main." in answer.sql
    assert "sales.main.orders" in answer.sql
    assert federated_rows(paths, answer.sql) == federated_rows(paths, reference), answer.sql


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
