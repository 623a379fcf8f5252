"""The order lifecycle through the real actors (simpleSystemBase), told as a chat: the shell
around the desk — routing, the gateway's recording, persistence, the panel's reads. The rules
themselves are the desk's (tests/test_desk_*.py)."""

from __future__ import annotations

from actors.messages import OrderCommand
from domain.chat import Source
from tests.harness import ALICE, BOB, GROUP, GROUP2, ChatBot

DELIVERED = "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000\n🆔 A1"


def test_order_is_taken_confirmed_approved_and_delivered(bot: ChatBot) -> None:
    msg = bot.post(GROUP, ALICE, ".10", name="Alice")
    [order] = bot.orders()
    assert (order["id"], order["status"], order["diamonds"], order["amount"]) == ("A1", "pending", 10, "1000.00")
    assert order["userId"] == ALICE and order["messageId"] == msg.message_id
    receipt = bot.fake.sent[-1]
    assert receipt.quote is not None and receipt.quote.message_id == msg.message_id
    assert "A1" in receipt.text and "10" in receipt.text

    done = bot.command("A1", "approve", by="admin:rana")
    assert done.status == 200, done.error
    assert bot.replies(GROUP)[-1] == DELIVERED
    assert bot.fake.sent[-1].quote.message_id == msg.message_id
    stored = bot.order("A1")["record"]
    assert stored["status"] == "completed"
    assert [(a["from"], a["to"], a["by"]) for a in stored["audit"]] == [
        (None, "pending", f"whatsapp:{ALICE}"),
        ("pending", "approved", "admin:rana"),
        ("approved", "completed", "system"),
    ]
    assert stored["delivery"]["attempts"] == 1 and stored["delivery"]["confirmedAt"]


def test_process_then_approve_and_illegal_transitions(bot: ChatBot) -> None:
    bot.post(GROUP, ALICE, ".25")
    assert bot.command("A1", "process").status == 200
    assert bot.order("A1")["record"]["status"] == "processing"
    assert bot.command("A1", "process").status == 409
    assert bot.command("A1", "approve").status == 200
    refused = bot.command("A1", "cancel")
    assert refused.status == 409 and "completed" in refused.error
    assert bot.command("A1", "delete").status == 409  # completed orders are never deleted
    assert bot.command("B1", "approve").status == 404
    assert bot.command("A99", "approve").status == 404
    assert bot.command("A1", "explode").status == 400
    assert bot.command("A1", "complete").status == 400  # only the delivery confirmation completes


def test_each_group_has_its_own_codes_and_rates(bot: ChatBot) -> None:
    bot.post(GROUP, ALICE, ".10")
    bot.post(GROUP2, BOB, ".10")
    assert bot.update_group(GROUP2, rate="2.30").status == 200
    bot.post(GROUP2, BOB, ".10")
    orders = {o["id"]: o for o in bot.orders()}
    assert set(orders) == {"A1", "B1", "B2"}
    assert orders["B1"]["amount"] == "1000.00"  # rate at order time is kept
    assert orders["B2"]["rate"] == "2.30" and orders["B2"]["amount"] == "23.00"
    bad = bot.update_group(GROUP2, rate=2.3)
    assert bad.status == 400 and "rate" in bad.error
    assert bot.update_group("999@g.us", rate="3").status == 404


def test_one_message_makes_one_order_whatever_the_path(bot: ChatBot) -> None:
    msg = bot.post(GROUP, ALICE, ".10")
    # The same message again: a duplicate delivery, the offline queue, history, the inbox.
    for source in (Source.LIVE, Source.OFFLINE, Source.HISTORY, Source.INBOX):
        bot.deliver(bot.message(GROUP, ALICE, ".10", source=source, message_id=msg.message_id,
                                timestamp=msg.timestamp))
    assert len(bot.orders()) == 1
    assert len([t for t in bot.replies(GROUP) if t.startswith("📥")]) == 1


def test_chat_and_own_messages_create_nothing(bot: ChatBot) -> None:
    for text in ("hello", "10", "done", "price?", ""):
        bot.post(GROUP, ALICE, text)
    bot.deliver(bot.message(GROUP, "100000000000001@lid", ".10"))  # the bot's own id
    assert bot.orders() == [] and bot.replies(GROUP) == []


def test_a_restart_keeps_every_order_and_the_sequence(make_bot) -> None:
    bot = make_bot()
    bot.post(GROUP, ALICE, ".10")
    bot.post(GROUP, BOB, ".20")
    assert bot.command("A1", "approve").status == 200
    clock = bot.clock
    bot.stop()
    again = make_bot(clock=clock)
    assert {o["id"]: o["status"] for o in again.orders()} == {"A1": "completed", "A2": "pending"}
    again.post(GROUP, ALICE, ".30")
    assert {o["id"] for o in again.orders()} == {"A1", "A2", "A3"}
    assert again.command("A2", "approve").status == 200  # the restarted group owns its orders
    assert again.replies(GROUP)[-1].startswith("✅")


