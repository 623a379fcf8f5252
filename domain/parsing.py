"""What a chat message says: an order, order-looking text that is not a valid one, or nothing.

Two forms of order, each of which a shop can switch off:

* `.10` — ten diamonds (the dot form);
* the player form — the player's game ID (or `+` and a phone number, for shops that top up by
  number) on the first line, the diamonds on the second (`.50` there reads the same as `50`):

      576515275
      50

Bengali digits count as their Western values; blank lines and surrounding spaces are ignored;
an ID may be written with spaces or dashes (`576-515-275`). What a reseller plainly meant as an
order but wrote another way — the ID and the diamonds on one line, several orders in one
message, an ID that is too short — gets one short answer and creates nothing: the bot never
guesses an amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# ASCII and Bengali digits only: Python's \d would also accept e.g. Arabic-Indic digits,
# which no reseller here types and which would make ids like ".٣" orders by accident.
_DIGITS = "0-9\u09e6-\u09ef"
_ORDER = re.compile(rf"^\.([{_DIGITS}]+)$")
# Text that a reseller meant as a dot order: a dot, then (after optional spaces or a sign) a digit.
_ORDER_LIKE = re.compile(rf"^\.\s*[-+]?\s*[{_DIGITS}]")
_BENGALI_TO_ASCII = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
# The player form's lines: an ID (digits, spaces, dashes, a leading +) and an amount (digits,
# a leading dot allowed, a unit word after it allowed).
_ID_LINE = re.compile(rf"^\+?[{_DIGITS}][{_DIGITS} \-]{{3,}}$")
_AMOUNT_LINE = re.compile(rf"^\.?\s*([{_DIGITS}]+)\s*(?:d|dm|diamonds?|ডায়মন্ড|ডাইমন্ড)?$", re.IGNORECASE)
# The ID and the diamonds on one line: a long number (or +phone), then a short one.
_ONE_LINE = re.compile(rf"^\+?[{_DIGITS}]{{6,}}\s+\.?[{_DIGITS}]{{1,6}}$")
_HAS_DIGIT = re.compile(rf"[{_DIGITS}]")
MAX_PLAYER_ORDER = 200  # characters: a player order is two short lines
GAME_ID_DIGITS = (5, 20)  # a game's player ID: Free Fire's are 8 to 12 digits
PHONE_DIGITS = (8, 15)  # an international number after the +

InvalidReason = Literal["below_min", "above_max", "malformed", "player_id", "one_line", "several",
                        "dot_off", "player_off"]
# Reasons that the player form's answer explains (the others: the dot form's answer).
PLAYER_FORM_REASONS = frozenset({"player_id", "one_line", "several", "dot_off"})


@dataclass(frozen=True, slots=True)
class OrderForms:
    """Which forms of order a shop takes (`orders.dot_orders`, `orders.player_orders`)."""

    dot: bool = True
    player: bool = True


@dataclass(frozen=True, slots=True)
class OrderText:
    """A valid order for `diamonds`, for the player `player_id` ("" in the dot form)."""

    diamonds: int
    player_id: str = ""


@dataclass(frozen=True, slots=True)
class InvalidOrderText:
    """Text meant as an order that cannot be one (see InvalidReason)."""

    reason: InvalidReason

    @property
    def player_form(self) -> bool:
        """Whether the answer should explain the player form (else the dot form)."""
        return self.reason in PLAYER_FORM_REASONS


Parsed = OrderText | InvalidOrderText | None


def _ascii(text: str) -> str:
    return text.translate(_BENGALI_TO_ASCII)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def looks_like_order(text: str) -> bool:
    """Cheap test used to decide which inbound messages are worth recording at all."""
    stripped = text.strip()
    if _ORDER_LIKE.match(stripped):
        return True
    if len(stripped) > MAX_PLAYER_ORDER:
        return False
    lines = _lines(stripped)
    if len(lines) == 1:
        return bool(_ONE_LINE.match(lines[0]))
    return len(lines) >= 2 and bool(_ID_LINE.match(lines[0])) and bool(_AMOUNT_LINE.match(lines[1]))


def parse_order(text: str, min_diamonds: int, max_diamonds: int, forms: OrderForms = OrderForms()) -> Parsed:
    """Classify a message's text; None means ordinary chat (no order, no reply)."""
    stripped = text.strip()
    if _ORDER_LIKE.match(stripped):  # the dot form: one line, nothing else
        if not forms.dot:
            return InvalidOrderText("dot_off")
        match = _ORDER.match(stripped)
        if match is None:
            return InvalidOrderText("malformed")
        return _amount(match.group(1), min_diamonds, max_diamonds, "")
    if len(stripped) > MAX_PLAYER_ORDER:
        return None
    lines = _lines(stripped)
    if len(lines) == 1:
        return InvalidOrderText("one_line") if forms.player and _ONE_LINE.match(lines[0]) else None
    if len(lines) < 2 or not _ID_LINE.match(lines[0]):
        return None
    amount = _AMOUNT_LINE.match(lines[1])
    if amount is None:
        return None
    if not forms.player:
        return InvalidOrderText("player_off")
    if any(_HAS_DIGIT.search(x) for x in lines[2:]):
        # More numbers after the order: several orders in one message (each needs its own).
        return InvalidOrderText("several")
    # Words after the two lines ("please fast bhai") do not change what was ordered.
    player_id = _player_id(lines[0])
    if player_id is None:
        return InvalidOrderText("player_id")
    return _amount(amount.group(1), min_diamonds, max_diamonds, player_id)


def player_id_of(text: str) -> str | None:
    """A player ID as an order keeps it (digits, or + and a phone number's digits; spaces and
    dashes dropped, Bengali digits read), or None when it is none (imported orders use it)."""
    return _player_id(text.strip())


def _player_id(line: str) -> str | None:
    """The ID as digits (a phone number with its +); None when it is no plausible ID."""
    digits = _ascii(line).replace(" ", "").replace("-", "")
    phone = digits.startswith("+")
    digits = digits.lstrip("+")
    low, high = PHONE_DIGITS if phone else GAME_ID_DIGITS
    if not digits.isdigit() or not low <= len(digits) <= high:
        return None
    return f"+{digits}" if phone else digits


def _amount(digits: str, min_diamonds: int, max_diamonds: int, player_id: str) -> OrderText | InvalidOrderText:
    digits = _ascii(digits).lstrip("0") or "0"
    # More digits than the maximum has cannot be in range, and must not reach int() (Python
    # refuses int() of huge strings, and converting them is a DoS).
    if len(digits) > len(str(max_diamonds)):
        return InvalidOrderText("above_max")
    diamonds = int(digits)
    if diamonds < min_diamonds:
        return InvalidOrderText("below_min")
    if diamonds > max_diamonds:
        return InvalidOrderText("above_max")
    return OrderText(diamonds, player_id)
