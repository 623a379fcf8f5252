"""Issue 13's shop on the real system: the sandbox and run.py as processes, driven through their
JSON APIs as the panel and the chat drive them.

Closing the shop posts its notice to every group that takes orders (not to one switched off),
an order while closed creates nothing and is answered; reopening posts the opening notice; an
approval is undone within the window from the API and, for another order, by an admin replying
ভুল in the chat: the order is pending again and the chat gets the correction. A stock counted
down by approvals refuses an order bigger than what is left, and at zero the shop closes itself,
posts its notice and answers the next order closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e import Bot, Sandbox, sandbox_and_bot, wait_for

pytestmark = pytest.mark.e2e

ALICE, BOB = "76210050711676@lid", "76210050711677@lid"
ADMIN = "8801711111111"
ADMIN_JID = f"{ADMIN}@s.whatsapp.net"
CLOSED = "⛔ আজ ডায়মন্ড বন্ধ। খোলার সময় জানিয়ে দেওয়া হবে।"  # config/default.toml's shop_closed
OPENED = "✅ দোকান খোলা — অর্ডার দিন।"
CLOSED_ORDER = "⛔ দোকান এখন বন্ধ — অর্ডার নেওয়া হয়নি।"
WAIT = 20


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sandbox, Bot]]:
    with sandbox_and_bot(tmp_path, "--set", f"whatsapp.admins={ADMIN}") as world:
        yield world


def said(sandbox: Sandbox, group: str) -> list[dict[str, Any]]:
    """The bot's messages in a group, oldest first."""
    return [m for m in sandbox.messages(group) if m["from_bot"]]


def wait_said(sandbox: Sandbox, group: str, text: str, quoted: str = "", count: int = 1) -> dict[str, Any]:
    """Wait until the bot has posted `text` in the group `count` times (quoting `quoted`, if
    given); the last of them."""
    def found() -> list[dict[str, Any]]:
        hits = [m for m in said(sandbox, group) if m["text"] == text and (not quoted or m["quoted_id"] == quoted)]
        return hits if len(hits) >= count else []
    return wait_for(found, WAIT, f"the bot to post {text!r} in {group}" + (f" quoting {quoted}" if quoted else ""))[-1]


def groups_with_rates(sandbox: Sandbox, bot: Bot, rates: dict[str, str]) -> dict[str, str]:
    """Groups created in the sandbox (name -> id), known to the bot, each with its rate."""
    ids = {name: sandbox.create_group(name) for name in rates}
    wait_for(lambda: len(bot.api.get("/api/groups")["groups"]) == len(ids), WAIT, "the bot to know the groups")
    for name, rate in rates.items():
        status, body = bot.api.call("PATCH", f"/api/groups/{ids[name]}", {"rate": rate})
        assert status == 200, body
    return ids


def order_of(bot: Bot, message_id: str) -> dict[str, Any]:
    """The order a chat message created (waited for)."""
    found = wait_for(lambda: [o for o in bot.orders() if o["message_id"] == message_id], WAIT,
                     f"the order of message {message_id}")
    return found[0]


def status_of(bot: Bot, order_id: str) -> str:
    return str(bot.api.get(f"/api/orders/{order_id}")["status"])


