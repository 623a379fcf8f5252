"""A group's book: its settings and the orders it owns, and the rules for taking in messages.

The GroupActor holds one GroupBook. Intake is decided here, purely: which messages become
orders (exactly once per chat message), which get a one-time "not understood" reply, which
are ignored and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Iterable, Mapping

from domain.money import MoneyError, parse_amount, parse_rate
from domain.orders import Order, Status, new_order
from domain.parsing import InvalidOrderText, OrderText, parse_order
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
    rate: Decimal
    enabled: bool = True
    auto_approve: bool = False
    auto_approve_max: int = 0
    due_limit: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """The intake rules' parameters (from config)."""

    min_diamonds: int
    max_diamonds: int
    max_age: float
    reply_invalid: bool
    duplicate_window: float = 0.0  # 0: no duplicate guard


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
        self.orders[order.id] = order

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if not o.status.archived]

    def prune(self, now: float, max_age: float) -> int:
        """Forget archived orders and seen ids too old to matter; returns orders dropped.
        The PersistenceActor keeps everything; this only bounds the actor's memory."""
        horizon = now - max_age
        old = [oid for oid, o in self.orders.items()
               if o.status.archived and (o.created_at or 0.0) < horizon
               and _last_change(o) < horizon]
        for oid in old:
            del self.orders[oid]
        for mid in [m for m, ts in self.seen.items() if ts < horizon]:
            del self.seen[mid]
        return len(old)


def _last_change(order: Order) -> float:
    return order.audit[-1].at if order.audit else 0.0


@dataclass(frozen=True, slots=True)
class Inbound:
    """The fields of a chat message intake needs (transport-neutral)."""

    message_id: str
    sender: str
    sender_alt: str
    sender_name: str
    text: str
    timestamp: float
    group_name: str = ""
    from_me: bool = False
    recovered: bool = False
    check_watermark: bool = False  # history replays only: live and inbox messages may arrive late
    confirmed: bool = False  # its sender said "yes" to the duplicate question: no guard again


@dataclass(slots=True)
class IntakeResult:
    new_orders: list[Order] = field(default_factory=list)
    invalid: list[tuple[Inbound, str]] = field(default_factory=list)  # (message, reason) to answer
    # Held by the duplicate guard: (message, diamonds, the earlier order it repeats).
    held: list[tuple[Inbound, int, Order]] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)  # ids to record as handled
    ignored: dict[str, int] = field(default_factory=dict)  # reason -> count
    settings_changed: bool = False

    def ignore(self, reason: str) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1


def take_in(
    book: GroupBook,
    messages: Iterable[Inbound],
    *,
    now: float,
    limits: Limits,
    own_ids: frozenset[str] = frozenset(),
) -> IntakeResult:
    """Decide what a batch of messages does, and apply it to the book.

    Applies at once (ids reserved, orders added) so a duplicate arriving before the batch is
    durable is still recognised; the caller must persist the result before telling anyone."""
    result = IntakeResult()
    for msg in messages:
        if msg.from_me or msg.sender in own_ids:
            result.ignore("own message")
            continue
        parsed = parse_order(msg.text, limits.min_diamonds, limits.max_diamonds)
        if parsed is None:
            result.ignore("chat")
            continue
        if msg.message_id in book.seen:
            result.ignore("duplicate")
            continue
        if msg.timestamp < now - limits.max_age:
            result.ignore("too old")
            continue
        if msg.check_watermark and msg.timestamp < book.watermark:
            result.ignore("before watermark")
            continue
        if not book.settings.enabled:
            result.ignore("group disabled")
            continue
        book.seen[msg.message_id] = msg.timestamp
        result.seen[msg.message_id] = msg.timestamp
        book.watermark = max(book.watermark, msg.timestamp)
        if msg.group_name and msg.group_name != book.settings.name:
            book.settings = replace(book.settings, name=msg.group_name)
            result.settings_changed = True
        if isinstance(parsed, InvalidOrderText):
            if limits.reply_invalid:
                result.invalid.append((msg, parsed.reason))
            continue
        assert isinstance(parsed, OrderText)
        if not msg.confirmed and limits.duplicate_window > 0:
            earlier = find_duplicate(book.orders.values(), user_id=msg.sender, user_alt=msg.sender_alt,
                                     diamonds=parsed.diamonds, now=msg.timestamp,
                                     window=limits.duplicate_window)
            if earlier is not None:
                result.held.append((msg, parsed.diamonds, earlier))
                continue
        order = new_order(
            order_id=f"{book.settings.code}{book.next_seq}",
            group_id=book.group_id,
            group_name=book.settings.name,
            user_id=msg.sender,
            user_alt=msg.sender_alt,
            user_name=msg.sender_name,
            message_id=msg.message_id,
            text=msg.text,
            diamonds=parsed.diamonds,
            rate=book.settings.rate,
            created_at=msg.timestamp,
            now=now,
            recovered=msg.recovered,
        )
        book.next_seq += 1
        book.put(order)
        result.new_orders.append(order)
    return result


