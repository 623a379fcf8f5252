"""A group's desk taking orders, told as a chat with no actors (domain/desk.py): intake, the
lifecycle, edits and deletes, the duplicate guard, due limits and auto-approval."""

from __future__ import annotations

from decimal import Decimal

from domain.chat import Source
from domain.desk_events import About, SendDone, SendKey
from domain.records import OrderRecord, SeenRecord
from tests.desk import ADMIN_PHONE, ALICE, BOB, T0, DeskChat, desk_config

DELIVERED_A1 = "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000\n🆔 A1"


def shop(**config: str) -> DeskChat:
    return DeskChat(admins=[ADMIN_PHONE], config=desk_config(**config))


# -- the lifecycle ------------------------------------------------------------------------------


def test_an_order_is_taken_written_before_it_is_confirmed_then_delivered() -> None:
    desk = shop()
    msg = desk.post(ALICE, ".10")
    taken = desk.decisions[0]
    # The decision writes the order (and the group's counters) and only then says so.
    assert [type(r) for r in taken.records] == [OrderRecord, type(taken.records[1])] and taken.sync
    [receipt] = taken.sends
    assert receipt.key == SendKey(About.RECEIPT, "A1") and receipt.quote.message_id == msg.message_id
    assert receipt.text == "📥 অর্ডার গ্রহণ করা হয়েছে\n🆔 A1\n💎 10 ডায়মন্ড\n💰 ৳1000" and receipt.priority == 1
    order = desk.order("A1")
    assert (order.status.value, order.diamonds, order.amount, order.user_id) == ("pending", 10, Decimal("1000.00"),
                                                                              ALICE)
    assert desk.stored("A1")["receipt"]["confirmedAt"]  # the send's outcome was written too

    approved = desk.command("A1", "approve", by="admin:rana")
    assert approved.status == 200 and approved.result["record"]["status"] == "approved"
    assert desk.last_reply == DELIVERED_A1  # the delivery message names the order (issue 10)
    assert desk.sent[-1].send.priority == 0 and desk.sent[-1].send.quote.message_id == msg.message_id
    stored = desk.stored("A1")
    assert stored["status"] == "completed"
    assert [(a["from"], a["to"], a["by"]) for a in stored["audit"]] == [
        (None, "pending", f"whatsapp:{ALICE}"), ("pending", "approved", "admin:rana"),
        ("approved", "completed", "system")]


def test_process_then_approve_and_illegal_transitions_change_nothing() -> None:
    desk = shop()
    desk.post(ALICE, ".25")
    assert desk.command("A1", "process").status == 200 and desk.status("A1") == "processing"
    refused = desk.command("A1", "process")
    assert refused.status == 409 and desk.decisions[-1].records == [] and not desk.decisions[-1].answer_after_write
    assert desk.command("A1", "approve").status == 200
    assert desk.command("A1", "cancel").status == 409
    assert desk.command("A1", "delete").status == 409  # completed orders are never deleted
    assert desk.command("A99", "approve").status == 404
    assert desk.command("A1", "explode").status == 400
    assert desk.command("A1", "complete").status == 400  # only the delivery confirmation completes


def test_cancel_tells_the_user_and_delete_is_soft() -> None:
    desk = shop()
    desk.post(ALICE, ".5")
    desk.post(BOB, ".7")
    assert desk.command("A1", "cancel").status == 200 and desk.last_reply.startswith("❌")
    assert desk.command("A2", "delete").status == 200
    assert (desk.status("A1"), desk.status("A2")) == ("cancelled", "deleted")
    assert desk.command("A1", "delete").status == 200  # cancelled → deleted is allowed


def test_one_message_makes_one_order_whatever_the_path() -> None:
    desk = shop()
    msg = desk.post(ALICE, ".10")
    for source in (Source.LIVE, Source.OFFLINE, Source.HISTORY, Source.INBOX):
        desk.deliver(desk.message(ALICE, ".10", source=source, message_id=msg.message_id, timestamp=msg.timestamp))
    assert list(desk.desk.book.orders) == ["A1"]
    assert sum(r.startswith("📥") for r in desk.replies) == 1