def test_closing_reopening_and_undoing_approvals(world: tuple[Sandbox, Bot]) -> None:
    sandbox, bot = world
    groups = groups_with_rates(sandbox, bot, {"Rahim Store": "1.50", "Karim Top-up": "2.00", "Old Group": "1.00"})
    rahim, karim, old = groups["Rahim Store"], groups["Karim Top-up"], groups["Old Group"]
    status, body = bot.api.call("PATCH", f"/api/groups/{old}", {"enabled": False})  # takes no orders
    assert status == 200, body

    # Close the shop: every group that takes orders gets the closing notice.
    status, shop = bot.api.call("PATCH", "/api/shop", {"open": False})
    assert status == 200 and shop["open"] is False and shop["notice"] == CLOSED, shop
    for group in (rahim, karim):
        wait_said(sandbox, group, CLOSED)
    assert bot.api.get("/api/shop")["audit"][0]["what"] == "closed the shop"

    # An order while closed creates nothing and gets the closed answer.
    while_closed = sandbox.post(rahim, ALICE, ".10", "Alice")
    wait_said(sandbox, rahim, CLOSED_ORDER, while_closed["id"])
    assert bot.orders() == []

    # Reopen: the opening notice; orders are taken again.
    status, shop = bot.api.call("PATCH", "/api/shop", {"open": True})
    assert status == 200 and shop["open"] is True, shop
    for group in (rahim, karim):
        wait_said(sandbox, group, OPENED)
    first = sandbox.post(rahim, ALICE, ".10", "Alice")
    a1 = order_of(bot, first["id"])
    assert (a1["id"], a1["status"], a1["amount"]) == ("A1", "pending", "15.00")

    # Approve it, then undo within the window (the panel's API): pending again, corrected in the chat.
    status, body = bot.api.post("/api/orders/A1/approve")
    assert status == 200, body
    delivered = wait_said(sandbox, rahim, "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳15\n🆔 A1", first["id"])
    wait_for(lambda: status_of(bot, "A1") == "completed", WAIT, "A1 completed")
    status, body = bot.api.post("/api/orders/A1/undo")
    assert status == 200 and body["order"]["status"] == "pending", body
    assert body["order"]["audit"][-1]["by"] == "admin:admin"
    correction = wait_said(sandbox, rahim, "↩️ ভুল করে অনুমোদন হয়েছিল: অর্ডার A1 আবার অপেক্ষমাণ।", first["id"])
    assert correction["seq"] > delivered["seq"]
    assert status_of(bot, "A1") == "pending"
    status, body = bot.api.post("/api/orders/A1/undo")  # nothing left to undo
    assert status == 409, body

    # A second order, approved by the admin's "done" and undone by his "ভুল" to it.
    second = sandbox.post(karim, BOB, ".20", "Bob")
    b1 = order_of(bot, second["id"])
    assert (b1["id"], b1["amount"]) == ("B1", "40.00")
    done = sandbox.api.post(f"/api/groups/{karim}/messages",
                            {"sender": ADMIN_JID, "sender_name": "Admin", "text": "done", "quoted_id": second["id"]})
    assert done[0] == 201, done
    wait_for(lambda: status_of(bot, "B1") == "completed", WAIT, "B1 approved by the admin's done")
    wrong = sandbox.api.post(f"/api/groups/{karim}/messages",
                             {"sender": ADMIN_JID, "sender_name": "Admin", "text": "ভুল", "quoted_id": done[1]["id"]})
    assert wrong[0] == 201, wrong
    wait_for(lambda: status_of(bot, "B1") == "pending", WAIT, "B1 pending again after ভুল")
    wait_said(sandbox, karim, "↩️ ভুল করে অনুমোদন হয়েছিল: অর্ডার B1 আবার অপেক্ষমাণ।", second["id"])
    audit = bot.api.get("/api/orders/B1")["audit"]
    assert (audit[-1]["to"], audit[-1]["by"]) == ("pending", f"whatsapp:{ADMIN_JID}"), audit

    # The group that takes no orders heard nothing of it all.
    assert said(sandbox, old) == []


def test_stock_runs_out_and_the_shop_closes_itself(world: tuple[Sandbox, Bot]) -> None:
    sandbox, bot = world
    groups = groups_with_rates(sandbox, bot, {"Rahim Store": "1.50", "Karim Top-up": "2.00"})
    rahim, karim = groups["Rahim Store"], groups["Karim Top-up"]
    status, shop = bot.api.call("PATCH", "/api/shop", {"stock": 30})
    assert status == 200 and shop["stock"] == 30, shop

    a1 = order_of(bot, sandbox.post(rahim, ALICE, ".10", "Alice")["id"])
    b1 = order_of(bot, sandbox.post(karim, BOB, ".20", "Bob")["id"])
    assert bot.api.post(f"/api/orders/{a1['id']}/approve")[0] == 200
    wait_for(lambda: bot.api.get("/api/shop")["stock"] == 20, WAIT, "the stock to be 20 after A1")

    # More than what is left: answered, not taken.
    big = sandbox.post(rahim, ALICE, ".25", "Alice")
    wait_said(sandbox, rahim, "⚠️ এখন মাত্র 20 ডায়মন্ড আছে — অর্ডার নেওয়া হয়নি।", big["id"])
    assert len(bot.orders()) == 2

    # The approval that takes the last of it closes the shop, which says so everywhere.
    assert bot.api.post(f"/api/orders/{b1['id']}/approve")[0] == 200
    shop = wait_for(lambda: (lambda s: s if not s["open"] else None)(bot.api.get("/api/shop")), WAIT,
                    "the shop to close itself")
    assert shop["stock"] == 0
    assert shop["audit"][0]["by"] == "system:stock", shop["audit"][:2]
    for group in (rahim, karim):
        wait_said(sandbox, group, CLOSED)
    after = sandbox.post(karim, BOB, ".5", "Bob")
    wait_said(sandbox, karim, CLOSED_ORDER, after["id"])
    assert len(bot.orders()) == 2
