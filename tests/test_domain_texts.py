"""The bot's chat texts rendered from the default templates (domain/texts.py)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from config import load_config
from domain.money import parse_rate
from domain.orders import Order, new_order
from domain.texts import TEMPLATE_NAMES, Texts

T0 = 1_764_000_000.0


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_config(env={})


@pytest.fixture(scope="module")
def bn(config) -> Texts:  # type: ignore[no-untyped-def]
    return Texts(config.messages["bn"], config.orders.min_diamonds, config.orders.max_diamonds)


@pytest.fixture(scope="module")
def en(config) -> Texts:  # type: ignore[no-untyped-def]
    return Texts(config.messages["en"], config.orders.min_diamonds, config.orders.max_diamonds)


def order(diamonds: int = 10, rate: str = "100", *, oid: str = "AB17", recovered: bool = False) -> Order:
    return new_order(order_id=oid, group_id="g@g.us", group_name="Shop", user_id="u@lid", user_alt="",
                     user_name="Rahim", message_id="m1", text=f".{diamonds}", diamonds=diamonds,
                     rate=parse_rate(rate), created_at=T0, now=T0, recovered=recovered)


def test_default_language_is_bengali(config) -> None:  # type: ignore[no-untyped-def]
    assert config.bot.language == "bn"
    assert config.language_messages == config.messages["bn"]


def test_delivery_text_matches_the_spec_exactly(bn: Texts) -> None:
    assert bn.delivered(order(10, "100")) == "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000"


def test_delivery_text_with_the_configured_default_rate(config, bn: Texts) -> None:  # type: ignore[no-untyped-def]
    o = order(10, str(config.orders.default_rate))
    assert bn.delivered(o).splitlines() == ["✅ আপনার অর্ডার সম্পন্ন হয়েছে", "💎 10 ডায়মন্ড", "💰 ৳1000"]


@pytest.mark.parametrize(
    ("diamonds", "rate", "shown"),
    [
        (10, "2.35", "23.50"),
        (3, "0.335", "1.01"),
        (1, "0.01", "0.01"),
        (7, "2.30", "16.10"),
        (100000, "100", "10000000"),
        (4, "2.5", "10"),
        (1, "0.0001", "0"),
    ],
)
def test_amounts_show_whole_taka_or_two_decimals(bn: Texts, en: Texts, diamonds: int, rate: str, shown: str) -> None:
    o = order(diamonds, rate)
    assert bn.delivered(o).endswith(f"\n💰 ৳{shown}")
    assert en.delivered(o).endswith(f"\n💰 ৳{shown}")
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
    assert en.delivered(order(10)) == "✅ Your order is complete\n💎 10 diamonds\n💰 ৳1000"


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


def test_missing_templates_are_refused(config) -> None:  # type: ignore[no-untyped-def]
    templates = dict(config.messages["bn"])
    del templates["delivered"], templates["invalid"]
    with pytest.raises(ValueError, match="delivered, invalid"):
        Texts(templates, 1, 100)