def test_chat_and_own_messages_create_nothing() -> None:
    desk = shop()
    for text in ("hello", "10", "done", "price?", ""):
        desk.post(ALICE, text)
    desk.post("100000000000001@lid", ".10")  # the bot's own id
    assert desk.desk.book.orders == {} and desk.replies == []


def test_invalid_order_text_gets_one_reply_and_a_replay_gets_none() -> None:
    desk = shop()
    msg = desk.post(ALICE, ".0")
    desk.post(ALICE, ".1e3")
    assert desk.desk.book.orders == {} and len(desk.replies) == 2 and all(r.startswith("⚠️") for r in desk.replies)
    desk.deliver(desk.message(ALICE, ".0", message_id=msg.message_id, timestamp=msg.timestamp))
    assert len(desk.replies) == 2
    quiet = shop(**{"orders.reply_invalid": "false"})
    quiet.post(ALICE, ".0")
    assert quiet.replies == []


def test_recovered_orders_are_marked_and_confirmed_as_recovered() -> None:
    desk = shop()
    desk.deliver(desk.message(ALICE, ".15", source=Source.OFFLINE, timestamp=T0 - 600))
    assert desk.order("A1").recovered and "অফলাইনে" in desk.last_reply


def test_history_before_the_watermark_or_too_old_never_becomes_an_order() -> None:
    desk = shop()
    desk.deliver(desk.message(ALICE, ".10", source=Source.HISTORY, timestamp=desk.floor - 60))  # before install
    desk.deliver(desk.message(ALICE, ".11", source=Source.OFFLINE, timestamp=T0 - 25 * 3600))  # older than max_age
    assert desk.desk.book.orders == {}
    desk.post(ALICE, ".12")
    desk.advance(60)
    desk.deliver(desk.message(BOB, ".13", source=Source.HISTORY, timestamp=desk.clock.now() - 5))
    assert sorted(o.diamonds for o in desk.desk.book.orders.values()) == [12, 13]


def test_a_restart_keeps_every_order_the_sequence_and_what_was_handled() -> None:
    desk = shop()
    first = desk.post(ALICE, ".10")
    desk.post(BOB, ".20")
    assert desk.command("A1", "approve").status == 200
    desk.restarted()
    assert {oid: o.status.value for oid, o in desk.desk.book.orders.items()} == {"A1": "completed", "A2": "pending"}
    desk.deliver(desk.message(ALICE, ".10", source=Source.HISTORY, message_id=first.message_id,
                              timestamp=first.timestamp))
    desk.post(ALICE, ".30")
    assert list(desk.desk.book.orders) == ["A1", "A2", "A3"]
    assert desk.command("A2", "approve").status == 200 and desk.last_reply.startswith("✅")


def test_a_disabled_group_takes_nothing_and_enabling_it_revives_nothing() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    assert desk.patch(enabled=False).status == 200
    late = desk.post(ALICE, ".11")
    assert list(desk.desk.book.orders) == ["A1"] and len(desk.replies) == 1  # no order, no answer
    # Issue 10: a config change must not turn an old message into a new action.
    assert desk.patch(enabled=True).status == 200
    desk.deliver(desk.message(ALICE, ".11", source=Source.HISTORY, message_id=late.message_id,
                              timestamp=late.timestamp))
    assert list(desk.desk.book.orders) == ["A1"]


def test_a_new_group_writes_its_settings_with_its_first_event() -> None:
    desk = shop()
    desk.post(BOB, "hello")  # nothing happens in the chat, but the group is now on record
    assert desk.db.groups[desk.desk.book.group_id].settings["code"] == "A"


# -- edits and deletes ----------------------------------------------------------------------------


def test_an_edit_changes_a_pending_order_and_says_so_a_late_one_is_refused() -> None:
    desk = shop()
    msg = desk.post(ALICE, ".10")
    desk.post(ALICE, ".100", edits=msg.message_id)
    order = desk.order("A1")
    assert (order.diamonds, order.amount, order.status.value) == (100, Decimal("10000.00"), "pending")
    assert desk.last_reply.startswith("✏️") and desk.sent[-1].send.quote.message_id == msg.message_id
    desk.admin("done", quoted_id=msg.message_id)
    desk.post(ALICE, ".5", edits=msg.message_id)  # too late: already delivered
    assert desk.order("A1").diamonds == 100
    assert desk.last_reply == "⚠️ অর্ডার A1 এখন সম্পন্ন — এটি আর বদলানো যাবে না"
    assert desk.sent[-1].send.quote.message_id == msg.message_id  # an edit itself cannot be quoted


