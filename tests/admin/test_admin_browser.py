"""The operator's tour in a real browser: headless Chromium driven by Playwright against a live server.

Log in, open the executions list, filter failed ones from the sidebar, open a detail page, then run
"preview as user" for the demo analyst. A screenshot of every page lands in tests/output/admin_browser/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import Membership
from connectors.models import DataSource
from prompts.models import ErrorCode, ExecutionStatus
from tests.admin.support import execution_row
from tests.services import require_binary, services_required

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "output" / "admin_browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium_path() -> str:
    return require_binary(CHROMIUM, "Debian's chromium, for the admin browser test")


@pytest.fixture
def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        message = "TOOL MISSING: playwright (pip) is not installed"
        if services_required():
            pytest.fail(message + " and REQUIRE_SERVICES=1")
        pytest.skip(message)
    return sync_playwright


@pytest.fixture
def demo_history(transactional_db):
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    analyst = Membership.objects.get(user__username="demo", workspace__slug="demo")
    source = DataSource.objects.alive().get(workspace=analyst.workspace, alias="sales")
    completed = execution_row(
        analyst,
        prompt_text="total revenue by region",
        sources=[source],
        sql="SELECT region, SUM(total) AS revenue FROM orders GROUP BY region",
        sql_executed="SELECT region, SUM(total) AS revenue FROM orders GROUP BY region LIMIT 10000",
        preview=[{"region": "North", "revenue": 1200.5}, {"region": "South", "revenue": 990}],
        tokens=(812, 64),
        cost=0.0021,
    )
    failed = [
        execution_row(
            analyst,
            prompt_text="top customers by lifetime value",
            status=ExecutionStatus.FAILED,
            error_code=ErrorCode.SQL_VALIDATION_ERROR,
            sources=[source],
            sql="SELECT name, ltv FROM customers ORDER BY ltv DESC",
        ),
        execution_row(
            analyst,
            prompt_text="orders on mars",
            status=ExecutionStatus.FAILED,
            error_code=ErrorCode.AI_GENERATION_ERROR,
            sources=[source],
        ),
    ]
    return {"analyst": analyst, "source": source, "completed": completed, "failed": failed}


def test_operator_tour_in_chromium(chromium_path, sync_playwright, demo_history, live_server, monkeypatch, settings):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.ALLOWED_HOSTS = ["*"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    analyst, source = demo_history["analyst"], demo_history["source"]
    failed_ids = {e.pk for e in demo_history["failed"]}

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)

            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", "operator-password")
            page.screenshot(path=SHOTS / "01-login.png", full_page=True)
            page.click("input[type=submit]")
            page.wait_for_selector("#site-name")
            assert "Prompt executions" in page.content()
            page.screenshot(path=SHOTS / "02-index.png", full_page=True)

            page.click("text=Prompt executions")
            page.wait_for_selector("#result_list")
            assert page.locator("#result_list tbody tr").count() == 3
            page.screenshot(path=SHOTS / "03-executions.png", full_page=True)

            page.locator("#changelist-filter").get_by_role("link", name="Failed", exact=True).first.click()
            page.wait_for_url("**status__exact=failed**")
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 2
            shown = {int(t) for t in page.locator("#result_list tbody th.field-id a").all_inner_texts()}
            assert shown == failed_ids
            assert "total revenue by region" not in page.locator("#result_list").inner_text()
            page.screenshot(path=SHOTS / "04-executions-failed.png", full_page=True)

            page.goto(f"{live_server.url}/admin/prompts/promptexecution/")
            page.click(f"#result_list a[href$='/{demo_history['completed'].pk}/change/']")
            page.wait_for_selector("table.timeline")
            body = page.content()
            assert "SQL generation finished" in body
            assert "GROUP BY region LIMIT 10000" in body
            assert page.locator("table.preview").inner_text().count("North") == 1
            page.screenshot(path=SHOTS / "05-execution-detail.png", full_page=True)

            page.goto(f"{live_server.url}/admin/connectors/rowpolicy/")
            page.wait_for_selector("#result_list")
            page.screenshot(path=SHOTS / "06-row-policies.png", full_page=True)
            page.click("text=Preview as user")
            page.wait_for_selector("#preview-form")
            page.select_option("#id_member", value=str(analyst.pk))
            page.select_option("#id_data_source", value=str(source.pk))
            page.fill("#id_table", "customers")
            page.screenshot(path=SHOTS / "07-preview-form.png", full_page=True)
            page.click("input[name=_preview]")
            page.wait_for_selector("#rewritten-sql")
            sql = page.inner_text("#rewritten-sql")
            assert "region_id = 1" in sql
            table = page.locator("#preview-rows")
            assert table.locator("tbody tr").count() > 0
            headers = [h.strip() for h in table.locator("thead th").all_text_contents()]
            email_cells = table.locator(f"tbody tr td:nth-child({headers.index('email') + 1})").all_inner_texts()
            assert email_cells
            assert all("*" in cell for cell in email_cells)  # the analyst lacks the PII grant
            page.screenshot(path=SHOTS / "08-preview-result.png", full_page=True)
        finally:
            browser.close()

    assert len(list(SHOTS.glob("*.png"))) == 8
