"""A group's book: its settings, the orders and payments it owns, and their ids.

A group's desk (domain.desk) holds one GroupBook; the rules that change it live in
domain.intake (orders from chat messages) and domain.desk (everything else).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Iterable, Mapping

from domain.clock import from_iso, to_iso
from domain.money import MoneyError, parse_amount, parse_rate
from domain.orders import Order, Status
from domain.payments import Payment

# Letters that cannot be misread as digits when an id is read aloud or typed.
_CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def group_code(n: int) -> str:
    """The n-th group's short code (1 → "A", 24 → "Z", 25 → "AA"): bijective base 24."""
    if n < 1:
        raise ValueError("group numbers start at 1")
    letters = []
    while n:
        n, rem = divmod(n - 1, len(_CODE_LETTERS))
        letters.append(_CODE_LETTERS[rem])
    return "".join(reversed(letters))


def code_number(code: str) -> int:
    """Inverse of group_code; ValueError for anything that is not a code."""
    if not code or any(c not in _CODE_LETTERS for c in code):
        raise ValueError(f"not a group code: {code!r}")
    n = 0
    for c in code:
        n = n * len(_CODE_LETTERS) + _CODE_LETTERS.index(c) + 1
    return n


def split_order_id(order_id: str) -> tuple[str, int] | None:
    """("AB", 17) for "AB17"; None if it is not one of our order ids."""
    order_id = order_id.strip().upper()
    if len(order_id) > 32:  # no real id is this long; int() of thousands of digits raises
        return None
    i = 0
    while i < len(order_id) and order_id[i].isalpha():
        i += 1
    code, seq = order_id[:i], order_id[i:]
    if not code or not seq.isdigit() or not seq.isascii():
        return None
    try:
        code_number(code)
    except ValueError:
        return None
    return code, int(seq)


def payment_id(code: str, seq: int) -> str:
    """A group's payment id: "P", the group's code, a number ("PA3")."""
    return f"P{code}{seq}"


def payment_group_code(pid: str) -> str | None:
    """The code of the group a payment id names ("A" for "pa3"); None for another form
    (payments imported from the seed are "P1", "P2"…)."""
    pid = pid.strip().upper()
    parts = split_order_id(pid[1:]) if pid.startswith("P") else None
    return parts[0] if parts else None


@dataclass(frozen=True, slots=True)
class GroupSettings:
    group_id: str
    name: str
    code: str
    rate: Decimal | None  # None: nobody set it yet; orders are answered, never billed at a guess
    enabled: bool = True
    auto_approve: bool = False
    auto_approve_max: int = 0
    due_limit: Decimal | None = None
    joined_at: float | None = None  # when the bot first saw the group
    left_at: float | None = None  # when the bot's number left it (None: it is in the group)


def billed_amount(order: Order) -> Decimal:
    """What an order adds to its group's due: its amount once approved (deleted: nothing)."""
    return order.amount if order.status in (Status.APPROVED, Status.COMPLETED) else Decimal(0)


@dataclass(frozen=True, slots=True)
class HeldOrder:
    """An order message the duplicate guard held back, waiting for its sender's "yes"."""

    message_id: str
    sender: str
    sender_alt: str
    sender_name: str
    text: str
    diamonds: int
    timestamp: float
    duplicate_of: str  # the earlier order's id
    question_id: str = ""  # the bot's question in the chat, once sent

    def to_record(self) -> dict[str, Any]:
        return {"messageId": self.message_id, "sender": self.sender, "senderAlt": self.sender_alt,
                "senderName": self.sender_name, "text": self.text, "diamonds": self.diamonds,
                "timestamp": self.timestamp, "duplicateOf": self.duplicate_of, "questionId": self.question_id}

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> HeldOrder:
        return cls(str(d["messageId"]), str(d.get("sender", "")), str(d.get("senderAlt", "")),
                   str(d.get("senderName", "")), str(d.get("text", "")), int(d.get("diamonds", 0)),
                   float(d.get("timestamp", 0.0)), str(d.get("duplicateOf", "")), str(d.get("questionId", "")))


@dataclass(slots=True)
class GroupBook:
    """One group's in-memory state, owned by its GroupActor."""

    settings: GroupSettings
    next_seq: int = 1
    # Newest message time handled; history older than this never becomes an order.
    watermark: float = 0.0
    orders: dict[str, Order] = field(default_factory=dict)
    # Order-looking message ids already handled (orders and "not understood" replies), with
    # their times; kept for history.max_age since anything older is refused by age anyway.
    seen: dict[str, float] = field(default_factory=dict)
    # The group's account: amounts of approved and completed orders, and payments (all of
    # them, also those of orders no longer in memory); due = billed - paid.
    billed: Decimal = Decimal("0.00")
    paid: Decimal = Decimal("0.00")
    next_payment_seq: int = 1
    # Orders held by the duplicate guard until their sender confirms: message id -> the
    # message and the question asked (see HeldOrder).
    held: dict[str, HeldOrder] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)  # payment id -> payment
    # What reconciliation reads without walking every order (domain.reconcile.Watch): the open
    # orders, the issues they carry, and the orders put since the last cycle.
    open_ids: set[str] = field(default_factory=set)
    open_issues: int = 0
    changed: set[str] = field(default_factory=set)

    @property
    def group_id(self) -> str:
        return self.settings.group_id

    @property
    def due(self) -> Decimal:
        return self.billed - self.paid

    def put(self, order: Order) -> None:
        """Store an order, keeping the billed total in step with its status."""
        before = self.orders.get(order.id)
        self.billed += billed_amount(order) - (billed_amount(before) if before is not None else Decimal(0))
        if before is not None and not before.status.archived:
            self.open_issues -= len(before.issues)
        if order.status.archived:
            self.open_ids.discard(order.id)
        else:
            self.open_ids.add(order.id)
            self.open_issues += len(order.issues)
        self.orders[order.id] = order
        self.changed.add(order.id)

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.id in self.open_ids]

    def prune(self, now: float, max_age: float) -> int:
        """Forget archived orders and seen ids too old to matter; returns orders dropped.
        The PersistenceActor keeps everything; this only bounds the actor's memory."""
        horizon = now - max_age
        old = [oid for oid, o in self.orders.items()
               if o.status.archived and (o.created_at or 0.0) < horizon
               and _last_change(o) < horizon]
        for oid in old:
            del self.orders[oid]
            self.changed.discard(oid)
        for mid in [m for m, ts in self.seen.items() if ts < horizon]:
            del self.seen[mid]
        return len(old)


