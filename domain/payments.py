"""Payments, dues and a group's ledger: what a group owes is its billed orders minus its payments.

Money is exact throughout (Decimal, two places); nothing here reads a clock.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Iterable, Literal, Mapping

from domain.clock import from_iso, to_iso
from domain.money import MoneyError, exact_decimal, money_str, parse_amount, taka
from domain.orders import Order, Status

METHODS = ("bkash", "nagad", "rocket", "bank", "cash", "other")
# How a method is written in a chat reply or on the panel.
METHOD_LABELS = {"bkash": "bKash", "nagad": "Nagad", "rocket": "Rocket", "bank": "Bank", "cash": "Cash",
                 "other": "Other"}
MAX_AMOUNT = Decimal("10000000")
MAX_REFERENCE = 100
MAX_NOTE = 500
BILLED = frozenset({Status.APPROVED, Status.COMPLETED})
_BILLED_VALUES = frozenset(s.value for s in BILLED)

# Spellings (after _key: lower case, no spaces, dashes, dots or underscores) -> method.
# নগদ alone is the Nagad brand; "নগদ টাকা" (cash money) is cash.
_ALIASES = {
    **{m: m for m in METHODS},
    "bikash": "bkash", "বিকাশ": "bkash",
    "নগদ": "nagad",
    "roket": "rocket", "dbblrocket": "rocket", "রকেট": "rocket",
    "banktransfer": "bank", "transfer": "bank", "ব্যাংক": "bank", "ব্যাঙ্ক": "bank",
    "ক্যাশ": "cash", "নগদটাকা": "cash", "হাতেনগদ": "cash",
    "অন্যান্য": "other",
}
_SEPARATORS = re.compile(r"[\s\-_.\u200c\u200d]+")


class PaymentError(ValueError):
    """A payment that cannot be recorded; the message names the field."""


def _key(text: str) -> str:
    """A method's spelling reduced for lookup: NFC, lower case, separators dropped."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFC", text).casefold())


def parse_method(text: str) -> str:
    """One of METHODS from what a person wrote ("bKash", "b-kash", "বিকাশ", "নগদ টাকা")."""
    method = _ALIASES.get(_key(text)) if isinstance(text, str) else None
    if method is None:
        shown = repr(text[:30]) if isinstance(text, str) else type(text).__name__
        raise PaymentError(f"method: {shown} is not a payment method; use one of {', '.join(METHODS)}")
    return method


def check_amount(value: object) -> Decimal:
    """A payment amount: an exact decimal (no floats), more than 0, at most 10,000,000, two places at most."""
    if not isinstance(value, (str, int, Decimal)) or isinstance(value, bool):
        raise PaymentError(f"amount: must be a decimal string like \"500\" or \"23.50\", not {type(value).__name__}")
    try:
        amount = parse_amount(value)
    except MoneyError as e:
        if str(e).startswith("amount must be zero or more"):  # a payment is never 0 either
            raise PaymentError("amount: must be more than 0") from None
        raise PaymentError(f"amount: {str(e).removeprefix('amount ')}") from None
    if amount != exact_decimal(value):
        raise PaymentError("amount: at most two decimal places (poisha)")
    if amount <= 0:
        raise PaymentError("amount: must be more than 0")
    if amount > MAX_AMOUNT:
        raise PaymentError(f"amount: at most {taka(MAX_AMOUNT)}")
    return amount


def check_reference(value: str) -> str:
    """A reference or TrxID: trimmed, at most 100 printable characters (may be empty)."""
    if not isinstance(value, str):
        raise PaymentError("reference: must be text")
    value = value.strip()
    if len(value) > MAX_REFERENCE:
        raise PaymentError(f"reference: at most {MAX_REFERENCE} characters")
    if not value.isprintable():
        raise PaymentError("reference: must not contain control or invisible characters")
    return value


def check_note(value: str) -> str:
    """A note: trimmed, at most 500 characters, printable apart from line breaks."""
    if not isinstance(value, str):
        raise PaymentError("note: must be text")
    value = value.strip()
    if len(value) > MAX_NOTE:
        raise PaymentError(f"note: at most {MAX_NOTE} characters")
    if not value.replace("\n", " ").isprintable():
        raise PaymentError("note: must not contain control or invisible characters")
    return value


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    group_id: str
    amount: Decimal
    method: str
    reference: str
    note: str
    at: float  # 0.0 only for an imported payment whose date was unknown
    by: str  # admin name, "whatsapp:<id>" or "system:import"
    imported_id: str = ""
    # A request's own key (the panel's form id, an API client's Idempotency-Key): a retry of
    # the same request finds the payment instead of recording it twice.
    client_key: str = ""
    # A mistaken payment is voided, never rewritten or removed: it stays listed, counts nothing.
    voided_at: float | None = None
    voided_by: str = ""
    void_reason: str = ""
    # The order a payment was for, where the old bot's payment named one (an imported payment).
    order_id: str = ""
    # Fields of the old bot's payment that no field here holds, exactly as written (stored as
    # "imported"); kept through a void.
    imported_fields: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def voided(self) -> bool:
        return self.voided_at is not None


