"""The panel in a real browser against the real system: the sandbox and run.py as processes
(tests/e2e.py), chromium driven by Playwright (tests/browser.py).

A reseller's `.10` appears in the open orders table without a reload, one click approves it,
the row turns completed by itself and the Bengali delivery message is in the chat; a cancel
asks first; a rate is edited in place; every page loads without console errors; screenshots of
the dashboard and the orders page go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.async_api import Dialog, Page, expect

from tests.browser import DESKTOP, PHONE, browser, open_page, screenshot  # noqa: F401  (fixture)
from tests.e2e import Bot, PASSWORD, Sandbox, sandbox_and_bot

pytestmark = pytest.mark.e2e

DELIVERED = "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000\n🆔 A1"
ALICE, BOB = "76210050711676@lid", "76210050711677@lid"
PAGES = ["/", "/orders", "/orders/A1", "/reconciliation", "/groups", "/whatsapp"]
LIVE = 20_000  # ms: a change must reach the open page within this


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sandbox, Bot]]:
    with sandbox_and_bot(tmp_path) as world:
        yield world


async def chat_has(sandbox: Sandbox, group: str, text: str, quoted: str, timeout: float = 20) -> None:
    """Wait until the bot has posted `text` in the group, quoting message `quoted`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = await asyncio.to_thread(sandbox.messages, group)
        if any(m["from_bot"] and m["text"] == text and m["quoted_id"] == quoted for m in messages):
            return
        await asyncio.sleep(0.2)
    bot_texts = [m["text"] for m in messages if m["from_bot"]]
    raise AssertionError(f"the bot did not post {text!r} quoting {quoted}; it posted {bot_texts!r}")


