"""The bot's chat texts rendered from the default templates (domain/texts.py)."""

from __future__ import annotations

import re
import string
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from config import load_config
from config.loader import PLACEHOLDERS, TEMPLATE_NAMES
from domain.money import parse_rate
from domain.orders import Order, new_order
from domain.payments import new_payment
from domain.commands import CommandError
from domain.texts import PENDING_LIST_MAX, Texts, offered

T0 = 1_764_000_000.0


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_config(env={})


@pytest.fixture(scope="module")
def bn(config) -> Texts:  # type: ignore[no-untyped-def]
    return Texts(config.messages["bn"], config.orders.min_diamonds, config.orders.max_diamonds)


@pytest.fixture(scope="module")
def en(config) -> Texts:  # type: ignore[no-untyped-def]
    return Texts(config.messages["en"], config.orders.min_diamonds, config.orders.max_diamonds, "en")


def order(diamonds: int = 10, rate: str = "100", *, oid: str = "AB17", recovered: bool = False) -> Order:
    return new_order(order_id=oid, group_id="g@g.us", group_name="Shop", user_id="u@lid", user_alt="",
                     user_name="Rahim", message_id="m1", text=f".{diamonds}", diamonds=diamonds,
                     rate=parse_rate(rate), created_at=T0, now=T0, recovered=recovered)


def test_default_language_is_bengali(config) -> None:  # type: ignore[no-untyped-def]
    assert config.bot.language == "bn"
    assert config.language_messages == config.messages["bn"]


def test_delivery_text_is_the_spec_s_and_names_the_order(bn: Texts) -> None:
    # The spec's three lines, then the order id: two .10 orders' deliveries can be told apart.
    assert bn.delivered(order(10, "100", oid="A1")) == "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000\n🆔 A1"


def test_a_player_order_names_its_player_a_dot_order_has_no_player_line(bn: Texts, en: Texts) -> None:
    o = replace(order(50, "2.30", oid="B7"), player_id="576515275")
    assert bn.delivered(o).splitlines() == ["✅ আপনার অর্ডার সম্পন্ন হয়েছে", "💎 50 ডায়মন্ড", "💰 ৳115", "🆔 B7",
                                             "🎮 576515275"]
    assert en.receipt(o) == "📥 Order received\n🆔 B7\n🎮 576515275\n💎 50 diamonds\n💰 ৳115"
    assert "🎮" not in bn.receipt(order(10)) and "🎮" not in en.cancelled(order(10))
    assert bn.pending_list([o, order(10, oid="B8")]) == (
        "⏳ অপেক্ষমাণ অর্ডার (2টি):\nB7 .50 ৳115 🎮 576515275\nB8 .10 ৳1000")


@pytest.mark.parametrize(
    ("diamonds", "rate", "shown"),
    [
        (10, "2.35", "23.50"),
        (3, "0.335", "1.01"),
        (1, "0.01", "0.01"),
        (7, "2.30", "16.10"),
        (100000, "100", "1,00,00,000"),  # lakh/crore grouping from five digits on
        (4, "2.5", "10"),
        (1, "0.0001", "0"),
    ],
)
def test_amounts_show_whole_taka_or_two_decimals(bn: Texts, en: Texts, diamonds: int, rate: str, shown: str) -> None:
    o = order(diamonds, rate)
    assert f"\n💰 ৳{shown}\n" in bn.delivered(o)
    assert f"\n💰 ৳{shown}\n" in en.delivered(o)
    assert bn.receipt(o).endswith(f"\n💰 ৳{shown}")
    assert f"💎 {diamonds} ডায়মন্ড" in bn.delivered(o)


def test_receipt_bn(bn: Texts) -> None:
    assert bn.receipt(order(10)) == "📥 অর্ডার গ্রহণ করা হয়েছে\n🆔 AB17\n💎 10 ডায়মন্ড\n💰 ৳1000"


def test_recovered_orders_get_the_recovered_receipt(bn: Texts, en: Texts) -> None:
    o = order(25, "2.30", oid="C4", recovered=True)
    assert bn.receipt(o) == "📥 অর্ডার গ্রহণ করা হয়েছে (অফলাইনে পাঠানো)\n🆔 C4\n💎 25 ডায়মন্ড\n💰 ৳57.50"
    assert en.receipt(o) == "📥 Order received (sent while offline)\n🆔 C4\n💎 25 diamonds\n💰 ৳57.50"
    assert en.receipt(replace(o, recovered=False)) == "📥 Order received\n🆔 C4\n💎 25 diamonds\n💰 ৳57.50"
    # the delivery text is the same for recovered orders
    assert bn.delivered(o) == bn.delivered(replace(o, recovered=False))


