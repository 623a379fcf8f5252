"""The whole database as the PersistenceActor holds it: every group, order and payment, built
from the last snapshot plus the journal records after it, and written back as a snapshot in the
seed's shape (`groups[groupId] = {groupName, rate, entries[]}`, `payments`).

Orders stay as their stored dicts here (cheap to load, cheap to snapshot) and become domain
Orders only when a query returns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import orjson

from domain.clock import from_iso
from domain.desk_events import StoredGroup
from domain.orders import ARCHIVED
from domain.payments import billed_records, paid_records
from domain.records import (
    AdminsRecord,
    ChecksRecord,
    GroupRecord,
    HeldRecord,
    MetaRecord,
    OrderRecord,
    PaymentRecord,
    Record,
    RecordError,
    SeenRecord,
    ShopRecord,
    UserRecord,
    decode,
)
from domain.users import User, change_of
from storage.store import Store

FORMAT = 1
USER_AUDIT_MAX = 200  # the user changes the panel lists (the records themselves are all kept)
STORE_NAME = "orders"  # the files orders.snapshot.json and orders.journal.*

_ARCHIVED_VALUES = {s.value for s in ARCHIVED}
_TAKES_STOCK = frozenset({"approved", "completed"})
SHOP_AUDIT_KEPT = 500  # the shop's newest changes a snapshot keeps (the journal has them all)
# Keys of a snapshot's group object that are not the group's settings.
_NOT_SETTINGS = frozenset({"entries", "seen", "checks", "cycles", "stats", "held"})


class DatabaseError(ValueError):
    """A snapshot or record that does not have the shape this version writes."""


@dataclass(slots=True)
class GroupImage:
    settings: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    # order id -> [count, last_at, last_status], as last checkpointed
    checks: dict[str, list[Any]] = field(default_factory=dict)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # {"day", "checks", "cycles"}
    held: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class Database:
    meta: dict[str, Any] = field(default_factory=dict)
    admins: list[dict[str, Any]] | None = None  # the admin roster (domain.admins); None: never set
    groups: dict[str, GroupImage] = field(default_factory=dict)
    payments: list[dict[str, Any]] = field(default_factory=list)
    order_group: dict[str, str] = field(default_factory=dict)  # order id -> group id
    payment_index: dict[str, int] = field(default_factory=dict)  # payment id -> position in payments
    shop: dict[str, Any] = field(default_factory=dict)  # the shop's settings as the panel left them
    shop_audit: list[dict[str, Any]] = field(default_factory=list)  # who changed what, oldest first
    # Diamonds approved since the stock was set: derived from the orders, never written.
    stock_used: int = 0
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # the panel's users by name (domain.users)
    user_audit: list[dict[str, Any]] = field(default_factory=list)  # {"at", "by", "user", "change", "role"}, oldest first

    # -- loading and writing --------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any] | None) -> Database:
        """Rebuild from a snapshot's data (None: a fresh install); DatabaseError on a bad shape."""
        db = cls()
        if data is None:
            return db
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise DatabaseError(f"unknown snapshot format {data.get('format') if isinstance(data, Mapping) else data!r}")
        groups = data.get("groups")
        if not isinstance(groups, Mapping):
            raise DatabaseError("snapshot has no 'groups' object")
        db.meta = dict(data.get("meta") or {})
        admins = data.get("admins")
        if admins is not None and not isinstance(admins, list):
            raise DatabaseError("snapshot's 'admins' is not a list")
        db.admins = admins
        shop = data.get("shop", {})
        if not isinstance(shop, Mapping):
            raise DatabaseError("snapshot's 'shop' is not an object")
        db.shop = dict(shop)
        db.shop_audit = list(data.get("shopAudit") or [])
        users = data.get("users", [])
        audit = data.get("userAudit", [])
        if not isinstance(users, list) or not isinstance(audit, list):
            raise DatabaseError("snapshot's 'users' or 'userAudit' is not a list")
        for value in users:
            try:
                user = User.from_record(value) if isinstance(value, Mapping) else None
            except ValueError as e:
                raise DatabaseError(str(e)) from None
            if user is None:
                raise DatabaseError(f"snapshot's 'users' holds {value!r:.200}, not a user")
            db.users[user.username] = dict(value)
        db.user_audit = [dict(a) for a in audit if isinstance(a, Mapping)]
        db.payments = list(data.get("payments") or [])
        for i, payment in enumerate(db.payments):
            if isinstance(payment, Mapping) and payment.get("id"):
                db.payment_index[str(payment["id"])] = i
        for gid, g in groups.items():
            if not isinstance(g, Mapping) or not isinstance(g.get("entries", []), list):
                raise DatabaseError(f"group {gid}: not an object with an 'entries' list")
            settings = {k: v for k, v in g.items() if k not in _NOT_SETTINGS}
            image = GroupImage(settings=settings)
            for entry in g.get("entries", []):
                # a dict first: the Mapping ABC's check, 100,000 times, was most of this loop
                if not (type(entry) is dict or isinstance(entry, Mapping)) or not entry.get("id"):
                    raise DatabaseError(f"group {gid}: an entry without an id: {entry!r:.200}")
                image.entries[str(entry["id"])] = dict(entry)
                db.order_group[str(entry["id"])] = gid
            image.seen = dict(g.get("seen") or {})
            image.checks = dict(g.get("checks") or {})
            image.cycles = list(g.get("cycles") or [])
            image.stats = dict(g.get("stats") or {})
            image.held = dict(g.get("held") or {})
            db.groups[gid] = image
        db._recount_stock()
        return db

    def snapshot(self) -> dict[str, Any]:
        """The snapshot's data, in the seed's shape."""
        return {
            "format": FORMAT,
            "meta": self.meta,
            **({"admins": self.admins} if self.admins is not None else {}),
            **({"shop": self.shop, "shopAudit": self.shop_audit[-SHOP_AUDIT_KEPT:]} if self.shop else {}),
            **({"users": list(self.users.values()), "userAudit": self.user_audit} if self.users else {}),
            "groups": {
                gid: {
                    **g.settings,
                    "entries": list(g.entries.values()),
                    "seen": g.seen,
                    "checks": g.checks,
                    "cycles": g.cycles,
                    "stats": g.stats,
                    "held": g.held,
                }
                for gid, g in self.groups.items()
            },
            "payments": self.payments,
        }

    def _group(self, gid: str) -> GroupImage:
        image = self.groups.get(gid)
        if image is None:
            image = self.groups[gid] = GroupImage(settings={})
        return image

    def apply(self, record: Record) -> None:
        """Apply one record (domain.records)."""
        match record:
            case OrderRecord(group_id=gid, order=order):
                oid = str(order["id"])
                image = self._group(gid)
                if self.shop.get("stock") is not None:
                    self.stock_used += self._stock_taken(order) - self._stock_taken(image.entries.get(oid))
                image.entries[oid] = dict(order)
                self.order_group[oid] = gid
            case SeenRecord(group_id=gid, seen=seen):
                self._group(gid).seen.update(seen)
            case GroupRecord(group_id=gid, settings=settings):
                self._group(gid).settings.update(settings)
            case ChecksRecord(group_id=gid, counts=counts, cycles=cycles, stats=stats):
                image = self._group(gid)
                image.checks.update(counts)
                if cycles:
                    image.cycles = cycles
                if stats:
                    image.stats = dict(stats)
            case HeldRecord(group_id=gid, held=held):
                image = self._group(gid)
                for message_id, value in held.items():
                    if value is None:
                        image.held.pop(message_id, None)
                    else:
                        image.held[message_id] = dict(value)
            case PaymentRecord(payment=payment):
                pid = str(payment["id"])
                at = self.payment_index.get(pid)
                if at is None:
                    self.payment_index[pid] = len(self.payments)
                    self.payments.append(dict(payment))
                else:
                    self.payments[at] = dict(payment)
            case MetaRecord(values=values):
                self.meta.update(values)
            case AdminsRecord(roster=roster):
                self.admins = roster
            case ShopRecord(settings=settings, at=at, by=by, what=what):
                recount = settings.get("stockSetAt") != self.shop.get("stockSetAt")
                self.shop = dict(settings)
                self.shop_audit.append({"at": at, "by": by, "what": what})
                if recount:
                    self._recount_stock()
            case UserRecord(user=value):
                self._apply_user(value)
            case _:
                raise TypeError(f"not a journal record: {record!r:.200}")

    def _apply_user(self, value: dict[str, Any]) -> None:
        after = User.from_record(value)  # decode() checked it
        before_value = self.users.get(after.username)
        before = User.from_record(before_value) if before_value is not None else None
        self.users[after.username] = dict(value)
        self.user_audit.append({"at": value.get("at"), "by": after.by, "user": after.username,
                                "change": change_of(before, after).value, "role": after.role.value})
        del self.user_audit[:-USER_AUDIT_MAX]

    # -- the diamond stock ------------------------------------------------------------------

    def stock_left(self) -> int | None:
        """Diamonds left: the stock set on the panel minus every approval since (None: not counted)."""
        stock = self.shop.get("stock")
        return None if stock is None else int(stock) - self.stock_used

    def _stock_taken(self, entry: Mapping[str, Any] | None) -> int:
        """The diamonds an order takes from the stock: approved (or completed) since it was set."""
        if entry is None or entry.get("status") not in _TAKES_STOCK:
            return 0
        set_at = self.shop.get("stockSetAt")
        approved = entry.get("approvedAt")
        try:
            if set_at is not None and (not isinstance(approved, str) or from_iso(approved) < float(set_at)):
                return 0
        except ValueError:
            return 0
        diamonds = entry.get("diamonds")
        return diamonds if isinstance(diamonds, int) and not isinstance(diamonds, bool) and diamonds > 0 else 0

    def _recount_stock(self) -> None:
        self.stock_used = (sum(self._stock_taken(e) for _, e in self.all_entries())
                           if self.shop.get("stock") is not None else 0)

    def prune_seen(self, horizon: float) -> None:
        """Drop seen ids older than the horizon (they can no longer become orders anyway)."""
        for g in self.groups.values():
            old = [m for m, ts in g.seen.items() if ts < horizon]
            for m in old:
                del g.seen[m]

    # -- queries -------------------------------------------------------------------------

    def panel_users(self) -> dict[str, User]:
        """The panel's users by name, removed ones included."""
        return {name: User.from_record(value) for name, value in self.users.items()}

    def find(self, order_id: str) -> tuple[str, dict[str, Any]] | None:
        gid = self.order_group.get(order_id)
        if gid is None:
            return None
        return gid, self.groups[gid].entries[order_id]

    def check_of(self, gid: str, order_id: str) -> list[Any] | None:
        return self.groups[gid].checks.get(order_id)

    def all_entries(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for gid, g in self.groups.items():
            for entry in g.entries.values():
                yield gid, entry

    def group_payments(self, gid: str) -> list[dict[str, Any]]:
        return [p for p in self.payments if p.get("groupId") == gid]

    def stored_group(self, gid: str, horizon: float) -> StoredGroup:
        """What a starting desk needs of its group: archived orders older than `horizon` stay
        here (they only count in the billed total), as do seen ids older than it."""
        image = self.groups.get(gid)
        if image is None:
            return StoredGroup(None)
        entries = tuple(e for e in image.entries.values() if keep_in_group(e, horizon))
        wanted = {e["id"] for e in entries}
        payments = tuple(self.group_payments(gid))
        return StoredGroup(
            settings=dict(image.settings) or None,
            entries=entries,
            seen={m: ts for m, ts in image.seen.items() if ts >= horizon},
            checks={oid: c for oid, c in image.checks.items() if oid in wanted},
            stats=dict(image.stats),
            billed=billed_records(image.entries.values()),
            paid=paid_records(payments),
            held=dict(image.held),
            payments=payments,
        )


def open_database(data_dir: Path) -> tuple[Store, Database]:
    """Read snapshot + journal; raises StorageError/DatabaseError naming the file on anything bad."""
    store, data, records = Store.open(data_dir, STORE_NAME)
    try:
        db = Database.from_snapshot(data)
    except DatabaseError as e:
        store.close()
        raise DatabaseError(f"{store.snapshot_path}: {e}. It was left untouched.") from None
    for i, raw in enumerate(records):
        try:
            db.apply(decode(orjson.loads(raw)))
        except (orjson.JSONDecodeError, RecordError) as e:
            store.close()
            raise DatabaseError(
                f"journal record {i + 1} after the snapshot in {data_dir} cannot be applied: {e}. "
                "The files were left untouched. Run `python run.py check-data` (with the bot's --config or "
                "--data-dir) to see where it is and what it held, then `python run.py repair-data` to move "
                "it into a side file and start from the rest; or restore the data directory from a backup."
            ) from None
    return store, db


def keep_in_group(entry: dict[str, Any], horizon: float) -> bool:
    """Whether a GroupActor should hold this order: open, or archived after the horizon."""
    if entry.get("status") not in _ARCHIVED_VALUES:
        return True
    for key in ("completedAt", "cancelledAt", "deletedAt", "date"):
        value = entry.get(key)
        try:
            t = from_iso(value) if isinstance(value, str) else None
        except ValueError:
            t = None
        if t is not None and t >= horizon:
            return True
    return False
