"""Issue 13's panel in a real browser (chromium driven by Playwright).

Against the real system (run.py and the sandbox as processes): an owner adds a staff member on
the Users page; the staff member logs in, finds no Settings or Users in the navigation, gets the
"only an owner" page at /settings by its address, and is still a user after a restart.

Over the in-memory bridge serving the contract's shop (tests/fake_shop.py): an owner changes a
chat text on the Settings page and sees the preview follow the typing, is warned of a placeholder
the text does not offer, saves it; closing the shop asks first, showing the notice; an approval
is undone from the orders table. (That the next chat message uses the changed text is checked
against the real system once the actors' side of issue 13 has landed.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from playwright.async_api import Dialog, Page, expect

from domain.clock import FakeClock
from tests.browser import DESKTOP, PHONE, browser, open_page, screenshot  # noqa: F401  (fixture)
from tests.e2e import PASSWORD, Bot, Sandbox
from tests.fake_bridge import FakeBridge, make_config, panel_client

STAFF, STAFF_PW = "nasrin", "nasrins-long-password"
NOW = 1_764_000_000.0
ALPHA = "120363000000000001@g.us"
LIVE = 20_000


async def log_in(page: Page, base: str, user: str, password: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(base + "/")


# --- the real system: users and roles --------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sandbox, Bot]]:
    sandbox = Sandbox(tmp_path / "sandbox.json", tmp_path / "sandbox.log")
    sandbox.start()
    bot = Bot(tmp_path / "data", sandbox.url, tmp_path / "bot.log")
    try:
        bot.start()
        yield sandbox, bot
    finally:
        try:
            if bot.proc is not None:
                bot.stop()
        finally:
            sandbox.stop()


@pytest.mark.e2e
async def test_staff_log_in_and_cannot_open_settings(world: tuple[Sandbox, Bot], browser: Any) -> None:  # noqa: F811
    _, bot = world
    base = f"http://127.0.0.1:{bot.port}"
    async with open_page(browser, viewport=DESKTOP) as (page, watch):
        await log_in(page, base, "admin", PASSWORD)
        await expect(page.locator("nav a[href='/settings']")).to_have_count(1)
        await page.goto(base + "/users")
        await page.fill("#u-name", STAFF)
        await page.select_option("#u-role", "staff")
        await page.fill("#u-pass", STAFF_PW)
        await page.click("form[action='/users'] button.primary")
        await expect(page.locator(".flash")).to_contain_text(STAFF)
        await expect(page.locator(f"#users tr[data-name='{STAFF}'] select")).to_have_value("staff")
        await expect(page.locator("#user-audit")).to_contain_text(STAFF)
        assert watch.take() == []

    async with open_page(browser, viewport=PHONE) as (page, watch):
        await log_in(page, base, STAFF, STAFF_PW)
        await expect(page.locator("nav a[href='/orders']")).to_have_count(1)
        await expect(page.locator("nav a[href='/settings'], nav a[href='/users']")).to_have_count(0)
        await expect(page.locator("a.account")).to_have_text(STAFF)
        for path in ("/settings", "/users"):
            response = await page.goto(base + path)
            assert response is not None and response.status == 403, path
            await expect(page.locator("main .error")).to_contain_text("শুধু মালিক")
        response = await page.goto(base + "/orders")
        assert response is not None and response.status == 200
        await screenshot(page, "staff-orders-phone")
        await page.goto(base + "/account")
        await expect(page.locator("main")).to_contain_text("কর্মী")  # the role, in Bengali

    # The user is in the journal: after a restart, staff still log in as staff.
    await asyncio.to_thread(bot.stop)
    await asyncio.to_thread(bot.start)
    status, body = await asyncio.to_thread(bot.api.post, "/api/login", {"username": STAFF, "password": STAFF_PW})
    assert status == 200 and body["role"] == "staff", body


# --- over the contract's shop: settings, closing, undo ---------------------------------------


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge(clock=FakeClock(NOW))
    b.add_user("admin", PASSWORD)
    b.add_user(STAFF, STAFF_PW, "staff")
    b.add_group("রহিম স্টোর", group_id=ALPHA)
    b.add_order(ALPHA, 10)  # A1
    return b


@pytest.fixture
async def panel(tmp_path: Path, bridge: FakeBridge) -> AsyncIterator[str]:
    async with panel_client(make_config(tmp_path / "data", **{"bot.language": "bn"}), bridge) as client:
        yield str(client.make_url("")).rstrip("/")


@pytest.mark.usefixtures("cheap_hashes")
async def test_an_owner_changes_a_chat_text_and_sees_the_preview(panel: str, bridge: FakeBridge,
                                                                 browser: Any) -> None:  # noqa: F811
    async with open_page(browser, viewport=DESKTOP) as (page, watch):
        await log_in(page, panel, "admin", PASSWORD)
        await page.click("nav a[href='/settings']")
        await page.wait_for_url(panel + "/settings")
        text = page.locator("#t-bn-delivered")
        await text.locator("summary").click()
        area = text.locator("textarea[name='text']")
        preview = text.locator("pre.preview")
        await expect(preview).to_contain_text("💎 10 ডায়মন্ড")  # the default, with example values
        await area.fill("✅ হয়ে গেছে {order_id}\n💎 {diamonds} ডায়মন্ড {{ধন্যবাদ}}")
        await expect(preview).to_have_text("✅ হয়ে গেছে A1\n💎 10 ডায়মন্ড {ধন্যবাদ}")
        warn = text.locator("[data-warn]")
        await expect(warn).to_be_hidden()
        await area.fill("✅ {order_idd}")
        await expect(warn).to_be_visible()
        await expect(warn).to_contain_text("{order_idd}")
        await expect(preview).to_have_text("✅ {order_idd}")
        await area.fill("✅ হয়ে গেছে {order_id}\n💎 {diamonds} ডায়মন্ড")
        await expect(warn).to_be_hidden()
        await screenshot(page, "settings-text-preview")
        await text.locator("button[type=submit].primary").click()
        await page.wait_for_url(panel + "/settings#t-bn-delivered")
        await expect(page.locator(".flash")).to_be_visible()
        saved = page.locator("#t-bn-delivered")
        await expect(saved).to_have_attribute("open", "")  # opened again where it was saved
        await expect(saved.locator("pre.preview")).to_have_text("✅ হয়ে গেছে A1\n💎 10 ডায়মন্ড")
        await expect(saved.locator("summary .tag")).to_be_visible()  # marked changed
        assert bridge.shop.texts["bn"]["delivered"] == "✅ হয়ে গেছে {order_id}\n💎 {diamonds} ডায়মন্ড"
        assert watch.take() == []


@pytest.mark.usefixtures("cheap_hashes")
async def test_closing_asks_first_and_an_approval_is_undone(panel: str, bridge: FakeBridge,
                                                            browser: Any) -> None:  # noqa: F811
    async with open_page(browser, viewport=PHONE) as (page, watch):
        await log_in(page, panel, STAFF, STAFF_PW)  # staff open and close the day
        await expect(page.locator("#shop-state")).to_contain_text("খোলা")
        questions: list[str] = []

        def answer(accept: bool) -> Any:
            async def handle(dialog: Dialog) -> None:
                questions.append(dialog.message)
                await (dialog.accept() if accept else dialog.dismiss())
            return handle

        page.once("dialog", answer(False))
        await page.click("#shop-close")
        await page.wait_for_timeout(300)
        assert bridge.shop.open is True and questions and bridge.shop.notice in questions[0]
        page.once("dialog", answer(True))
        await page.click("#shop-close")
        await expect(page.locator("#shop-state")).to_contain_text("বন্ধ")
        assert bridge.shop.open is False
        await screenshot(page, "dashboard-shop-closed-phone")

        # Approve, then undo the mistake from the table: the row is pending again.
        await page.goto(panel + "/orders")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        row = page.locator('#orders tbody tr[data-id="A1"]')
        await row.locator('button[value="approve"]').click()
        await expect(row).to_have_attribute("data-status", "completed", timeout=LIVE)
        undo = row.locator('button[value="undo"]')
        await expect(undo).to_be_visible()
        await undo.click()
        await expect(row).to_have_attribute("data-status", "pending", timeout=LIVE)
        await expect(page.locator("#msg")).to_contain_text("A1")
        assert bridge.record("A1")["status"] == "pending"
        # Once the window has passed the server says so, and the page shows it.
        await row.locator('button[value="approve"]').click()
        await expect(row.locator('button[value="undo"]')).to_be_visible(timeout=LIVE)
        bridge.clock.advance(121)
        await row.locator('button[value="undo"]').click()
        await expect(page.locator("#msg")).to_contain_text("2 min")
        await expect(row.locator('button[value="undo"]')).to_be_hidden()
        # (chromium logs the refused request itself; nothing else went wrong)
        assert [e for e in watch.take() if "status of 409" not in e] == []
