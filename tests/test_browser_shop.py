"""Issue 13's panel in a real browser (chromium driven by Playwright).

Against the real system (run.py and the sandbox as processes): an owner adds a staff member on
the Users page; the staff member logs in, finds no Settings or Users in the navigation, gets the
"only an owner" page at /settings by its address, closes the shop from the Dashboard (asked
first, with the notice every group gets, which the group then gets), and is still a user after
a restart. An owner changes the receipt on the Settings page, the preview following the typing
and a placeholder the text does not offer pointed out, and the bot's next receipt in the sandbox
is the new text; an approval is undone from the orders table: the row is pending again and the
chat gets the correction. An owner sets the stock on the Dashboard; when an approval takes the
last of it, the open Dashboard shows the shop closed (and opens it again).

Over the in-memory bridge (tests/fake_bridge.py, with the real shop rules), whose clock a test
moves on: an undo after the window is refused and the page says why.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from playwright.async_api import Dialog, Page, expect

from domain.clock import FakeClock
from tests.browser import DESKTOP, PHONE, browser, open_page, screenshot  # noqa: F401  (fixture)
from tests.e2e import Bot, PASSWORD, Sandbox, sandbox_and_bot
from tests.fake_bridge import FakeBridge, make_config, panel_client
from tests.test_browser_panel import ALICE, chat_has

STAFF, STAFF_PW = "nasrin", "nasrins-long-password"
NOW = 1_764_000_000.0
ALPHA = "120363000000000001@g.us"
LIVE = 20_000
CLOSED = "⛔ আজ ডায়মন্ড বন্ধ। খোলার সময় জানিয়ে দেওয়া হবে।"  # config/default.toml's shop_closed
RECEIPT = "📥 পেয়েছি {order_id}\n💎 {diamonds} ডায়মন্ড ৳{rate} হারে {{ধন্যবাদ}}"
RECEIPT_A1 = "📥 পেয়েছি A1\n💎 10 ডায়মন্ড ৳100 হারে {ধন্যবাদ}"  # as the preview and the chat show it


async def log_in(page: Page, base: str, user: str, password: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(base + "/")


def answering(questions: list[str], accept: bool) -> Any:
    """A dialog handler that notes the question and accepts or dismisses it."""
    async def handle(dialog: Dialog) -> None:
        questions.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())
    return handle


# --- the real system -------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sandbox, Bot]]:
    with sandbox_and_bot(tmp_path) as world:
        yield world


@pytest.mark.e2e
async def test_staff_log_in_and_cannot_open_settings(world: tuple[Sandbox, Bot], browser: Any) -> None:  # noqa: F811
    sandbox, bot = world
    base = f"http://127.0.0.1:{bot.port}"
    group = await asyncio.to_thread(sandbox.create_group, "রহিম স্টোর")
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
        # chromium logs the two refused pages (403) itself; nothing else went wrong
        assert [e for e in watch.take() if "status of 403" not in e] == []

        # Staff close the day from the Dashboard: asked first, with the notice every group gets.
        await page.goto(base + "/")
        await expect(page.locator("#shop-state")).to_contain_text("খোলা")
        questions: list[str] = []
        page.once("dialog", answering(questions, False))
        await page.click("#shop-close")
        await page.wait_for_timeout(300)
        assert questions and CLOSED in questions[0], questions
        assert (await asyncio.to_thread(bot.api.get, "/api/shop"))["open"] is True
        page.once("dialog", answering(questions, True))
        await page.click("#shop-close")
        await expect(page.locator("#shop-state")).to_contain_text("বন্ধ")
        await screenshot(page, "dashboard-shop-closed-phone")
        await chat_has(sandbox, group, CLOSED, "")
        assert (await asyncio.to_thread(bot.api.get, "/api/shop"))["audit"][0]["by"] == f"admin:{STAFF}"
        assert watch.take() == []

    # The user is in the journal: after a restart, staff still log in as staff.
    await asyncio.to_thread(bot.stop)
    await asyncio.to_thread(bot.start)
    status, body = await asyncio.to_thread(bot.api.post, "/api/login", {"username": STAFF, "password": STAFF_PW})
    assert status == 200 and body["role"] == "staff", body


@pytest.mark.e2e
async def test_an_owner_changes_a_chat_text_and_the_next_message_uses_it(world: tuple[Sandbox, Bot],
                                                                         browser: Any) -> None:  # noqa: F811
    sandbox, bot = world
    base = f"http://127.0.0.1:{bot.port}"
    group = await asyncio.to_thread(sandbox.create_group, "রহিম স্টোর")
    async with open_page(browser, viewport=DESKTOP) as (page, watch):
        await log_in(page, base, "admin", PASSWORD)
        await page.click("nav a[href='/settings']")
        await page.wait_for_url(base + "/settings")
        text = page.locator("#t-bn-received")
        await text.locator("summary").click()
        area = text.locator("textarea[name='text']")
        preview = text.locator("pre.preview")
        await expect(preview).to_contain_text("📥 অর্ডার গ্রহণ করা হয়েছে")  # the default, with example values
        await area.fill(RECEIPT)  # {rate}: offered, though the default does not use it
        await expect(preview).to_have_text(RECEIPT_A1)
        warn = text.locator("[data-warn]")
        await expect(warn).to_be_hidden()
        await area.fill("📥 {order_idd}")
        await expect(warn).to_be_visible()
        await expect(warn).to_contain_text("{order_idd}")
        await expect(preview).to_have_text("📥 {order_idd}")
        await area.fill(RECEIPT)
        await expect(warn).to_be_hidden()
        await screenshot(page, "settings-text-preview")
        await text.locator("button[type=submit].primary").click()
        await page.wait_for_url(base + "/settings#t-bn-received")
        await expect(page.locator(".flash")).to_be_visible()
        saved = page.locator("#t-bn-received")
        await expect(saved).to_have_attribute("open", "")  # opened again where it was saved
        await expect(saved.locator("pre.preview")).to_have_text(RECEIPT_A1)
        await expect(saved.locator("summary .tag")).to_be_visible()  # marked changed
        await expect(page.locator("#settings-audit")).to_contain_text("bn.received")
        assert watch.take() == []

        # The bot's next message is the new receipt.
        first = await asyncio.to_thread(sandbox.post, group, ALICE, ".10", "Alice")
        await chat_has(sandbox, group, RECEIPT_A1, first["id"])

        # Approve from the orders table, then undo the mistake there: pending again, corrected in the chat.
        await page.goto(base + "/orders")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        row = page.locator('#orders tbody tr[data-id="A1"]')
        await row.locator('button[value="approve"]').click()
        await expect(row).to_have_attribute("data-status", "completed", timeout=LIVE)
        await chat_has(sandbox, group, "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000\n🆔 A1", first["id"])
        undo = row.locator('button[value="undo"]')
        await expect(undo).to_be_visible()
        await undo.click()
        await expect(row).to_have_attribute("data-status", "pending", timeout=LIVE)
        await expect(page.locator("#msg")).to_contain_text("A1")
        await expect(undo).to_be_hidden()
        await chat_has(sandbox, group, "↩️ ভুল করে অনুমোদন হয়েছিল: অর্ডার A1 আবার অপেক্ষমাণ।", first["id"])
        order = await asyncio.to_thread(bot.api.get, "/api/orders/A1")
        assert (order["status"], order["audit"][-1]["by"]) == ("pending", "admin:admin")
        await screenshot(page, "orders-undone")
        assert watch.take() == []


@pytest.mark.e2e
async def test_the_dashboard_card_sets_the_stock_and_follows_the_shop_closing_itself(
        world: tuple[Sandbox, Bot], browser: Any) -> None:  # noqa: F811
    sandbox, bot = world
    base = f"http://127.0.0.1:{bot.port}"
    group = await asyncio.to_thread(sandbox.create_group, "রহিম স্টোর")
    async with open_page(browser, viewport=DESKTOP) as (page, watch):
        await log_in(page, base, "admin", PASSWORD)
        await expect(page.locator("#shop-stock-now")).to_have_text("গোনা হচ্ছে না")  # not counted
        await page.fill("#shop-stock", "10")
        await page.click("form:has(#shop-stock) button[type=submit]")
        await expect(page.locator(".flash")).to_contain_text("10")
        await expect(page.locator("#shop-stock-now")).to_contain_text("10")
        assert (await asyncio.to_thread(bot.api.get, "/api/shop"))["stock"] == 10

        # The last of the stock goes with an approval elsewhere; the open Dashboard follows.
        first = await asyncio.to_thread(sandbox.post, group, ALICE, ".10", "Alice")
        await chat_has(sandbox, group, "📥 অর্ডার গ্রহণ করা হয়েছে\n🆔 A1\n💎 10 ডায়মন্ড\n💰 ৳1000", first["id"])
        status, body = await asyncio.to_thread(bot.api.post, "/api/orders/A1/approve")
        assert status == 200, body
        await chat_has(sandbox, group, CLOSED, "")
        await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # refresh now, not in 10 s
        await expect(page.locator("#shop-state")).to_have_text("বন্ধ: অর্ডার নেওয়া হচ্ছে না")
        await expect(page.locator("#shop-state")).to_have_class(re.compile(r"\bstate-closed\b"))
        await expect(page.locator("#shop-stock-now")).to_contain_text("0")
        await expect(page.locator("#shop-close")).to_be_hidden()
        await page.click("#shop-open")  # and it opens again from there
        await expect(page.locator(".flash")).to_be_visible()
        await expect(page.locator("#shop-state")).to_have_text("খোলা: অর্ডার নেওয়া হচ্ছে")
        await chat_has(sandbox, group, "✅ দোকান খোলা — অর্ডার দিন।", "")
        await screenshot(page, "dashboard-shop")
        assert watch.take() == []


# --- over the in-memory bridge: a late undo --------------------------------------------------


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
async def test_a_late_undo_is_refused_and_the_page_says_why(panel: str, bridge: FakeBridge,
                                                            browser: Any) -> None:  # noqa: F811
    async with open_page(browser, viewport=PHONE) as (page, watch):
        await log_in(page, panel, STAFF, STAFF_PW)  # staff undo, like approve
        await page.goto(panel + "/orders")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        row = page.locator('#orders tbody tr[data-id="A1"]')
        await row.locator('button[value="approve"]').click()
        await expect(row.locator('button[value="undo"]')).to_be_visible(timeout=LIVE)
        bridge.clock.advance(121)  # the page still offers it (its clock is the browser's); the bot refuses
        await row.locator('button[value="undo"]').click()
        await expect(page.locator("#msg")).to_contain_text("2 min")
        await expect(row.locator('button[value="undo"]')).to_be_hidden()
        assert bridge.record("A1")["status"] == "completed"
        # (chromium logs the refused request itself; nothing else went wrong)
        assert [e for e in watch.take() if "status of 409" not in e] == []
