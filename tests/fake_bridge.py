"""An in-memory ActorBridge for the panel's tests.

It keeps orders and payments as stored records in a real `storage.database.Database`, answers
queries (lists, ledgers, the daily report) with the real `storage.queries`, and runs commands
through the real state machine (`domain.orders`), group settings rules (`domain.group`) and
payment rules (`domain.payments`), so API tests exercise the same rules as the actors.

The stored records follow the contract of issue 12 (/work/helpers/CONTRACT-12.md): an order may
carry the player to top up (`playerId`; absent on old records), a group's settings a `rate` of
null (nobody set it yet: such a group takes no order), `joinedAt` and `leftAt`; a group can be
known before its first order.

The panel's users are the PersistenceActor's: real user records in the same Database, changed by
the real rules (`domain.users.save_user`). The shop (issue 13) is `tests.fake_shop.FakeShop`: the
Supervisor's rules (domain.shop) held in memory; an undo is the real `domain.orders.undo_approval`;
reminders go to the groups `domain.shop.reminder_targets` picks.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import orjson
from aiohttp.test_utils import TestClient, TestServer

from actors.messages import Changed, CommandDone, GatewayStatus, QueryResult
from config import Config, load_config
from domain.clock import FakeClock, to_iso
from domain.money import MoneyError, money_str, parse_amount, parse_rate
from domain.group import (
    GroupBook,
    GroupSettings,
    SettingsError,
    apply_settings_patch,
    group_code,
    settings_from_record,
    settings_record,
    split_order_id,
)
from domain.orders import (
    Action,
    AuditEntry,
    Delivery,
    Issue,
    Status,
    TransitionError,
    from_record,
    new_order,
    to_record,
    transition,
    undo_approval,
    with_issue,
)
from domain.payments import PaymentError, billed_records, due, new_payment, paid_records
from domain.payments import to_record as payment_record
from domain.chat import ConnectionDetail, ConnectionState
from domain.payments import from_record as payment_from_record
from domain.payments import to_record as payment_to_record
from domain.payments import void as void_payment
from storage import queries
from domain.records import ChecksRecord, GroupRecord, OrderRecord, PaymentRecord, UserRecord
from domain.users import Role, User, UserError, save_user
from storage.database import Database
from domain.shop import ShopError, reminder_targets
from tests.fake_shop import FakeShop
from web import auth
from web.app import create_app
from web.bridge import BridgeError
from web.live import Fanout

DEFAULT_RATE = Decimal("100")


def make_config(data_dir: Path, **overrides: str) -> Config:
    """A config for panel tests: defaults, data in `data_dir`, no environment."""
    return load_config(env={}, overrides={"bot.data_dir": str(data_dir), "orders.default_rate": "100", **overrides})


@dataclass
class FakeBridge:
    """ActorBridge over an in-memory database. Set `fail` to make every call raise it, `delay` to
    make every call slow, `started` False to look like a system still starting."""

    clock: FakeClock = field(default_factory=FakeClock)
    db: Database = field(default_factory=Database)
    fail: BaseException | None = None
    delay: float = 0.0
    started: bool = True
    closed: bool = False
    deliver_on_approve: bool = True  # the transport confirms the delivery message at once
    gateway_state: str = "connected"
    gateway_detail: ConnectionDetail = ConnectionDetail()  # e.g. a PAIRING detail with a QR payload
    paused_until: float | None = None
    queued: int = 0
    repair_status: int = 200  # what the gateway answers to re-pair (409: a transport without pairing)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    live: Fanout = field(default_factory=Fanout)
    shop: FakeShop = field(default_factory=lambda: FakeShop(load_config(env={})))
    shop_answers: bool = True  # False: GetShop goes unanswered (an actor system without the shop)
    reminders: list[tuple[str, str]] = field(default_factory=list)  # (group id, its due) of reminders sent
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Dhaka"))  # the daily report's days
    # The Supervisor's shards (several machines): one machine by default.
    cluster: dict[str, Any] = field(default_factory=lambda: {"role": "", "waiting": 0, "shards": [
        {"name": "leader", "live": True, "member": "", "hosts": 2, "since": 0.0, "lost_at": 0.0, "groups": 0,
         "ready": 0}]})
    placed: dict[str, str] = field(default_factory=dict)  # group id -> shard, once moved
    _books: dict[str, GroupBook] = field(default_factory=dict)
    _change_seq: int = 0
    _unrated: set[str] = field(default_factory=set)  # groups whose stored rate is null
    _players: dict[str, str] = field(default_factory=dict)  # order id -> its stored playerId

    # -- setting up ------------------------------------------------------------------------

    def add_group(self, name: str, rate: str | None = "100", group_id: str | None = None, *,
                  joined_at: float | None = None, old_record: bool = False, **settings: Any) -> str:
        """A group the bot knows, with no order yet; `rate` None: nobody set its rate (it refuses
        orders until then). It joined at `joined_at` (default now); an `old_record` has no joinedAt."""
        group_id = group_id or f"1203630000000{len(self._books) + 1:05d}@g.us"
        code = group_code(len(self._books) + 1)
        book = GroupBook(GroupSettings(group_id=group_id, name=name, code=code,
                                       rate=parse_rate(rate) if rate is not None else DEFAULT_RATE, **settings))
        self._books[group_id] = book
        if rate is None:
            self._unrated.add(group_id)
        joined = {} if old_record else {"joinedAt": to_iso(self.clock.now() if joined_at is None else joined_at)}
        self.db.apply(GroupRecord(group_id, {**self._settings(group_id), **joined}))
        return group_id

    def leave_group(self, group_id: str, at: float | None = None) -> None:
        """The bot's number left the group (or was removed): it stays, marked with leftAt."""
        self.db.apply(GroupRecord(group_id, {"leftAt": to_iso(self.clock.now() if at is None else at)}))

    def _settings(self, group_id: str) -> dict[str, Any]:
        """The group's settings record as the GroupActor writes it (rate null while unset)."""
        record = settings_record(self._books[group_id])
        if group_id in self._unrated:
            record["rate"] = None
        return record

    def add_order(self, group_id: str, diamonds: int, *, user_id: str = "76210050711676@lid",
                  user_name: str = "Rahim", created_at: float | None = None, recovered: bool = False,
                  actions: tuple[Action, ...] = (), issues: tuple[Issue, ...] = (),
                  player_id: str | None = "") -> str:
        """A new order from a chat message, moved on by `actions`, with `issues`; returns its id.
        `player_id`: whom to top up (its two-line message), "" for a `.N` order, None for an old
        record without the field. A group without a rate takes no order (ValueError)."""
        if group_id in self._unrated:
            raise ValueError(f"group {group_id}: rate not set yet, the bot creates no order")
        book = self._books[group_id]
        now = self.clock.now()
        order = new_order(
            order_id=f"{book.settings.code}{book.next_seq}", group_id=group_id,
            group_name=book.settings.name, user_id=user_id, user_alt="8801712345678@s.whatsapp.net",
            user_name=user_name, message_id=uuid.uuid4().hex[:20].upper(),
            text=f"{player_id}\n{diamonds}" if player_id else f".{diamonds}",
            diamonds=diamonds, rate=book.settings.rate,
            created_at=now if created_at is None else created_at, now=now, recovered=recovered)
        if player_id is not None:
            self._players[order.id] = player_id
        book.next_seq += 1
        for action in actions:
            order = transition(order, action, by="admin:setup", now=now)
        for issue in issues:
            order = with_issue(order, issue, now)
        self._put(order)
        return order.id

    def add_payment(self, group_id: str, amount: str, method: str = "bkash", *, reference: str = "",
                    note: str = "", at: float | None = None, by: str = "admin:setup") -> str:
        """A payment as the GroupActor records it (PA1, PA2 … per group); returns its id."""
        book = self._books[group_id]
        payment = new_payment(payment_id=f"P{book.settings.code}{book.next_payment_seq}", group_id=group_id,
                              amount=amount, method=method, reference=reference, note=note,
                              at=self.clock.now() if at is None else at, by=by)
        book.next_payment_seq += 1
        self.db.apply(PaymentRecord(group_id, payment_record(payment)))
        self.db.apply(GroupRecord(group_id, self._settings(group_id)))
        self._change_seq += 1
        self.live.publish(Changed(self._change_seq, (), (group_id,)))
        return payment.id

    def add_user(self, name: str, password: str, role: str = "owner", by: str = "admin:setup") -> None:
        """A panel user as the PersistenceActor keeps it (its password hashed as the panel does)."""
        user = User(name, Role(role), auth.HASHER.hash(password), False, self.clock.now(), by)
        self.db.apply(UserRecord.of(user))

    def due(self, group_id: str) -> Decimal:
        return due(billed_records(self.db.groups[group_id].entries.values()),
                   paid_records(self.db.group_payments(group_id)))

    def set_check(self, order_id: str, count: int, last_at: float, status: str) -> None:
        gid = self.db.order_group[order_id]
        self.db.apply(ChecksRecord(gid, {order_id: [count, last_at, status]}))

    def add_cycle(self, group_id: str, **summary: Any) -> None:
        cycle = {"group_id": group_id, "started_at": self.clock.now(), "checked": 0, "open_issues": 0,
                 "new_issues": 0, "cleared_issues": 0, "actions": 0, "duration": 0.0, **summary}
        image = self.db.groups[group_id]
        image.cycles = [*image.cycles, cycle]

    def record(self, order_id: str) -> dict[str, Any]:
        gid = self.db.order_group[order_id]
        return self.db.groups[gid].entries[order_id]

    def snapshot(self) -> bytes:
        """Everything the bridge holds, to show that a refused request changed nothing."""
        return orjson.dumps(self.db.snapshot(), option=orjson.OPT_SORT_KEYS)

    def _put(self, order: Any) -> None:
        record = to_record(order)
        if order.id in self._players:  # what the GroupActor keeps on every later record of the order
            record["playerId"] = self._players[order.id]
        self.db.apply(OrderRecord(order.group_id, record))
        self._change_seq += 1  # what the PersistenceActor publishes after a durable write
        self.live.publish(Changed(self._change_seq, (queries.get_order(self.db, order.id),), ()))

    async def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail

    # -- ActorBridge -----------------------------------------------------------------------

    async def command(self, order_id: str, action: str, by: str) -> CommandDone:
        await self._call("command", order_id, action, by)
        rid = uuid.uuid4().hex
        parts = split_order_id(order_id)
        found = self.db.find(f"{parts[0]}{parts[1]}") if parts else None
        if found is None:
            return CommandDone(rid, 404, error=f"no order {order_id}")
        gid, record = found
        if action == "undo":
            return self._undo(rid, gid, from_record(record), by)
        try:
            act = Action(action)
            if act is Action.COMPLETE:
                raise ValueError
        except ValueError:
            return CommandDone(rid, 400, error=f"unknown action {action!r}")
        now = self.clock.now()
        try:
            updated = transition(from_record(record), act, by=by, now=now)
        except TransitionError as e:
            return CommandDone(rid, 409, error=str(e))
        self._put(updated)
        if act is Action.APPROVE:  # each approval takes its diamonds off the stock
            self.shop.approved(updated.diamonds, now)
        view = {"record": dict(self.record(updated.id)), "check": self.db.check_of(gid, updated.id)}
        if updated.status is Status.APPROVED and self.deliver_on_approve:
            # What the GroupActor does once the transport confirms the delivery message.
            sent = updated.delivery.attempted(now).succeeded("BOTMSG" + updated.id, now)
            self._put(transition(replace(updated, delivery=sent), Action.COMPLETE, by="system", now=now,
                                 note="delivery message sent"))
        return CommandDone(rid, 200, result=view)

    def _undo(self, rid: str, gid: str, order: Any, by: str) -> CommandDone:
        """OrderCommand(action="undo") as the GroupActor answers it (domain.orders.undo_approval:
        back to the status before the approval, within the shop's undo window); stock follows."""
        try:
            undone = undo_approval(order, by=by, now=self.clock.now(), window=self.shop.settings.undo_window)
        except TransitionError as e:
            return CommandDone(rid, 409, error=str(e))
        self._put(undone)
        self.shop.undone(order.diamonds)
        return CommandDone(rid, 200, result={"record": dict(self.record(order.id)),
                                             "check": self.db.check_of(gid, order.id)})

    async def get_shop(self, timeout: float | None = None) -> QueryResult:
        await self._call("get_shop")
        if not self.shop_answers:
            raise BridgeError(f"no answer from the actor system within {timeout or 10:.0f} s")
        return QueryResult(uuid.uuid4().hex, 200, self.shop.view())

    async def update_shop(self, patch: dict[str, Any], by: str) -> CommandDone:
        await self._call("update_shop", orjson.loads(orjson.dumps(patch)), by)
        rid = uuid.uuid4().hex
        try:
            self.shop.update(patch, by, self.clock.now())
        except ShopError as e:
            return CommandDone(rid, 400, error=str(e))
        return CommandDone(rid, 200, result=self.shop.view())

    async def send_reminders(self, group_ids: tuple[str, ...], min_due: str, by: str) -> CommandDone:
        """SendReminders as the Supervisor answers it: the groups domain.shop.reminder_targets picks."""
        await self._call("send_reminders", tuple(group_ids), min_due, by)
        rid = uuid.uuid4().hex
        try:
            floor = parse_amount(min_due)
        except MoneyError as e:
            return CommandDone(rid, 400, error=f"min_due: {e}")
        chosen = reminder_targets(queries.list_groups(self.db), group_ids, floor)
        self.reminders.extend((g["group_id"], str(g["due"])) for g in chosen.send)
        return CommandDone(rid, 200, result={"sent": [g["group_id"] for g in chosen.send], "skipped": chosen.skipped})

    async def update_group(self, group_id: str, patch: dict[str, Any], by: str) -> CommandDone:
        await self._call("update_group", group_id, dict(patch), by)
        rid = uuid.uuid4().hex
        book = self._books.get(group_id)
        if book is None:
            return CommandDone(rid, 404, error=f"no group {group_id}")
        stored = self.db.groups[group_id].settings
        current = settings_from_record(group_id, {**stored, "rate": stored.get("rate") or DEFAULT_RATE}, DEFAULT_RATE)
        try:
            book.settings = apply_settings_patch(current, patch)
        except SettingsError as e:
            return CommandDone(rid, 400, error=str(e))
        if "rate" in patch:
            self._unrated.discard(group_id)
        self.db.apply(GroupRecord(group_id, self._settings(group_id)))
        return CommandDone(rid, 200, result={"group_id": group_id, **self.db.groups[group_id].settings,
                                             "due": money_str(self.due(group_id))})

    async def list_orders(self, **filters: Any) -> QueryResult:
        await self._call("list_orders", filters)
        return self._query(queries.list_orders, status=filters.get("status", ""),
                           group=filters.get("group", ""), text=filters.get("q", ""),
                           since=filters.get("since"), until=filters.get("until"),
                           limit=filters.get("limit", 50), offset=filters.get("offset", 0))

    async def get_order(self, order_id: str) -> QueryResult:
        await self._call("get_order", order_id)
        return self._query(queries.get_order, order_id)

    async def list_groups(self) -> QueryResult:
        await self._call("list_groups")
        return self._query(queries.list_groups)

    async def report(self) -> QueryResult:
        await self._call("report")
        return self._query(queries.report, self.clock.now())

    async def record_payment(self, group_id: str, amount: str, method: str, reference: str, note: str,
                             by: str, client_key: str = "", confirm_duplicate: bool = False) -> CommandDone:
        await self._call("record_payment", group_id, amount, method, reference, note, by, client_key,
                         confirm_duplicate)
        rid = uuid.uuid4().hex
        if group_id not in self._books:
            return CommandDone(rid, 404, error=f"no group {group_id}")
        earlier = next((p for p in self.db.payments if client_key and p.get("clientKey") == client_key), None)
        if earlier is not None:  # a retry: what the GroupActor answers
            return CommandDone(rid, 200, result={"payment": dict(earlier), "due": money_str(self.due(group_id))})
        ref = reference.strip().casefold()
        same = next((p for p in self.db.group_payments(group_id)
                     if ref and not p.get("voidedAt") and str(p.get("reference") or "").strip().casefold() == ref), None)
        if same is not None and not confirm_duplicate:  # the RecordPayment contract (actors/messages.py)
            return CommandDone(rid, 409, error=f"reference {reference.strip()} is already recorded in payment "
                                               f"{same['id']}", result={"duplicate_of": dict(same)})
        try:
            pid = self.add_payment(group_id, amount, method, reference=reference, note=note, by=by)
        except PaymentError as e:
            return CommandDone(rid, 400, error=str(e))
        if client_key:
            record = dict(self.db.payments[self.db.payment_index[pid]], clientKey=client_key)
            self.db.apply(PaymentRecord(group_id, record))
        record = self.db.payments[self.db.payment_index[pid]]
        return CommandDone(rid, 200, result={"payment": dict(record), "due": money_str(self.due(group_id))})

    async def void_payment(self, payment_id: str, reason: str, by: str) -> CommandDone:
        await self._call("void_payment", payment_id, reason, by)
        rid = uuid.uuid4().hex
        at = self.db.payment_index.get(payment_id.strip().upper())
        if at is None:
            return CommandDone(rid, 404, error=f"no payment {payment_id}")
        record = self.db.payments[at]
        try:
            voided = void_payment(payment_from_record(record), by=by, reason=reason, at=self.clock.now())
        except PaymentError as e:
            return CommandDone(rid, 409 if record.get("voidedAt") else 400, error=str(e))
        self.db.apply(PaymentRecord(record["groupId"], payment_to_record(voided)))
        return CommandDone(rid, 200, result={"payment": payment_to_record(voided),
                                             "due": money_str(self.due(record["groupId"]))})

    async def list_payments(self, **filters: Any) -> QueryResult:
        await self._call("list_payments", filters)
        return self._query(queries.list_payments, group=filters.get("group", ""), since=filters.get("since"),
                           until=filters.get("until"), limit=filters.get("limit", 100),
                           offset=filters.get("offset", 0))

    async def ledger(self, group_id: str, since: float | None = None, until: float | None = None) -> QueryResult:
        await self._call("ledger", group_id, since, until)
        return self._query(queries.group_ledger, group_id, since, until)

    async def daily_report(self, day: str = "") -> QueryResult:
        await self._call("daily_report", day)
        day = day or datetime.fromtimestamp(self.clock.now(), self.tz).date().isoformat()
        return self._query(queries.daily_report, day, self.tz)

    async def list_users(self) -> QueryResult:
        await self._call("list_users")
        return QueryResult(uuid.uuid4().hex, 200, orjson.loads(orjson.dumps(
            {"users": list(self.db.users.values()), "audit": self.db.user_audit})))

    async def save_user(self, username: str, role: str, password_hash: str | None, by: str,
                        remove: bool = False) -> CommandDone:
        await self._call("save_user", username, role, password_hash is not None, by, remove)
        rid = uuid.uuid4().hex
        users = self.db.panel_users()
        try:
            user = save_user(users, username, role, password_hash, by, self.clock.now(), remove)
        except UserError as e:
            return CommandDone(rid, e.status, error=str(e))
        record = (user or users[username]).to_record()
        if user is not None:
            self.db.apply(UserRecord(record))
        return CommandDone(rid, 200, result={k: v for k, v in record.items() if k != "passwordHash"})

    async def status(self) -> QueryResult:
        await self._call("status")
        return QueryResult(uuid.uuid4().hex, 200, {
            "boot": 3,
            "started": self.started,
            "uptime": 125.5,
            "gateway": {"state": self.gateway_state, "detail": "", "queued": self.queued,
                        "paused_until": None, "sent_last_hour": 7, "kind": "sandbox"},
            "groups": {"total": len(self._books), "ready": len(self._books), "failed": {},
                       "actors": [{"group_id": gid, "code": "", "name": gid, "ready": True, "incarnation": 1,
                                   "host": 0, "pid": 0, "shard": self.placed.get(gid, "leader")}
                                  for gid in self._books]},
            "cluster": self.cluster,
            "restarts": 1,
        })

    async def move_group(self, group_id: str, shard: str, by: str) -> CommandDone:
        """The Supervisor's MoveGroup: 404 unknown group, 409 a shard not connected."""
        await self._call("move_group", group_id, shard, by)
        rid = uuid.uuid4().hex
        if group_id not in self._books:
            return CommandDone(rid, 404, error=f"no group {group_id}")
        if not any(s["name"] == shard and s["live"] for s in self.cluster.get("shards", [])):
            return CommandDone(rid, 409, error=f"shard {shard} is not connected")
        before, self.placed[group_id] = self.placed.get(group_id, "leader"), shard
        return CommandDone(rid, 200, result={"group_id": group_id, "shard": shard, "from": before})

    async def gateway_status(self) -> QueryResult:
        await self._call("gateway_status")
        return QueryResult(uuid.uuid4().hex, 200, GatewayStatus(
            ConnectionState(self.gateway_state), self.gateway_detail, self.queued, self.paused_until, 7))

    async def repair(self) -> QueryResult:
        await self._call("repair")
        if self.repair_status != 200:
            return QueryResult(uuid.uuid4().hex, self.repair_status, error="the sandbox gateway has nothing to pair")
        return QueryResult(uuid.uuid4().hex, 200, {"ok": True})

    def healthy(self) -> bool:
        return not self.closed

    def _query(self, fn: Any, *args: Any, **kwargs: Any) -> QueryResult:
        try:
            data = fn(self.db, *args, **kwargs)
        except queries.QueryError as e:
            return QueryResult(uuid.uuid4().hex, e.status, error=str(e))
        # The real answer crosses a process boundary as a pickle: hand out a copy, never our state.
        return QueryResult(uuid.uuid4().hex, 200, orjson.loads(orjson.dumps(data)))


def bridge_error() -> BridgeError:
    return BridgeError("no answer from the actor system within 10 s")



# -- the panel over this bridge, for tests ----------------------------------------------------

PASSWORD = "correct horse battery"


@asynccontextmanager
async def panel_client(config: Config, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of the panel app over `bridge` (add_user first for someone to log in)."""
    app = create_app(config, bridge, started_at=bridge.clock.now() - 60, clock=bridge.clock.now)
    async with TestClient(TestServer(app)) as client:
        yield client


async def login(client: TestClient[Any, Any], user: str = "admin", password: str = PASSWORD) -> str:
    """Log in through the JSON API; returns the session's CSRF token."""
    resp = await client.post("/api/login", json={"username": user, "password": password})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["csrf_token"]


def login_leads_back_to(location: str) -> str:
    """Where the login page a redirect points to leads back to ("/" when it names nothing)."""
    parts = urlsplit(location)
    assert parts.path == "/login", location
    return parse_qs(parts.query).get("next", ["/"])[0]
