"""The journal's records: one class per kind, built here and read back here.

On disk a record is `{"t": kind, "g": group id, "v": value}` (orjson, one per journal line);
in memory and between actors it is one of the classes below. Values stay in their stored,
JSON-ready form (an order as `orders.to_record` writes it): cheap to pickle between processes
and ready for the snapshot, which keeps the seed's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Union

from domain.admins import AdminRoster
from domain.orders import Order, to_record
from domain.payments import Payment
from domain.payments import to_record as payment_to_record
from domain.users import User


class RecordError(ValueError):
    """A journal record of unknown kind or shape."""


@dataclass(frozen=True, slots=True)
class MetaRecord:
    """The system's own facts: boot count, install time."""

    KIND: ClassVar[str] = "meta"
    values: dict[str, Any]

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "v": self.values}


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group's settings and counters (`domain.group.settings_record`), merged into what it had."""

    KIND: ClassVar[str] = "group"
    group_id: str
    settings: dict[str, Any]

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "g": self.group_id, "v": self.settings}


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order as it is now (it replaces the order's earlier record)."""

    KIND: ClassVar[str] = "order"
    group_id: str
    order: dict[str, Any]

    @classmethod
    def of(cls, order: Order) -> OrderRecord:
        return cls(order.group_id, to_record(order))

    @property
    def order_id(self) -> str:
        return str(self.order["id"])

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "g": self.group_id, "v": self.order}


@dataclass(frozen=True, slots=True)
class SeenRecord:
    """Chat message ids handled (with their times), so a replay does nothing twice."""

    KIND: ClassVar[str] = "seen"
    group_id: str
    seen: dict[str, float]

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "g": self.group_id, "v": self.seen}


@dataclass(frozen=True, slots=True)
class ChecksRecord:
    """A reconciliation checkpoint: check counts per order, recent cycles, today's tally."""

    KIND: ClassVar[str] = "checks"
    group_id: str
    counts: dict[str, list[Any]]  # order id -> [count, last_at, last_status]
    cycles: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "g": self.group_id, "v": self.counts, "cycles": self.cycles, "stats": self.stats}


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """Order messages the duplicate guard holds: message id -> the held message (None: released)."""

    KIND: ClassVar[str] = "held"
    group_id: str
    held: dict[str, dict[str, Any] | None]

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "g": self.group_id, "v": self.held}


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """One payment as it is now (a later record with the same id replaces it: voids)."""

    KIND: ClassVar[str] = "payment"
    group_id: str
    payment: dict[str, Any]

    @classmethod
    def of(cls, payment: Payment) -> PaymentRecord:
        return cls(payment.group_id, payment_to_record(payment))

    @property
    def payment_id(self) -> str:
        return str(self.payment["id"])

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "g": self.group_id, "v": self.payment}


@dataclass(frozen=True, slots=True)
class AdminsRecord:
    """The shop's admins with when each was one (domain.admins)."""

    KIND: ClassVar[str] = "admins"
    roster: list[dict[str, Any]]

    @classmethod
    def of(cls, roster: AdminRoster) -> AdminsRecord:
        return cls(roster.to_record())

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "v": self.roster}


@dataclass(frozen=True, slots=True)
class ShopRecord:
    """The shop's settings as the panel left them (domain.shop.stored), and what changed."""

    KIND: ClassVar[str] = "shop"
    settings: dict[str, Any]
    at: float
    by: str
    what: str

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "v": {"set": self.settings, "at": self.at, "by": self.by, "what": self.what}}


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A panel user as it is now (domain.users): a later record of the same name replaces it."""

    KIND: ClassVar[str] = "user"
    user: dict[str, Any]  # {"username", "role", "passwordHash", "removed", "at", "by"}

    @classmethod
    def of(cls, user: User) -> UserRecord:
        return cls(user.to_record())

    @property
    def username(self) -> str:
        return str(self.user["username"])

    def encode(self) -> dict[str, Any]:
        return {"t": self.KIND, "v": self.user}


Record = Union[MetaRecord, GroupRecord, OrderRecord, SeenRecord, ChecksRecord, HeldRecord, PaymentRecord,
               AdminsRecord, ShopRecord, UserRecord]


def _value(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    value = raw.get("v")
    if not isinstance(value, Mapping):
        raise RecordError(f"record without a value object: {dict(raw)!r:.200}")
    return value


def _group(raw: Mapping[str, Any]) -> str:
    gid = raw.get("g")
    if not isinstance(gid, str) or not gid:
        raise RecordError(f"record without a group: {dict(raw)!r:.200}")
    return gid


def decode(raw: object) -> Record:
    """A record as read from the journal; RecordError for an unknown kind or a bad shape."""
    if not isinstance(raw, Mapping):
        raise RecordError(f"not a record: {raw!r:.200}")
    kind = raw.get("t")
    if kind == MetaRecord.KIND:
        return MetaRecord(dict(_value(raw)))
    if kind == AdminsRecord.KIND:
        roster = raw.get("v")
        if not isinstance(roster, list):
            raise RecordError(f"admins record without a list: {dict(raw)!r:.200}")
        return AdminsRecord(list(roster))
    if kind == ShopRecord.KIND:
        v = _value(raw)
        if not isinstance(v.get("set"), Mapping):
            raise RecordError(f"shop record without settings: {dict(raw)!r:.200}")
        return ShopRecord(dict(v["set"]), float(v.get("at") or 0.0), str(v.get("by") or ""), str(v.get("what") or ""))
    if kind == UserRecord.KIND:
        value = dict(_value(raw))
        try:
            User.from_record(value)
        except ValueError as e:
            raise RecordError(str(e)) from None
        return UserRecord(value)
    gid = _group(raw)
    value = _value(raw)
    if kind == OrderRecord.KIND:
        if not value.get("id"):
            raise RecordError(f"order record without an id: {dict(raw)!r:.200}")
        return OrderRecord(gid, dict(value))
    if kind == GroupRecord.KIND:
        return GroupRecord(gid, dict(value))
    if kind == SeenRecord.KIND:
        return SeenRecord(gid, dict(value))
    if kind == ChecksRecord.KIND:
        cycles = raw.get("cycles")
        stats = raw.get("stats")
        return ChecksRecord(gid, dict(value), list(cycles) if isinstance(cycles, list) else [],
                            dict(stats) if isinstance(stats, Mapping) else {})
    if kind == HeldRecord.KIND:
        return HeldRecord(gid, dict(value))
    if kind == PaymentRecord.KIND:
        if not value.get("id"):
            raise RecordError(f"payment record without an id: {dict(raw)!r:.200}")
        return PaymentRecord(gid, dict(value))
    raise RecordError(f"unknown record: {dict(raw)!r:.200}")