def void(p: Payment, *, by: str, reason: str, at: float) -> Payment:
    """Void a payment (PaymentError if it already is, or without a reason)."""
    if p.voided:
        raise PaymentError(f"payment {p.id} is already void")
    reason = check_note(reason).strip()
    if not reason:
        raise PaymentError("reason: say why the payment is void")
    if not by.strip():
        raise PaymentError("by: must not be empty")
    return replace(p, voided_at=at, voided_by=by, void_reason=reason)


def new_payment(*, payment_id: str, group_id: str, amount: str | int | Decimal, method: str,
                reference: str = "", note: str = "", at: float, by: str, client_key: str = "") -> Payment:
    """A validated payment; raises PaymentError naming the field that is wrong."""
    for name, value in (("id", payment_id), ("group_id", group_id), ("by", by)):
        if not isinstance(value, str) or not value.strip():
            raise PaymentError(f"{name}: must not be empty")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise PaymentError("at: must be a time in seconds")
    if not isinstance(client_key, str) or len(client_key) > 100 or not client_key.isprintable():
        raise PaymentError("client_key: at most 100 printable characters")
    return Payment(id=payment_id, group_id=group_id, amount=check_amount(amount), method=parse_method(method),
                   reference=check_reference(reference), note=check_note(note), at=float(at), by=by,
                   client_key=client_key)


def same_reference(payments: Iterable[Payment], reference: str) -> Payment | None:
    """The payment that counts and has this reference (TrxID), compared trimmed and without case;
    None for an empty reference (cash has none)."""
    wanted = reference.strip().casefold()
    if not wanted:
        return None
    return next((p for p in payments if not p.voided and p.reference.strip().casefold() == wanted), None)


def to_record(p: Payment) -> dict[str, Any]:
    """The stored shape (the importer writes the same): camelCase, amount "500.00", time ISO 8601."""
    return {
        "id": p.id,
        "importedId": p.imported_id,
        "groupId": p.group_id,
        "amount": money_str(p.amount),
        "method": p.method,
        "reference": p.reference,
        "note": p.note,
        "at": to_iso(p.at) if p.at else None,
        "by": p.by,
        **({"clientKey": p.client_key} if p.client_key else {}),
        **({"orderId": p.order_id} if p.order_id else {}),
        **({"voidedAt": to_iso(p.voided_at), "voidedBy": p.voided_by, "voidReason": p.void_reason}
           if p.voided_at is not None else {}),
        **({"imported": p.imported_fields} if p.imported_fields else {}),
    }


