"""An order and its lifecycle: the state machine, the audit trail, delivery tracking, issues.

Orders are immutable: every change returns a new Order with one more audit entry, so an actor
can compute a change, persist it, and only then make it its state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Mapping

from domain.money import MoneyError, canonical_rate, money_str, order_amount, parse_amount, parse_rate
from domain.clock import from_iso, to_iso


class Status(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    APPROVED = "approved"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DELETED = "deleted"

    @property
    def archived(self) -> bool:
        """Archived orders are final and no longer reconciled."""
        return self in ARCHIVED


ARCHIVED = frozenset({Status.COMPLETED, Status.CANCELLED, Status.DELETED})


class Action(enum.StrEnum):
    PROCESS = "process"
    APPROVE = "approve"
    CANCEL = "cancel"
    DELETE = "delete"
    COMPLETE = "complete"  # the delivery message was confirmed sent


# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status]] = {
    Action.PROCESS: (frozenset({Status.PENDING}), Status.PROCESSING),
    Action.APPROVE: (frozenset({Status.PENDING, Status.PROCESSING}), Status.APPROVED),
    Action.CANCEL: (frozenset({Status.PENDING, Status.PROCESSING}), Status.CANCELLED),
    Action.DELETE: (
        frozenset({Status.PENDING, Status.PROCESSING, Status.APPROVED, Status.CANCELLED}),
        Status.DELETED,
    ),
    Action.COMPLETE: (frozenset({Status.APPROVED}), Status.COMPLETED),
}

# The timestamp field each state sets when entered.
_STAMP = {
    Status.PROCESSING: "processing_at",
    Status.APPROVED: "approved_at",
    Status.COMPLETED: "completed_at",
    Status.CANCELLED: "cancelled_at",
    Status.DELETED: "deleted_at",
}


class Issue(enum.StrEnum):
    INVALID = "invalid"
    STUCK_PENDING = "stuck_pending"
    PROCESSING_TIMEOUT = "processing_timeout"
    DELIVERY_RETRYING = "delivery_retrying"  # a send failed; it is retried (the audit says why)
    DELIVERY_FAILED = "delivery_failed"


# Issues that describe a state; they clear by themselves when the order leaves it.
_ISSUE_STATE = {
    Issue.STUCK_PENDING: Status.PENDING,
    Issue.PROCESSING_TIMEOUT: Status.PROCESSING,
    Issue.DELIVERY_RETRYING: Status.APPROVED,
    Issue.DELIVERY_FAILED: Status.APPROVED,
}

SYSTEM = "system"


class TransitionError(Exception):
    """A transition the state machine refuses; nothing changed."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    from_status: str | None
    to_status: str
    by: str
    note: str = ""
    message_id: str = ""  # the chat message that did it (an admin's "done"), when one did


