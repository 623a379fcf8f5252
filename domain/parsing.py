"""What a chat message says: an order (`.10`), order-looking text that is not valid, or nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# ASCII and Bengali digits only: Python's \d would also accept e.g. Arabic-Indic digits,
# which no reseller here types and which would make ids like ".٣" orders by accident.
_DIGITS = "0-9\u09e6-\u09ef"
_ORDER = re.compile(rf"^\.([{_DIGITS}]+)$")
# Text that a reseller meant as an order: a dot, then (after optional spaces or a sign) a digit.
_ORDER_LIKE = re.compile(rf"^\.\s*[-+]?\s*[{_DIGITS}]")
_BENGALI_TO_ASCII = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")


@dataclass(frozen=True, slots=True)
class OrderText:
    """A valid order for `diamonds`."""

    diamonds: int


@dataclass(frozen=True, slots=True)
class InvalidOrderText:
    """Text meant as an order that cannot be one; `reason` is below_min, above_max or malformed."""

    reason: Literal["below_min", "above_max", "malformed"]


Parsed = OrderText | InvalidOrderText | None


def looks_like_order(text: str) -> bool:
    """Cheap test used to decide which inbound messages are worth recording at all."""
    return bool(_ORDER_LIKE.match(text.strip()))


def parse_order(text: str, min_diamonds: int, max_diamonds: int) -> Parsed:
    """Classify a message's text; None means ordinary chat (no order, no reply)."""
    stripped = text.strip()
    if not _ORDER_LIKE.match(stripped):
        return None
    match = _ORDER.match(stripped)
    if match is None:
        return InvalidOrderText("malformed")
    digits = match.group(1).translate(_BENGALI_TO_ASCII).lstrip("0") or "0"
    # More digits than the maximum has cannot be in range, and must not reach int() (Python
    # refuses int() of huge strings, and converting them is a DoS).
    if len(digits) > len(str(max_diamonds)):
        return InvalidOrderText("above_max")
    diamonds = int(digits)
    if diamonds < min_diamonds:
        return InvalidOrderText("below_min")
    if diamonds > max_diamonds:
        return InvalidOrderText("above_max")
    return OrderText(diamonds)
