"""The shop's day on a group's desk with no actors (issue 13): a closed shop, the stock, undoing
a mistaken approval, the payment numbers, and the shop's own texts."""

from __future__ import annotations

import pytest

from domain.desk_events import About, SendDone
from domain.shop import ShopNow
from tests.desk import ADMIN, ADMIN_ALT, ADMIN_PHONE, ALICE, BOB, DeskChat, desk_config


def shop(**config: str) -> DeskChat:
    return DeskChat(admins=[ADMIN_PHONE], config=desk_config(**config))


# -- open, closed, stock ----------------------------------------------------------------------


def test_an_order_while_the_shop_is_closed_gets_a_short_reply_and_creates_nothing() -> None:
    desk = shop()
    desk.shop_now = ShopNow(open=False)
    msg = desk.post(ALICE, ".10")
    desk.post(BOB, "576515275\n50")
    assert desk.desk.book.orders == {}
    assert desk.replies == ["⛔ দোকান এখন বন্ধ — অর্ডার নেওয়া হয়নি।"] * 2
    desk.shop_now = ShopNow(open=True)
    desk.deliver(msg)  # the same message after the shop opened: it was handled, for good
    assert desk.desk.book.orders == {}
    desk.post(ALICE, ".10")
    assert list(desk.desk.book.orders) == ["A1"]


def test_an_order_bigger_than_the_stock_left_is_refused_with_what_is_left() -> None:
    desk = shop()
    desk.shop_now = ShopNow(open=True, stock_left=40)
    desk.post(ALICE, ".50")
    assert desk.desk.book.orders == {} and desk.last_reply == "⚠️ এখন মাত্র 40 ডায়মন্ড আছে — অর্ডার নেওয়া হয়নি।"
    desk.post(ALICE, ".40")
    assert list(desk.desk.book.orders) == ["A1"]


# -- undoing a mistaken approval ------------------------------------------------------------------


def test_an_approval_undone_on_the_panel_goes_back_and_a_sent_delivery_is_corrected() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    assert desk.command("A1", "process").status == 200
    assert desk.command("A1", "approve", by="admin:rana").status == 200
    assert desk.status("A1") == "completed" and desk.due == 1000
    desk.advance(60)
    undone = desk.command("A1", "undo", by="admin:owner")
    assert undone.status == 200 and undone.result["record"]["status"] == "processing"  # the status it had
    order = desk.order("A1")
    assert (order.status.value, order.approved_at, order.delivery.attempts) == ("processing", None, 0)
    assert (order.audit[-1].by, order.audit[-1].note) == ("admin:owner", "approval undone")
    assert desk.due == 0  # the due follows the undo
    assert desk.last_reply == "↩️ ভুল করে অনুমোদন হয়েছিল: অর্ডার A1 আবার অপেক্ষমাণ।"
    assert desk.command("A1", "undo").status == 409  # nothing to undo now
    assert desk.command("A1", "approve").status == 200 and desk.status("A1") == "completed"  # delivered again


def test_the_undo_window_passes() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    desk.command("A1", "approve")
    desk.advance(121)  # approvals.undo_window is 2 min
    refused = desk.command("A1", "undo")
    assert refused.status == 409 and "window" in refused.error and desk.status("A1") == "completed"


@pytest.mark.parametrize("how", ["reply to the done", "reply to the order", "reply to the delivery",
                                 "delete the done", "edit the done"])
def test_an_admin_undoes_from_the_chat(how: str) -> None:
    desk = shop()
    order = desk.post(ALICE, ".10")
    done = desk.admin("done", quoted_id=order.message_id)
    assert desk.status("A1") == "completed"
    desk.advance(30)
    if how == "reply to the done":
        desk.admin("ভুল", quoted_id=done.message_id)
    elif how == "reply to the order":
        desk.admin("wrong", quoted_id=order.message_id)
    elif how == "reply to the delivery":
        desk.admin("undo", quoted_id=desk.bot_message_id("✅"))
    elif how == "delete the done":
        desk.post(ADMIN, "", sender_alt=ADMIN_ALT, revokes=done.message_id)
    else:
        desk.post(ADMIN, "cancel that", sender_alt=ADMIN_ALT, edits=done.message_id)
    assert desk.status("A1") == "pending"
    assert desk.order("A1").audit[-1].by == f"whatsapp:{ADMIN}"
    assert desk.last_reply.startswith("↩️")


def test_an_undo_from_someone_not_an_admin_is_refused() -> None:
    desk = shop()
    order = desk.post(ALICE, ".10")
    desk.admin("done", quoted_id=order.message_id)
    desk.post(ALICE, "ভুল", quoted_id=order.message_id)
    assert desk.status("A1") == "completed"
    assert desk.last_reply == "⚠️ এই কমান্ড শুধু দোকানের অ্যাডমিনরা দিতে পারেন"