def test_an_approval_during_the_orders_first_write_is_never_undone(make_bot) -> None:
    # The approval arrives while the creation's write is still waiting for its fsync: the
    # receipt, sent once that write is durable, must not bring the pending order back.
    bot = make_bot(**{"persistence.commit_delay": "100ms"})
    bot.post(GROUP, BOB, ".5")  # the group exists: A1
    bot.fake.deliver([bot.message(GROUP, ALICE, ".10")])
    bot.pump(0.02)  # A2 taken in and its write sent; the commit waits 100 ms
    bot.asys.tell(bot.supervisor, OrderCommand("fast-approve", "A2", "approve", "admin:quick"))
    bot.pump(0.5)
    record = bot.order("A2")["record"]
    assert record["status"] == "completed"
    assert [a["to"] for a in record["audit"]] == ["pending", "approved", "completed"]
    assert bot.replies(GROUP)[-1] == DELIVERED.replace("A1", "A2")


def test_the_status_the_panel_reads_counts_what_was_sent(bot: ChatBot) -> None:
    """Sends change no connection state, yet the panel's copy follows them (within a poll)."""
    bot.post(GROUP, ALICE, ".10")
    assert bot.command("A1", "approve").status == 200
    bot.pump(0.7)  # one gateway poll
    gateway = bot.status()["gateway"]
    assert (gateway["sent_last_hour"], gateway["queued"]) == (len(bot.fake.sent), 0)
    assert len(bot.fake.sent) == 2  # the receipt and the delivery message


def test_orders_of_the_same_second_are_listed_newest_first(bot: ChatBot) -> None:
    for n in range(1, 13):
        bot.post(GROUP, ALICE, f".{n}")  # the test clock stands still: all in one second
    assert [o["id"] for o in bot.orders()] == [f"A{n}" for n in range(12, 0, -1)]


def test_an_order_deleted_while_its_receipt_waits_in_the_outbox_is_taken_back(make_bot) -> None:
    """Issue 10: the order and its deletion came apart (say two batches of the offline queue);
    the receipt still waits for its pacing gap — it is taken back, and nothing is said."""
    bot = make_bot(**{"outbox.min_gap": "1h"})
    bot.post(GROUP, BOB, ".5")  # the first send goes at once; the next waits an hour
    assert len(bot.fake.sent) == 1
    order = bot.post(GROUP, ALICE, ".10", source=Source.OFFLINE)
    bot.deliver(bot.message(GROUP, ALICE, "", source=Source.OFFLINE, revokes=order.message_id))
    assert bot.order("A2")["record"]["status"] == "cancelled"
    bot.advance(3601)  # the gap has passed: whatever still waits goes out with the next send
    bot.post(GROUP, BOB, ".6")
    assert [t.splitlines()[1] for t in bot.replies(GROUP)] == ["🆔 A1", "🆔 A3"]  # nothing of A2


def test_groups_are_known_before_their_first_order(make_bot) -> None:
    """Issue 12: the transport lists the bot's groups at connect; a group's rate can be set
    before anyone writes in it, and its first order is billed at that rate."""
    from domain.chat import GroupInfo, GroupsChange
    from gateway.fake import FakeTransport
    fake = FakeTransport(groups={GROUP: "Rahim Store", GROUP2: "Karim Telecom"}, announce_groups=True)
    bot = make_bot(fake=fake, **{"orders.default_rate": ""})
    bot.pump(0.1)
    groups = {g["group_id"]: g["settings"] for g in bot.groups()}
    assert set(groups) == {GROUP, GROUP2} and groups[GROUP]["rate"] is None
    assert bot.update_group(GROUP, rate="2.50").status == 200
    bot.post(GROUP, ALICE, "576515275\n100")
    [order] = bot.orders()
    assert (order["amount"], order["playerId"]) == ("250.00", "576515275")
    bot.post(GROUP2, ALICE, ".10")  # no rate there yet: answered, nothing billed
    assert len(bot.orders()) == 1 and bot.last_reply(GROUP2).startswith("⏳")
    # The bot is added to a new group, and leaves another.
    fake.group_news(GroupsChange((GroupInfo("120363000000000003@g.us", "New Shop"),), gone=(GROUP2,)))
    bot.pump(0.1)
    groups = {g["group_id"]: g["settings"] for g in bot.groups()}
    assert groups["120363000000000003@g.us"]["groupName"] == "New Shop"
    assert groups[GROUP2]["leftAt"] and not groups[GROUP]["leftAt"]
