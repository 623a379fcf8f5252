"""Money without floats: rates, amounts, rounding and display (domain/money.py)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from domain.money import (
    MoneyError,
    canonical_rate,
    money_str,
    order_amount,
    parse_amount,
    parse_rate,
    taka,
)


def _id(value: object) -> str:
    """A short test id (str() of a 5000-digit int raises, and long ids are unreadable)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"int-{value.bit_length()}-bits"
    text = f"{type(value).__name__}:{value!r}"
    return text if len(text) <= 30 else text[:27] + "..."


# --- parse_rate ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100", "100.00"),
        (100, "100.00"),
        (Decimal("100"), "100.00"),
        ("2.30", "2.30"),
        ("2.3", "2.30"),
        (" 2.3 ", "2.30"),
        ("2.300", "2.30"),  # trailing zeros are not precision
        ("100.000", "100.00"),  # not 1E+2
        ("0.335", "0.335"),
        ("2.3450", "2.345"),
        ("0.0001", "0.0001"),
        ("1.2345", "1.2345"),
        ("999999.9999", "999999.9999"),
        (1, "1.00"),
        (Decimal("0.01"), "0.01"),
    ],
)
def test_parse_rate_accepts(value: object, expected: str) -> None:
    rate = parse_rate(value)  # type: ignore[arg-type]
    assert isinstance(rate, Decimal)
    assert rate == Decimal(expected)
    assert str(rate) == expected  # the canonical written form


@pytest.mark.parametrize(
    "value",
    [
        2.3,  # floats lose money
        100.0,
        float("nan"),
        float("inf"),
        True,  # bools are ints in Python; never a rate
        False,
        "0",
        0,
        "0.00",
        "-0",
        "-1",
        -5,
        Decimal("-2.30"),
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        Decimal("Infinity"),
        Decimal("NaN"),
        "0.00001",  # more than four decimal places
        "1.23456",
        "1000000",  # implausibly large
        1_000_000,
        "1e6",
        "1e30",
        "1e2",  # scientific notation: ".rate 1e3" is a typo, not ৳1000
        "2.3e0",
        "१०",  # Devanagari digits
        "9" * 5000,
        10**5000,  # str() of this raises ValueError in Python; must still be a MoneyError
        "",
        "   ",
        "abc",
        "2,30",
        "৳100",
        "1/2",
        None,
        [1],
        {"rate": 1},
    ],
    ids=_id,
)
def test_parse_rate_refuses(value: object) -> None:
    with pytest.raises(MoneyError) as info:
        parse_rate(value)  # type: ignore[arg-type]
    assert len(str(info.value)) < 200  # a readable message, not 5000 digits


def test_money_error_is_a_value_error() -> None:
    assert issubclass(MoneyError, ValueError)


def test_parse_rate_error_names_float() -> None:
    with pytest.raises(MoneyError, match="decimal string"):
        parse_rate(2.3)


def test_canonical_rate_forms() -> None:
    assert str(canonical_rate(Decimal("5"))) == "5.00"
    assert str(canonical_rate(Decimal("5.1"))) == "5.10"
    assert str(canonical_rate(Decimal("5.125"))) == "5.125"
    assert str(canonical_rate(Decimal("5.1250"))) == "5.125"
    assert str(canonical_rate(Decimal("0"))) == "0.00"
    assert str(canonical_rate(Decimal("1E+2"))) == "100.00"


def test_parse_rate_seeded_random_round_trip() -> None:
    """Any rate with 0-4 places written as a string comes back equal, never as a float."""
    rng = random.Random(20240601)
    for _ in range(2000):
        places = rng.randint(0, 4)
        units = rng.randint(1, 999_999 * 10**places)
        text = str(Decimal(units).scaleb(-places))
        rate = parse_rate(text)
        assert rate == Decimal(text)
        assert -rate.as_tuple().exponent >= 2  # at least two places
        assert parse_rate(str(rate)) == rate  # its written form reads back the same