def test_delivered_en(en: Texts) -> None:
    assert en.delivered(order(10)) == "✅ Your order is complete\n💎 10 diamonds\n💰 ৳1000\n🆔 AB17"


def test_cancelled(bn: Texts, en: Texts) -> None:
    assert bn.cancelled(order(10)) == "❌ আপনার অর্ডার বাতিল করা হয়েছে\n🆔 AB17\n💎 10 ডায়মন্ড"
    assert en.cancelled(order(10)) == "❌ Your order was cancelled\n🆔 AB17\n💎 10 diamonds"


def test_invalid_names_the_limits(bn: Texts, en: Texts) -> None:
    assert bn.invalid() == "⚠️ অর্ডার বোঝা যায়নি। লিখুন . এর পরে ডায়মন্ডের সংখ্যা, যেমন .10 (1–100000)"
    assert en.invalid() == "⚠️ Order not understood. Write . and the number of diamonds, e.g. .10 (1–100000)"
    custom = Texts(bn.templates, 5, 500)
    assert custom.invalid().endswith("(5–500)")


def test_no_placeholder_is_left_unrendered(bn: Texts, en: Texts) -> None:
    o = order(10, "2.30", recovered=True)
    for texts in (bn, en):
        for text in (texts.receipt(o), texts.receipt(replace(o, recovered=False)), texts.delivered(o),
                     texts.cancelled(o), texts.invalid()):
            assert "{" not in text and "}" not in text and text.strip()


def test_every_placeholder_is_filled() -> None:
    templates = {name: f"{name}|{{diamonds}}|{{amount}}|{{order_id}}|{{rate}}|{{min}}|{{max}}"
                 for name in TEMPLATE_NAMES}
    t = Texts(templates, 1, 99)
    o = order(3, "0.335", oid="Q9")
    assert t.delivered(o) == "delivered|3|1.01|Q9|0.335|1|99"
    assert t.receipt(o) == "received|3|1.01|Q9|0.335|1|99"
    assert t.receipt(replace(o, recovered=True)) == "recovered|3|1.01|Q9|0.335|1|99"
    assert t.cancelled(o) == "cancelled|3|1.01|Q9|0.335|1|99"
    assert t.invalid() == "invalid|||||1|99"  # no order: its fields are empty
    assert t.delivered(replace(o, amount=Decimal("1000.00"))) == "delivered|3|1000|Q9|0.335|1|99"


# --- the texts of commands, guards and reports -----------------------------------------------


def payment(amount: str = "500", method: str = "bkash", reference: str = "TRX123"):  # type: ignore[no-untyped-def]
    return new_payment(payment_id="P1", group_id="g@g.us", amount=amount, method=method, reference=reference,
                       at=T0, by="admin")


def test_every_configured_template_has_a_text() -> None:
    # config.loader.TEMPLATE_NAMES is the one list; each name is rendered by a Texts method.
    rendered_by = {"received": "receipt", "recovered": "receipt", "invalid_player": "invalid",
                   "rate_missing": "rate_missing", "rate_not_set": "rate_not_set", "shop_closed": "shop_notice",
                   "shop_opened": "shop_notice"}
    for name in TEMPLATE_NAMES:
        assert callable(getattr(Texts, rendered_by.get(name, name))), name


def test_held_due(bn: Texts, en: Texts) -> None:
    o = order(10, "2.30", oid="A7")
    assert bn.held_due(o, Decimal("5023.00"), Decimal("5000")) == (
        "⏸️ অর্ডার A7 অপেক্ষায় রাখা হয়েছে: বকেয়া ৳5023, সীমা ৳5000। টাকা পরিশোধের পর অনুমোদন হবে।")
    assert en.held_due(o, Decimal("5016.10"), Decimal("5000.00")) == (
        "⏸️ Order A7 is on hold: due ৳5016.10, limit ৳5000. It will be approved after payment.")


