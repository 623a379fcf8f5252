"""Issue 12's panel in a real browser on a phone's screen (chromium driven by Playwright), over
the in-memory bridge serving the contract's records: the player to top up is on each order's
card, labelled, also on a card that arrives live (orders.js fills the cells by position); a
group the bot knows before its first order shows that its rate is not set, its other settings
save without one, and once a rate is typed the mark goes and the rate is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from tests.browser import PHONE, browser, open_page, screenshot  # noqa: F401  (fixture)
from tests.fake_bridge import PASSWORD, FakeBridge, make_config, panel_client
from tests.test_browser_phone import no_sideways_scrolling, reachable

NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24 22:00 in Dhaka
ALPHA = "120363000000000001@g.us"
FRESH = "120363000000000002@g.us"
GONE = "120363000000000003@g.us"
GAME_ID = "576515275"
LIVE = 10_000  # ms

pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_group("রহিম স্টোর", rate="2.30", group_id=ALPHA)
    b.add_group("নতুন গ্রুপ", rate=None, group_id=FRESH, joined_at=NOW - 3600)
    b.add_group("Gone Shop", rate="3", group_id=GONE)
    b.leave_group(GONE, at=NOW - 600)
    b.add_order(ALPHA, 50, user_name="Alice", created_at=NOW - 300, player_id=GAME_ID)  # A1
    b.add_order(ALPHA, 10, user_name="Bob", created_at=NOW - 200)  # A2: `.10`
    return b


@pytest.fixture
async def panel(tmp_path: Path, bridge: FakeBridge) -> AsyncIterator[str]:
    """The panel (Bengali) on a real port; its base URL."""
    config = make_config(tmp_path / "data", **{"bot.language": "bn"})
    bridge.add_user("admin", PASSWORD)
    async with panel_client(config, bridge) as client:
        yield str(client.make_url("")).rstrip("/")


async def log_in(page: Page, base: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#username", "admin")
    await page.fill("#password", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(base + "/")


async def label_of(cell: Any) -> str:
    """The column name a phone card shows before a cell (labels.css, ::before)."""
    return str(await cell.evaluate("(e) => getComputedStyle(e, '::before').content")).strip('"')


async def test_the_player_is_on_every_order_card(panel: str, bridge: FakeBridge, browser: Any) -> None:  # noqa: F811
    async with open_page(browser, viewport=PHONE) as (page, watch):
        await log_in(page, panel)
        await page.goto(panel + "/orders")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        a1 = page.locator('#orders tr[data-id="A1"]')
        player = a1.locator("td.pid")
        await expect(player).to_have_text(GAME_ID)
        assert await label_of(player) == "প্লেয়ার আইডি"
        await reachable(player, "A1 player")
        await expect(page.locator('#orders tr[data-id="A2"] td.pid')).to_have_text("—")

        # An order arriving while the page is open: its cells in their columns.
        bridge.add_order(ALPHA, 75, user_name="Nadia", player_id="+8801712345678")  # A3
        a3 = page.locator('#orders tr[data-id="A3"]')
        await expect(a3).to_be_visible(timeout=LIVE)
        await expect(a3.locator("td.pid")).to_have_text("+8801712345678")
        await expect(a3.locator("td.num").nth(0)).to_have_text("75")
        await expect(a3.locator("td.num").nth(1)).to_have_text("৳172.50")
        assert await label_of(a3.locator("td.pid")) == "প্লেয়ার আইডি"
        await no_sideways_scrolling(page)
        await screenshot(page, "orders-phone-players")

        # The search box finds the order by its player.
        await page.fill("#f-q", GAME_ID)
        await page.click(".filters button[type=submit]")
        await expect(page.locator("#orders tbody tr")).to_have_count(1)
        await expect(page.locator("#orders tbody tr td.pid")).to_have_text(GAME_ID)
        assert watch.take() == []


async def test_a_group_without_a_rate_gets_one_on_a_phone(panel: str, bridge: FakeBridge,
                                                          browser: Any) -> None:  # noqa: F811
    async with open_page(browser, viewport=PHONE) as (page, watch):
        await log_in(page, panel)
        await page.goto(panel + "/groups")
        await page.wait_for_load_state("networkidle")
        row = page.locator(f'#groups tr[data-id="{FRESH}"]')
        mark = row.locator(".unset")
        await expect(mark).to_have_text("রেট দেওয়া হয়নি — রেট না দেওয়া পর্যন্ত অর্ডার নেওয়া হবে না")
        await reachable(mark, "the rate-not-set mark")
        await expect(page.locator(f'#groups tr[data-id="{GONE}"] .tag.gone')).to_have_text("গ্রুপ ছেড়েছে")
        await no_sideways_scrolling(page)
        await screenshot(page, "groups-phone-unrated")

        # Another setting of the row saves without a rate (the empty field is not sent).
        await row.locator('input[name="enabled"]').uncheck()
        await expect(row.locator(".saved")).to_have_text("সংরক্ষিত", timeout=LIVE)
        assert bridge.db.groups[FRESH].settings["enabled"] is False
        assert bridge.db.groups[FRESH].settings["rate"] is None
        await row.locator('button[type="submit"]').click()  # the whole row, rate still empty
        await expect(row.locator(".saved")).to_have_text("সংরক্ষিত", timeout=LIVE)
        assert bridge.calls[-1][2] == {"enabled": False, "auto_approve": False, "auto_approve_max": 0,
                                       "due_limit": ""}
        await expect(mark).to_be_visible()

        # The rate typed in: stored, shown in its stored form, the mark gone, the field required.
        rate = row.locator('input[name="rate"]')
        await rate.fill("2.3")
        await rate.press("Tab")
        await expect(rate).to_have_value("2.30", timeout=LIVE)
        await expect(mark).to_have_count(0)
        await expect(row).to_have_attribute("data-rate-set", "1")
        assert await rate.evaluate("(e) => e.required") is True
        assert bridge.db.groups[FRESH].settings["rate"] == "2.30"
        assert watch.take() == []
    # The first order there is billed at it.
    oid = bridge.add_order(FRESH, 100)
    assert bridge.record(oid)["amount"] == "230.00"
