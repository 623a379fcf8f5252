"""Orders that say whom to top up, and groups whose rate nobody has set (issue 12), on a
group's desk with no actors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.desk_events import About, GroupNews
from tests.desk import ADMIN_ALT, ADMIN_PHONE, ALICE, BOB, DeskChat, desk_config


def shop(language: str = "bn", **config: str) -> DeskChat:
    return DeskChat(admins=[ADMIN_PHONE], config=desk_config(**{"bot.language": language, **config}))


@pytest.mark.parametrize(("text", "player", "diamonds"), [
    ("576515275\n50", "576515275", 50),
    ("৫৭৬৫১৫২৭৫\n৫০", "576515275", 50),  # Bengali digits
    ("\n  576515275  \n\n .50 \n", "576515275", 50),  # blank lines, spaces, a dot before the amount
    ("576-515-275\n50", "576515275", 50),
    ("+880 1712-345678\n100", "+8801712345678", 100),  # shops that top up by number
])
def test_a_player_order_is_taken_and_names_the_player_everywhere(text: str, player: str, diamonds: int) -> None:
    desk = shop()
    desk.post(ALICE, text)
    order = desk.order("A1")
    assert (order.player_id, order.diamonds, order.amount) == (player, diamonds, Decimal(diamonds * 100))
    assert desk.stored("A1")["playerId"] == player
    assert desk.last_reply.splitlines()[:3] == ["📥 অর্ডার গ্রহণ করা হয়েছে", "🆔 A1", f"🎮 {player}"]
    desk.command("A1", "approve")
    assert desk.last_reply.splitlines()[-1] == f"🎮 {player}"  # the delivery message too
    desk.post(BOB, "576515275\n20")
    desk.admin(".pending")
    assert desk.last_reply.endswith("A2 .20 ৳2000 🎮 576515275")


def test_in_english_too() -> None:
    desk = shop("en")
    desk.post(ALICE, "576515275\n50")
    assert desk.last_reply == "📥 Order received\n🆔 A1\n🎮 576515275\n💎 50 diamonds\n💰 ৳5000"
    desk.post(ALICE, "576515275 50")
    assert desk.last_reply.startswith("⚠️ Order not understood. One order per message: the player ID")


@pytest.mark.parametrize("text", ["576515275 50", "576515275\n50\n576515276\n20", "5765\n50", "+8801\n100"])
def test_what_cannot_be_read_as_meant_is_answered_once_and_creates_nothing(text: str) -> None:
    desk = shop()
    msg = desk.post(ALICE, text)
    assert desk.desk.book.orders == {}
    assert desk.last_reply.startswith("⚠️ অর্ডার বোঝা যায়নি। একটি বার্তায় একটি অর্ডার")
    desk.deliver(msg)  # the same message again: no second answer
    assert len(desk.replies) == 1


def test_a_dot_order_has_no_player_line() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    assert "🎮" not in desk.last_reply and desk.order("A1").player_id == ""


def test_duplicates_are_judged_per_player() -> None:
    desk = shop(**{"orders.duplicate_window": "5m"})
    desk.post(ALICE, "576515275\n50")
    desk.post(ALICE, "888888888\n50")  # another player, the same amount: an order
    assert list(desk.desk.book.orders) == ["A1", "A2"]
    desk.post(ALICE, "576515275\n50")  # the same player and amount again: the question
    assert list(desk.desk.book.orders) == ["A1", "A2"] and desk.last_reply.startswith("❓")
    desk.post(ALICE, "yes", quoted_id=desk.bot_message_id("❓"))
    assert desk.order("A3").player_id == "576515275"


def test_an_edit_can_change_the_player_of_a_pending_order() -> None:
    desk = shop()
    msg = desk.post(ALICE, "576515275\n50")
    desk.post(ALICE, "576515276\n60", edits=msg.message_id)
    order = desk.order("A1")
    assert (order.player_id, order.diamonds) == ("576515276", 60)
    assert order.audit[-1].note == "edited in WhatsApp: .50 → .60, player 576515275 → 576515276"
    assert "🎮 576515276" in desk.last_reply


@pytest.mark.parametrize(("forms", "text", "reply_start"), [
    ({"orders.player_orders": "false"}, "576515275\n50", "⚠️ অর্ডার বোঝা যায়নি। লিখুন . এর পরে"),
    ({"orders.dot_orders": "false"}, ".10", "⚠️ অর্ডার বোঝা যায়নি। একটি বার্তায় একটি অর্ডার"),
])
def test_a_form_the_shop_switched_off_is_answered_with_the_one_it_takes(forms: dict, text: str,
                                                                        reply_start: str) -> None:
    desk = shop(**forms)
    desk.post(ALICE, text)
    assert desk.desk.book.orders == {} and desk.last_reply.startswith(reply_start)


# -- a group whose rate nobody has set ------------------------------------------------------------


def test_without_a_rate_orders_are_refused_and_the_admins_told_once() -> None:
    desk = shop(**{"orders.default_rate": ""})
    assert desk.desk.book.settings.rate is None
    desk.post(ALICE, ".10")
    desk.post(BOB, "576515275\n50")
    assert desk.desk.book.orders == {}
    group_replies = [s.text for s in desk.sent if not s.send.to]
    assert group_replies == ["⏳ এই গ্রুপের রেট এখনো ঠিক করা হয়নি — অর্ডার নেওয়া হয়নি। দোকান রেট ঠিক করলে আবার অর্ডার দিন।"] * 2
    alerts = [s.send for s in desk.sent if s.send.to]
    assert [(a.to, a.key.about) for a in alerts] == [(ADMIN_ALT, About.ALERT)]  # once, to each admin
    assert "Rahim Store" in alerts[0].text and ".rate" in alerts[0].text
    # The rate is set (panel or .rate): the next order is billed at it.
    assert desk.patch(rate="2.30").status == 200
    desk.post(ALICE, ".10")
    assert desk.order("A1").amount == Decimal("23.00")


def test_a_rate_set_before_the_first_order_bills_it() -> None:
    desk = shop(**{"orders.default_rate": ""})
    desk.handle(GroupNews("Rahim Store"))  # learned from WhatsApp before anyone wrote
    assert desk.db.groups[desk.desk.book.group_id].settings["rate"] is None  # on record, without a rate
    assert desk.patch(rate="2.50").status == 200
    desk.post(ALICE, "576515275\n100")
    assert desk.order("A1").amount == Decimal("250.00") and desk.order("A1").rate == Decimal("2.50")


def test_the_group_records_when_the_bot_joined_left_and_came_back() -> None:
    desk = shop()  # a group never seen before: it was joined now
    joined = desk.clock.now()
    desk.handle(GroupNews("Rahim Store"))
    desk.advance(60)
    desk.handle(GroupNews("Rahim Store Official"))  # renamed
    desk.advance(60)
    left = desk.handle(GroupNews("Rahim Store Official", present=False))
    settings = desk.db.groups[desk.desk.book.group_id].settings
    assert settings["groupName"] == "Rahim Store Official" and settings["leftAt"] and settings["joinedAt"]
    assert desk.desk.book.settings.joined_at == joined and left.sync
    desk.handle(GroupNews("Rahim Store Official", present=False))  # said again: nothing new
    assert desk.decisions[-1].records == []
    desk.handle(GroupNews("Rahim Store Official"))  # added again
    assert desk.desk.book.settings.left_at is None
