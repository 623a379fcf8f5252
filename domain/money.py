"""Money without floats: rates are Decimals, amounts are Decimals rounded to the poisha."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

POISHA = Decimal("0.01")
MAX_RATE_PLACES = 4


class MoneyError(ValueError):
    """A rate or amount that cannot be used."""


def _show(value: object) -> str:
    """A value for an error message: short, and safe for ints too long for str()."""
    try:
        text = repr(value)
    except ValueError:  # int with more digits than Python converts to text
        return "a number with thousands of digits"
    return text if len(text) <= 40 else text[:37] + "..."


_BENGALI_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
# Money as people write it: digits (ASCII or Bengali), one optional point. Decimal() alone would
# also take "1e3", "1_000" and any script's digits: a typo must not multiply a price by 400.
_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def exact_decimal(value: object) -> Decimal:
    """The number as written (InvalidOperation if it is not one); an int goes to Decimal
    directly: str() of a huge int raises ValueError."""
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    text = str(value).strip().translate(_BENGALI_DIGITS)
    if not _PLAIN.fullmatch(text):
        raise InvalidOperation(text)
    return Decimal(text)


def _money_input(value: object, what: str) -> Decimal:
    """A finite Decimal from a string, int or Decimal; floats are refused (they lose money)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"{what} must be written as a decimal string, not {_show(value)}")
    try:
        number = exact_decimal(value)
    except InvalidOperation:
        raise MoneyError(f"not a number: {_show(value)}") from None
    if not number.is_finite():
        raise MoneyError(f"{what} must be a finite number, not {_show(value)}")
    return number


def parse_rate(value: str | int | Decimal) -> Decimal:
    """A positive rate with at most four decimal places."""
    rate = _money_input(value, "rate")
    if rate <= 0:
        raise MoneyError(f"rate must be a positive number, not {_show(value)}")
    exponent = rate.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > MAX_RATE_PLACES:
        raise MoneyError(f"rate has more than {MAX_RATE_PLACES} decimal places: {_show(value)}")
    if rate >= Decimal("1000000"):
        raise MoneyError(f"rate is implausibly large: {_show(value)}")
    return canonical_rate(rate)


def canonical_rate(rate: Decimal) -> Decimal:
    """At least two decimal places, more only when the rate needs them."""
    # Judge by the normalized form: "2.300" needs one place (-> 2.30) and "100.000" none
    # (-> 100.00, not normalize()'s 1E+2).
    exponent = rate.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return rate.quantize(POISHA) if exponent >= -2 else rate.normalize()


def parse_amount(value: str | int | Decimal) -> Decimal:
    """A non-negative amount of taka, rounded to the poisha."""
    amount = _money_input(value, "amount")
    if amount < 0:
        raise MoneyError(f"amount must be zero or more, not {_show(value)}")
    try:
        return amount.quantize(POISHA, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the decimal context holds (e.g. "1e30")
        raise MoneyError(f"amount is implausibly large: {_show(value)}") from None


def order_amount(diamonds: int, rate: Decimal) -> Decimal:
    """What an order costs: diamonds × rate, rounded half up to the poisha."""
    return (Decimal(diamonds) * rate).quantize(POISHA, rounding=ROUND_HALF_UP)


def money_str(amount: Decimal) -> str:
    """The API's form: a decimal string with two places ("1000.00")."""
    return str(amount.quantize(POISHA, rounding=ROUND_HALF_UP))


def taka(amount: Decimal, *, grouped: bool = True) -> str:
    """As a shop writes it (the ৳ sign is the template's): "1000" for whole taka, "23.50"
    otherwise, and from five digits on with the Indian/Bengali grouping the shops read —
    "10,000", "1,00,000", "1,00,00,000" (lakh and crore). Four digits stay as they are ("1000",
    as in the delivery message). `grouped=False` writes the bare number (a form field's value)."""
    q = amount.quantize(POISHA, rounding=ROUND_HALF_UP)
    text = str(q.quantize(Decimal(1))) if q == q.to_integral_value() else str(q)
    return group_digits(text) if grouped else text


def group_digits(number: str) -> str:
    """ "12345678.50" → "1,23,45,678.50": the last three digits, then pairs; under 5 digits as is."""
    sign, rest = ("-", number[1:]) if number.startswith("-") else ("", number)
    whole, dot, fraction = rest.partition(".")
    if len(whole) < 5 or not whole.isdigit():
        return number
    head, tail = whole[:-3], whole[-3:]
    pairs = [head[max(0, i - 2):i] for i in range(len(head), 0, -2)][::-1]
    return sign + ",".join([*pairs, tail]) + dot + fraction
