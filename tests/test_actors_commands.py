"""Running the shop from the chat through the real actors on simpleSystemBase: what the gateway
records, the admin roster the Supervisor hands the groups (also across a restart), payments and
the reports the PersistenceActor answers. The rules themselves are the desk's
(tests/test_desk_commands.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any, Callable

import pytest

from actors.messages import GetDailyReport, GetLedger, ListPayments, RecordPayment, SendDailyReport, VoidPayment
from domain.chat import Source
from tests.harness import ALICE, BOB, GROUP, GROUP2, T, ChatBot

ADMIN_PHONE = "8801711111111"  # an admin known by phone number
ADMIN_LID = "99999999999999@lid"  # an admin known by LID
RAHIM = "76210050711690@lid"  # an admin by phone, whose LID is different
TRAP = f"{ADMIN_PHONE}@lid"  # a reseller whose LID digits happen to equal an admin's phone

DELIVERED_10 = "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000\n🆔 A1"


@pytest.fixture
def shop(make_bot: Callable[..., ChatBot]) -> ChatBot:
    return make_bot(**{"whatsapp.admins": f"{ADMIN_PHONE},{ADMIN_LID}"})


def admin_by_phone(shop: ChatBot, text: str, **kw: Any):
    return shop.say(GROUP, RAHIM, text, sender_alt=f"{ADMIN_PHONE}@s.whatsapp.net", **kw)


def open_group(shop: ChatBot, group: str = GROUP) -> None:
    """The bot meets a group on its first message: then it can be configured."""
    shop.say(group, BOB, ".help")


def status_of(shop: ChatBot, order_id: str) -> str:
    return shop.order(order_id)["record"]["status"]


# -- admins' replies ---------------------------------------------------------------------------


def test_an_admin_replies_done_to_the_order_and_it_is_delivered(shop: ChatBot) -> None:
    order_msg = shop.post(GROUP, ALICE, ".10")
    admin_by_phone(shop, "done", quoted_id=order_msg.message_id)
    assert status_of(shop, "A1") == "completed"
    assert shop.last_reply(GROUP) == DELIVERED_10
    audit = shop.order("A1")["record"]["audit"]
    assert (audit[1]["to"], audit[1]["by"]) == ("approved", f"whatsapp:{RAHIM}")


def test_what_admins_evidently_mean_reaches_the_desk_and_so_does_a_hint(shop: ChatBot) -> None:
    # The gateway records these replies (it used to drop "Done ✅" and "ok ভাই" as chat).
    first, second = shop.post(GROUP, ALICE, ".10"), shop.post(GROUP, ALICE, ".20")
    admin_by_phone(shop, "Done ✅", quoted_id=first.message_id)
    admin_by_phone(shop, "ok ভাই", quoted_id=second.message_id)
    assert (status_of(shop, "A1"), status_of(shop, "A2")) == ("completed", "completed")
    third = shop.post(GROUP, ALICE, ".30")
    admin_by_phone(shop, "দিলাম দেখো", quoted_id=third.message_id)
    assert status_of(shop, "A3") == "pending" and "বোঝা যায়নি" in shop.last_reply(GROUP)


def test_a_done_written_before_its_sender_was_an_admin_stays_refused_after_a_restart(
        make_bot: Callable[..., ChatBot]) -> None:
    """Issue 10: with no admins configured, the shop's admin replies done: refused at once.
    The bot restarts with that number as an admin; the old done comes back in the history
    replay and must not approve the order."""
    bot = make_bot()
    order = bot.post(GROUP, ALICE, ".10")
    bot.advance(30)
    done = bot.message(GROUP, RAHIM, "done", sender_alt=f"{ADMIN_PHONE}@s.whatsapp.net",
                       quoted_id=order.message_id)
    bot.deliver(done)
    assert bot.last_reply(GROUP) == "⚠️ অর্ডার অনুমোদন বা বাতিল শুধু দোকানের অ্যাডমিনরা করতে পারেন"
    second = bot.post(GROUP, ALICE, ".20")
    clock, fake = bot.clock, bot.fake
    bot.stop()
    # Written while the bot was down, before the admin list changed; first seen after the restart.
    unseen = bot.message(GROUP, RAHIM, "done", sender_alt=f"{ADMIN_PHONE}@s.whatsapp.net",
                         quoted_id=second.message_id, source=Source.HISTORY, timestamp=clock.now() + 10)
    clock.advance(60)
    again = make_bot(clock=clock, fake=fake, **{"whatsapp.admins": ADMIN_PHONE})
    # The transport's history replay at start (the sandbox's; WhatsApp's offline queue).
    again.deliver(replace(order, source=Source.HISTORY), replace(done, source=Source.HISTORY), unseen)
    assert again.order("A1")["record"]["status"] == "pending"
    assert again.order("A2")["record"]["status"] == "pending"
    assert again.replies(GROUP).count("⚠️ অর্ডার অনুমোদন বা বাতিল শুধু দোকানের অ্যাডমিনরা করতে পারেন") == 2
    again.say(GROUP, RAHIM, "done", sender_alt=f"{ADMIN_PHONE}@s.whatsapp.net", quoted_id=order.message_id)
    assert again.order("A1")["record"]["status"] == "completed"


def test_only_admins_commands_count_and_lid_digits_are_never_a_phone(shop: ChatBot) -> None:
    order_msg = shop.post(GROUP, ALICE, ".10")
    sent_before = len(shop.fake.sent)
    # A reseller, and a LID whose digits are an admin's phone: "done" is refused at once, said
    # to them (issue 10: it used to be kept silently and applied later).
    shop.say(GROUP, BOB, "done", quoted_id=order_msg.message_id)
    assert shop.last_reply(GROUP) == "⚠️ অর্ডার অনুমোদন বা বাতিল শুধু দোকানের অ্যাডমিনরা করতে পারেন"
    shop.say(GROUP, TRAP, "cancel", quoted_id=order_msg.message_id)
    assert shop.last_reply(GROUP) == "⚠️ অর্ডার অনুমোদন বা বাতিল শুধু দোকানের অ্যাডমিনরা করতে পারেন"
    # "ok" or 👍 from a reseller is only chat: no answer, and no order changes.
    shop.say(GROUP, BOB, "ok ভাই", quoted_id=order_msg.message_id)
    shop.say(GROUP, BOB, "👍", quoted_id=order_msg.message_id)
    assert status_of(shop, "A1") == "pending"
    assert len(shop.fake.sent) == sent_before + 2
    # A dot command is plainly a command: the reseller is told it is for admins, once, and
    # nothing changes.
    for text in (".rate 1", ".paid 500 bkash", ".pending", ".rate abc"):
        shop.say(GROUP, TRAP, text)
        assert shop.last_reply(GROUP) == "⚠️ এই কমান্ড শুধু দোকানের অ্যাডমিনরা দিতে পারেন", text
    assert len(shop.fake.sent) == sent_before + 6
    assert shop.groups()[0]["settings"]["rate"] == "100" and shop.query(ListPayments("l")).data["total"] == 0


# -- the duplicate guard -----------------------------------------------------------------------


def test_a_held_order_survives_a_restart(make_bot: Callable[..., ChatBot]) -> None:
    bot = make_bot(**{"orders.duplicate_window": "5m"})
    bot.post(GROUP, ALICE, ".10")
    bot.post(GROUP, ALICE, ".10")
    question = bot.bot_message_id("❓")
    clock = bot.clock
    bot.stop()
    again = make_bot(clock=clock, **{"orders.duplicate_window": "5m"})
    again.say(GROUP, ALICE, "yes", quoted_id=question)
    assert sorted(o["id"] for o in again.orders()) == ["A1", "A2"]


# -- payments from the panel, ledger, daily report -------------------------------------------------


def test_panel_payments_ledger_and_daily_report(shop: ChatBot) -> None:
    first = shop.post(GROUP, ALICE, ".10")
    admin_by_phone(shop, "done", quoted_id=first.message_id)
    shop.post(GROUP2, BOB, ".5")
    done = shop.asys.ask(shop.supervisor, RecordPayment(uuid.uuid4().hex, GROUP, "400.50", "বিকাশ", "TRX9",
                                                        "first week", "admin:rana"), T)
    assert done.status == 200 and done.result["due"] == "599.50"
    assert done.result["payment"]["method"] == "bkash" and done.result["payment"]["id"] == "PA1"
    bad = shop.asys.ask(shop.supervisor, RecordPayment("x", GROUP, "-5", "cash", by="admin:rana"), T)
    assert bad.status == 400 and "amount" in bad.error
    assert shop.asys.ask(shop.supervisor, RecordPayment("y", "nope@g.us", "5", "cash", by="admin:rana"),
                         T).status == 404
    shop.pump()
    ledger = shop.query(GetLedger("l", GROUP)).data
    assert [(line["kind"], line["debit"], line["credit"], line["balance"]) for line in ledger["lines"]] == [
        ("order", "1000.00", "0.00", "1000.00"), ("payment", "0.00", "400.50", "599.50")]
    assert ledger["due"] == "599.50"
    groups = {g["group_id"]: g for g in shop.groups()}
    assert (groups[GROUP]["due"], groups[GROUP2]["due"]) == ("599.50", "0.00")
    report = shop.query(GetDailyReport("r")).data
    rows = {g["group_id"]: g for g in report["groups"]}
    assert (rows[GROUP]["orders"], rows[GROUP]["revenue"], rows[GROUP]["payments"]) == (1, "1000.00", "400.50")
    assert rows[GROUP2]["orders"] == 1 and report["totals"]["orders"] == 2
    assert Decimal(report["totals"]["payments"]) == Decimal("400.50")


def test_the_daily_report_goes_to_every_admin(shop: ChatBot) -> None:
    first = shop.post(GROUP, ALICE, ".10")
    admin_by_phone(shop, "done", quoted_id=first.message_id)
    shop.post(GROUP2, BOB, ".5")
    shop.asys.tell(shop.supervisor, SendDailyReport())
    shop.pump(0.3)
    admins = (f"{ADMIN_PHONE}@s.whatsapp.net", ADMIN_LID)
    sent = {r.group_id: r.text for r in shop.fake.sent if r.group_id in admins}
    assert set(sent) == {f"{ADMIN_PHONE}@s.whatsapp.net", ADMIN_LID}
    text = sent[ADMIN_LID]
    assert text.startswith("📊") and "Rahim Store" in text and "Karim Telecom" in text
    assert "৳1000" in text  # Rahim Store's revenue today


def test_a_retried_payment_is_recorded_once_and_a_wrong_one_is_voided_not_erased(
        make_bot: Callable[..., ChatBot]) -> None:
    shop = make_bot(**{"whatsapp.admins": f"{ADMIN_PHONE},{ADMIN_LID}"})
    first = shop.post(GROUP, ALICE, ".10")
    admin_by_phone(shop, "done", quoted_id=first.message_id)  # due 1000
    pay = RecordPayment("p1", GROUP, "4000", "cash", by="admin:rana", client_key="form-123")
    done = shop.asys.ask(shop.supervisor, pay, T)
    retried = shop.asys.ask(shop.supervisor, replace(pay, request_id="p2"), T)
    assert done.status == retried.status == 200
    assert done.result["payment"]["id"] == retried.result["payment"]["id"] == "PA1"
    assert retried.result["due"] == "-3000.00"  # one payment, however often it was sent
    other = shop.asys.ask(shop.supervisor, replace(pay, request_id="p2b", amount="400"), T)
    assert other.status == 409 and "PA1" in other.error  # the same key for another payment: refused
    # 4000 was a typo for 400: void it (with a reason) and record the right one.
    assert shop.asys.ask(shop.supervisor, VoidPayment("v0", "", "PA1", "", "admin:rana"), T).status == 400
    voided = shop.asys.ask(shop.supervisor, VoidPayment("v1", "", "pa1", "typed 4000 for 400", "admin:rana"), T)
    assert voided.status == 200 and voided.result["due"] == "1000.00"
    assert voided.result["payment"]["voidReason"] == "typed 4000 for 400"
    again = shop.asys.ask(shop.supervisor, VoidPayment("v2", GROUP, "PA1", "twice", "admin:rana"), T)
    assert again.status == 409
    assert shop.asys.ask(shop.supervisor, VoidPayment("v3", GROUP, "PA9", "x", "admin:rana"), T).status == 404
    assert shop.asys.ask(shop.supervisor, RecordPayment("p3", GROUP, "400", "cash", by="admin:rana"),
                         T).result["due"] == "600.00"
    shop.pump()
    listed = shop.query(ListPayments("l", group=GROUP)).data["payments"]
    assert [(p["id"], p["amount"], "voidedAt" in p) for p in listed] == [("PA2", "400.00", False),
                                                                         ("PA1", "4000.00", True)]
    ledger = shop.query(GetLedger("g", GROUP)).data
    assert ledger["due"] == "600.00" and [line["ref"] for line in ledger["lines"]] == ["A1", "PA2"]
    shop.say(GROUP, BOB, ".due")
    assert shop.last_reply(GROUP) == "💳 বকেয়া: ৳600"
    # After a restart: still void, and the old form sent once more still records nothing.
    clock = shop.clock
    shop.stop()
    again = make_bot(clock=clock)
    late = again.asys.ask(again.supervisor, replace(pay, request_id="p4"), T)
    assert late.status == 200 and late.result["payment"]["id"] == "PA1" and late.result["due"] == "600.00"
    again.say(GROUP, BOB, ".due")
    assert again.last_reply(GROUP) == "💳 বকেয়া: ৳600"


def test_a_known_reference_is_answered_409_until_confirmed_through_the_actors(shop: ChatBot) -> None:
    """The contract the panel and API rely on (RecordPayment.confirm_duplicate), on the real actors."""
    pay = RecordPayment("p1", GROUP, "500", "bkash", "8N7A6B", by="admin:rana")
    open_group(shop)
    assert shop.asys.ask(shop.supervisor, pay, T).status == 200
    again = shop.asys.ask(shop.supervisor, replace(pay, request_id="p2", reference="8n7a6b"), T)
    assert again.status == 409 and again.result["duplicate_of"]["id"] == "PA1" and "PA1" in again.error
    confirmed = shop.asys.ask(shop.supervisor, replace(pay, request_id="p3", confirm_duplicate=True), T)
    assert confirmed.status == 200 and confirmed.result["payment"]["id"] == "PA2"
    shop.pump()
    assert shop.query(ListPayments("l", group=GROUP)).data["total"] == 2
