"""Payments in a real browser against the real system (the sandbox and run.py as processes,
chromium driven by Playwright): an order posted in the sandbox chat and approved is billed to
its group; a bKash payment recorded through the Payments page's form lowers the group's due on
the Payments and Groups pages; the ledger shows both lines with the running due; the daily
report and the CSV exports agree; no console errors; screenshots go to test-artifacts/.

The reads travel the real way: panel → ThespianBridge → Supervisor → PersistenceActor.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import expect

from tests.browser import DESKTOP, PHONE, browser, open_page, screenshot  # noqa: F401  (fixture)
from tests.e2e import Bot, Sandbox, wait_for
from tests.test_browser_panel import ALICE, DELIVERED, chat_has, log_in, settled, world  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e

GROUP_NAME = "রহিম স্টোর"
TRX = "8N7A6S5D"


def csv_rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff"), text[:20]
    return list(csv.reader(io.StringIO(text[1:], newline="")))


async def test_a_bkash_payment_lowers_the_due_everywhere(world: tuple[Sandbox, Bot],  # noqa: F811
                                                         browser: Any) -> None:  # noqa: F811
    sandbox, bot = world
    base = f"http://127.0.0.1:{bot.port}"
    group = await asyncio.to_thread(sandbox.create_group, GROUP_NAME)

    # An order from the chat, approved: ৳1000 billed to the group.
    first = await asyncio.to_thread(sandbox.post, group, ALICE, ".10", "Alice")
    await asyncio.to_thread(wait_for, lambda: bot.orders(), 20, "the order")
    status, body = await asyncio.to_thread(bot.api.post, "/api/approve/A1")
    assert status == 200, body
    await chat_has(sandbox, group, DELIVERED, first["id"])
    groups = (await asyncio.to_thread(bot.api.get, "/api/groups"))["groups"]
    assert [(g["id"], g["name"], g["due"]) for g in groups] == [(group, GROUP_NAME, "1000.00")]
    ledger_path = f"/groups/{quote(group, safe='')}/ledger"

    async with open_page(browser, viewport=DESKTOP) as (page, watch):
        await log_in(page, base)

        # The Payments page: the group owes ৳1000.
        await page.wait_for_load_state("networkidle")  # nothing of this page still loading when it is left
        await page.click("nav a[href='/payments']")
        await page.wait_for_url(base + "/payments")
        due = page.locator(f'#dues tr[data-id="{group}"] td[data-due]')
        await expect(due).to_have_text("৳1000")
        await expect(page.locator("#payments")).to_have_count(0)  # nothing received yet

        # Record a bKash payment through the form; the script shows the chosen group's due.
        await page.select_option("#p-group", group)
        await expect(page.locator("#p-due")).to_have_text("এখন বাকি: ৳1000")
        await expect(page.locator("#p-fill")).to_be_visible()
        await page.fill("#p-amount", "400")
        await expect(page.locator("#p-method")).to_have_value("bkash")
        await page.fill("#p-ref", TRX)
        await page.fill("#p-note", "প্রথম কিস্তি")
        await page.wait_for_load_state("networkidle")
        await page.click("#pay button[type=submit]")
        await page.wait_for_url(base + "/payments")

        # Redirected with a one-time message; the due dropped; the payment is listed.
        flash = page.locator(".flash")
        await expect(flash).to_contain_text("PA1")
        await expect(flash).to_contain_text("৳400")
        await expect(flash).to_contain_text("এখন বাকি: ৳600")
        await expect(due).to_have_text("৳600")
        row = page.locator('#payments tr[data-id="PA1"]')
        await expect(row).to_contain_text(TRX)
        await expect(row).to_contain_text("বিকাশ (bKash)")
        await expect(row).to_contain_text("৳400")
        await expect(row).to_contain_text("admin:admin")
        await screenshot(page, "payments")
        assert watch.take() == []

        # The Groups page shows the same due and leads to the ledger.
        await settled(page, base + "/groups")
        await expect(page.locator(f'#groups tr[data-id="{group}"] td[data-due]')).to_contain_text("৳600")
        await page.wait_for_load_state("networkidle")
        await page.click(f"#groups a[href='{ledger_path}']")
        await page.wait_for_url(base + ledger_path)
        await expect(page.locator("h1")).to_contain_text(GROUP_NAME)
        order_line = page.locator('#ledger tr[data-ref="A1"]')
        payment_line = page.locator('#ledger tr[data-ref="PA1"]')
        await expect(order_line.locator("td[data-balance]")).to_have_attribute("data-balance", "1000.00")
        await expect(payment_line).to_contain_text(f"bKash {TRX}")
        await expect(payment_line.locator("td[data-balance]")).to_have_attribute("data-balance", "600.00")
        await expect(page.locator("#ledger tfoot")).to_contain_text("৳600")
        await screenshot(page, "ledger")
        assert watch.take() == []

        # Today's report, and its CSV export downloaded from the form.
        await settled(page, base + "/reports")
        totals = page.locator('#report tr[data-id="totals"]')
        await expect(totals).to_contain_text("৳1000")
        await expect(totals).to_contain_text("৳400")
        await expect(page.locator(f'#report tr[data-id="{group}"]')).to_contain_text("৳600")
        async with page.expect_download() as downloading:
            await page.click("#export button[formaction='/api/export/payments.csv']")
        download = await downloading.value
        assert download.suggested_filename.startswith("payments-") and download.suggested_filename.endswith(".csv")
        saved = await download.path()
        rows = csv_rows(Path(saved).read_text(encoding="utf-8"))
        assert rows[1][:9] == ["PA1", rows[1][1], group, GROUP_NAME, "400.00", "400.00", "bkash", TRX, "প্রথম কিস্তি"]
        await screenshot(page, "reports")
        # A download ends its navigation early: chromium reports that request as aborted.
        assert [e for e in watch.take() if "/api/export/" not in e] == []

    # The same answers through the JSON API of the real system.
    api = bot.api
    payments = await asyncio.to_thread(api.get, "/api/payments")
    assert payments["total"] == 1 and payments["payments"][0]["amount"] == "400.00"
    assert payments["payments"][0]["at"].endswith("+06:00")
    ledger = await asyncio.to_thread(api.get, f"/api/groups/{quote(group, safe='')}/ledger")
    assert [(x["ref"], x["balance"]) for x in ledger["lines"]] == [("A1", "1000.00"), ("PA1", "600.00")]
    assert (ledger["billed"], ledger["paid"], ledger["due"]) == ("1000.00", "400.00", "600.00")
    report = await asyncio.to_thread(api.get, "/api/reports/daily")
    assert report["totals"] == {"orders": 1, "diamonds": 10, "revenue": "1000.00", "payments": "400.00"}
    status, text = await asyncio.to_thread(api.call, "GET", "/api/export/orders.csv")
    assert status == 200
    orders = csv_rows(text)
    a1 = dict(zip(orders[0], orders[1]))
    assert (a1["id"], a1["group_name"], a1["player_id"], a1["amount"]) == ("A1", GROUP_NAME, "", "1000.00")
    # A second payment through the API, then the due on the page.
    status, body = await asyncio.to_thread(api.post, "/api/payments",
                                           {"group_id": group, "amount": "600", "method": "নগদ"})
    assert status == 201 and body["due"] == "0.00" and body["payment"]["id"] == "PA2", body

    # On a phone: the form and the tables fit (tables scroll by themselves).
    async with open_page(browser, viewport=PHONE) as (page, watch):
        await log_in(page, base)
        await settled(page, base + "/payments")
        await expect(page.locator(f'#dues tr[data-id="{group}"] td[data-due]')).to_have_text("৳0")
        await screenshot(page, "payments-phone")
        for path in ("/payments", ledger_path, "/reports"):
            await settled(page, base + path)  # its icon and stylesheet loaded before the next page
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)

        # PA2 was a mistake: voided from its row, with a reason; the group owes ৳600 again.
        await settled(page, base + "/payments")
        row = page.locator('#payments tr[data-id="PA2"]')
        await row.locator("input[name=reason]").fill("ভুল এন্ট্রি")
        await row.get_by_role("button").click()
        await expect(page.locator(f'#dues tr[data-id="{group}"] td[data-due]')).to_have_text("৳600")
        await expect(page.locator('#payments tr[data-id="PA2"]')).to_contain_text("ভুল এন্ট্রি")
        assert watch.take() == []
    voided = (await asyncio.to_thread(api.get, "/api/payments"))["payments"]
    assert {p["id"]: (p["voided_at"] is not None, p["void_reason"]) for p in voided} == {
        "PA1": (False, ""), "PA2": (True, "ভুল এন্ট্রি")}