def test_with_delivery_waiting_for_the_window_an_undo_is_silent() -> None:
    desk = shop(**{"approvals.delivery_waits_for_undo": "true"})
    desk.post(ALICE, ".10")
    approved = desk.decisions[-1]
    desk.command("A1", "approve")
    approved = desk.decisions[-1]
    assert approved.sends == [] and approved.retry_in == 120  # woken when the window has passed
    desk.advance(60)
    assert desk.cycle().sends == []  # reconciliation holds it too
    assert desk.command("A1", "undo").status == 200
    assert [r for r in desk.replies if r.startswith(("✅", "↩️"))] == []  # nothing to correct
    desk.command("A1", "approve")
    desk.advance(120)
    desk.retry()
    assert desk.status("A1") == "completed" and desk.last_reply.startswith("✅")


def test_an_undo_while_the_delivery_waits_in_the_outbox_takes_it_back() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    desk.hold_sends = True  # the delivery is queued behind others
    desk.command("A1", "approve")
    assert [s.key.about for s in desk.held] == [About.DELIVERY]
    desk.command("A1", "undo")
    assert desk.held == [] and desk.status("A1") == "pending"
    assert not any(r.startswith(("✅", "↩️")) for r in desk.replies)


def test_a_delivery_that_went_out_while_being_taken_back_is_corrected() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    desk.hold_sends = True
    desk.command("A1", "approve")
    in_transport = desk.held.pop()  # handed to the transport already
    desk.command("A1", "undo")
    desk.handle(SendDone(in_transport.key, True, "BOT7"))
    assert desk.status("A1") == "pending" and desk.held[-1].text.startswith("↩️")
    assert desk.order("A1").delivery.attempts == 0  # a new approval sends it afresh


# -- payment numbers --------------------------------------------------------------------------------


def test_payment_numbers_are_answered_once_per_person_per_cooldown() -> None:
    desk = shop()
    desk.set_shop(payment_numbers=True, keywords=("bkash", "বিকাশ", "number"))
    desk.set_shop(texts={"bn": {"payment_numbers": "💳 বিকাশ: 01711111111 (পার্সোনাল)"}})
    desk.post(ALICE, "bkash number?")
    assert desk.last_reply == "💳 বিকাশ: 01711111111 (পার্সোনাল)"
    desk.advance(60)
    desk.post(ALICE, "বিকাশ নাম্বার দেন ভাই")  # within the cooldown: quiet
    desk.post(ALICE, "I sent on bkash")
    assert len(desk.replies) == 1
    desk.post(BOB, "Bkash?")  # someone else
    assert len(desk.replies) == 2
    desk.advance(300)
    desk.post(ALICE, "bkash")
    assert len(desk.replies) == 3
    desk.post(BOB, "how are you")  # no keyword
    assert len(desk.replies) == 3


def test_payment_numbers_off_says_nothing() -> None:
    desk = shop()
    desk.post(ALICE, "bkash number?")  # off by default (the shop has not written its numbers)
    desk.set_shop(payment_numbers=True, keywords=("bkash",), texts_off=frozenset({"payment_numbers"}))
    desk.post(BOB, "bkash number?")
    assert desk.replies == []


# -- the shop's own texts -----------------------------------------------------------------------------


def test_a_changed_text_is_used_at_once_and_a_switched_off_one_is_not_sent() -> None:
    desk = shop()
    desk.set_shop(texts={"bn": {"received": "👍 {order_id} পেয়েছি, {diamonds} ডায়মন্ড"}})
    desk.post(ALICE, ".10")
    assert desk.last_reply == "👍 A1 পেয়েছি, 10 ডায়মন্ড"
    desk.set_shop(texts_off=frozenset({"received", "cancelled"}))
    desk.post(ALICE, ".20")
    assert len(desk.replies) == 1
    assert desk.order("A2").receipt.confirmed  # nothing left for reconciliation to chase
    assert desk.cycle().sends == []
    desk.command("A2", "cancel")
    assert len(desk.replies) == 1


def test_the_auto_approve_notice_is_off_until_switched_on() -> None:
    desk = shop()
    desk.patch(auto_approve=True, auto_approve_max=50)
    desk.post(ALICE, ".10")
    assert not any(r.startswith("⚡") for r in desk.replies)
    desk.set_shop(texts_off=frozenset())
    desk.post(ALICE, ".20")
    assert "⚡ অর্ডার A2 স্বয়ংক্রিয়ভাবে অনুমোদিত।" in desk.replies


def test_with_the_duplicate_question_off_a_repeat_is_an_order() -> None:
    desk = shop(**{"orders.duplicate_window": "5m"})
    desk.set_shop(texts_off=frozenset({"duplicate"}))
    desk.post(ALICE, ".10")
    desk.post(ALICE, ".10")
    assert list(desk.desk.book.orders) == ["A1", "A2"]
