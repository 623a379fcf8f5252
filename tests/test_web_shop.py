"""Issue 13's panel over the in-memory bridge (tests/fake_shop.py: the Supervisor's shop rules,
domain.shop, held in memory): the shop's API (GET/PATCH /api/shop, undo, reminders) with bad
input and refusals that change nothing; the Dashboard's shop card (close asks first, owners edit
the notice and the stock, the refresh gives the shop); Undo on the orders and the order page
within the window only; the Settings page's
sections, chat texts with previews, resets and switches, and its audit; reminders from the
Payments page with a confirmation that says how many groups; a bot that does not give the shop."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from domain.clock import FakeClock
from domain.orders import Action
from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client
from config.loader import TEMPLATE_NAMES
from web.chat_texts import TITLES, preview, samples

pytestmark = pytest.mark.usefixtures("cheap_hashes")

NOW = 1_764_000_000.0
ALPHA, BETA, GAMMA = "120363000000000001@g.us", "120363000000000002@g.us", "120363000000000003@g.us"
STAFF_PW = "nasrins-long-password"


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge(clock=FakeClock(NOW))
    b.add_user("admin", PASSWORD)
    b.add_user("nasrin", STAFF_PW, "staff")
    b.add_group("Alpha", group_id=ALPHA)
    b.add_group("Beta", group_id=BETA)
    b.add_group("Gamma", group_id=GAMMA)
    b.add_order(ALPHA, 10, actions=(Action.APPROVE,))  # A1: approved just now
    b.add_order(ALPHA, 5)  # A2: pending
    b.add_order(BETA, 7, actions=(Action.APPROVE, Action.COMPLETE))  # B1: billed ৳700
    b.add_order(GAMMA, 2, actions=(Action.APPROVE, Action.COMPLETE))  # C1: billed ৳200
    return b


@pytest.fixture
async def client(tmp_path: Path, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    async with panel_client(make_config(tmp_path / "data", **{"bot.language": "en"}), bridge) as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


# --- the API ----------------------------------------------------------------------------------


async def test_get_and_patch_the_shop(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(client)
    shop = await (await client.get("/api/shop")).json()
    assert shop["open"] is True and shop["stock"] is None and isinstance(shop["notice"], str)
    assert {"admins", "payment", "approvals", "texts", "audit"} <= set(shop)
    resp = await client.patch("/api/shop", json={"open": False, "notice": "আজ বন্ধ", "stock": 5000},
                              headers={"X-CSRF-Token": token})
    assert resp.status == 200
    body = await resp.json()
    assert (body["open"], body["notice"], body["stock"]) == (False, "আজ বন্ধ", 5000)
    assert body["audit"][0]["by"] == "admin:admin"
    assert (await (await client.patch("/api/shop", json={"stock": None}, headers={"X-CSRF-Token": token})).json())[
        "stock"] is None
    assert ("update_shop", {"stock": None}, "admin:admin") in bridge.calls


@pytest.mark.parametrize("patch, words", [
    ({"open": "yes"}, "open:"), ({"stock": -1}, "stock:"), ({"stock": 1.5}, "stock:"), ({"notice": ""}, "notice:"),
    ({"colour": "red"}, "colour: not a shop setting"), ({"open": True, "stock": "lots"}, "stock:"),
    ({"texts": {"bn": {"received": "{nope}"}}}, "{nope}"), ({"texts_enabled": {"delivered": False}}, "optional"),
    ({"admins": ["not a phone"]}, "admins:"), ({"approvals": {"undo_window": 9999}}, "undo_window"),
])
async def test_bad_patches_are_refused_and_change_nothing(client: TestClient[Any, Any], bridge: FakeBridge,
                                                          patch: dict[str, Any], words: str) -> None:
    token = await login(client)
    before = bridge.shop.view()
    resp = await client.patch("/api/shop", json=patch, headers={"X-CSRF-Token": token})
    assert resp.status == 400 and words in (await resp.json())["error"]
    assert bridge.shop.view() == before


async def test_malformed_shop_bodies_are_400(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(client)
    for body in (b"", b"[1]", b"{not json"):
        resp = await client.patch("/api/shop", data=body, headers={"X-CSRF-Token": token,
                                                                   "Content-Type": "application/json"})
        assert resp.status == 400
    assert not [c for c in bridge.calls if c[0] == "update_shop"]


async def test_undo_within_the_window_then_409(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(client, "nasrin", STAFF_PW)  # staff may undo, like approve
    h = {"X-CSRF-Token": token}
    resp = await client.post("/api/orders/A1/undo", headers=h)
    assert resp.status == 200
    order = (await resp.json())["order"]
    assert order["status"] == "pending" and order["audit"][-1]["by"] == "admin:nasrin"
    again = await client.post("/api/orders/A1/undo", headers=h)
    assert again.status == 409 and "only an approved order can be undone" in (await again.json())["error"]
    assert (await client.post("/api/orders/Z9/undo", headers=h)).status == 404
    await client.post("/api/orders/A1/approve", headers=h)
    bridge.clock.advance(121)
    late = await client.post("/api/orders/A1/undo", headers=h)
    assert late.status == 409 and "approved more than 2 min ago; the undo window has passed" in (await late.json())["error"]
    assert bridge.record("A1")["status"] == "completed"


async def test_reminders(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(client, "nasrin", STAFF_PW)  # staff send reminders, like recording payments
    h = {"X-CSRF-Token": token}
    over = await client.post("/api/reminders", json={"min_due": "500"}, headers=h)
    assert over.status == 200 and await over.json() == {  # ৳1000, ৳700, ৳200
        "sent": [ALPHA, BETA], "skipped": {GAMMA: "due ৳200.00 is not over ৳500.00"}}
    one = await client.post("/api/reminders", json={"group_ids": [GAMMA, "nope@g.us"]}, headers=h)
    assert await one.json() == {"sent": [GAMMA], "skipped": {"nope@g.us": "no such group"}}
    assert bridge.reminders == [(ALPHA, "1000.00"), (BETA, "700.00"), (GAMMA, "200.00")]
    assert ("send_reminders", (), "500.00", "admin:nasrin") in bridge.calls
    for body, words in [({}, "group_ids"), ({"min_due": "-5"}, "min_due"), ({"min_due": "lots"}, "min_due"),
                        ({"group_ids": []}, "group_ids"), ({"group_ids": [1]}, "group_ids"),
                        ({"group_ids": [GAMMA], "min_due": "1"}, "group_ids")]:
        resp = await client.post("/api/reminders", json=body, headers=h)
        assert resp.status == 400 and words in (await resp.json())["error"], body
    assert len(bridge.reminders) == 3


# --- the dashboard ----------------------------------------------------------------------------


async def test_the_dashboard_shows_the_shop_and_closing_asks_first(client: TestClient[Any, Any],
                                                                  bridge: FakeBridge) -> None:
    await login(client, "nasrin", STAFF_PW)
    html = await (await client.get("/")).text()
    token = csrf_of(html)
    card = html[html.index('id="shop"'):html.index("</section>", html.index('id="shop"'))]
    assert "Open: taking orders" in card and "Close the shop" in card and "Not counted" in card
    assert 'data-shop="close" data-confirm=' in card and unescape(bridge.shop.notice) in unescape(card)
    assert '<form method="post" action="/shop" class="inline" data-shop="open" hidden>' in card
    assert "<textarea" not in card and 'name="stock"' not in card  # staff see the notice and stock only
    asked = await client.post("/shop", data={"csrf_token": token, "action": "close"})
    text = await asked.text()
    assert asked.status == 200 and "Yes, close the shop" in text and bridge.shop.open is True
    closed = await client.post("/shop", data={"csrf_token": token, "action": "close", "confirm": "yes"})
    assert closed.status == 200 and "The shop is closed" in await closed.text() and bridge.shop.open is False
    html = await (await client.get("/")).text()
    assert "Closed: no orders are taken" in html and 'data-shop="open">' in html and "Open the shop" in html
    assert re.search(r'data-shop="close" data-confirm="[^"]*" hidden>', html)


async def test_the_dashboard_refresh_gives_the_shop(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(client, "nasrin", STAFF_PW)
    bridge.shop.update({"stock": 10}, "admin:admin", NOW)
    data = await (await client.get("/api/dashboard")).json()
    assert data["shop"] == {"open": True, "stock": 10}
    assert (data["display"]["shop.state"], data["display"]["shop.stock"]) == ("Open: taking orders", "10 diamonds left")
    token = csrf_of(await (await client.get("/orders")).text())
    await client.post("/orders/A2", data={"csrf_token": token, "action": "approve"})  # 5 of the 10
    bridge.add_order(ALPHA, 5)
    await client.post("/orders/A3", data={"csrf_token": token, "action": "approve"})  # the last 5
    data = await (await client.get("/api/dashboard")).json()
    assert data["shop"] == {"open": False, "stock": 0}
    assert (data["display"]["shop.state"], data["display"]["shop.stock"]) == ("Closed: no orders are taken",
                                                                              "0 diamonds left")
    bridge.shop_answers = False  # a bot that does not give the shop: the figures come without it
    data = await (await client.get("/api/dashboard")).json()
    assert data["shop"] is None and "shop.state" not in data["display"] and data["orders"]["total"] == 5


async def test_owners_edit_the_notice_and_the_stock_on_the_dashboard(client: TestClient[Any, Any],
                                                                     bridge: FakeBridge) -> None:
    await login(client)
    html = await (await client.get("/")).text()
    token = csrf_of(html)
    assert '<textarea id="shop-notice"' in html and 'id="shop-stock"' in html
    saved = await client.post("/shop", data={"csrf_token": token, "action": "notice",
                                             "notice": "কাল সকাল ১০টায় খুলবে\r\nধন্যবাদ"})
    assert saved.status == 200 and bridge.shop.notice == "কাল সকাল ১০টায় খুলবে\nধন্যবাদ"
    stocked = await client.post("/shop", data={"csrf_token": token, "action": "stock", "stock": "5,000"})
    assert "5,000 diamonds" in await stocked.text() and bridge.shop.stock == 5000
    bad = await client.post("/shop", data={"csrf_token": token, "action": "stock", "stock": "-3"})
    assert bad.status == 400 and bridge.shop.stock == 5000
    empty = await client.post("/shop", data={"csrf_token": token, "action": "notice", "notice": " "})
    assert empty.status == 400 and "notice:" in await empty.text()
    await client.post("/shop", data={"csrf_token": token, "action": "stock", "stock": ""})
    assert bridge.shop.stock is None


async def test_a_bot_that_does_not_give_the_shop_still_serves_the_pages(client: TestClient[Any, Any],
                                                                        bridge: FakeBridge) -> None:
    await login(client)
    bridge.shop_answers = False
    html = await (await client.get("/")).text()
    assert "not available right now" in html
    orders = await client.get("/orders")
    assert orders.status == 200 and 'value="undo"' not in (await orders.text()).split('id="row-tpl"')[0]
    asked = len([c for c in bridge.calls if c[0] == "get_shop"])
    await client.get("/")  # within SHOP_RETRY: not asked again
    assert len([c for c in bridge.calls if c[0] == "get_shop"]) == asked
    assert (await client.get("/api/shop")).status == 503  # the API says so


# --- undo on the pages ------------------------------------------------------------------------


async def test_undo_is_offered_within_the_window_only(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(client)
    html = await (await client.get("/orders")).text()
    rows = html.split('id="row-tpl"')[0]
    a1 = rows[rows.index('data-id="A1"'):rows.index("</tr>", rows.index('data-id="A1"'))]
    assert f'value="undo" data-until="{int((NOW + 120) * 1000)}"' in a1
    a2 = rows[rows.index('data-id="A2"'):rows.index("</tr>", rows.index('data-id="A2"'))]
    assert 'value="undo"' not in a2
    assert 'data-undo="120"' in html and f'data-now="{int(NOW * 1000)}"' in html
    page = await (await client.get("/orders/A1")).text()
    token = csrf_of(page)
    assert 'value="undo"' in page
    done = await client.post("/orders/A1", data={"csrf_token": token, "action": "undo", "next": "/orders/A1"})
    assert done.status == 200 and "undone" in await done.text() and bridge.record("A1")["status"] == "pending"
    await client.post("/orders/A1", data={"csrf_token": token, "action": "approve"})
    bridge.clock.advance(150)
    page = await (await client.get("/orders/A1")).text()
    assert 'value="undo"' not in page
    late = await client.post("/orders/A1", data={"csrf_token": token, "action": "undo"})
    assert late.status == 409 and "the undo window has passed" in await late.text()


# --- settings ---------------------------------------------------------------------------------


async def settings_token(client: TestClient[Any, Any]) -> str:
    page = await client.get("/settings")
    assert page.status == 200
    return csrf_of(await page.text())


@pytest.mark.parametrize("form, check", [
    ({"section": "admins_add", "phone": "+880 1711-111111"}, lambda s: [a["who"] for a in s["admins"]] == ["8801711111111"]),
    ({"section": "payment", "enabled": "on", "text": "বিকাশ 017", "keywords": "bkash, বিকাশ\nনগদ", "cooldown": "60"},
     lambda s: s["payment"] == {"enabled": True, "text": "বিকাশ 017", "keywords": ["bkash", "বিকাশ", "নগদ"],
                                "cooldown": 60}),
    ({"section": "payment", "text": "x", "keywords": "bkash", "cooldown": "0"}, lambda s: s["payment"]["enabled"] is False),
    ({"section": "notices", "notice": "বন্ধ", "open_notice": "খোলা"},
     lambda s: (s["notice"], s["open_notice"]) == ("বন্ধ", "খোলা")),
    ({"section": "stock", "stock": "300"}, lambda s: s["stock"] == 300),
    ({"section": "approvals", "undo_window": "300", "delivery_waits_for_undo": "on"},
     lambda s: s["approvals"] == {"undo_window": 300, "delivery_waits_for_undo": True}),
    ({"section": "text", "lang": "bn", "name": "delivered", "text": "✅ হয়েছে {order_id}"},
     lambda s: s["texts"]["bn"]["delivered"]["text"] == "✅ হয়েছে {order_id}"),
    ({"section": "texts_enabled", "on_received": "on"},
     lambda s: s["texts"]["en"]["received"]["enabled"] and not s["texts"]["en"]["duplicate"]["enabled"]),
])
async def test_each_settings_section_saves(client: TestClient[Any, Any], bridge: FakeBridge,
                                           form: dict[str, str], check: Any) -> None:
    await login(client)
    token = await settings_token(client)
    resp = await client.post("/settings", data={"csrf_token": token, **form}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/settings#"), await resp.text()
    assert check(bridge.shop.view())
    page = await (await client.get(resp.headers["Location"])).text()
    assert "Saved." in page
    assert bridge.shop.view()["audit"][0]["by"] == "admin:admin"
    assert "admin" in page[page.index('id="settings-audit"'):]


async def test_an_admin_is_removed_by_number(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    bridge.shop.update({"admins": ["8801711111111", "8801811111111"]}, "config", NOW)
    await login(client)
    token = await settings_token(client)
    await client.post("/settings", data={"csrf_token": token, "section": "admins_remove", "who": "8801711111111"})
    assert [a["who"] for a in bridge.shop.admins] == ["8801811111111"]
    unknown = await client.post("/settings", data={"csrf_token": token, "section": "admins_remove", "who": "1"})
    assert unknown.status == 404 and [a["who"] for a in bridge.shop.admins] == ["8801811111111"]


async def test_a_refused_text_keeps_what_was_typed_and_says_why(client: TestClient[Any, Any],
                                                                bridge: FakeBridge) -> None:
    await login(client)
    token = await settings_token(client)
    before = bridge.shop.view()
    resp = await client.post("/settings", data={"csrf_token": token, "section": "text", "lang": "en",
                                                "name": "received", "text": "Got it {order} <b>"})
    html = await resp.text()
    assert resp.status == 400 and "{order} is not a placeholder this text offers" in unescape(html)
    block = html[html.index('id="t-en-received"'):]
    assert "<details" in html and 'id="t-en-received" open' in html
    assert "Got it {order} &lt;b&gt;</textarea>" in block  # as typed, escaped
    assert bridge.shop.view() == before


async def test_texts_show_previews_placeholders_and_reset(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(client)
    html = await (await client.get("/settings")).text()
    block = html[html.index('id="t-bn-delivered"'):html.index("</details>", html.index('id="t-bn-delivered"'))]
    config = make_config(Path("/unused"))
    expected = preview(config.messages["bn"]["delivered"], samples(config, "bn", __import__("datetime").date.today()))
    assert f'<pre class="preview" aria-live="polite">{expected}</pre>' in unescape(block)
    assert "💎 10 ডায়মন্ড" in block and "<code>{order_id}</code>" in block
    assert "Reset to the default" not in block
    token = csrf_of(html)
    await client.post("/settings", data={"csrf_token": token, "section": "text", "lang": "bn", "name": "delivered",
                                         "text": "✅ {order_id} সম্পন্ন"})
    html = await (await client.get("/settings")).text()
    block = html[html.index('id="t-bn-delivered"'):html.index("</details>", html.index('id="t-bn-delivered"'))]
    assert "✅ A1 সম্পন্ন" in block and "Reset to the default" in block and ">changed<" in block
    await client.post("/settings", data={"csrf_token": token, "section": "text_reset", "lang": "bn", "name": "delivered"})
    assert bridge.shop.view()["texts"]["bn"]["delivered"]["text"] == config.messages["bn"]["delivered"]
    assert bridge.shop.view()["audit"][0]["what"] == "text bn.delivered reset"


def test_the_preview_fills_placeholders_as_the_bot_does() -> None:
    values = {"order_id": "A1", "diamonds": "10"}
    assert preview("🆔 {order_id} {{literal}} {unknown} 💎 {diamonds}", values) == "🆔 A1 {literal} {unknown} 💎 10"


async def test_staff_cannot_open_settings(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(client, "nasrin", STAFF_PW)
    resp = await client.get("/settings")
    assert resp.status == 403 and "Only an owner" in await resp.text()
    assert not [c for c in bridge.calls if c[0] == "get_shop"]


# --- reminders from the Payments page ---------------------------------------------------------


async def test_reminders_ask_first_saying_how_many_groups(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(client, "nasrin", STAFF_PW)
    html = await (await client.get("/payments")).text()
    token = csrf_of(html)
    card = html[html.index('id="reminders"'):]
    assert 'action="/reminders"' in card and f'<option value="{BETA}">Beta · ৳700</option>' in card
    bridge.add_payment(GAMMA, "200")  # Gamma owes nothing now: not offered
    card = (await (await client.get("/payments")).text()).split('id="reminders"')[1]
    assert f'<option value="{GAMMA}">' not in card.split("</select>")[0]
    asked = await client.post("/reminders", data={"csrf_token": token, "min_due": "৳ 500"})
    text = await asked.text()
    assert asked.status == 200 and "as a chat message (paced like every message): 2" in text and "Yes, send the reminders (2)" in text
    assert "Alpha · ৳1000" in text and "Beta · ৳700" in text and bridge.reminders == []
    sent = await client.post("/reminders", data={"csrf_token": token, "min_due": "500.00", "confirm": "yes"})
    text = await sent.text()
    assert sent.status == 200 and "Reminders sent: 2" in text
    assert "Not sent to" not in text  # Gamma, under the amount, was not asked for
    assert [g for g, _ in bridge.reminders] == [ALPHA, BETA]
    one = await client.post("/reminders", data={"csrf_token": token, "group_id": BETA})
    assert "(paced like every message): 1" in await one.text() and "Beta · ৳700" in await one.text()
    none = await client.post("/reminders", data={"csrf_token": token, "min_due": "5000"})
    assert "nobody to remind" in await none.text()
    bad = await client.post("/reminders", data={"csrf_token": token, "min_due": "lots"})
    assert bad.status == 400 and len(bridge.reminders) == 2
    bridge.leave_group(BETA)  # a group asked for that the bot cannot remind: the page says why
    gone = await client.post("/reminders", data={"csrf_token": token, "group_id": BETA, "confirm": "yes"})
    assert "Not sent to: Beta (the bot is no longer in the group)" in await gone.text() and len(bridge.reminders) == 2


def test_every_chat_text_has_a_name_for_people() -> None:
    # The Settings page lists the texts the bot writes (config.loader.TEMPLATE_NAMES) by these names.
    assert set(TEMPLATE_NAMES) <= set(TITLES)
    assert not set(TITLES) - set(TEMPLATE_NAMES), "a name for a text the bot does not write"