@pytest.mark.parametrize(("seconds", "bn_ago", "en_ago"), [
    (0, "এইমাত্র", "just now"), (12, "এইমাত্র", "just now"), (59, "এইমাত্র", "just now"),
    (60, "1 মিনিট আগে", "1 minutes ago"), (156, "3 মিনিট আগে", "3 minutes ago"),
    (264, "4 মিনিট আগে", "4 minutes ago"), (89 * 60, "89 মিনিট আগে", "89 minutes ago"),
    (2 * 3600, "2 ঘণ্টা আগে", "2 hours ago")])
def test_duplicate_says_how_long_ago(bn: Texts, en: Texts, seconds: float, bn_ago: str, en_ago: str) -> None:
    # Seconds after the first order it does not say "1 minute ago" (issue 10).
    o = order(10, oid="A7")
    assert bn.duplicate(o, seconds) == (
        f"❓ {bn_ago} আপনি .10 অর্ডার দিয়েছেন (A7)। আরেকটি চাইলে এই বার্তার উত্তরে লিখুন: yes")
    assert en.duplicate(o, seconds) == (
        f"❓ You ordered .10 {en_ago} (A7). To order another, reply to this message: yes")


def test_edited_and_withdrawn(bn: Texts, en: Texts) -> None:
    o = order(100, "2.30", oid="A7")
    assert bn.edited(o) == "✏️ অর্ডার A7 বদলানো হয়েছে\n💎 100 ডায়মন্ড\n💰 ৳230"
    assert en.edited(o) == "✏️ Order A7 changed\n💎 100 diamonds\n💰 ৳230"
    assert bn.withdrawn(o) == "🗑️ বার্তা মুছে ফেলায় অর্ডার A7 বাতিল হয়েছে"
    assert en.withdrawn(o) == "🗑️ The message was deleted, so order A7 is cancelled"


@pytest.mark.parametrize(("amount", "shown"), [("1250.00", "1250"), ("16.10", "16.10"), ("0", "0"),
                                               ("-50.00", "-50"), ("-3.90", "-3.90")])
def test_due(bn: Texts, en: Texts, amount: str, shown: str) -> None:
    assert bn.due(Decimal(amount)) == f"💳 বকেয়া: ৳{shown}"
    assert en.due(Decimal(amount)) == f"💳 Due: ৳{shown}"


def test_help(bn: Texts, en: Texts) -> None:
    for texts in (bn, en):
        text = texts.help()
        for command in (".10", ".due", "done", "cancel", ".rate 2.30", ".paid 500 bkash TRX123", ".pending"):
            assert command in text


def test_pending_list(bn: Texts, en: Texts) -> None:
    orders = [order(10, "100", oid="A7"), order(7, "2.30", oid="A8")]
    assert bn.pending_list(orders) == "⏳ অপেক্ষমাণ অর্ডার (2টি):\nA7 .10 ৳1000\nA8 .7 ৳16.10"
    assert en.pending_list(orders) == "⏳ Pending orders (2):\nA7 .10 ৳1000\nA8 .7 ৳16.10"
    assert en.pending_list([]) == "⏳ Pending orders (0):\n—"


def test_pending_list_is_capped(en: Texts) -> None:
    orders = [order(i, oid=f"A{i}") for i in range(1, 41)]
    lines = en.pending_list(iter(orders)).splitlines()  # any iterable
    assert lines[0] == "⏳ Pending orders (40):"
    assert len(lines) == 1 + PENDING_LIST_MAX + 1
    assert lines[1] == "A1 .1 ৳100" and lines[PENDING_LIST_MAX] == f"A{PENDING_LIST_MAX} .{PENDING_LIST_MAX} ৳1500"
    assert lines[-1] == f"… +{40 - PENDING_LIST_MAX}"
    assert len(en.pending_list(orders[:PENDING_LIST_MAX]).splitlines()) == 1 + PENDING_LIST_MAX  # no "+0"


def test_rate_set(bn: Texts, en: Texts) -> None:
    assert bn.rate_set(parse_rate("2.3")) == "💱 নতুন রেট: প্রতি ডায়মন্ড ৳2.30"
    assert en.rate_set(parse_rate("0.335")) == "💱 New rate: ৳0.335 per diamond"


def test_paid(bn: Texts, en: Texts) -> None:
    assert bn.paid(payment(), Decimal("523.50")) == "💵 পেমেন্ট জমা: ৳500 (bKash TRX123)\n💳 বকেয়া: ৳523.50"
    assert en.paid(payment("0.10", "nagad", "N1"), Decimal("-0.10")) == (
        "💵 Payment recorded: ৳0.10 (Nagad N1)\n💳 Due: ৳-0.10")
    assert en.paid(payment("750", "cash", ""), Decimal("0")) == "💵 Payment recorded: ৳750 (Cash)\n💳 Due: ৳0"


