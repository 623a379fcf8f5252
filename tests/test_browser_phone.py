"""The panel on a phone (390 px wide) against the real system: every action of every order row
and every field of every group row is on the screen without sideways scrolling (the tables turn
into one card per row below a width), and they work there: an approval and a rate edited from
the phone. Large amounts read in lakh and crore, also in rows that arrive live.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser import PHONE, browser, open_page, screenshot  # noqa: F401  (fixture)
from tests.e2e import Bot, Sandbox, wait_for
from tests.test_browser_panel import ALICE, BOB, LIVE, log_in, settled, world  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e

WIDTH = PHONE["width"]


async def no_sideways_scrolling(page: Page) -> None:
    """Neither the page nor any box inside it is wider than the screen."""
    widths = await page.evaluate("""() => ({
        page: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
        boxes: [...document.querySelectorAll('.scroll, table, main')]
            .filter((e) => e.scrollWidth > e.clientWidth + 1)
            .map((e) => `${e.tagName}#${e.id}.${e.className} ${e.scrollWidth}>${e.clientWidth}`),
    })""")
    assert widths["page"] <= WIDTH and widths["body"] <= WIDTH and widths["boxes"] == [], widths


async def reachable(element: Locator, what: str) -> None:
    """On screen once scrolled to (vertically only): inside the viewport's width, not covered."""
    box = None
    for _ in range(3):
        await element.scroll_into_view_if_needed()
        box = await element.bounding_box()
        if box is not None:
            break
        # None: the live table replaced the row (an update of the order, such as its receipt
        # confirmed, arrived) between the two calls; the locator finds the new row next time.
        await expect(element).to_be_visible()
    assert box is not None, what
    assert 0 <= box["x"] and box["x"] + box["width"] <= WIDTH + 0.5, (what, box)
    assert box["width"] > 0 and box["height"] > 0, (what, box)
    assert await element.page.evaluate("window.scrollX") == 0, what


async def test_every_order_action_and_group_field_is_on_a_phones_screen(world: tuple[Sandbox, Bot],
                                                                          browser: Any) -> None:  # noqa: F811
    sandbox, bot = world
    base = f"http://127.0.0.1:{bot.port}"
    group = await asyncio.to_thread(sandbox.create_group, "রহিম স্টোর — the long name of a reseller group")
    await asyncio.to_thread(sandbox.post, group, ALICE, ".10", "Alice")  # A1 pending: every action
    # Taken before the next is posted: this test is about the phone's screen, not the numbering of
    # two orders posted together to a group created a moment ago, which can still come out the
    # other way round now and then (the gateway's part is fixed and tested in
    # tests/test_actors_gateway.py; another path is not yet found).
    await asyncio.to_thread(wait_for, lambda: bot.api.call("GET", "/api/orders/A1")[0] == 200, 20,
                            "order A1 to be taken")
    await asyncio.to_thread(sandbox.post, group, BOB, ".100000", "Bob with a rather long display name")  # A2
    await asyncio.to_thread(wait_for, lambda: bot.api.post("/api/orders/A2/process")[0] == 200, 20,
                            "order A2 to be taken and processed")

    async with open_page(browser, viewport=PHONE) as (page, watch):
        await log_in(page, base)
        await settled(page, base + "/orders")
        rows = page.locator("#orders tbody tr")
        await expect(rows).to_have_count(2)
        # A reseller's order arriving while the page is open is a card like the others.
        await asyncio.to_thread(sandbox.post, group, ALICE, ".1000", "Alice")  # A3: ৳1,00,000
        await expect(rows).to_have_count(3, timeout=LIVE)
        await expect(page.locator('#orders tr[data-id="A3"]')).to_contain_text("৳1,00,000")
        await expect(page.locator('#orders tr[data-id="A2"]')).to_contain_text("৳1,00,00,000")
        await expect(page.locator('#orders tr[data-id="A2"]')).to_have_attribute("data-status", "processing")
        await no_sideways_scrolling(page)
        seen = 0
        for i in range(await rows.count()):
            row = rows.nth(i)
            order = await row.get_attribute("data-id")
            buttons = row.locator("button:visible")
            assert await buttons.count() >= 2, order
            for j in range(await buttons.count()):
                await reachable(buttons.nth(j), f"{order} {await buttons.nth(j).get_attribute('value')}")
                seen += 1
            for cell in ("a", ".st", "time", "td.pid"):
                await reachable(row.locator(cell).first, f"{order} {cell}")
        assert seen == 4 + 3 + 4  # pending: process, approve, cancel, delete; processing: approve, cancel, delete
        await screenshot(page, "orders-phone-cards")
        # The buttons work where they are: approve A1 with a click.
        await page.locator('#orders tr[data-id="A1"] button[value="approve"]').click()
        await expect(page.locator('#orders tr[data-id="A1"]')).to_have_attribute("data-status", "completed",
                                                                                 timeout=LIVE)
        await no_sideways_scrolling(page)

        # Groups: every field of the row on the screen, and a rate edited there.
        await settled(page, base + "/groups")
        await no_sideways_scrolling(page)
        row = page.locator("#groups tbody tr").first
        for name in ("enabled", "rate", "auto_approve", "auto_approve_max", "due_limit"):
            await reachable(row.locator(f'input[name="{name}"]'), name)
        await reachable(row.locator('button[type="submit"]'), "save")
        await reachable(row.locator("a").first, "orders link")
        rate = row.locator('input[name="rate"]')
        await rate.fill("95.5")
        await rate.press("Tab")
        await expect(rate).to_have_value("95.50", timeout=LIVE)
        await screenshot(page, "groups-phone-cards")
        assert watch.take() == []
    groups = await asyncio.to_thread(bot.api.get, "/api/groups")
    assert groups["groups"][0]["rate"] == "95.50"