def test_a_not_understood_message_edited_into_an_order_becomes_one() -> None:
    desk = shop()
    typo = desk.post(ALICE, ".1o")
    assert desk.desk.book.orders == {} and desk.last_reply.startswith("⚠️")
    desk.post(ALICE, ".10", edits=typo.message_id)
    assert (desk.order("A1").diamonds, desk.order("A1").message_id) == (10, typo.message_id)


def test_deleting_the_order_message_cancels_a_pending_order_of_its_sender() -> None:
    desk = shop()
    first = desk.post(ALICE, ".10")
    second = desk.post(BOB, ".20")
    desk.post(ALICE, "", revokes=first.message_id)
    assert desk.status("A1") == "cancelled" and desk.last_reply.startswith("🗑️")
    desk.post(ALICE, "", revokes=second.message_id)  # not hers to delete
    assert desk.status("A2") == "pending"


def test_an_order_deleted_while_the_bot_was_down_becomes_nothing() -> None:
    # Issue 10: both the message and its deletion waited in the offline queue; the bot used to
    # confirm the order, then announce it cancelled.
    desk = shop()
    order = desk.message(ALICE, ".10", source=Source.OFFLINE, timestamp=T0 - 300)
    delete = desk.message(ALICE, "", source=Source.OFFLINE, timestamp=T0 - 200, revokes=order.message_id)
    decision = desk.deliver(order, delete)
    assert desk.desk.book.orders == {} and desk.replies == [] and decision.sends == []
    assert {r.group_id for r in decision.records if isinstance(r, SeenRecord)}  # handled, durably
    # The same message again later (history, the inbox) is a replay: still nothing.
    desk.deliver(desk.message(ALICE, ".10", source=Source.HISTORY, message_id=order.message_id,
                              timestamp=order.timestamp))
    assert desk.desk.book.orders == {} and desk.replies == []


def test_a_deletion_that_arrives_before_its_message_wins() -> None:
    desk = shop()
    order = desk.message(ALICE, ".10", source=Source.HISTORY, timestamp=T0 - 300)
    desk.deliver(desk.message(ALICE, "", source=Source.OFFLINE, timestamp=T0 - 200, revokes=order.message_id))
    desk.deliver(order)
    assert desk.desk.book.orders == {} and desk.replies == []


# -- the duplicate guard ----------------------------------------------------------------------------


def test_a_repeated_order_gets_a_question_and_its_senders_yes_places_it() -> None:
    desk = shop(**{"orders.duplicate_window": "5m"})
    desk.post(ALICE, ".10")
    desk.advance(20)
    again = desk.post(ALICE, ".10")
    assert list(desk.desk.book.orders) == ["A1"]
    # Seconds after the first order it says "just now", not "1 minute ago" (issue 10).
    assert desk.last_reply.startswith("❓ এইমাত্র আপনি .10 অর্ডার দিয়েছেন (A1)")
    question = desk.bot_message_id("❓")
    desk.post(BOB, "yes", quoted_id=question)  # someone else's yes is not hers
    assert list(desk.desk.book.orders) == ["A1"]
    desk.post(ALICE, "হ্যাঁ", quoted_id=question)
    assert list(desk.desk.book.orders) == ["A1", "A2"] and desk.order("A2").message_id == again.message_id
    desk.post(ALICE, "yes", quoted_id=question)  # again: nothing more
    assert len(desk.desk.book.orders) == 2


def test_a_held_order_survives_a_restart() -> None:
    desk = shop(**{"orders.duplicate_window": "5m"})
    desk.post(ALICE, ".10")
    desk.advance(180)
    desk.post(ALICE, ".10")
    assert "3 মিনিট আগে" in desk.last_reply
    question = desk.bot_message_id("❓")
    desk.restarted()
    desk.post(ALICE, "yes", quoted_id=question)
    assert list(desk.desk.book.orders) == ["A1", "A2"]