# --- parse_amount --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "0.00"),
        (0, "0.00"),
        ("1000", "1000.00"),
        ("23.5", "23.50"),
        ("0.005", "0.01"),  # half up
        ("0.004", "0.00"),
        ("1.005", "1.01"),
        ("2.675", "2.68"),  # a float would give 2.67
        (Decimal("99.995"), "100.00"),
        (" 12 ", "12.00"),
        ("৫০০", "500.00"),  # Bengali digits, as typed in the chat
        ("১২.৫", "12.50"),
    ],
)
def test_parse_amount(value: object, expected: str) -> None:
    amount = parse_amount(value)  # type: ignore[arg-type]
    assert str(amount) == expected


@pytest.mark.parametrize(
    "value",
    [1.5, True, "-0.01", -1, "NaN", "Infinity", "", "x", None, "1e30", "1e1000000", 10**5000, "9" * 5000,
     "1e3", "1E2", "1_000", "१०", "٣", "0x10", "1.2.3", "."],  # a typo must not become a price
    ids=_id,
)
def test_parse_amount_refuses(value: object) -> None:
    with pytest.raises(MoneyError):
        parse_amount(value)  # type: ignore[arg-type]


# --- order_amount --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diamonds", "rate", "expected"),
    [
        (10, "100", "1000.00"),
        (1, "0.01", "0.01"),
        (3, "0.335", "1.01"),  # 1.005 rounds half up (a float product gives 1.00)
        (1, "0.005", "0.01"),
        (1, "0.0049", "0.00"),
        (7, "2.30", "16.10"),
        (3, "0.1", "0.30"),  # 0.1 * 3 is 0.30000000000000004 in floats
        (100000, "999999.9999", "99999999990.00"),
        (9, "1.1115", "10.00"),  # 10.0035
        (5, "1.1111", "5.56"),  # 5.5555 half up
        (1, "2.345", "2.35"),
    ],
)
def test_order_amount_rounds_half_up_to_the_poisha(diamonds: int, rate: str, expected: str) -> None:
    amount = order_amount(diamonds, parse_rate(rate))
    assert amount == Decimal(expected)
    assert str(amount) == expected


def test_order_amount_matches_exact_integer_arithmetic() -> None:
    """Against an independent integer computation in ten-thousandths of a poisha."""
    rng = random.Random(7)
    for _ in range(3000):
        diamonds = rng.randint(1, 100_000)
        rate_units = rng.randint(1, 9_999_999)  # rate in 1/10000 taka
        rate = Decimal(rate_units).scaleb(-4)
        exact = diamonds * rate_units  # in 1/10000 taka
        poisha, rest = divmod(exact, 100)  # 1 poisha = 100 units
        if rest >= 50:
            poisha += 1
        assert order_amount(diamonds, rate) == Decimal(poisha).scaleb(-2)


# --- display -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1000", "1000"),
        ("1000.00", "1000"),
        ("1E+3", "1000"),
        ("23.5", "23.50"),
        ("23.50", "23.50"),
        ("0.01", "0.01"),
        ("0", "0"),
        ("0.00", "0"),
        ("16.10", "16.10"),
        ("1.005", "1.01"),
        ("999.999", "1000"),
        ("9999", "9999"),  # four digits stay as the delivery message writes them (💰 ৳1000)
        ("9999.99", "9999.99"),
        ("10000", "10,000"),
        ("12345.50", "12,345.50"),
        ("99999", "99,999"),
        ("100000", "1,00,000"),
        ("1234567", "12,34,567"),
        ("10000000", "1,00,00,000"),
        ("99999999990.00", "99,99,99,99,990"),
        ("-150000", "-1,50,000"),
        ("-1000", "-1000"),
    ],
)
def test_taka(amount: str, expected: str) -> None:
    assert taka(Decimal(amount)) == expected
    assert taka(Decimal(amount), grouped=False) == expected.replace(",", "")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1000", "1000.00"),
        ("1E+3", "1000.00"),
        ("23.5", "23.50"),
        ("0", "0.00"),
        ("1.005", "1.01"),
        ("0.004", "0.00"),
    ],
)
def test_money_str(amount: str, expected: str) -> None:
    assert money_str(Decimal(amount)) == expected


def test_money_str_reads_back_exactly() -> None:
    rng = random.Random(11)
    for _ in range(1000):
        amount = Decimal(rng.randint(0, 10**12)).scaleb(-2)
        assert parse_amount(money_str(amount)) == amount
        shown = taka(amount)
        assert Decimal(shown.replace(",", "")) == amount
        assert "." not in shown or len(shown.split(".")[1]) == 2
