"""Running the shop from the chat, on a group's desk with no actors (domain/desk.py): admins'
replies and commands, authority judged when a message was written, and payments."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.chat import Source
from domain.desk_events import About
from domain.records import PaymentRecord
from tests.desk import ADMIN, ADMIN_ALT, ADMIN_PHONE, ALICE, BOB, DeskChat

NOT_ADMIN_ORDER = "⚠️ অর্ডার অনুমোদন বা বাতিল শুধু দোকানের অ্যাডমিনরা করতে পারেন"
NOT_ADMIN = "⚠️ এই কমান্ড শুধু দোকানের অ্যাডমিনরা দিতে পারেন"
TRAP = f"{ADMIN_PHONE}@lid"  # a reseller whose LID digits happen to equal an admin's phone


@pytest.fixture
def shop() -> DeskChat:
    return DeskChat(admins=[ADMIN_PHONE])


# -- admins' replies ---------------------------------------------------------------------------


@pytest.mark.parametrize("reply", ["done", "Done ✅", "done.", "ok ভাই", "✅", "ok", "হয়ে গেছে"])
def test_an_admins_reply_approves_as_meant(shop: DeskChat, reply: str) -> None:
    order = shop.post(ALICE, ".10")
    shop.admin(reply, quoted_id=order.message_id)
    assert shop.status("A1") == "completed" and shop.last_reply.startswith("✅")
    assert (shop.order("A1").audit[1].to_status, shop.order("A1").audit[1].by) == ("approved", f"whatsapp:{ADMIN}")


def test_done_as_a_reply_to_the_bots_receipt_works_too(shop: DeskChat) -> None:
    shop.post(ALICE, ".10")
    shop.admin("done", quoted_id=shop.bot_message_id("📥"))
    assert shop.status("A1") == "completed"


def test_an_admins_reply_that_is_no_command_gets_a_hint(shop: DeskChat) -> None:
    # Issue 10: the admin believed the order approved while the bot said nothing.
    order = shop.post(ALICE, ".10")
    shop.admin("দিলাম কিন্তু দেখো", quoted_id=order.message_id)
    assert shop.status("A1") == "pending"
    assert shop.last_reply == "⚠️ বোঝা যায়নি: অনুমোদন করতে অর্ডারের উত্তরে done, বাতিল করতে cancel লিখুন"
    replies = len(shop.replies)
    shop.admin("আরেকটু সময় লাগবে, সার্ভারে সমস্যা হচ্ছে এখন", quoted_id=order.message_id)  # conversation
    shop.post(BOB, "kobe dibe?", quoted_id=order.message_id)  # a reseller's chat
    assert len(shop.replies) == replies


def test_a_reseller_is_refused_at_once_and_ok_from_a_reseller_is_chat(shop: DeskChat) -> None:
    order = shop.post(ALICE, ".10")
    shop.post(BOB, "done", quoted_id=order.message_id)
    assert shop.last_reply == NOT_ADMIN_ORDER
    shop.post(TRAP, "cancel", quoted_id=order.message_id)  # LID digits are never a phone number
    assert shop.last_reply == NOT_ADMIN_ORDER
    replies = len(shop.replies)
    shop.post(BOB, "ok ভাই", quoted_id=order.message_id)
    shop.post(BOB, "👍", quoted_id=order.message_id)
    assert len(shop.replies) == replies and shop.status("A1") == "pending"
    for text in (".rate 1", ".paid 500 bkash", ".pending", ".rate abc"):
        shop.post(TRAP, text)
        assert shop.last_reply == NOT_ADMIN, text
    assert shop.desk.book.settings.rate == Decimal("100") and shop.desk.book.payments == {}


def test_a_done_written_before_its_sender_was_an_admin_never_acts() -> None:
    # Issue 10 (major): with no admins, the shop's admin replies done: refused at once. The admin
    # list then changes (a restart with another config); the old done, replayed from history,
    # the inbox or a duplicate delivery — also after a restart — changes nothing.
    desk = DeskChat(admins=[])
    order = desk.post(ALICE, ".10")
    desk.advance(10)
    done = desk.admin("done", quoted_id=order.message_id)
    assert desk.last_reply == NOT_ADMIN_ORDER and desk.status("A1") == "pending"
    desk.advance(60)
    desk.make_admins([ADMIN_PHONE])
    for source in (Source.LIVE, Source.HISTORY, Source.INBOX):
        desk.deliver(desk.message(ADMIN, "done", sender_alt=ADMIN_ALT, source=source, message_id=done.message_id,
                                  timestamp=done.timestamp, quoted_id=order.message_id))
    desk.restarted()
    desk.deliver(desk.message(ADMIN, "done", sender_alt=ADMIN_ALT, source=Source.HISTORY,
                              message_id=done.message_id, timestamp=done.timestamp, quoted_id=order.message_id))
    assert desk.status("A1") == "pending" and desk.replies.count(NOT_ADMIN_ORDER) == 1
    # A done the bot first sees now, but written before the change, is refused too.
    desk.deliver(desk.message(ADMIN, "done", sender_alt=ADMIN_ALT, source=Source.OFFLINE,
                              timestamp=done.timestamp + 5, quoted_id=order.message_id))
    assert desk.status("A1") == "pending" and desk.last_reply == NOT_ADMIN_ORDER
    # What the admin writes now counts.
    desk.admin("done", quoted_id=order.message_id)
    assert desk.status("A1") == "completed"


def test_a_removed_admins_earlier_commands_still_count_later_ones_do_not() -> None:
    desk = DeskChat(admins=[ADMIN_PHONE])
    first, second = desk.post(ALICE, ".10"), desk.post(ALICE, ".20")
    early = desk.message(ADMIN, "done", sender_alt=ADMIN_ALT, source=Source.OFFLINE, quoted_id=first.message_id)
    desk.advance(60)
    desk.make_admins([])
    late = desk.message(ADMIN, "done", sender_alt=ADMIN_ALT, quoted_id=second.message_id)
    desk.deliver(early, late)
    assert (desk.status("A1"), desk.status("A2")) == ("completed", "pending")


def test_an_admin_cancels_and_an_illegal_or_unknown_one_is_explained(shop: DeskChat) -> None:
    first = shop.post(ALICE, ".10")
    shop.admin("cancel", quoted_id=first.message_id)
    assert shop.status("A1") == "cancelled" and shop.last_reply.startswith("❌")
    shop.admin("done", quoted_id=first.message_id)
    assert shop.last_reply == "⚠️ অর্ডার A1 এখন বাতিল — এটি আর অনুমোদন করা যাবে না"
    shop.admin("done", quoted_id="NOSUCHMESSAGE")
    assert shop.last_reply == "⚠️ এই বার্তার কোনো অর্ডার নেই"
    shop.admin("done")  # not a reply: how to use it
    assert shop.last_reply == "⚠️ অনুমোদন করতে অর্ডারের উত্তরে done লিখুন"


def test_refusals_are_said_in_the_chats_language() -> None:
    from tests.desk import desk_config
    desk = DeskChat(admins=[ADMIN_PHONE], config=desk_config(**{"bot.language": "en"}))
    order = desk.post(ALICE, ".10")
    desk.post(BOB, "done", quoted_id=order.message_id)
    assert desk.last_reply == "⚠️ only the shop's admins can approve or cancel orders"


def test_rate_pending_due_help_and_a_replayed_command_does_nothing_twice(shop: DeskChat) -> None:
    rate = shop.admin(".rate 2.30")
    assert shop.last_reply == "💱 নতুন রেট: প্রতি ডায়মন্ড ৳2.30"
    shop.post(ALICE, ".10")
    shop.post(BOB, ".২০")
    assert shop.order("A1").amount == Decimal("23.00")
    shop.admin(".pending")
    assert shop.last_reply == "⏳ অপেক্ষমাণ অর্ডার (2টি):\nA1 .10 ৳23\nA2 .20 ৳46"
    sent = len(shop.sent)
    shop.deliver(rate)  # the same message again (a replay after a crash)
    assert len(shop.sent) == sent
    shop.post(BOB, ".due")
    assert shop.last_reply == "💳 বকেয়া: ৳0"
    shop.post(BOB, ".help")
    assert shop.last_reply.startswith("📖")


# -- payments ------------------------------------------------------------------------------------


def test_paid_and_due_keep_the_account_exact(shop: DeskChat) -> None:
    assert shop.patch(rate="2.30").status == 200
    first = shop.post(ALICE, ".7")
    shop.admin("done", quoted_id=first.message_id)  # billed 16.10
    shop.admin(".paid 10.05 bkash TRX123")
    assert "৳10.05" in shop.last_reply and "৳6.05" in shop.last_reply
    shop.post(BOB, ".due")
    assert shop.last_reply == "💳 বকেয়া: ৳6.05"
    shop.admin(".paid 5")
    assert shop.last_reply.startswith("⚠️")  # the method is required
    [payment] = shop.desk.book.payments.values()
    assert (payment.amount, payment.method, payment.reference, payment.by) == (
        Decimal("10.05"), "bkash", "TRX123", f"whatsapp:{ADMIN}")


def test_a_retried_payment_is_recorded_once_and_a_wrong_one_is_voided_not_erased(shop: DeskChat) -> None:
    first = shop.post(ALICE, ".10")
    shop.admin("done", quoted_id=first.message_id)  # due 1000
    done = shop.pay("4000", "cash", key="form-123")
    retried = shop.pay("4000", "cash", key="form-123")
    assert done.status == retried.status == 200
    assert done.result["payment"]["id"] == retried.result["payment"]["id"] == "PA1"
    assert retried.result["due"] == "-3000.00"
    other = shop.pay("400", "cash", key="form-123")
    assert other.status == 409 and "PA1" in other.error
    assert shop.void("PA1", "").status == 400
    voided = shop.void("pa1", "typed 4000 for 400")
    assert voided.status == 200 and voided.result["due"] == "1000.00"
    assert voided.result["payment"]["voidReason"] == "typed 4000 for 400"
    assert shop.void("PA1", "twice").status == 409 and shop.void("PA9").status == 404
    assert shop.pay("400", "cash").result["due"] == "600.00"
    shop.restarted()
    late = shop.pay("4000", "cash", key="form-123")  # the old form once more, after a restart
    assert late.status == 200 and late.result["payment"]["id"] == "PA1" and late.result["due"] == "600.00"
    assert shop.due == Decimal("600.00")


def test_a_reference_recorded_before_is_refused_unless_confirmed(shop: DeskChat) -> None:
    # Issue 10: the same bKash TrxID could be recorded twice with no warning.
    assert shop.pay("500", "bkash", "8N7A6B").status == 200
    again = shop.pay("500", "bkash", " 8n7a6b ")
    assert again.status == 409 and "PA1" in again.error and again.result["duplicate_of"]["id"] == "PA1"
    assert shop.decisions[-1].records == [] and shop.due == Decimal("-500.00")
    confirmed = shop.pay("500", "bkash", "8N7A6B", confirm=True)
    assert confirmed.status == 200 and confirmed.result["payment"]["id"] == "PA2"
    assert shop.pay("300", "cash").status == 200 and shop.pay("300", "cash").status == 200  # no reference: cash
    # A voided payment's reference may be used again.
    assert shop.void("PA1", "wrong group").status == 200 and shop.void("PA2", "wrong group").status == 200
    assert shop.pay("500", "bkash", "8N7A6B").status == 200


def test_paid_in_the_chat_with_a_known_reference_asks_and_yes_records_it(shop: DeskChat) -> None:
    shop.admin(".paid 500 bkash TRX9")
    paid = shop.admin(".paid 500 bkash trx9")
    assert shop.last_reply.startswith("⚠️ TRX9 আগেই পেমেন্ট PA1 হিসেবে জমা হয়েছে (৳500,")
    assert shop.sent[-1].send.key.about is About.QUESTION and shop.sent[-1].send.quote.message_id == paid.message_id
    assert len(shop.desk.book.payments) == 1
    question = shop.bot_message_id("⚠️ TRX9")
    shop.post(BOB, "yes", quoted_id=question)  # not an admin: nothing
    assert len(shop.desk.book.payments) == 1
    shop.admin("yes", quoted_id=question)
    assert len(shop.desk.book.payments) == 2 and shop.last_reply.startswith("💵")
    assert [r.payment["reference"] for d in shop.decisions for r in d.records if isinstance(r, PaymentRecord)] == [
        "TRX9", "trx9"]
    shop.admin("yes", quoted_id=question)  # once only
    assert len(shop.desk.book.payments) == 2


def test_the_account_survives_a_restart(shop: DeskChat) -> None:
    shop.post(ALICE, ".10")
    assert shop.command("A1", "approve").status == 200
    assert shop.pay("250", "cash").status == 200
    shop.restarted()
    shop.post(BOB, ".due")
    assert shop.last_reply == "💳 বকেয়া: ৳750"
