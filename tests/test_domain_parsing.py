"""What a chat message says: an order, invalid order-looking text, or chat (domain/parsing.py)."""

from __future__ import annotations

import random

import pytest

from domain.parsing import InvalidOrderText, OrderText, looks_like_order, parse_order

MIN, MAX = 1, 100_000
MALFORMED = InvalidOrderText("malformed")
BELOW = InvalidOrderText("below_min")
ABOVE = InvalidOrderText("above_max")


def _id(text: str) -> str:
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 30 else f"{shown[:20]}...({len(text)} chars)"


CASES: list[tuple[str, object]] = [
    # valid orders
    (".10", OrderText(10)),
    (".1", OrderText(1)),
    (".100000", OrderText(100_000)),
    (".99999", OrderText(99_999)),
    (".010", OrderText(10)),  # leading zeros
    (".0000000000000000000010", OrderText(10)),  # many leading zeros are still 10
    ("  .10  ", OrderText(10)),
    ("\n.10\n", OrderText(10)),
    ("\t.10\r\n", OrderText(10)),
    ("\u00a0.10\u3000", OrderText(10)),  # Unicode spaces around are trimmed too
    (".১০", OrderText(10)),  # Bengali digits
    (".১", OrderText(1)),
    (".১২৩৪৫", OrderText(12345)),
    (".1০", OrderText(10)),  # mixed ASCII and Bengali
    (".০১০", OrderText(10)),
    # out of range
    (".0", BELOW),
    (".00", BELOW),
    (".০", BELOW),
    (".100001", ABOVE),
    (".99999999999", ABOVE),
    (".999999999999999999999", ABOVE),
    ("." + "9" * 5000, ABOVE),  # must not reach int(): Python refuses 4300+ digit strings
    ("." + "১" * 5000, ABOVE),
    ("." + "0" * 5000 + "7", OrderText(7)),  # leading zeros do not count
    # malformed order-looking text
    (".-5", MALFORMED),
    (".+5", MALFORMED),
    (". 10", MALFORMED),
    (".  -5", MALFORMED),
    (".1e3", MALFORMED),
    (".10.5", MALFORMED),
    (".10,5", MALFORMED),
    (".10 pls", MALFORMED),
    (".10pls", MALFORMED),
    (".10 .10", MALFORMED),
    (".10\n.20", MALFORMED),  # two lines are not one order
    (".\n10", MALFORMED),
    (".1 0", MALFORMED),
    (".0x10", MALFORMED),
    (".10০x", MALFORMED),
    (".5\u200b", MALFORMED),  # zero-width space is not whitespace to str.strip()
    # ordinary chat: nothing, no reply
    ("", None),
    ("   ", None),
    ("\n", None),
    (".", None),
    ("..", None),
    ("..10", None),
    ("...", None),
    ("hello", None),
    ("10", None),
    ("done", None),
    ("Done", None),
    ("10.", None),
    ("a.10", None),
    ("x .10", None),
    ("order .10", None),
    (".abc", None),
    (".e3", None),
    (".-", None),
    (". ", None),
    (",10", None),
    ("।১০", None),  # Bengali danda, not a dot
    ("\u3002\u0031\u0030", None),  # ideographic full stop
    ("\uff0e10", None),  # fullwidth full stop
    (".١٠", None),  # Arabic-Indic digits: not an order
    (".۱۰", None),  # Extended Arabic-Indic (Persian) digits
    (".१०", None),  # Devanagari digits
    (".１０", None),  # fullwidth digits
    (".²", None),  # superscript two is a "digit" to str.isdigit()
    (".Ⅻ", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[_id(t) for t, _ in CASES])
def test_parse_order_default_bounds(text: str, expected: object) -> None:
    assert parse_order(text, MIN, MAX) == expected


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[_id(t) for t, _ in CASES])
def test_looks_like_order_agrees_with_parse_order(text: str, expected: object) -> None:
    # Everything parse_order answers (order or reply) must be recorded by the cheap test.
    assert looks_like_order(text) is (expected is not None)


@pytest.mark.parametrize(
    ("text", "low", "high", "expected"),
    [
        (".10", 10, 50, OrderText(10)),
        (".9", 10, 50, BELOW),
        (".50", 10, 50, OrderText(50)),
        (".51", 10, 50, ABOVE),
        (".০৯", 10, 50, BELOW),
        (".৫০", 10, 50, OrderText(50)),
        (".1", 1, 1, OrderText(1)),
        (".2", 1, 1, ABOVE),
        (".0", 1, 1, BELOW),
        (".0", 0, 5, OrderText(0)),  # bounds are the caller's; zero allowed if min is 0
        (".100", 100, 100, OrderText(100)),
        (".99", 100, 100, BELOW),
        (".101", 100, 100, ABOVE),
        (".5", 10, 50, BELOW),
        # a maximum wider than the old 12-digit guard: still exact
        (".1000000000000", 1, 10**15, OrderText(10**12)),
        (".999999999999999", 1, 10**15, OrderText(10**15 - 1)),
        (".1000000000000000", 1, 10**15, OrderText(10**15)),
        (".1000000000000001", 1, 10**15, ABOVE),
        (".10000000000000000", 1, 10**15, ABOVE),
        ("." + "9" * 5000, 1, 10**15, ABOVE),
        (".-5", 10, 50, MALFORMED),
        ("hello", 10, 50, None),
    ],
)
def test_parse_order_custom_bounds(text: str, low: int, high: int, expected: object) -> None:
    assert parse_order(text, low, high) == expected


