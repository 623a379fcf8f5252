"""PersistenceActor: the only writer of the data files.

Every write is appended to a checksummed journal and acknowledged only after an fsync; writes
that arrive close together share one fsync (group commit). The journal is compacted into an
atomic snapshot in the seed's shape. Writes from a stale GroupActor incarnation are refused
(fencing). The in-memory database doubles as the panel's read model.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import orjson
from thespian.actors import ActorExitRequest, WakeupMessage

from actors.messages import (
    SUBSCRIPTION_TTL,
    Changed,
    CommandDone,
    DatabaseFailed,
    DatabaseOpened,
    Epoch,
    GetDailyReport,
    GetLedger,
    GetOrder,
    GetReport,
    GroupsLoaded,
    ListGroups,
    ListOrders,
    ListPayments,
    ListUsers,
    LoadedGroup,
    Packed,
    LoadGroups,
    PersistedMany,
    PersistMany,
    OpenDatabase,
    Persist,
    PersistRefused,
    Persisted,
    QueryResult,
    SaveShop,
    SaveUser,
    ShopSaved,
    StockOut,
    StopSystem,
    Subscribe,
    SystemStopped,
    VoidPayment,
)
from actors import board
from actors.base import BotActor, batched, by_address
from config import Config
from domain.admins import AdminRoster
from domain.group import code_number
from domain.reconcile import LiveCycles
from domain.records import AdminsRecord, GroupRecord, MetaRecord, OrderRecord, Record, UserRecord
from domain.users import UserError, save_user
from storage import queries
from storage.database import Database, DatabaseError, open_database
from storage.errors import StorageError
from storage.lock import FileLock, LockHeld
from storage.store import Store
from storage.users import LEGACY_FILE, legacy_import

from domain.placement import PLACED_ON

log = logging.getLogger("diamondbot.persistence")


@dataclass(frozen=True)
class _FlushTimer:
    """The group commit's timer payload."""


@dataclass(frozen=True)
class _EarlyWritesDue:
    """A group's writes that came before an earlier one have waited long enough."""

    group_id: str


# How long a write that overtook an earlier one of its group waits for it. Thespian does not
# keep the order of two messages between a pair of actors (seen: a host's ForGroup before the
# HostGroups sent ahead of it); a group's writes appended out of order would let an older
# version of an order win at the next start. A lost message must not stop the group for good.
EARLY_WAIT = 1.0


# A checkpoint (sync=False) waits at most this long for an fsync to ride on.
LAZY_FLUSH = 1.0


