"""Reading the old bot's values as they were meant, and keeping the rest as they were written.

The seed's files were written by hand-made JavaScript over the years: the same field under
several names, numbers as text, epoch milliseconds beside ISO text. Each reader here takes a
value or says why it cannot (`read_time` → (None, why)); `Fields` remembers which fields of an
object were read, so everything else is kept verbatim on the imported record.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone, tzinfo
from decimal import Decimal
from typing import Any

import orjson

from domain.clock import to_iso
from domain.money import MoneyError, exact_decimal, money_str, parse_amount, parse_rate
from domain.payments import PaymentError, parse_method

IMPORTER = "system:import"  # who imported: the `by` of what the import writes
# Times before WhatsApp existed, or more than a day ahead of the import, are not the seed's.
_EARLIEST = datetime(2009, 1, 1, tzinfo=timezone.utc).timestamp()
_FUTURE_SLACK = 86400.0
# A JS float's binary noise (16.099999999999998 for 16.1) is no poisha anyone meant.
_FLOAT_NOISE = Decimal("0.000001")
_JS_DATE = re.compile(r"^\w{3} (\w{3} \d{1,2} \d{4} \d{2}:\d{2}:\d{2}) GMT([+-]\d{4})")


class Fields:
    """One object of the seed: the fields the import reads are marked as read; the others are
    kept verbatim (`rest`). An empty field (null or "") among those it reads says nothing."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.read: set[str] = set()

    def first(self, keys: tuple[str, ...]) -> tuple[str, Any]:
        """(key, value) of the first of `keys` with a value other than null/""; ("", None) if none.
        The others with a value stay unread: nothing they say differently is lost."""
        found: tuple[str, Any] = ("", None)
        for key in keys:
            if key not in self.raw:
                continue
            value = self.raw[key]
            if value is None or value == "":
                self.read.add(key)
            elif not found[0]:
                found = (key, value)
                self.read.add(key)
        return found

    def get(self, key: str) -> Any:
        if key in self.raw:
            self.read.add(key)
        return self.raw.get(key)

    def flag(self, keys: tuple[str, ...]) -> bool:
        """Whether any of `keys` is true; the ones that are true or false are read."""
        self.read.update(k for k in keys if isinstance(self.raw.get(k), bool))
        return any(self.raw.get(k) is True for k in keys)

    def unread(self, key: str) -> None:
        """A field that was looked at but is held by nothing of ours: keep it verbatim."""
        if key:
            self.read.discard(key)

    def rest(self, skip: Iterable[str] = ()) -> dict[str, Any]:
        """The fields nothing read, as JSON the journal can hold (see _verbatim)."""
        skipped = set(skip)
        return {k: verbatim(v) for k, v in self.raw.items() if k not in self.read and k not in skipped}


def verbatim(value: Any) -> Any:
    """A parsed JSON value as the journal (orjson) can write it: a number with a fraction as the
    float it reads back as when that is the same number (always, for a file JavaScript wrote),
    else as its text; whole numbers beyond 64 bits as text."""
    if isinstance(value, Decimal):
        if value.is_finite():
            f = float(value)
            if Decimal(repr(f)) == value:
                return f
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, dict):
        return {k: verbatim(v) for k, v in value.items()}
    if isinstance(value, list):
        return [verbatim(v) for v in value]
    return value


def writable(value: Any) -> bool:
    """Whether the journal can hold it (not: text with a lone surrogate, which JSON can escape)."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def show(value: Any) -> str:
    """A seed value in a message, as the file wrote it."""
    text = str(value) if isinstance(value, Decimal) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def seed_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _epoch(number: Decimal | int) -> float:
    # The seed wrote epoch milliseconds; a number this small is seconds.
    return float(number) / 1000.0 if number > 100_000_000_000 else float(number)


def read_time(value: Any, tz: tzinfo, now: float) -> tuple[float | None, str]:
    """(seconds since the epoch, "") for epoch ms/s or ISO text; (…, "naive") when a time without an
    offset was read in `tz`; (None, "") when absent; (None, why) when unreadable."""
    if value is None or value == "":
        return None, ""
    naive = ""
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, Decimal)):
            ts = _epoch(value)
        elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            ts = _epoch(int(value.strip()))
        elif isinstance(value, str):
            text = value.strip()
            js = _JS_DATE.match(text)  # Date.toString(): "Sat Dec 06 2025 23:07:14 GMT+0600 (…)"
            if js:
                dt = datetime.strptime(f"{js.group(1)} {js.group(2)}", "%b %d %Y %H:%M:%S %z")
            else:
                dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt, naive = dt.replace(tzinfo=tz), "naive"
            ts = dt.timestamp()
        else:
            raise ValueError
        datetime.fromtimestamp(ts, timezone.utc)  # NaN, year 1e9: not a time to_iso can write
    except (ValueError, OverflowError, OSError, ArithmeticError):
        return None, f"{show(value)} is not a time"
    if not _EARLIEST <= ts <= now + _FUTURE_SLACK:
        return None, f"{show(value)} is not a plausible time ({to_iso(ts)})"
    return ts, naive


def rate_of(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        return None
    try:
        return parse_rate(value)
    except MoneyError:
        return None


def exact_amount(value: Any, most: Decimal) -> tuple[Decimal | None, str]:
    """(the amount, "") if `value` is one to the poisha (a JS float's noise aside), at most `most`;
    else (None, why)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        return None, f"{show(value)} is not an amount"
    try:
        amount = parse_amount(value)
        written = exact_decimal(value)
    except MoneyError as e:
        return None, f"{show(value)} is not a usable amount ({e})"
    except (ArithmeticError, ValueError):
        return None, f"{show(value)} is not an amount"
    if abs(amount - written) > _FLOAT_NOISE:
        return None, f"{show(value)} has fractions of a poisha"
    if amount > most:
        return None, f"{show(value)} is more than {money_str(most)}, the most one payment or order may be"
    return amount, ""


def digest(value: Any) -> str:
    return hashlib.sha1(orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def user_keys(value: str) -> set[str]:
    """The keys a user id is known by: itself, and a phone number's digits ("tel:8801…") for a
    phone JID or a bare number. A LID matches only itself (it is no phone number)."""
    text = value.strip()
    if not text:
        return set()
    keys = {text}
    local, _, server = text.partition("@")
    digits = re.sub(r"[\s\-]", "", local).removeprefix("+")
    if server in ("", "s.whatsapp.net", "c.us") and digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 15:
        keys.add(f"tel:{digits}")
    return keys


def actor(value: Any) -> str:
    """Who did it, as an audit entry names people: a WhatsApp id as `whatsapp:<id>`, a name as
    written; "" when it is no text."""
    text = text_of(value)
    if "@" in text and " " not in text:
        return f"whatsapp:{text}"
    return text


def method_of(value: Any) -> str | None:
    """One of the payment methods (domain.payments.parse_method, and bank names); None if it is none."""
    if not isinstance(value, str):
        return None
    try:
        return parse_method(value)
    except PaymentError:
        return "bank" if re.sub(r"[^a-z]", "", value.lower()).startswith("bank") else None




def text_field(fields: Fields, keys: tuple[str, ...]) -> str:
    """A text field (a number as its digits); one of another kind is kept verbatim instead."""
    key, value = fields.first(keys)
    text = text_of(value)
    if value is not None and not text:
        fields.unread(key)
    return text