def test_every_number_in_range_is_an_order_in_both_scripts() -> None:
    bengali = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")
    for n in list(range(1, 2000)) + [MAX - 1, MAX]:
        assert parse_order(f".{n}", MIN, MAX) == OrderText(n)
        assert parse_order(f".{n}".translate(bengali), MIN, MAX) == OrderText(n)


def test_seeded_random_numbers_classify_by_value() -> None:
    rng = random.Random(1234)
    for _ in range(5000):
        low = rng.randint(0, 500)
        high = low + rng.randint(0, 10**rng.randint(0, 14))
        n = rng.randint(0, 10**rng.randint(0, 20))
        zeros = "0" * rng.randint(0, 3)
        text = rng.choice(["", " ", "\n"]) + f".{zeros}{n}" + rng.choice(["", " ", "\t"])
        expected = OrderText(n) if low <= n <= high else (BELOW if n < low else ABOVE)
        assert parse_order(text, low, high) == expected, (text, low, high)


def test_seeded_random_garbage_never_raises() -> None:
    """Fuzz: any text classifies as one of the three outcomes, never an exception."""
    alphabet = ".. 0123456789০১২৩৪৫৬৭৮৯١٠-+eE,\n\t\u200b\uff10abc💎"
    rng = random.Random(99)
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        result = parse_order(text, MIN, MAX)
        assert result is None or isinstance(result, (OrderText, InvalidOrderText))
        if isinstance(result, OrderText):
            assert MIN <= result.diamonds <= MAX
            assert text.strip().startswith(".") or result.player_id
        if result is None:
            assert not looks_like_order(text)


# --- the player form: the player's ID on one line, the diamonds on the next -------------------

PLAYER = InvalidOrderText("player_id")
ONE_LINE = InvalidOrderText("one_line")
SEVERAL = InvalidOrderText("several")

PLAYER_CASES: list[tuple[str, object]] = [
    ("576515275\n50", OrderText(50, "576515275")),
    ("  576515275 \n\n  50  ", OrderText(50, "576515275")),  # blank lines and spaces are ignored
    ("\n576515275\r\n50\n", OrderText(50, "576515275")),
    ("৫৭৬৫১৫২৭৫\n৫০", OrderText(50, "576515275")),  # Bengali digits on either line
    ("576515275\n.50", OrderText(50, "576515275")),  # `.50` after the ID reads the same
    ("576515275\n. 50", OrderText(50, "576515275")),
    ("576-515-275\n50", OrderText(50, "576515275")),  # an ID with dashes or spaces
    ("576 515 275\n50", OrderText(50, "576515275")),
    ("+8801712345678\n100", OrderText(100, "+8801712345678")),  # shops that top up by number
    ("+880 1712-345678\n100", OrderText(100, "+8801712345678")),
    ("01712345678\n100", OrderText(100, "01712345678")),
    ("576515275\n50 diamonds", OrderText(50, "576515275")),
    ("576515275\n৫০ ডায়মন্ড", OrderText(50, "576515275")),
    ("576515275\n0", BELOW),
    ("576515275\n100001", ABOVE),
    ("5765\n50", PLAYER),  # too short for a game ID
    ("123456789012345678901\n50", PLAYER),  # too long
    ("+8801\n50", PLAYER),  # too short for a phone number
    ("+88017123456789012\n50", PLAYER),
    ("576515275 50", ONE_LINE),  # the ID and the diamonds on one line: never guessed
    ("576515275 .50", ONE_LINE),
    ("+8801712345678 100", ONE_LINE),
    ("576515275\n50\n576515276\n100", SEVERAL),  # one order per message
    ("576515275\n50\n100", SEVERAL),
    # ordinary chat
    ("576515275", None),  # a number alone (someone's ID, a phone number)
    ("576515275\nplease fast", None),
    ("576515275\n50\nplease fast bhai", OrderText(50, "576515275")),  # words after it change nothing
    ("576515275\n50\nand 576515276 100", SEVERAL),
    ("call me 01712345678", None),
    ("01712 345678", None),
    ("2024\n12", PLAYER),  # four digits and a number: looks like an order, answered once
    ("12\n5", None),
    ("price of 100?\n50", None),
]


@pytest.mark.parametrize(("text", "expected"), PLAYER_CASES, ids=[_id(t) for t, _ in PLAYER_CASES])
def test_the_player_form(text: str, expected: object) -> None:
    assert parse_order(text, MIN, MAX) == expected
    assert looks_like_order(text) is (expected is not None)


def test_a_form_switched_off_is_answered_with_the_one_that_is_on() -> None:
    from domain.parsing import OrderForms
    dot_only, player_only = OrderForms(dot=True, player=False), OrderForms(dot=False, player=True)
    assert parse_order("576515275\n50", MIN, MAX, dot_only) == InvalidOrderText("player_off")
    assert not InvalidOrderText("player_off").player_form  # explained with the dot form
    assert parse_order("576515275 50", MIN, MAX, dot_only) is None  # no hint about a form that is off
    assert parse_order(".10", MIN, MAX, dot_only) == OrderText(10)
    assert parse_order(".10", MIN, MAX, player_only) == InvalidOrderText("dot_off")
    assert InvalidOrderText("dot_off").player_form  # explained with the player form
    assert parse_order("576515275\n50", MIN, MAX, player_only) == OrderText(50, "576515275")


def test_results_are_frozen_values() -> None:
    order = parse_order(".10", MIN, MAX)
    assert isinstance(order, OrderText)
    with pytest.raises(AttributeError):
        order.diamonds = 11  # type: ignore[misc]
    assert parse_order(".10", MIN, MAX) == parse_order(".০10", MIN, MAX)