def _time(value: object) -> float | None:
    """A stored time: ISO 8601 with offset, or epoch seconds / milliseconds (the seed's)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            ts = float(value) / 1000.0 if value > 1e11 else float(value)
            return ts if math.isfinite(ts) and to_iso(ts) else None
        return from_iso(str(value)) if isinstance(value, str) else None
    except (ValueError, OverflowError, OSError):
        return None


def _text(record: Mapping[str, Any], key: str) -> str:
    """A stored text field ("" if missing or not text; the seed's numeric ids as text)."""
    value = record.get(key)
    return value if isinstance(value, str) else str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def from_record(d: Mapping[str, Any]) -> Payment:
    """Read a stored payment leniently (unknown method "other", no time 0.0); PaymentError without id or amount."""
    if not isinstance(d, Mapping):
        raise PaymentError("payment: not a JSON object")
    pid = _text(d, "id")
    if not pid:
        raise PaymentError("id: missing")
    try:
        amount = parse_amount(d.get("amount"))
    except (MoneyError, TypeError):
        raise PaymentError(f"amount: payment {pid} has no readable amount") from None
    if amount <= 0:
        raise PaymentError(f"amount: payment {pid} is not a positive amount")
    try:
        method = parse_method(_text(d, "method"))
    except PaymentError:
        method = "other"
    return Payment(id=pid, group_id=_text(d, "groupId"), amount=amount, method=method,
                   reference=_text(d, "reference"), note=_text(d, "note"), at=_time(d.get("at")) or 0.0,
                   by=_text(d, "by"), imported_id=_text(d, "importedId"), client_key=_text(d, "clientKey"),
                   voided_at=_time(d.get("voidedAt")) if d.get("voidedAt") else None,
                   voided_by=_text(d, "voidedBy"), void_reason=_text(d, "voidReason"), order_id=_text(d, "orderId"),
                   imported_fields=dict(d["imported"]) if isinstance(d.get("imported"), Mapping) else None)


# ---------------------------------------------------------------------------------------------
# Dues


def billed(orders: Iterable[Order]) -> Decimal:
    """What a group was billed: the amounts of its approved and completed orders."""
    return sum((o.amount for o in orders if o.status in BILLED), Decimal("0.00"))


def _billed_amount(record: Mapping[str, Any]) -> Decimal | None:
    """A stored order's billed amount, or None if it is not billed or its amount is unreadable."""
    if not isinstance(record, Mapping) or str(record.get("status", "")).lower() not in _BILLED_VALUES:
        return None
    try:
        return parse_amount(record.get("amount"))
    except (MoneyError, TypeError):
        return None


def billed_records(entries: Iterable[Mapping[str, Any]]) -> Decimal:
    """billed() over stored order records; entries with unreadable amounts are skipped."""
    return sum((a for a in map(_billed_amount, entries) if a is not None), Decimal("0.00"))


def paid(payments: Iterable[Payment]) -> Decimal:
    """The sum of the payments (voided ones count nothing)."""
    return sum((p.amount for p in payments if not p.voided), Decimal("0.00"))


def paid_records(records: Iterable[Mapping[str, Any]]) -> Decimal:
    """paid() over stored payment records; unreadable records are skipped."""
    total = Decimal("0.00")
    for record in records:
        try:
            p = from_record(record)
        except PaymentError:
            continue
        if not p.voided:
            total += p.amount
    return total


def due(billed: Decimal, paid: Decimal) -> Decimal:
    """What the group owes; negative means credit."""
    return billed - paid


# ---------------------------------------------------------------------------------------------
# Ledger


@dataclass(frozen=True, slots=True)
class LedgerLine:
    at: float
    kind: Literal["order", "payment"]
    ref: str  # order id or payment id
    description: str
    debit: Decimal
    credit: Decimal
    balance: Decimal  # the due after this line


# (time, kind, ref, description, amount) of one ledger item before balances are known.
_Item = tuple[float, Literal["order", "payment"], str, str, Decimal]


def _order_line(record: Mapping[str, Any]) -> _Item | None:
    """A billed order as a ledger item, counted when it was approved."""
    amount = _billed_amount(record)
    if amount is None:
        return None
    at = next((t for t in map(_time, (record.get(k) for k in ("approvedAt", "completedAt", "date")))
               if t is not None), 0.0)
    oid = _text(record, "id")
    diamonds = record.get("diamonds")
    description = f"{oid} .{diamonds}" if isinstance(diamonds, int) and not isinstance(diamonds, bool) else oid
    rate = record.get("rate")
    if isinstance(rate, str) and rate:
        description += f" × {rate}"
    return at, "order", oid, description, amount


def _payment_line(record: Mapping[str, Any]) -> _Item | None:
    """A readable payment as a ledger item."""
    try:
        p = from_record(record)
    except PaymentError:
        return None
    if p.voided:
        return None  # void: it never reduced the due
    description = " ".join(part for part in (METHOD_LABELS[p.method], p.reference) if part)
    return p.at, "payment", p.id, description, p.amount


def ledger(order_records: Iterable[Mapping[str, Any]], payment_records: Iterable[Mapping[str, Any]],
           since: float | None = None, until: float | None = None) -> tuple[Decimal, list[LedgerLine]]:
    """(opening balance before `since`, the lines with since <= at < until in time order, balances running)."""
    # Orders count when approved (`approvedAt`, else `completedAt` or `date`); unreadable records are
    # skipped; an undated (imported) payment counts at time 0, i.e. before everything.
    items: list[_Item] = [x for x in (*map(_order_line, order_records), *map(_payment_line, payment_records)) if x is not None]
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    opening = Decimal("0.00")
    lines: list[LedgerLine] = []
    for at, kind, ref, description, amount in items:
        signed = amount if kind == "order" else -amount
        if since is not None and at < since:
            opening += signed
            continue
        if until is not None and at >= until:
            break
        balance = (lines[-1].balance if lines else opening) + signed
        debit, credit = (amount, Decimal("0.00")) if kind == "order" else (Decimal("0.00"), amount)
        lines.append(LedgerLine(at, kind, ref, description, debit, credit, balance))
    return opening, lines
