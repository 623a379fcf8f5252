"""Running the shop from the chat (issue 5), told as chats with the real actors on
simpleSystemBase: admins' commands, everyone's commands, edits and deletes, the duplicate guard,
due limits, auto-approval and payments."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any, Callable

import pytest

from actors.messages import GetDailyReport, GetLedger, ListPayments, RecordPayment, SendDailyReport, VoidPayment
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


def test_done_also_works_as_a_reply_to_the_bots_receipt_and_from_an_admin_lid(shop: ChatBot) -> None:
    shop.post(GROUP, ALICE, ".10")
    receipt = shop.bot_message_id("📥")
    shop.say(GROUP, ADMIN_LID, "ok", quoted_id=receipt)
    assert status_of(shop, "A1") == "completed"


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


def test_an_admin_cancels_with_a_reply_and_an_illegal_one_is_explained(shop: ChatBot) -> None:
    first = shop.post(GROUP, ALICE, ".10")
    admin_by_phone(shop, "cancel", quoted_id=first.message_id)
    assert status_of(shop, "A1") == "cancelled" and shop.last_reply(GROUP).startswith("❌")
    admin_by_phone(shop, "done", quoted_id=first.message_id)
    assert status_of(shop, "A1") == "cancelled" and shop.last_reply(GROUP).startswith("⚠️")
    admin_by_phone(shop, "done", quoted_id="NOSUCHMESSAGE")
    assert "অর্ডার নেই" in shop.last_reply(GROUP)


def test_rate_pending_and_a_replayed_command_does_nothing_twice(shop: ChatBot) -> None:
    rate = admin_by_phone(shop, ".rate 2.30")
    assert shop.last_reply(GROUP) == "💱 নতুন রেট: প্রতি ডায়মন্ড ৳2.30"
    shop.post(GROUP, ALICE, ".10")
    shop.post(GROUP, BOB, ".২০")
    assert shop.order("A1")["record"]["amount"] == "23.00"
    admin_by_phone(shop, ".pending")
    assert shop.last_reply(GROUP) == "⏳ অপেক্ষমাণ অর্ডার (2টি):\nA1 .10 ৳23\nA2 .20 ৳46"
    sent = len(shop.fake.sent)
    shop.deliver(rate)  # the same message again (a replay after a crash)
    assert len(shop.fake.sent) == sent


def test_paid_and_due_keep_the_account_exact(shop: ChatBot) -> None:
    open_group(shop)
    assert shop.update_group(GROUP, rate="2.30").status == 200
    first = shop.post(GROUP, ALICE, ".7")
    admin_by_phone(shop, "done", quoted_id=first.message_id)  # billed 16.10
    admin_by_phone(shop, ".paid 10.05 bkash TRX123")
    assert "৳10.05" in shop.last_reply(GROUP) and "৳6.05" in shop.last_reply(GROUP)
    shop.say(GROUP, BOB, ".due")  # everyone may ask
    assert shop.last_reply(GROUP) == "💳 বকেয়া: ৳6.05"
    admin_by_phone(shop, ".paid 5")
    assert shop.last_reply(GROUP).startswith("⚠️")  # the method is required
    payments = shop.query(ListPayments("p", group=GROUP)).data
    assert [(p["amount"], p["method"], p["reference"], p["by"]) for p in payments["payments"]] == [
        ("10.05", "bkash", "TRX123", f"whatsapp:{RAHIM}")]


def test_help_answers_everyone(shop: ChatBot) -> None:
    shop.say(GROUP, BOB, ".help")
    assert shop.last_reply(GROUP).startswith("📖")


# -- edits and deletes -------------------------------------------------------------------------


def test_an_edited_order_message_changes_a_pending_order_and_says_so(shop: ChatBot) -> None:
    order_msg = shop.post(GROUP, ALICE, ".10")
    shop.say(GROUP, ALICE, ".100", edits=order_msg.message_id)
    record = shop.order("A1")["record"]
    assert (record["diamonds"], record["amount"], record["status"]) == (100, "10000.00", "pending")
    assert shop.last_reply(GROUP).startswith("✏️") and "100" in shop.last_reply(GROUP)
    admin_by_phone(shop, "done", quoted_id=order_msg.message_id)
    shop.say(GROUP, ALICE, ".5", edits=order_msg.message_id)  # too late: already delivered
    assert shop.order("A1")["record"]["diamonds"] == 100
    assert shop.last_reply(GROUP) == "⚠️ অর্ডার A1 এখন সম্পন্ন — এটি আর বদলানো যাবে না"
    # The answer quotes the order message (an edit itself cannot be quoted).
    assert shop.fake.sent[-1].quote.message_id == order_msg.message_id
    admin_by_phone(shop, "done", quoted_id=order_msg.message_id)  # once more: said in Bengali
    assert shop.last_reply(GROUP) == "⚠️ অর্ডার A1 এখন সম্পন্ন — এটি আর অনুমোদন করা যাবে না"


def test_a_not_understood_message_edited_into_an_order_becomes_one(shop: ChatBot) -> None:
    typo = shop.post(GROUP, ALICE, ".1o")
    assert shop.orders() == [] and shop.last_reply(GROUP).startswith("⚠️")
    shop.say(GROUP, ALICE, ".10", edits=typo.message_id)
    [order] = shop.orders()
    assert (order["diamonds"], order["messageId"]) == (10, typo.message_id)


def test_deleting_the_order_message_cancels_a_pending_order(shop: ChatBot) -> None:
    first = shop.post(GROUP, ALICE, ".10")
    second = shop.post(GROUP, BOB, ".20")
    shop.say(GROUP, ALICE, "", revokes=first.message_id)
    assert status_of(shop, "A1") == "cancelled" and shop.last_reply(GROUP).startswith("🗑️")
    shop.say(GROUP, ALICE, "", revokes=second.message_id)  # not hers to delete
    assert status_of(shop, "A2") == "pending"


# -- the duplicate guard -----------------------------------------------------------------------


def test_a_repeated_order_gets_a_question_and_yes_places_it(make_bot: Callable[..., ChatBot]) -> None:
    bot = make_bot(**{"orders.duplicate_window": "5m"})
    bot.post(GROUP, ALICE, ".10")
    bot.advance(120)
    again = bot.post(GROUP, ALICE, ".10")
    assert [o["id"] for o in bot.orders()] == ["A1"]
    assert bot.last_reply(GROUP).startswith("❓") and "A1" in bot.last_reply(GROUP)
    question = bot.bot_message_id("❓")
    bot.say(GROUP, BOB, "yes", quoted_id=question)  # someone else's yes is not hers
    assert len(bot.orders()) == 1
    bot.say(GROUP, ALICE, "হ্যাঁ", quoted_id=question)
    orders = {o["id"]: o for o in bot.orders()}
    assert set(orders) == {"A1", "A2"} and orders["A2"]["messageId"] == again.message_id
    bot.say(GROUP, ALICE, "yes", quoted_id=question)  # again: nothing more
    assert len(bot.orders()) == 2


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


# -- due limit and auto-approval -----------------------------------------------------------------


def test_over_the_due_limit_an_order_is_held_pending_with_a_clear_reply(shop: ChatBot) -> None:
    open_group(shop)
    assert shop.update_group(GROUP, due_limit="1500").status == 200
    first = shop.post(GROUP, ALICE, ".10")
    admin_by_phone(shop, "done", quoted_id=first.message_id)  # due 1000
    shop.post(GROUP, ALICE, ".10")  # would make it 2000
    assert shop.last_reply(GROUP).startswith("⏸️") and "A2" in shop.last_reply(GROUP)
    assert status_of(shop, "A2") == "pending"


def test_auto_approval_under_the_limit_and_audited(shop: ChatBot) -> None:
    open_group(shop)
    assert shop.update_group(GROUP, auto_approve=True, auto_approve_max=50).status == 200
    shop.post(GROUP, ALICE, ".10")
    shop.post(GROUP, ALICE, ".60")  # over the per-order limit: an admin decides
    assert status_of(shop, "A1") == "completed" and status_of(shop, "A2") == "pending"
    audit = shop.order("A1")["record"]["audit"]
    assert audit[1]["by"] == "system:auto-approve"
    assert DELIVERED_10 in shop.replies(GROUP)


def test_auto_approval_stops_at_the_due_limit(shop: ChatBot) -> None:
    open_group(shop)
    assert shop.update_group(GROUP, auto_approve=True, auto_approve_max=50, due_limit="1500").status == 200
    shop.post(GROUP, ALICE, ".10")  # due 1000
    shop.post(GROUP, ALICE, ".10")  # would be 2000: held, not approved
    assert status_of(shop, "A1") == "completed" and status_of(shop, "A2") == "pending"
    assert shop.last_reply(GROUP).startswith("⏸️")


def test_orders_held_by_the_due_limit_are_approved_once_payments_make_room(shop: ChatBot) -> None:
    """The hold's receipt says "approved after payment": with auto-approval on, so it is —
    oldest first, as far as the limit allows; orders an admin must approve stay for the admin."""
    open_group(shop)
    assert shop.update_group(GROUP, auto_approve=True, auto_approve_max=50, due_limit="1500").status == 200
    shop.post(GROUP, ALICE, ".10")  # due 1000: approved at once
    shop.post(GROUP, ALICE, ".9")   # A2: would be 1900, held
    shop.post(GROUP, BOB, ".60")    # A3: over auto_approve_max — an admin's, whatever the due
    shop.post(GROUP, BOB, ".8")     # A4: held too
    assert [status_of(shop, o) for o in ("A2", "A3", "A4")] == ["pending"] * 3
    audit = shop.order("A2")["record"]["audit"]
    assert audit[0]["note"] == "held: the due limit was reached"
    # ৳500 paid: due 500; A2 (900) fits → 1400; A4 (800) would make 2200: still held.
    paid = shop.asys.ask(shop.supervisor, RecordPayment("p", GROUP, "500", "bkash", by="admin:rana"), T)
    assert paid.status == 200
    shop.pump()
    assert [status_of(shop, o) for o in ("A2", "A3", "A4")] == ["completed", "pending", "pending"]
    approved = shop.order("A2")["record"]["audit"][1]
    assert (approved["by"], approved["note"]) == ("system:auto-approve", "the due is within the limit again")
    assert shop.replies(GROUP).count("✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 9 ডায়মন্ড\n💰 ৳900\n🆔 A2") == 1
    # Raising the limit releases the rest of what auto-approval may take.
    assert shop.update_group(GROUP, due_limit="3000").status == 200
    shop.pump()
    assert [status_of(shop, o) for o in ("A3", "A4")] == ["pending", "completed"]
    # A payment recorded from the chat does it too; nothing is left to release, nothing repeats.
    admin_by_phone(shop, ".paid 100 cash")
    assert sum(r.startswith("✅") for r in shop.replies(GROUP)) == 3


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


def test_the_account_survives_a_restart(make_bot: Callable[..., ChatBot]) -> None:
    bot = make_bot()
    first = bot.post(GROUP, ALICE, ".10")
    assert bot.command("A1", "approve").status == 200
    assert bot.asys.ask(bot.supervisor, RecordPayment("p", GROUP, "250", "cash", by="admin:x"), T).status == 200
    bot.pump()
    clock = bot.clock
    bot.stop()
    again = make_bot(clock=clock)
    again.say(GROUP, BOB, ".due")
    assert again.last_reply(GROUP) == "💳 বকেয়া: ৳750"
    assert first.message_id


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