async def bot_said(sandbox: Sandbox, group: str, quoted: str, timeout: float = 20) -> str:
    """The bot's first message in the group quoting message `quoted` (waited for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = await asyncio.to_thread(sandbox.messages, group)
        said = [m["text"] for m in messages if m["from_bot"] and m["quoted_id"] == quoted]
        if said:
            return said[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"the bot said nothing quoting {quoted}")


async def settled(page: Page, url: str) -> None:
    """Open a page and let its script start (the orders page: until its stream is live)."""
    await page.goto(url)
    if url.endswith("/orders"):
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    else:
        await page.wait_for_load_state("networkidle")


async def log_in(page: Page, base: str) -> None:
    """Through the login form, as a person does (a private page sends there first, and the
    login leads back to it)."""
    await page.goto(base + "/")
    assert page.url == base + "/login"
    await page.fill("#username", "admin")
    await page.fill("#password", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(base + "/")


async def test_an_order_from_chat_to_delivery_live_in_the_browser(world: tuple[Sandbox, Bot],
                                                                   browser: Any) -> None:  # noqa: F811
    sandbox, bot = world
    base = f"http://127.0.0.1:{bot.port}"
    group = await asyncio.to_thread(sandbox.create_group, "Rahim Store")

    async with open_page(browser, viewport=DESKTOP) as (page, watch):
        await log_in(page, base)
        assert watch.take() == []

        # The orders table, its live stream connected.
        await page.goto(base + "/orders")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        loaded = len(watch.navigations)

        # A reseller posts .10: the row appears without a reload.
        first = await asyncio.to_thread(sandbox.post, group, ALICE, ".10", "Alice")
        row = page.locator('#orders tbody tr[data-id="A1"]')
        await expect(row).to_be_visible(timeout=LIVE)
        await expect(row).to_have_attribute("data-status", "pending")
        await expect(row).to_contain_text("Alice")
        await expect(row).to_contain_text("৳1000")
        await expect(row.locator("td.pid")).to_have_text("—")  # a `.10` order names no player

        # One click approves it; the row turns completed by itself once the delivery is sent.
        await row.locator('button[value="approve"]').click()
        await expect(row).to_have_attribute("data-status", "completed", timeout=LIVE)
        # Nothing more to do with it (but undo its approval, while the shop's undo window is open).
        await expect(row.locator('button:visible:not([value="undo"])')).to_have_count(0)
        assert len(watch.navigations) == loaded, watch.navigations  # never reloaded
        await chat_has(sandbox, group, DELIVERED, first["id"])

        # Cancel asks first; refusing the question changes nothing, accepting it cancels.
        second = await asyncio.to_thread(sandbox.post, group, BOB, ".20", "Bob")
        row2 = page.locator('#orders tbody tr[data-id="A2"]')
        await expect(row2).to_have_attribute("data-status", "pending", timeout=LIVE)
        questions: list[str] = []

        def answer(accept: bool) -> Any:
            async def handle(dialog: Dialog) -> None:
                questions.append(dialog.message)
                await (dialog.accept() if accept else dialog.dismiss())
            return handle

        page.once("dialog", answer(False))
        await row2.locator('button[value="cancel"]').click()
        await page.wait_for_timeout(500)
        await expect(row2).to_have_attribute("data-status", "pending")
        page.once("dialog", answer(True))
        await row2.locator('button[value="cancel"]').click()
        await expect(row2).to_have_attribute("data-status", "cancelled", timeout=LIVE)
        assert len(questions) == 2 and all("A2" in q for q in questions)
        await chat_has(sandbox, group, "❌ আপনার অর্ডার বাতিল করা হয়েছে\n🆔 A2\n💎 20 ডায়মন্ড", second["id"])
        assert len(watch.navigations) == loaded

        # The player's game ID on one line, the diamonds on the next: the row names the player.
        third = await asyncio.to_thread(sandbox.post, group, ALICE, "5123456789\n50", "Alice")
        row3 = page.locator('#orders tbody tr[data-id="A3"]')
        await expect(row3).to_have_attribute("data-status", "pending", timeout=LIVE)
        await expect(row3.locator("td.pid")).to_have_text("5123456789")
        await expect(row3).to_contain_text("৳5000")
        receipt = await bot_said(sandbox, group, third["id"])
        assert "🎮 5123456789" in receipt and "💎 50" in receipt, receipt
        await screenshot(page, "orders")
        assert watch.take() == []

        # Every page loads without a console error, a script error or a failed request.
        for path in PAGES:
            await settled(page, base + path)
            assert await page.locator("h1").count() == 1, path
            assert watch.take() == [], path

        # The dashboard's figures, refreshed from /api/dashboard.
        await page.goto(base + "/")
        await expect(page.locator('[data-k="orders.completed"]')).to_have_text("1")
        await expect(page.locator('[data-k="orders.cancelled"]')).to_have_text("1")
        await expect(page.locator('[data-tone-k="gateway"]')).to_have_attribute("data-tone", "ok")
        assert await page.locator("svg[data-chart] rect").count() == 24 + 14
        await screenshot(page, "dashboard")

        # A rate edited in place is validated, saved and shown in its stored form.
        await page.goto(base + "/groups")
        rate = page.locator('#groups input[name="rate"]').first
        await rate.fill("12.5")
        await rate.press("Tab")
        await expect(rate).to_have_value("12.50", timeout=LIVE)
        groups = await asyncio.to_thread(bot.api.get, "/api/groups")
        assert groups["groups"][0]["rate"] == "12.50"
        # A value the browser knows is wrong is said in the row ("Saved" does not stay); the
        # due limit is edited the same way.
        row = page.locator("#groups tbody tr").first
        await rate.fill("1e3")
        await rate.press("Tab")
        await expect(row.locator(".saved")).to_contain_text("সংরক্ষিত হয়নি")
        await rate.fill("12.50")
        limit = row.locator('input[name="due_limit"]')
        await limit.fill("5000")
        await limit.press("Tab")
        await expect(limit).to_have_value("5000.00", timeout=LIVE)
        groups = await asyncio.to_thread(bot.api.get, "/api/groups")
        assert (groups["groups"][0]["rate"], groups["groups"][0]["due_limit"]) == ("12.50", "5000.00")
        assert watch.take() == []

    # The same pages on a phone's screen.
    async with open_page(browser, viewport=PHONE) as (page, watch):
        await log_in(page, base)
        for path, name in (("/", "dashboard-phone"), ("/orders", "orders-phone")):
            await settled(page, base + path)
            # Nothing wider than the screen but the tables, which scroll by themselves.
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)
            await screenshot(page, name)
        assert watch.take() == []
