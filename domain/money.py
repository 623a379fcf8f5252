"""Money without floats: rates are Decimals, amounts are Decimals rounded to the poisha."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

POISHA = Decimal("0.01")
MAX_RATE_PLACES = 4


class MoneyError(ValueError):
    """A rate or amount that cannot be used."""


def parse_rate(value: str | int | Decimal) -> Decimal:
    """A positive rate with at most four decimal places; floats are refused (they lose money)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"rate must be written as a decimal string, not {value!r}")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise MoneyError(f"not a number: {value!r}") from None
    if not rate.is_finite() or rate <= 0:
        raise MoneyError(f"rate must be a positive number, not {value!r}")
    exponent = rate.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > MAX_RATE_PLACES:
        raise MoneyError(f"rate has more than {MAX_RATE_PLACES} decimal places: {value!r}")
    if rate >= Decimal("1000000"):
        raise MoneyError(f"rate is implausibly large: {value!r}")
    return canonical_rate(rate)


def canonical_rate(rate: Decimal) -> Decimal:
    """At least two decimal places, more only when the rate needs them."""
    exponent = rate.as_tuple().exponent
    assert isinstance(exponent, int)
    return rate.quantize(POISHA) if exponent >= -2 else rate.normalize()


def parse_amount(value: str | int | Decimal) -> Decimal:
    """A non-negative amount of taka, rounded to the poisha."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"amount must be written as a decimal string, not {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise MoneyError(f"not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise MoneyError(f"amount must be zero or more, not {value!r}")
    return amount.quantize(POISHA, rounding=ROUND_HALF_UP)


def order_amount(diamonds: int, rate: Decimal) -> Decimal:
    """What an order costs: diamonds × rate, rounded half up to the poisha."""
    return (Decimal(diamonds) * rate).quantize(POISHA, rounding=ROUND_HALF_UP)


def money_str(amount: Decimal) -> str:
    """The API's form: a decimal string with two places ("1000.00")."""
    return str(amount.quantize(POISHA, rounding=ROUND_HALF_UP))


def taka(amount: Decimal) -> str:
    """As a shop writes it: "1000" for whole taka, "23.50" otherwise (the ৳ sign is the template's)."""
    q = amount.quantize(POISHA, rounding=ROUND_HALF_UP)
    return str(q.quantize(Decimal(1))) if q == q.to_integral_value() else str(q)