# -- due limit and auto-approval ------------------------------------------------------------------


def test_over_the_due_limit_an_order_is_held_pending_with_a_clear_reply() -> None:
    desk = shop()
    assert desk.patch(due_limit="1500").status == 200
    first = desk.post(ALICE, ".10")
    desk.admin("done", quoted_id=first.message_id)  # due 1000
    desk.post(ALICE, ".10")  # would make it 2000
    assert desk.last_reply.startswith("⏸️") and "A2" in desk.last_reply and desk.status("A2") == "pending"


def test_auto_approval_under_its_limit_audited_and_stopped_by_the_due_limit() -> None:
    desk = shop()
    assert desk.patch(auto_approve=True, auto_approve_max=50, due_limit="1500").status == 200
    desk.post(ALICE, ".10")
    desk.post(ALICE, ".60")  # over the per-order limit: an admin decides
    desk.post(ALICE, ".9")  # would make the due 1900: held, not approved
    assert [desk.status(o) for o in ("A1", "A2", "A3")] == ["completed", "pending", "pending"]
    assert desk.order("A1").audit[1].by == "system:auto-approve" and DELIVERED_A1 in desk.replies


def test_orders_held_by_the_due_limit_are_approved_once_payments_make_room() -> None:
    desk = shop()
    assert desk.patch(auto_approve=True, auto_approve_max=50, due_limit="1500").status == 200
    desk.post(ALICE, ".10")  # due 1000: approved at once
    desk.post(ALICE, ".9")   # A2: would be 1900, held
    desk.post(BOB, ".60")    # A3: over auto_approve_max — an admin's, whatever the due
    desk.post(BOB, ".8")     # A4: held too
    assert desk.order("A2").audit[0].note == "held: the due limit was reached"
    assert desk.pay("500").status == 200  # due 500; A2 (900) fits → 1400; A4 (800) would make 2200
    assert [desk.status(o) for o in ("A2", "A3", "A4")] == ["completed", "pending", "pending"]
    assert (desk.order("A2").audit[1].by, desk.order("A2").audit[1].note) == (
        "system:auto-approve", "the due is within the limit again")
    assert desk.patch(due_limit="3000").status == 200  # a higher limit releases the rest it may take
    assert [desk.status(o) for o in ("A3", "A4")] == ["pending", "completed"]
    desk.admin(".paid 100 cash")  # nothing left to release: nothing repeats
    assert sum(r.startswith("✅") for r in desk.replies) == 3


def test_an_order_deleted_before_its_receipt_went_out_is_taken_back_silently() -> None:
    # Issue 10: the order and its deletion arrived apart (two batches of the offline queue).
    desk = shop()
    desk.hold_sends = True  # the receipt waits in the outbox (pacing after a restart)
    order = desk.post(ALICE, ".10", source=Source.OFFLINE, timestamp=T0 - 300)
    deleted = desk.post(ALICE, "", source=Source.OFFLINE, timestamp=T0 - 200, revokes=order.message_id)
    decision = desk.decisions[-2]  # the deletion's (the withdrawn receipt's outcome came after it)
    assert decision.withdraw == [SendKey(About.RECEIPT, "A1")] and decision.sends == []
    assert desk.status("A1") == "cancelled" and desk.held == [] and desk.replies == []
    assert deleted.revokes == order.message_id


def test_a_receipt_that_went_out_before_the_deletion_is_followed_by_the_notice() -> None:
    desk = shop()
    desk.hold_sends = True
    order = desk.post(ALICE, ".10")
    in_transport = desk.held.pop()  # handed to the transport already: too late to take back
    desk.post(ALICE, "", revokes=order.message_id)
    assert desk.status("A1") == "cancelled" and desk.replies == []
    desk.handle(SendDone(in_transport.key, True, "BOT9"))  # it was sent after all
    assert [s.send.text for s in desk.sent] == [] and desk.held[-1].text.startswith("🗑️")