def test_command_error(bn: Texts, en: Texts) -> None:
    assert bn.command_error("রেট বোঝা যায়নি। উদাহরণ: .rate 2.30") == "⚠️ রেট বোঝা যায়নি। উদাহরণ: .rate 2.30"
    assert en.command_error("Write the new rate") == "⚠️ Write the new rate"
    assert en.command_error("braces {due} stay as written") == "⚠️ braces {due} stay as written"


def test_daily_report(bn: Texts, en: Texts) -> None:
    args = (date(2025, 11, 24), "Reseller Group 1", 12, 340, Decimal("782.00"), Decimal("500.10"), Decimal("281.90"))
    assert bn.daily_report(*args) == ("📊 2025-11-24 — Reseller Group 1\n🧾 অর্ডার: 12\n💎 ডায়মন্ড: 340\n"
                                      "💰 বিক্রি: ৳782\n💵 পেমেন্ট: ৳500.10\n💳 বকেয়া: ৳281.90")
    assert en.daily_report("2025-11-24", *args[1:]) == (
        "📊 2025-11-24 — Reseller Group 1\n🧾 Orders: 12\n💎 Diamonds: 340\n"
        "💰 Sales: ৳782\n💵 Payments: ৳500.10\n💳 Due: ৳281.90")


def test_every_new_template_renders_fully_in_both_languages(bn: Texts, en: Texts) -> None:
    o = order(25, "2.35", oid="B12")
    for texts in (bn, en):
        rendered = {
            "held_due": texts.held_due(o, Decimal("10058.75"), Decimal("10000")),
            "duplicate": texts.duplicate(o, 240),
            "edited": texts.edited(o),
            "withdrawn": texts.withdrawn(o),
            "due": texts.due(Decimal("58.75")),
            "help": texts.help(),
            "pending_list": texts.pending_list([o]),
            "rate_set": texts.rate_set(parse_rate("2.35")),
            "paid": texts.paid(payment(), Decimal("-441.25")),
            "command_error": texts.command_error("x"),
            "daily_report": texts.daily_report(date(2025, 11, 24), "Shop", 1, 25, o.amount, Decimal(500),
                                               Decimal("-441.25")),
        }
        rendered.update(invalid_player=texts.invalid(player_form=True), rate_not_set=texts.rate_not_set(),
                        rate_missing=texts.rate_missing("Shop"), closed_order=texts.closed_order(),
                        out_of_stock=texts.out_of_stock(40), shop_closed=texts.shop_notice(False),
                        shop_opened=texts.shop_notice(True), stock_out=texts.stock_out(), undone=texts.undone(o),
                        auto_approved=texts.auto_approved(o), payment_numbers=texts.payment_numbers(),
                        due_reminder=texts.due_reminder("Shop", Decimal("12.50")))
        assert set(rendered) | {"received", "recovered", "delivered", "cancelled", "invalid"} == set(TEMPLATE_NAMES)
        for name, text in rendered.items():
            assert text.strip() and "{" not in text and "}" not in text, (name, text)
            assert "Decimal" not in text and "None" not in text, (name, text)


def test_new_texts_fill_every_placeholder() -> None:
    placeholders = ("diamonds", "amount", "order_id", "min", "max", "rate", "due", "limit", "minutes", "ago",
                    "count", "list", "method", "reference", "error", "date", "group", "orders", "revenue",
                    "payments")
    templates = {name: "|".join(f"{{{p}}}" for p in placeholders) for name in TEMPLATE_NAMES}
    t = Texts(templates, 1, 99)
    o = order(3, "0.335", oid="Q9")
    fields = lambda text: dict(zip(placeholders, text.split("|")))  # noqa: E731
    assert fields(t.held_due(o, Decimal("5"), Decimal("4")))["due"] == "5"
    assert fields(t.held_due(o, Decimal("5"), Decimal("4")))["limit"] == "4"
    assert fields(t.duplicate(o, 120))["minutes"] == "2" and fields(t.duplicate(o, 120))["ago"] == "2 মিনিট আগে"
    assert fields(t.paid(payment("9.5", "rocket", "R"), Decimal("1")))["method"] == "Rocket"
    report = fields(t.daily_report("2025-11-24", "G", 2, 30, Decimal("10"), Decimal("3.5"), Decimal("6.5")))
    assert {k: report[k] for k in ("date", "group", "orders", "diamonds", "revenue", "payments", "due")} == {
        "date": "2025-11-24", "group": "G", "orders": "2", "diamonds": "30", "revenue": "10", "payments": "3.50",
        "due": "6.50"}
    # a template may use any placeholder: the ones a text has no value for render empty
    assert t.help() == "|||1|99" + "|" * 15