@dataclass(frozen=True, slots=True)
class Delivery:
    """Sends of one chat message about an order (its receipt, or its delivery message)."""

    attempts: int = 0
    last_attempt_at: float | None = None
    last_error: str = ""
    message_id: str = ""
    confirmed_at: float | None = None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None

    def attempted(self, now: float) -> Delivery:
        return replace(self, attempts=self.attempts + 1, last_attempt_at=now)

    def succeeded(self, message_id: str, now: float) -> Delivery:
        return replace(self, message_id=message_id, confirmed_at=now, last_error="")

    def failed(self, error: str) -> Delivery:
        return replace(self, last_error=error[:500])

    def interrupted(self) -> Delivery:
        """Attempted by an earlier incarnation that died before hearing back: retry at once."""
        if self.confirmed or self.attempts == 0 or self.last_error:
            return self
        return replace(self, last_error="interrupted by a restart", last_attempt_at=None)


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    group_id: str
    group_name: str
    user_id: str
    user_alt: str
    user_name: str
    message_id: str
    text: str
    diamonds: int
    rate: Decimal
    amount: Decimal
    status: Status
    created_at: float | None  # the chat message's own timestamp
    received_at: float
    recovered: bool = False
    processing_at: float | None = None
    approved_at: float | None = None
    completed_at: float | None = None
    cancelled_at: float | None = None
    deleted_at: float | None = None
    receipt: Delivery = field(default_factory=Delivery)
    delivery: Delivery = field(default_factory=Delivery)
    issues: tuple[str, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    # What was wrong with the stored record when it was read; drives the `invalid` issue.
    problems: tuple[str, ...] = ()
    # The seed bot's id of an order brought in by `run.py import-json` ("seed:1765040834207").
    imported_id: str = ""
    # Whom to top up: the player's game ID, or "+" and a phone number ("" for a `.10` order).
    player_id: str = ""
    # Fields of the seed's entry that no field here holds, exactly as the seed wrote them
    # (stored as "imported"); carried through every change so a rewrite never drops them.
    imported_fields: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def archived(self) -> bool:
        return self.status.archived


def new_order(
    *,
    order_id: str,
    group_id: str,
    group_name: str,
    user_id: str,
    user_alt: str,
    user_name: str,
    message_id: str,
    text: str,
    diamonds: int,
    rate: Decimal,
    created_at: float,
    now: float,
    recovered: bool,
    player_id: str = "",
) -> Order:
    """A fresh PENDING order, its creation audited as the user's."""
    return Order(
        id=order_id,
        group_id=group_id,
        group_name=group_name,
        user_id=user_id,
        user_alt=user_alt,
        user_name=user_name,
        message_id=message_id,
        text=text,
        diamonds=diamonds,
        rate=rate,
        amount=order_amount(diamonds, rate),
        status=Status.PENDING,
        created_at=created_at,
        received_at=now,
        recovered=recovered,
        player_id=player_id,
        audit=(
            AuditEntry(
                at=now,
                from_status=None,
                to_status=Status.PENDING,
                by=f"whatsapp:{user_id}",
                note="recovered after downtime" if recovered else "",
            ),
        ),
    )


def allowed_from(action: Action) -> frozenset[Status]:
    return TRANSITIONS[action][0]


def transition(order: Order, action: Action, *, by: str, now: float, note: str = "", message_id: str = "") -> Order:
    """Apply one lifecycle action, or raise TransitionError saying why it is not allowed."""
    sources, target = TRANSITIONS[action]
    if order.status not in sources:
        allowed = " or ".join(sorted(s.value for s in sources))
        raise TransitionError(
            f"order {order.id} is {order.status.value}; only {allowed} orders can be "
            f"{_PAST[action]}"
        )
    issues = tuple(i for i in order.issues if _ISSUE_STATE.get(Issue(i), target) == target)
    changes: dict[str, Any] = {
        "status": target,
        _STAMP[target]: now,
        "issues": issues,
        "audit": order.audit + (AuditEntry(now, order.status, target, by, note, message_id),),
    }
    return replace(order, **changes)


def undo_approval(order: Order, *, by: str, now: float, window: float, note: str = "") -> Order:
    """An approval undone within `window` seconds: the order goes back to the status it had
    (pending or processing), its delivery to be sent afresh if it is approved again."""
    if order.status not in (Status.APPROVED, Status.COMPLETED):
        raise TransitionError(f"order {order.id} is {order.status.value}; only an approved order can be undone")
    approved = next((a for a in reversed(order.audit) if a.to_status == Status.APPROVED), None)
    if order.approved_at is None or approved is None or now - order.approved_at > window:
        raise TransitionError(f"order {order.id} was approved more than {window / 60:g} min ago; "
                              "the undo window has passed")
    before = Status(approved.from_status) if approved.from_status in (Status.PENDING, Status.PROCESSING) \
        else Status.PENDING
    entry = AuditEntry(now, order.status, before, by, note or "approval undone")
    return replace(order, status=before, approved_at=None, completed_at=None, delivery=Delivery(),
                   issues=tuple(i for i in order.issues if _ISSUE_STATE.get(Issue(i)) is before),
                   audit=order.audit + (entry,))


_PAST = {
    Action.PROCESS: "processed",
    Action.APPROVE: "approved",
    Action.CANCEL: "cancelled",
    Action.DELETE: "deleted",
    Action.COMPLETE: "completed",
}


def edit_diamonds(order: Order, diamonds: int, *, text: str, by: str, now: float,
                  player_id: str | None = None) -> Order:
    """A pending order changed by an edit of its message (its diamonds, and its player when the
    edit names one), priced at its own rate; a replayed edit is a no-op."""
    if order.status is not Status.PENDING:
        raise TransitionError(
            f"order {order.id} is {order.status.value}; only pending orders can be edited")
    if isinstance(diamonds, bool) or not isinstance(diamonds, int) or diamonds <= 0:
        raise ValueError(f"diamonds must be a positive whole number, not {diamonds!r:.40}")
    player_id = order.player_id if player_id is None else player_id
    if diamonds == order.diamonds and text == order.text and player_id == order.player_id:
        return order
    note = f"edited in WhatsApp: .{order.diamonds} → .{diamonds}"
    if player_id != order.player_id:
        note += f", player {order.player_id or '—'} → {player_id or '—'}"
    entry = AuditEntry(now, order.status, order.status, by, note)
    return replace(order, diamonds=diamonds, text=text, amount=order_amount(diamonds, order.rate),
                   player_id=player_id, audit=order.audit + (entry,))


def with_issue(order: Order, issue: Issue, now: float, detail: str = "") -> Order:
    """Raise an issue once: a no-op if the order already has it."""
    if issue in order.issues:
        return order
    note = f"issue raised: {issue.value}" + (f" ({detail})" if detail else "")
    entry = AuditEntry(now, order.status, order.status, SYSTEM, note)
    return replace(order, issues=order.issues + (issue.value,), audit=order.audit + (entry,))


def without_issue(order: Order, issue: Issue, now: float) -> Order:
    if issue not in order.issues:
        return order
    entry = AuditEntry(now, order.status, order.status, SYSTEM, f"issue cleared: {issue.value}")
    return replace(
        order,
        issues=tuple(i for i in order.issues if i != issue),
        audit=order.audit + (entry,),
    )


# ---------------------------------------------------------------------------------------------
# Stored form. Keys are camelCase like the seed's database.json entries (`id`, `userId`,
# `diamonds`, `status`, `approvedAt`), times are ISO 8601 with offset, money decimal strings.


def _delivery_record(d: Delivery) -> dict[str, Any]:
    return {
        "attempts": d.attempts,
        "lastAttemptAt": to_iso(d.last_attempt_at),
        "lastError": d.last_error,
        "messageId": d.message_id,
        "confirmedAt": to_iso(d.confirmed_at),
    }


def to_record(order: Order) -> dict[str, Any]:
    """The JSON-ready stored form of an order."""
    return {
        "id": order.id,
        "groupId": order.group_id,
        "groupName": order.group_name,
        "userId": order.user_id,
        "userAlt": order.user_alt,
        "userName": order.user_name,
        "playerId": order.player_id,
        "messageId": order.message_id,
        "text": order.text,
        "diamonds": order.diamonds,
        "rate": str(order.rate),
        "amount": money_str(order.amount),
        "status": order.status.value,
        "date": to_iso(order.created_at),
        "receivedAt": to_iso(order.received_at),
        "recovered": order.recovered,
        **({"importedId": order.imported_id} if order.imported_id else {}),
        "processingAt": to_iso(order.processing_at),
        "approvedAt": to_iso(order.approved_at),
        "completedAt": to_iso(order.completed_at),
        "cancelledAt": to_iso(order.cancelled_at),
        "deletedAt": to_iso(order.deleted_at),
        "receipt": _delivery_record(order.receipt),
        "delivery": _delivery_record(order.delivery),
        "issues": list(order.issues),
        "audit": [
            {"at": to_iso(a.at), "from": a.from_status, "to": a.to_status, "by": a.by, "note": a.note,
             **({"messageId": a.message_id} if a.message_id else {})}
            for a in order.audit
        ],
        **({"imported": order.imported_fields} if order.imported_fields else {}),
    }


# Times well inside what datetime (and so to_iso) can write, years 2 to 9998: one comparison
# instead of building a datetime to find out.
_WRITABLE_TIMES = (-62104060800.0, 253370678400.0)


class _Reader:
    """Reads fields of a stored record leniently, noting every problem instead of failing,
    so one bad entry becomes an order flagged `invalid` rather than a bot that cannot start."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self.problems: list[str] = []

    def text(self, key: str, required: bool = False) -> str:
        value = self.record.get(key)
        if type(value) is str and value:  # nearly always: the rest is for other types and str subclasses
            return value
        if isinstance(value, str) and value != "":
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # the seed's numeric ids
        if value is None or value == "":
            # An empty optional field (no alt id, no error yet) is what to_record writes.
            if required:
                self.problems.append(f"{key} missing")
        else:
            self.problems.append(f"{key} not text")
        return ""

    def time(self, key: str, required: bool = False) -> float | None:
        value = self.record.get(key)
        if value is None:
            if required:
                self.problems.append(f"{key} missing")
            return None
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # the seed's Node bot wrote epoch milliseconds
                ts = float(value) / 1000.0 if value > 1e11 else float(value)
            else:
                ts = _stored_time(value) if type(value) is str else from_iso(str(value))
            if not _WRITABLE_TIMES[0] <= ts <= _WRITABLE_TIMES[1]:  # NaN too; a restart reads 100,000 of these
                datetime.fromtimestamp(ts, timezone.utc)  # a time to_iso can write back (not year 1e9)
            return ts
        except (ValueError, OverflowError, OSError):
            self.problems.append(f"{key} not a time")
            return None

    def delivery(self, key: str) -> Delivery:
        value = self.record.get(key)
        if type(value) is not dict and not isinstance(value, Mapping):  # the ABC's check is slow
            return Delivery()
        sub = _Reader(value)
        attempts = value.get("attempts", 0)
        d = Delivery(
            attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 0 else 0,
            last_attempt_at=sub.time("lastAttemptAt"),
            last_error=sub.text("lastError"),
            message_id=sub.text("messageId"),
            confirmed_at=sub.time("confirmedAt"),
        )
        self.problems.extend(f"{key}.{p}" for p in sub.problems)
        return d


def from_record(record: Mapping[str, Any], *, group_id: str = "", group_name: str = "") -> Order:
    """Read a stored order; anything wrong is kept in `problems`, never raised."""
    r = _Reader(record)
    order_id = r.text("id", required=True)
    diamonds = record.get("diamonds")
    if not isinstance(diamonds, int) or isinstance(diamonds, bool) or diamonds <= 0:
        r.problems.append("diamonds not a positive integer")
        diamonds = diamonds if isinstance(diamonds, int) and not isinstance(diamonds, bool) else 0
    try:
        raw_rate = record.get("rate", "0")
        rate = _stored_rate(raw_rate) if type(raw_rate) is str else parse_rate(raw_rate)
    except MoneyError:
        r.problems.append("rate not a positive decimal")
        rate = canonical_rate(Decimal(0))
    try:
        if "amount" not in record:
            amount = order_amount(diamonds, rate)
        else:
            raw_amount = record["amount"]
            amount = _stored_amount(raw_amount) if type(raw_amount) is str else parse_amount(raw_amount)
    except (MoneyError, ArithmeticError):  # ArithmeticError: diamonds × rate too large to quantize
        r.problems.append("amount not a decimal")
        try:
            amount = order_amount(max(diamonds, 0), rate)
        except ArithmeticError:
            amount = order_amount(0, rate)
    try:
        status = Status(str(record.get("status", "")).lower())
    except ValueError:
        r.problems.append(f"unknown status {record.get('status')!r}")
        status = Status.PENDING
    audit = []
    raw_audit = record.get("audit")
    for entry in raw_audit if isinstance(raw_audit, list) else ():
        if type(entry) is dict or isinstance(entry, Mapping):
            at = _Reader(entry).time("at")
            audit.append(
                AuditEntry(
                    at=at or 0.0,
                    from_status=entry.get("from"),
                    to_status=str(entry.get("to", "")),
                    by=str(entry.get("by", "")),
                    note=str(entry.get("note", "")),
                    message_id=str(entry.get("messageId") or ""),
                )
            )
    raw_issues = record.get("issues")
    issues = tuple(
        i for i in (raw_issues if isinstance(raw_issues, list) else ())
        if isinstance(i, str) and i in Issue._value2member_map_
    )
    created_at = r.time("date", required=True)
    return Order(
        id=order_id,
        group_id=r.text("groupId") or group_id,
        group_name=r.text("groupName") or group_name,
        user_id=r.text("userId", required=True),
        user_alt=r.text("userAlt"),
        user_name=r.text("userName"),
        player_id=r.text("playerId"),
        message_id=r.text("messageId"),
        text=r.text("text"),
        diamonds=diamonds,
        rate=rate,
        amount=amount,
        status=status,
        created_at=created_at,
        received_at=r.time("receivedAt") or created_at or 0.0,
        recovered=bool(record.get("recovered", False)),
        imported_id=str(record.get("importedId") or ""),
        imported_fields=_imported(record.get("imported")),
        processing_at=r.time("processingAt"),
        approved_at=r.time("approvedAt"),
        completed_at=r.time("completedAt"),
        cancelled_at=r.time("cancelledAt"),
        deleted_at=r.time("deletedAt"),
        receipt=r.delivery("receipt"),
        delivery=r.delivery("delivery"),
        issues=issues,
        audit=tuple(audit),
        problems=tuple(r.problems),
    )


# A group's orders share a few rates and amounts: each text is parsed once (a Decimal is immutable).
@lru_cache(maxsize=1024)
def _stored_rate(text: str) -> Decimal:
    return parse_rate(text)


@lru_cache(maxsize=1024)
def _stored_amount(text: str) -> Decimal:
    return parse_amount(text)


# An order's times often repeat (taken, received, its receipt sent, its first audit line).
_stored_time = lru_cache(maxsize=4096)(from_iso)


def _imported(value: Any) -> dict[str, Any] | None:
    if value is None:  # nearly every order: the ABC's isinstance check is slow
        return None
    return dict(value) if isinstance(value, Mapping) else None


def _stamp_missing(order: Order) -> str | None:
    """The timestamp field the order's status requires but lacks, if any."""
    stamp = _STAMP.get(order.status)
    return stamp if stamp is not None and getattr(order, stamp) is None else None


def is_valid(order: Order) -> bool:
    """Fast check for reconciliation's hot path; validation_problems says what is wrong."""
    return (not order.problems and bool(order.id) and bool(order.user_id) and order.diamonds > 0
            and order.created_at is not None and _stamp_missing(order) is None)


def validation_problems(order: Order) -> tuple[str, ...]:
    """Reconciliation's validation: id, user, positive diamonds, a date, the timestamp its
    status requires, plus what was wrong when it was read."""
    problems = list(order.problems)
    if not order.id and "id missing" not in problems:
        problems.append("id missing")
    if not order.user_id and "userId missing" not in problems:
        problems.append("userId missing")
    if order.diamonds <= 0 and "diamonds not a positive integer" not in problems:
        problems.append("diamonds not a positive integer")
    if order.created_at is None and "date missing" not in problems:
        problems.append("date missing")
    stamp = _stamp_missing(order)
    if stamp is not None:
        problems.append(f"{order.status.value} without {stamp}")
    return tuple(problems)
