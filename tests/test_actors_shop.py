"""The shop's day through the real actors on simpleSystemBase (issue 13): the Supervisor owns
the shop's settings, writes them, tells every group; the stock follows the approvals."""

from __future__ import annotations

import uuid
from typing import Any, Callable

from actors.messages import CommandDone, GetShop, OrderCommand, QueryResult, SendReminders, UpdateShop
from tests.harness import ALICE, BOB, GROUP, GROUP2, T, ChatBot

ADMIN_PHONE = "8801711111111"
RAHIM = "76210050711690@lid"


def patch(bot: ChatBot, **changes: Any) -> CommandDone:
    done = bot.asys.ask(bot.supervisor, UpdateShop(uuid.uuid4().hex, changes, "admin:owner"), T)
    bot.pump(0.1)
    return done


def shop_view(bot: ChatBot) -> dict[str, Any]:
    result = bot.asys.ask(bot.supervisor, GetShop(uuid.uuid4().hex), T)
    assert isinstance(result, QueryResult) and result.status == 200
    return result.data


def open_groups(bot: ChatBot) -> None:
    bot.post(GROUP, BOB, ".help")
    bot.post(GROUP2, BOB, ".help")


def test_closing_the_shop_tells_every_group_and_orders_are_refused_until_it_opens(make_bot: Callable[..., ChatBot]) -> None:
    bot = make_bot()
    open_groups(bot)
    done = patch(bot, open=False, notice="আজ ডায়মন্ড বন্ধ, কাল সকাল ১০টায় খুলবে")
    assert done.status == 200 and done.result["open"] is False
    assert bot.last_reply(GROUP) == bot.last_reply(GROUP2) == "আজ ডায়মন্ড বন্ধ, কাল সকাল ১০টায় খুলবে"
    bot.post(GROUP, ALICE, ".10")
    assert bot.orders() == [] and bot.last_reply(GROUP).startswith("⛔")
    assert patch(bot, open=True).status == 200
    assert bot.last_reply(GROUP2) == "✅ দোকান খোলা — অর্ডার দিন।"
    bot.post(GROUP, ALICE, ".10")
    assert [o["id"] for o in bot.orders()] == ["A1"]
    assert [a["what"] for a in shop_view(bot)["audit"]][:2] == ["opened the shop",
                                                                 "closed the shop; notice: আজ ডায়মন্ড বন্ধ, কাল সকাল ১০টায় খুলবে"]


def test_stock_follows_approvals_and_at_zero_the_shop_closes_itself(make_bot: Callable[..., ChatBot]) -> None:
    bot = make_bot(**{"whatsapp.admins": ADMIN_PHONE})
    open_groups(bot)
    assert patch(bot, stock=15).status == 200
    bot.post(GROUP, ALICE, ".10")
    assert bot.command("A1", "approve").status == 200
    bot.pump(0.1)
    assert shop_view(bot)["stock"] == 5
    bot.post(GROUP, ALICE, ".10")  # more than is left
    assert bot.last_reply(GROUP) == "⚠️ এখন মাত্র 5 ডায়মন্ড আছে — অর্ডার নেওয়া হয়নি।" and len(bot.orders()) == 1
    bot.post(GROUP, ALICE, ".5")
    assert bot.command("A2", "approve").status == 200
    bot.pump(0.2)
    view = shop_view(bot)
    assert (view["open"], view["stock"]) == (False, 0)
    assert bot.last_reply(GROUP2).startswith("⛔")  # the closing notice, to every group
    admin_chat = f"{ADMIN_PHONE}@s.whatsapp.net"
    assert [r.text for r in bot.fake.sent if r.group_id == admin_chat][-1].startswith("⚠️ স্টক শেষ")
    # An undo gives the diamonds back.
    assert bot.asys.ask(bot.supervisor, OrderCommand("u", "A2", "undo", "admin:owner"), T).status == 200
    bot.pump(0.1)
    assert shop_view(bot)["stock"] == 5


def test_settings_survive_a_restart_and_a_changed_text_is_used(make_bot: Callable[..., ChatBot]) -> None:
    bot = make_bot()
    open_groups(bot)
    assert patch(bot, texts={"bn": {"received": "👍 {order_id} পেয়েছি"}}, stock=100,
                 admins=[ADMIN_PHONE]).status == 200
    bot.post(GROUP, ALICE, ".10")
    assert bot.last_reply(GROUP) == "👍 A1 পেয়েছি"
    clock, fake = bot.clock, bot.fake
    bot.stop()
    again = make_bot(clock=clock, fake=fake)  # the config names no admins: the panel's list stands
    again.post(GROUP, ALICE, ".20")
    assert again.last_reply(GROUP) == "👍 A2 পেয়েছি"
    view = shop_view(again)
    assert view["stock"] == 100 and [a["who"] for a in view["admins"]] == [ADMIN_PHONE]
    order = again.orders()[0]
    again.say(GROUP, RAHIM, "done", sender_alt=f"{ADMIN_PHONE}@s.whatsapp.net", quoted_id=order["messageId"])
    assert again.order(order["id"])["record"]["status"] == "completed"


def test_a_bad_patch_changes_nothing(make_bot: Callable[..., ChatBot]) -> None:
    bot = make_bot()
    before = shop_view(bot)
    refused = patch(bot, stock=-3, open=False)
    assert refused.status == 400 and "stock" in refused.error
    assert shop_view(bot) == before


def test_dues_reminders_go_to_the_groups_over_the_amount(make_bot: Callable[..., ChatBot]) -> None:
    bot = make_bot()
    bot.post(GROUP, ALICE, ".10")
    bot.post(GROUP2, ALICE, ".1")
    assert bot.command("A1", "approve").status == 200 and bot.command("B1", "approve").status == 200
    done = bot.asys.ask(bot.supervisor, SendReminders(uuid.uuid4().hex, min_due="500", by="admin:x"), T)
    bot.pump(0.1)
    assert done.status == 200 and done.result["sent"] == [GROUP] and GROUP2 in done.result["skipped"]
    assert bot.last_reply(GROUP) == "💳 Rahim Store: আপনার বকেয়া ৳1000। অনুগ্রহ করে পরিশোধ করুন।"
    bad = bot.asys.ask(bot.supervisor, SendReminders("x", min_due="lots"), T)
    assert bad.status == 400