# ---------------------------------------------------------------------------------------------
# Guards on a new order: the duplicate question, the due limit, auto-approval (SPEC §3.4).

AUTO_APPROVER = "system:auto-approve"  # the audit's `by` for an order approved without an admin
_NOT_DUPLICATES = frozenset({Status.CANCELLED, Status.DELETED})


def find_duplicate(orders: Iterable[Order], *, user_id: str, user_alt: str, diamonds: int, now: float,
                   window: float) -> Order | None:
    """The newest live order by the same person for the same diamonds within `window` s of `now`; 0 is off."""
    # Either side of `now`: message times may run a little ahead, and late deliveries come out of order.
    if window <= 0:
        return None
    person = {user_id, user_alt} - {""}
    best: Order | None = None
    best_at = 0.0
    for o in orders:
        if o.diamonds != diamonds or o.status in _NOT_DUPLICATES or not person & {o.user_id, o.user_alt}:
            continue
        at = o.created_at if o.created_at is not None else o.received_at
        if abs(now - at) <= window and (best is None or at > best_at):
            best, best_at = o, at
    return best


def due_limit_exceeded(settings: GroupSettings, due_after: Decimal) -> bool:
    """Whether the group's due (with the new order counted) is over its limit; no limit, never."""
    return settings.due_limit is not None and due_after > settings.due_limit


def auto_approve_allowed(settings: GroupSettings, order: Order, due_after: Decimal) -> bool:
    """Whether an order is approved without an admin (audit by AUTO_APPROVER); a limit of 0 approves none."""
    return (settings.auto_approve and settings.auto_approve_max > 0
            and order.diamonds <= settings.auto_approve_max and not due_limit_exceeded(settings, due_after))


HELD_FOR_DUE = "held: the due limit was reached"  # the creation audit's note of such an order


def hold_for_due(order: Order) -> Order:
    """A new order taken over the due limit, marked so (in its creation audit entry, durable
    with it) to be approved automatically once payments make room, where auto-approval is on."""
    first, *rest = order.audit
    note = f"{first.note}; {HELD_FOR_DUE}" if first.note else HELD_FOR_DUE
    return replace(order, audit=(replace(first, note=note), *rest))


def held_for_due(order: Order) -> bool:
    """Still pending since the due limit held it (an edit in the chat keeps it held)."""
    return order.status is Status.PENDING and bool(order.audit) and HELD_FOR_DUE in order.audit[0].note


def releasable(book: GroupBook) -> list[Order]:
    """Orders held by the due limit that auto-approval now approves, oldest first, each counted
    in the due before the next is judged."""
    held = sorted(filter(held_for_due, book.orders.values()), key=lambda o: (o.created_at or o.received_at, o.id))
    out: list[Order] = []
    due = book.due
    settings = book.settings
    if not (settings.auto_approve and settings.auto_approve_max > 0):
        return out
    for order in held:
        if order.diamonds > settings.auto_approve_max:
            continue  # an admin approves this one, whatever the due
        if due_limit_exceeded(settings, due + order.amount):
            break  # first come, first served: a later, smaller order does not jump the queue
        out.append(order)
        due += order.amount
    return out


def find_by_message(orders: Iterable[Order], message_id: str) -> Order | None:
    """The order a chat message is about: its own message, or the bot's receipt or delivery of it."""
    if not message_id:
        return None
    for o in orders:
        if message_id in (o.message_id, o.receipt.message_id, o.delivery.message_id):
            return o
    return None


# ---------------------------------------------------------------------------------------------
# Stored form of a group's settings (the seed's `groups[groupId] = {groupName, rate, entries}`
# plus our fields).


def settings_record(book: GroupBook) -> dict[str, Any]:
    s = book.settings
    return {
        "groupName": s.name,
        "code": s.code,
        "rate": str(s.rate),
        "enabled": s.enabled,
        "autoApprove": s.auto_approve,
        "autoApproveMax": s.auto_approve_max,
        "dueLimit": None if s.due_limit is None else str(s.due_limit),
        "nextSeq": book.next_seq,
        "watermark": book.watermark,
        "nextPaymentSeq": book.next_payment_seq,
    }


class SettingsError(ValueError):
    """A stored or requested group setting that cannot be used."""


def settings_from_record(group_id: str, record: Mapping[str, Any], default_rate: Decimal) -> GroupSettings:
    """Read stored settings; a bad value raises SettingsError naming it (never a silent default)."""
    try:
        rate = parse_rate(record.get("rate", default_rate))
    except MoneyError as e:
        raise SettingsError(f"group {group_id}: rate: {e}") from None
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