def test_each_text_is_filled_with_exactly_the_placeholders_it_offers(config) -> None:  # type: ignore[no-untyped-def]
    # domain.texts.offered is what the Settings page lists and what a shop's wording may use.
    templates = {name: "\n".join(f"{p}=⟨{{{p}}}⟩" for p in PLACEHOLDERS) for name in TEMPLATE_NAMES}
    t = Texts(templates, 1, 99)
    o = replace(order(3, "0.335", oid="Q9"), player_id="576515275")
    rendered = {
        "received": t.receipt(o), "recovered": t.receipt(replace(o, recovered=True)), "delivered": t.delivered(o),
        "cancelled": t.cancelled(o), "invalid": t.invalid(), "invalid_player": t.invalid(player_form=True),
        "rate_not_set": t.rate_not_set(), "rate_missing": t.rate_missing("G"), "closed_order": t.closed_order(),
        "out_of_stock": t.out_of_stock(5), "shop_closed": t.shop_notice(False), "shop_opened": t.shop_notice(True),
        "stock_out": t.stock_out(), "undone": t.undone(o), "auto_approved": t.auto_approved(o),
        "payment_numbers": t.payment_numbers(), "due_reminder": t.due_reminder("G", Decimal("5")),
        "held_due": t.held_due(o, Decimal("5"), Decimal("4")), "duplicate": t.duplicate(o, 120),
        "edited": t.edited(o), "withdrawn": t.withdrawn(o), "due": t.due(Decimal("5")), "help": t.help(),
        "pending_list": t.pending_list([o]), "rate_set": t.rate_set(parse_rate("2")),
        "paid": t.paid(payment(), Decimal("1")), "command_error": t.command_error("x"),
        "daily_report": t.daily_report("2025-11-24", "G", 2, 30, Decimal("10"), Decimal("3.5"), Decimal("6.5")),
    }
    assert set(rendered) == set(TEMPLATE_NAMES)
    for name, text in rendered.items():
        filled = set(re.findall(r"^(\w+)=⟨(?!⟩)", text, re.M))  # (a line without a player is left out)
        assert filled == set(offered(name)), name
    # The default texts use only what they are filled with.
    for language, messages in config.messages.items():
        for name, text in messages.items():
            used = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            assert used <= set(offered(name)), (language, name)


# --- the fixed answers, in the chat's language ------------------------------------------------


def test_refusals_and_hints_follow_the_language(bn: Texts, en: Texts) -> None:
    o = order(10, oid="A7")
    assert en.refusal(o, "approve") == "⚠️ order A7 is pending; it can no longer be approved"
    assert bn.refusal(o, "edit") == "⚠️ অর্ডার A7 এখন অপেক্ষমাণ — এটি আর বদলানো যাবে না"
    assert en.say("not_admin_order") == "⚠️ only the shop's admins can approve or cancel orders"
    assert bn.say("not_admin") == "⚠️ এই কমান্ড শুধু দোকানের অ্যাডমিনরা দিতে পারেন"
    assert "done" in en.say("admin_hint") and "cancel" in bn.say("admin_hint")
    error = CommandError("Write the new rate", "নতুন রেট লিখুন")
    assert (en.wrong(error), bn.wrong(error)) == ("⚠️ Write the new rate", "⚠️ নতুন রেট লিখুন")


def test_duplicate_reference_question(bn: Texts, en: Texts) -> None:
    from zoneinfo import ZoneInfo
    earlier = payment("500", "bkash", "8N7A6B")
    text = en.duplicate_reference(earlier, ZoneInfo("Asia/Dhaka"))
    assert text == ("⚠️ 8N7A6B was already recorded as payment P1 (৳500, 2025-11-24 22:00). "
                    "To record it again, reply yes to this message")
    assert "P1" in bn.duplicate_reference(earlier, ZoneInfo("Asia/Dhaka")) and "yes" in text