def _last_change(order: Order) -> float:
    return order.audit[-1].at if order.audit else 0.0


# ---------------------------------------------------------------------------------------------
# Stored form of a group's settings (the seed's `groups[groupId] = {groupName, rate, entries}`
# plus our fields).


def settings_record(book: GroupBook) -> dict[str, Any]:
    s = book.settings
    return {
        "groupName": s.name,
        "code": s.code,
        "rate": None if s.rate is None else str(s.rate),
        "enabled": s.enabled,
        "autoApprove": s.auto_approve,
        "autoApproveMax": s.auto_approve_max,
        "dueLimit": None if s.due_limit is None else str(s.due_limit),
        "nextSeq": book.next_seq,
        "watermark": book.watermark,
        "nextPaymentSeq": book.next_payment_seq,
        "joinedAt": to_iso(s.joined_at),
        "leftAt": to_iso(s.left_at),
    }


class SettingsError(ValueError):
    """A stored or requested group setting that cannot be used."""


def settings_from_record(group_id: str, record: Mapping[str, Any],
                         default_rate: Decimal | None) -> GroupSettings:
    """Read stored settings; a bad value raises SettingsError naming it (never a silent default)."""
    raw_rate = record.get("rate", default_rate)
    try:
        rate = None if raw_rate is None else parse_rate(raw_rate)
    except MoneyError as e:
        raise SettingsError(f"group {group_id}: rate: {e}") from None
    times = {}
    for key in ("joinedAt", "leftAt"):
        value = record.get(key)
        try:
            times[key] = None if value is None else from_iso(str(value))
        except ValueError:
            raise SettingsError(f"group {group_id}: {key}: not a time: {value!r:.40}") from None
    due = record.get("dueLimit")
    try:
        due_limit = None if due in (None, "") else parse_amount(due)
    except MoneyError as e:
        raise SettingsError(f"group {group_id}: dueLimit: {e}") from None
    flags = {}
    for key, default in (("enabled", True), ("autoApprove", False)):
        flags[key] = record.get(key, default)
        if not isinstance(flags[key], bool):  # bool("false") would be True
            raise SettingsError(f"group {group_id}: {key}: must be true or false, not {flags[key]!r:.40}")
    auto_max = record.get("autoApproveMax") or 0
    if not isinstance(auto_max, int) or isinstance(auto_max, bool) or auto_max < 0:
        raise SettingsError(f"group {group_id}: autoApproveMax: must be a whole number, 0 or more")
    return GroupSettings(
        group_id=group_id,
        name=str(record.get("groupName") or ""),
        code=str(record.get("code") or ""),
        rate=rate,
        enabled=flags["enabled"],
        auto_approve=flags["autoApprove"],
        auto_approve_max=auto_max,
        due_limit=due_limit,
        joined_at=times["joinedAt"],
        left_at=times["leftAt"],
    )


def apply_settings_patch(settings: GroupSettings, patch: Mapping[str, Any]) -> GroupSettings:
    """Validate and apply a panel edit (`rate`, `enabled`, `auto_approve`, `auto_approve_max`,
    `due_limit`, `name`); raises SettingsError naming the field."""
    changes: dict[str, Any] = {}
    for key, value in patch.items():
        if key == "rate":
            try:
                changes["rate"] = parse_rate(value)
            except MoneyError as e:
                raise SettingsError(f"rate: {e}") from None
        elif key in ("enabled", "auto_approve"):
            if not isinstance(value, bool):
                raise SettingsError(f"{key}: must be true or false")
            changes[key] = value
        elif key == "auto_approve_max":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SettingsError("auto_approve_max: must be a whole number of diamonds, 0 or more")
            changes[key] = value
        elif key == "due_limit":
            try:
                changes[key] = None if value in (None, "") else parse_amount(value)
            except MoneyError as e:
                raise SettingsError(f"due_limit: {e}") from None
        elif key == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise SettingsError("name: must be 1 to 200 characters")
            if not value.isprintable():
                raise SettingsError("name: must not contain control or invisible characters")
            changes[key] = value.strip()
        else:
            raise SettingsError(f"{key}: not a group setting")
    result = replace(settings, **changes)
    if result.auto_approve and result.auto_approve_max <= 0 and (
            "auto_approve" in patch or "auto_approve_max" in patch):
        # On with a limit of 0 would approve nothing while the panel says it is on.
        raise SettingsError("auto_approve_max: set how many diamonds an order may have to be approved "
                            "automatically (more than 0) before turning auto-approval on")
    return result


def max_order_seq(orders: Iterable[Order], code: str) -> int:
    """Highest sequence number used by this group's order ids (for a safe next_seq)."""
    best = 0
    for o in orders:
        parts = split_order_id(o.id)
        if parts and parts[0] == code:
            best = max(best, parts[1])
    return best


def count_by_status(orders: Iterable[Order]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for o in orders:
        counts[o.status.value] += 1
    return counts