class PersistenceActor(BotActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: Config | None = None
        self.store: Store | None = None
        self.db = Database()
        self.lock: FileLock | None = None
        self.epochs: dict[str, Epoch] = {}
        self.pending_records: list[Record] = []
        # One entry per write waiting for the fsync: (writer, its Persist).
        self.pending: list[tuple[Any, Persist]] = []
        self.flush_at: float | None = None  # monotonic time of the earliest flush scheduled
        self.broken = ""  # why writing stopped (a failed fsync); refuse everything after it
        self.commits = 0
        self.records_written = 0
        # Panel listeners: (address, lease expiry on the monotonic clock).
        self.subscribers: list[tuple[Any, float]] = []
        self.board = board.inherited()
        self.supervisor: Any = None
        self.stock_left: int | None = None  # as last told (board, Supervisor)
        self.change_seq = 0
        # A group's writes in the order it numbered them: the last batch appended for its
        # current incarnation, and those that arrived before an earlier one.
        self.last_batch: dict[str, int] = {}
        self.early_writes: dict[str, dict[int, tuple[Any, Persist]]] = {}

    # -- open --------------------------------------------------------------------------------

    def receiveMsg_OpenDatabase(self, msg: OpenDatabase, sender: Any) -> None:
        if self.store is not None:
            return
        self.config = cfg = msg.config
        self.adopt(msg.owner, msg.clock)
        data_dir = Path(cfg.bot.data_dir).resolve()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self.lock = self._lock(data_dir)
            self.store, self.db = open_database(data_dir)
            # The database is millions of long-lived objects: out of the collector's full passes
            # (each walked all of them, ~0.3 s at 100,000 orders), as garbage is freed by counts.
            gc.freeze()
        except LockHeld as e:
            self.send(sender, DatabaseFailed(f"another writer holds {data_dir}: {e}"))
            return
        except (StorageError, DatabaseError, OSError) as e:
            if self.lock is not None:
                self.lock.release()
            self.send(sender, DatabaseFailed(str(e)))
            return
        now = self.clock.now()
        meta = {"boot": int(self.db.meta.get("boot", 0)) + 1}
        if "installedAt" not in self.db.meta:
            meta["installedAt"] = now
        records: list[Record] = [MetaRecord(meta)]
        try:
            admins = self._admins(cfg, now, meta.get("installedAt", self.db.meta.get("installedAt", now)))
        except ValueError as e:
            self.close()
            self.send(sender, DatabaseFailed(f"{data_dir}: the stored admin list cannot be read ({e}). "
                                             "The files were left untouched."))
            return
        if admins is not None:
            records.append(AdminsRecord.of(admins))
        try:
            users = legacy_import(self.db.users, data_dir, now)  # once: the journal has users after it
        except StorageError as e:
            self.close()
            self.send(sender, DatabaseFailed(f"{e} Nothing was started."))
            return
        if users:
            log.info("imported %d panel users from %s as owners", len(users), LEGACY_FILE)
        records.extend(users)
        self.store.append([orjson.dumps(r.encode()) for r in records])
        self.store.sync()
        for r in records:
            self.db.apply(r)
        groups = tuple(
            (gid, str(g.settings.get("code", "")), str(g.settings.get("groupName", "")))
            for gid, g in self.db.groups.items()
        )
        log.info("database open: %d groups, %d orders, boot %d", len(groups),
                 len(self.db.order_group), meta["boot"])
        roster = AdminRoster.from_record(self.db.admins or [])
        self.supervisor = sender
        self.stock_left = self.db.stock_left()
        if self.board is not None:
            self.board.set_stock(self.stock_left)
        placements = {gid: str(g.settings[PLACED_ON]) for gid, g in self.db.groups.items()
                      if g.settings.get(PLACED_ON)}
        self.send(sender, DatabaseOpened(meta["boot"], float(self.db.meta["installedAt"]), groups,
                                         os.getpid(), roster, dict(self.db.shop), tuple(self.db.shop_audit[-100:]),
                                         self.stock_left, placements))

    def _admins(self, cfg: Config, now: float, first_since: float) -> AdminRoster | None:
        """The admin roster after this start's config (None: unchanged). Admins the config adds
        are admins from now on, those it drops no longer are: a message is judged by the list
        of when it was written. The first roster dates the config's admins from the install."""
        if self.db.admins is None:
            return AdminRoster().with_admins(cfg.whatsapp.admins, float(first_since), "config")
        stored = AdminRoster.from_record(self.db.admins)
        if any(not t.by.startswith("config") for t in stored.tenures):
            # The panel manages the admins now: the config's list was only where they began.
            if set(stored.current()) != set(cfg.whatsapp.admins):
                log.info("whatsapp.admins in the config is not used: the admins are managed on the panel")
            return None
        updated = stored.with_admins(cfg.whatsapp.admins, now, "config")
        return updated if updated != stored else None

    def _lock(self, data_dir: Path) -> FileLock:
        """Take the single-writer lock; wait briefly for an orphan writer that is exiting."""
        lock = FileLock(data_dir / "persistence.lock")
        deadline = time.monotonic() + 5.0
        while True:
            try:
                lock.acquire()
                return lock
            except LockHeld:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # -- writes ------------------------------------------------------------------------------

    def receiveMsg_LoadGroups(self, msg: LoadGroups, sender: Any) -> None:
        """Each group's stored state for its new incarnation, which alone may write from now on."""
        # A new incarnation must start from everything its predecessor wrote, including writes
        # appended but still waiting for the group commit: otherwise it would hand out the same
        # order ids again and overwrite acknowledged orders.
        self.flush()
        loaded = []
        for group_id, epoch in msg.groups:
            current = self.epochs.get(group_id)
            if current is not None and (epoch.boot, epoch.n) < (current.boot, current.n):
                loaded.append(LoadedGroup(group_id, epoch, None, "a newer incarnation owns this group"))
                continue
            self.epochs[group_id] = epoch
            self.last_batch[group_id] = 0  # a new incarnation numbers its writes from 1
            self.early_writes.pop(group_id, None)
            loaded.append(LoadedGroup(group_id, epoch, Packed.of(self.db.stored_group(group_id, msg.horizon))))
        self.send(sender, GroupsLoaded(tuple(loaded)))

    def receiveMsg_PersistMany(self, msg: PersistMany, sender: Any) -> None:
        """Many groups' last records at a stop (a host collected them): one fsync for all."""
        if self.store is None or self.broken:
            self.send(sender, PersistedMany((), tuple(g for g, _, _ in msg.writes)))
            return
        saved, refused, records = [], [], []
        for group_id, epoch, group_records in msg.writes:
            if self.epochs.get(group_id) != epoch:
                refused.append(group_id)
                continue
            saved.append(group_id)
            records.extend(group_records)
        self.flush()
        if records:
            self.store.append([orjson.dumps(r.encode()) for r in records])
            try:
                self.store.sync()
            except StorageError as e:
                self.broken = f"fsync failed: {e}"
                log.critical("%s; refusing all writes until restart", self.broken)
                self.send(sender, PersistedMany((), tuple(g for g, _, _ in msg.writes)))
                return
            for record in records:
                self.db.apply(record)
            self.records_written += len(records)
        self.send(sender, PersistedMany(tuple(saved), tuple(refused)))

    def receiveMsg_Persist(self, msg: Persist, sender: Any) -> None:
        if self.store is None or self.broken:
            self.send(sender, PersistRefused(msg.group_id, msg.batch_id, self.broken or "database not open"))
            return
        if self.epochs.get(msg.group_id) != msg.epoch:
            log.warning("refused a write for group %s from stale incarnation %s", msg.group_id, msg.epoch)
            self.send(sender, PersistRefused(msg.group_id, msg.batch_id, "stale incarnation"))
            return
        last = self.last_batch.get(msg.group_id)
        if last is not None and msg.batch_id > last + 1:
            self.early_writes.setdefault(msg.group_id, {})[msg.batch_id] = (sender, msg)
            self.wakeupAfter(timedelta(seconds=EARLY_WAIT), payload=_EarlyWritesDue(msg.group_id))
            return
        self._append(msg, sender)
        held = self.early_writes.get(msg.group_id)
        while held and self.last_batch[msg.group_id] + 1 in held:
            early_sender, early = held.pop(self.last_batch[msg.group_id] + 1)
            self._append(early, early_sender)

    def _write_early(self, group_id: str) -> None:
        """The earlier write did not come: append what waited, in its order, rather than stop
        the group (its Persisted answers and effects are waited for)."""
        held = self.early_writes.pop(group_id, None)
        if not held:
            return
        log.error("group %s: writes %s came without write %d within %g s; appended in their order",
                  group_id, sorted(held), self.last_batch.get(group_id, 0) + 1, EARLY_WAIT)
        for batch_id in sorted(held):
            early_sender, early = held[batch_id]
            self.last_batch[group_id] = batch_id - 1
            self.receiveMsg_Persist(early, early_sender)

    def _append(self, msg: Persist, sender: Any) -> None:
        assert self.store is not None
        self.last_batch[msg.group_id] = max(self.last_batch.get(msg.group_id, 0), msg.batch_id)
        self.store.append([orjson.dumps(r.encode()) for r in msg.records])
        self.pending_records.extend(msg.records)
        self.pending.append((sender, msg))
        assert self.config is not None
        # A checkpoint rides on the next fsync, waiting at most LAZY_FLUSH for one; a write
        # that carries effects (someone waits for them) is committed promptly either way.
        prompt = msg.sync or bool(msg.effects)
        delay = self.config.persistence.commit_delay if prompt else LAZY_FLUSH
        if delay <= 0:
            self.flush()
        else:
            self._flush_within(delay)

    def _flush_within(self, delay: float) -> None:
        """Make sure a flush happens within `delay` (timers cannot be cancelled: keep the earliest)."""
        due = time.monotonic() + delay
        if self.flush_at is None or due < self.flush_at:
            self.flush_at = due
            self.wakeupAfter(timedelta(seconds=delay), payload=_FlushTimer())

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        # A timer superseded by an earlier flush finds nothing pending, or a later due time.
        if isinstance(msg.payload, _EarlyWritesDue):
            self._write_early(msg.payload.group_id)
            return
        if isinstance(msg.payload, _FlushTimer) and self.flush_at is not None and time.monotonic() >= self.flush_at - 0.001:
            self.flush()

    def flush(self) -> None:
        """One fsync for everything appended since the last; then apply it, acknowledge it,
        and send every write's effects, merged into one message per address."""
        self.flush_at = None
        if self.store is None or not self.pending:
            return
        records, pending = self.pending_records, self.pending
        self.pending_records, self.pending = [], []
        try:
            self.store.sync()
        except StorageError as e:
            # Never retry a failed fsync: the page cache may have dropped the data. Refuse
            # every write from now on; the next start recovers from what is on disk.
            self.broken = f"fsync failed: {e}"
            log.critical("%s; refusing all writes until restart", self.broken)
            for writer, write in pending:
                self.send(writer, PersistRefused(write.group_id, write.batch_id, self.broken))
            return
        for record in records:
            self.db.apply(record)
        outgoing: list[tuple[Any, Any]] = []
        for writer, write in pending:
            if write.ack:
                outgoing.append((writer, Persisted(write.group_id, write.batch_id)))
            outgoing.extend(write.effects)
        for address, messages in by_address(outgoing):
            self.send(address, batched(messages))
        self.commits += 1
        self.records_written += len(records)
        self._publish(records)
        self._watch_stock()
        self._maybe_compact()

    def _watch_stock(self) -> None:
        """The stock follows every approval (it is derived from the orders): put it on the board,
        and tell the Supervisor when the last of it is gone."""
        left = self.db.stock_left()
        if left == self.stock_left:
            return
        before, self.stock_left = self.stock_left, left
        if self.board is not None:
            self.board.set_stock(left)
        if left is not None and left <= 0 and (before is None or before > 0) and self.supervisor is not None:
            self.send(self.supervisor, StockOut(left))

    def receiveMsg_SaveShop(self, msg: SaveShop, sender: Any) -> None:
        """The shop's own records (settings, admins): durable before the Supervisor acts on them."""
        if self.store is None or self.broken:
            self.send(sender, ShopSaved(msg.request, False, self.broken or "database not open"))
            return
        self.flush()  # what came before is durable first, so the stock counts every approval
        self.store.append([orjson.dumps(r.encode()) for r in msg.records])
        try:
            self.store.sync()
        except StorageError as e:
            self.broken = f"fsync failed: {e}"
            log.critical("%s; refusing all writes until restart", self.broken)
            self.send(sender, ShopSaved(msg.request, False, self.broken))
            return
        for record in msg.records:
            self.db.apply(record)
        self.records_written += len(msg.records)
        self.stock_left = self.db.stock_left()
        if self.board is not None:
            self.board.set_stock(self.stock_left)
        self.send(sender, ShopSaved(msg.request, True, stock_left=self.stock_left))

    receiveMsg_SavePlacement = receiveMsg_SaveShop  # a group's shard: durable before the answer, like the shop's

    # -- live updates ------------------------------------------------------------------------

    def receiveMsg_Subscribe(self, msg: Subscribe, sender: Any) -> None:
        to = msg.reply_to or sender
        expiry = time.monotonic() + SUBSCRIPTION_TTL
        self.subscribers = [(a, e) for a, e in self.subscribers if a != to] + [(to, expiry)]
        self.send(to, QueryResult(msg.request_id, 200, {"seq": self.change_seq}))

    def _publish(self, records: list[Record]) -> None:
        """Tell the panel's listeners what this write changed (orders as they are now)."""
        now = time.monotonic()
        self.subscribers = [(a, e) for a, e in self.subscribers if e > now]
        if not self.subscribers:
            return
        order_ids = list(dict.fromkeys(r.order_id for r in records if isinstance(r, OrderRecord)))
        groups = tuple(dict.fromkeys(r.group_id for r in records if isinstance(r, GroupRecord)))
        if not order_ids and not groups:
            return  # checkpoints, seen ids: nothing a person looks at changed
        views = []
        for oid in order_ids:
            try:
                views.append(queries.get_order(self.db, oid, self._live))
            except queries.QueryError:
                continue
        self.change_seq += 1
        change = Changed(self.change_seq, tuple(views), groups)
        for address, _ in self.subscribers:
            self.send(address, change)

    def _maybe_compact(self) -> None:
        assert self.store is not None and self.config is not None
        limit = max(self.config.persistence.compact_after_bytes, self.store.snapshot_bytes)
        if self.store.journal_bytes < limit:
            return
        started = time.perf_counter()
        self.db.prune_seen(self.clock.now() - self.config.history.max_age)
        try:
            self.store.compact(self.db.snapshot())
        except StorageError as e:
            log.error("compaction failed, journal kept: %s", e)
            return
        log.info("journal compacted into a snapshot of %d bytes in %.0f ms",
                 self.store.snapshot_bytes, (time.perf_counter() - started) * 1000)

    # -- queries (the panel's read model) ----------------------------------------------------

    def _answer(self, msg: Any, sender: Any, query: Callable[[], Any]) -> None:
        """Run a read query and answer whoever asked (the panel, through the Supervisor)."""
        to = msg.reply_to or sender
        try:
            data = query()
        except queries.QueryError as e:
            self.send(to, QueryResult(msg.request_id, e.status, error=str(e)))
            return
        self.send(to, QueryResult(msg.request_id, 200, data))

    def receiveMsg_ListOrders(self, msg: ListOrders, sender: Any) -> None:
        self._answer(msg, sender, lambda: queries.list_orders(
            self.db, status=msg.status, group=msg.group, text=msg.q, since=msg.since,
            until=msg.until, limit=msg.limit, offset=msg.offset, live=self._live))

    def receiveMsg_GetOrder(self, msg: GetOrder, sender: Any) -> None:
        self._answer(msg, sender, lambda: queries.get_order(self.db, msg.order_id, self._live))

    def receiveMsg_ListGroups(self, msg: ListGroups, sender: Any) -> None:
        self._answer(msg, sender, lambda: queries.list_groups(self.db))

    def receiveMsg_ListPayments(self, msg: ListPayments, sender: Any) -> None:
        self._answer(msg, sender, lambda: queries.list_payments(
            self.db, group=msg.group, since=msg.since, until=msg.until, limit=msg.limit, offset=msg.offset))

    def receiveMsg_VoidPayment(self, msg: VoidPayment, sender: Any) -> None:
        """From the Supervisor, for a payment whose id does not name its group: back with the group."""
        at = self.db.payment_index.get(msg.payment_id.strip().upper())
        group_id = str(self.db.payments[at].get("groupId") or "") if at is not None else ""
        if not group_id:
            self.send(msg.reply_to, CommandDone(msg.request_id, 404, error=f"no payment {msg.payment_id}"))
            return
        self.send(sender, replace(msg, group_id=group_id))

    def receiveMsg_GetLedger(self, msg: GetLedger, sender: Any) -> None:
        self._answer(msg, sender, lambda: queries.group_ledger(self.db, msg.group_id, msg.since, msg.until))

    def receiveMsg_GetDailyReport(self, msg: GetDailyReport, sender: Any) -> None:
        assert self.config is not None
        tz = ZoneInfo(self.config.bot.timezone)
        day = msg.day or datetime.fromtimestamp(self.clock.now(), tz).date().isoformat()
        self._answer(msg, sender, lambda: queries.daily_report(self.db, day, tz))

    def receiveMsg_GetReport(self, msg: GetReport, sender: Any) -> None:
        def report() -> dict[str, Any]:
            assert self.config is not None
            data = queries.report(self.db, self.clock.now(), ZoneInfo(self.config.bot.timezone), live=self._live)
            data["storage"] = self.stats()
            return data

        self._answer(msg, sender, report)

    def _live(self, group_id: str) -> LiveCycles | None:
        """A group's cycles since its last checkpoint, from the cycle board (actors/board.py)."""
        image = self.db.groups.get(group_id)
        code = str(image.settings.get("code") or "") if image is not None else ""
        if self.board is None or not code:
            return None
        try:
            return self.board.read(code_number(code), group_id)
        except ValueError:
            return None

    def stats(self) -> dict[str, Any]:
        return {
            "commits": self.commits,
            "records_written": self.records_written,
            "journal_bytes": self.store.journal_bytes if self.store else 0,
            "snapshot_bytes": self.store.snapshot_bytes if self.store else 0,
            "orders": len(self.db.order_group),
            "groups": len(self.db.groups),
        }

    # -- the panel's users ---------------------------------------------------------------------

    def receiveMsg_ListUsers(self, msg: ListUsers, sender: Any) -> None:
        self._answer(msg, sender, lambda: {"users": [dict(u) for u in self.db.users.values()],
                                           "audit": [dict(a) for a in self.db.user_audit]})

    def receiveMsg_SaveUser(self, msg: SaveUser, sender: Any) -> None:
        """A change to the panel's users, answered once it is durable. Written at once (not
        grouped): the next change is judged against this one (the last owner stays)."""
        to = msg.reply_to or sender
        if self.store is None or self.broken:
            self.send(to, CommandDone(msg.request_id, 503, error=self.broken or "database not open"))
            return
        users = self.db.panel_users()
        try:
            user = save_user(users, msg.username, msg.role, msg.password_hash, msg.by, self.clock.now(), msg.remove)
        except UserError as e:
            self.send(to, CommandDone(msg.request_id, e.status, error=str(e)))
            return
        if user is None:  # nothing changes
            self.send(to, CommandDone(msg.request_id, 200, result=_shown(users[msg.username].to_record())))
            return
        record = UserRecord.of(user)
        done = CommandDone(msg.request_id, 200, result=_shown(record.user))
        self.store.append([orjson.dumps(record.encode())])
        self.pending_records.append(record)
        self.pending.append((to, Persist("", Epoch(0, 0), 0, (record,), effects=((to, done),), ack=False)))
        self.flush()
        if self.broken:
            self.send(to, CommandDone(msg.request_id, 503, error=self.broken))
        else:
            log.info("panel user %s saved by %s", user.username, msg.by)

    # -- stop ----------------------------------------------------------------------------------

    def receiveMsg_StopSystem(self, msg: StopSystem, sender: Any) -> None:
        """The final flush: close the files and free the data directory for the next start."""
        self.close()
        self.send(sender, SystemStopped())

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        self.close()

    def close(self) -> None:
        self.flush()
        if self.store is not None:
            self.store.close()
            self.store = None
            self.broken = self.broken or "the database is closed for shutdown"
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _shown(user: dict[str, Any]) -> dict[str, Any]:
    """A user record as answered to a change: without its password hash."""
    return {k: v for k, v in user.items() if k != "passwordHash"}
