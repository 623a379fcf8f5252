"""Supervisor: starts the system, routes chat messages and panel commands to the owning
GroupActor (creating it on first sight of a group), and restarts crashed children.

Restarts follow OTP: a backoff that doubles with each recent crash, and a restart intensity
limit past which a group is retried only at the longest backoff (an order must never be
forgotten, so a group is never given up for good). Every new incarnation gets a higher epoch;
the PersistenceActor refuses writes from older ones.
"""

from __future__ import annotations

import logging
import os
import resource
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from thespian.actors import ActorExitRequest, ChildActorExited, WakeupMessage

from actors import board
from actors.base import BotActor
from actors.gateway import DRAIN_WAIT, GatewayActor
from actors.group import GroupActor
from actors.messages import (
    CommandDone,
    DatabaseFailed,
    DatabaseOpened,
    Epoch,
    GatewayMoved,
    GatewayStatus,
    GetDailyReport,
    GetGatewayStatus,
    GetStatus,
    GroupInbound,
    GroupReady,
    GroupNews,
    GroupRoute,
    GroupsSeen,
    GroupStopped,
    InboundBatch,
    InboundItem,
    InitGroup,
    Locate,
    OpenDatabase,
    OrderCommand,
    OwnIds,
    QueryResult,
    RecordPayment,
    VoidPayment,
    RePair,
    ReplayInbox,
    SendDailyReport,
    SendingStopped,
    SendResult,
    SendText,
    StartGateway,
    StartSystem,
    StopSystem,
    SystemFailed,
    SystemStarted,
    SystemStopped,
    UpdateGroup,
)
from actors.persistence import PersistenceActor
from storage.lock import process_alive
from config import Config
from domain.group import code_number, group_code, payment_group_code, split_order_id
from domain.admins import AdminRoster
from domain.reports import ReportKey, admin_chats, daily_report_text, report_day, seconds_until
from domain.texts import Texts
from domain.chat import ConnectionState

log = logging.getLogger("diamondbot.supervisor")

GROUPS_STOP_WAIT = 2.5  # s for every group's last checkpoint to be durable (plus 4 ms a group)
GROUPS_STOP_MAX_WAIT = 5.0  # run.py gives the whole stop 8 s


# Timer payloads.
@dataclass(frozen=True)
class _Restart:
    group_id: str


@dataclass(frozen=True)
class _GatewayQuiet:
    """The gateway had its time to stop sending."""


@dataclass(frozen=True)
class _GroupsStopped:
    """The groups had their time to write their last checkpoint."""


@dataclass(frozen=True)
class _DailyReportDue:
    pass


@dataclass(frozen=True)
class DailyReportRequest:
    """The request id of the Supervisor's own GetDailyReport: which day it asked for."""

    day: str


@dataclass
class GroupEntry:
    group_id: str
    code: str
    name: str
    address: Any = None
    n: int = 0  # incarnation number within this boot
    ready: bool = False
    error: str = ""
    backlog: list[tuple[Any, Any]] = field(default_factory=list)  # held while no actor runs
    crashes: deque[float] = field(default_factory=deque)
    restart_pending: bool = False
    replay_on_ready: bool = False
    pid: int = 0


class Supervisor(BotActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start: StartSystem | None = None
        self.starter: Any = None
        self.config: Config | None = None
        self.persistence: Any = None
        self.gateway: Any = None
        self.gateway_request = ""
        self.boot = 0
        self.installed_at = 0.0
        self.groups: dict[str, GroupEntry] = {}
        self.by_code: dict[str, str] = {}
        self.next_code = 1
        self.gateway_status = GatewayStatus(ConnectionState.STOPPED)
        self.own_ids: frozenset[str] = frozenset()
        self.admins = AdminRoster()
        self.started = False
        self.stopping = False
        self.groups_stopping = False
        self.persistence_stopping = False
        self.awaiting_groups: set[str] = set()  # groups whose last checkpoint is not yet durable
        self.stop_requester: Any = None
        self.started_at = time.time()
        self.restarts = 0
        self.pids: dict[str, int] = {"supervisor": os.getpid()}

    # -- start --------------------------------------------------------------------------------

    def receiveMsg_StartSystem(self, msg: StartSystem, sender: Any) -> None:
        if self.start is not None:
            return
        self.start, self.starter, self.config = msg, sender, msg.config
        self.adopt(msg.owner, msg.clock, kill_system=True)
        _raise_fd_limit()
        board.create()  # before any child: every actor process inherits it
        self.persistence = self.createActor(PersistenceActor)
        self.send(self.persistence, OpenDatabase(msg.config, msg.owner, msg.clock))

    def receiveMsg_DatabaseFailed(self, msg: DatabaseFailed, sender: Any) -> None:
        self._fail(msg.error)

    def _fail(self, error: str) -> None:
        log.error("start failed: %s", error)
        if not self.started and self.starter is not None:
            self.send(self.starter, SystemFailed(error))
            self.starter = None

    def receiveMsg_DatabaseOpened(self, msg: DatabaseOpened, sender: Any) -> None:
        assert self.start is not None
        self.boot, self.installed_at = msg.boot, msg.installed_at
        self.pids["persistence"] = msg.pid
        self.admins = msg.admins
        for gid, code, name in msg.groups:
            if not code or gid in self.groups:
                continue
            self.groups[gid] = GroupEntry(gid, code, name)
            self.by_code[code] = gid
            self.next_code = max(self.next_code, code_number(code) + 1)
        if self.started:
            # The PersistenceActor was restarted: every group reloads under a new epoch (the
            # boot number rose), and gets again what its unacknowledged writes had taken in.
            for entry in self.groups.values():
                entry.replay_on_ready = True
                self._spawn(entry)
            return
        self._start_gateway()

    def _start_gateway(self) -> None:
        assert self.start is not None
        self.gateway = self.createActor(GatewayActor)
        self.gateway_request = uuid.uuid4().hex
        self.send(self.gateway, StartGateway(self.gateway_request, self.start.config,
                                             self.start.transport, self.start.owner, self.start.clock))

    def receiveMsg_QueryResult(self, msg: QueryResult, sender: Any) -> None:
        if isinstance(msg.request_id, DailyReportRequest):
            self._send_daily_report(msg)
            return
        if msg.request_id != self.gateway_request:
            return
        if msg.status != 200:
            self._fail(msg.error)
            return
        self.pids["gateway"] = (msg.data or {}).get("pid", 0)
        if not self.started:
            for entry in self.groups.values():
                self._spawn(entry)
            self.started = True
            log.info("system started: boot %d, %d groups, gateway %s", self.boot, len(self.groups),
                     (msg.data or {}).get("kind"))
            if self.starter is not None:
                self.send(self.starter, SystemStarted(self.boot, self.persistence, self.gateway,
                                                      os.getpgid(0)))
            self._arm_daily_report()

    # -- the daily report -----------------------------------------------------------------

    def _arm_daily_report(self) -> None:
        assert self.config is not None
        delay = seconds_until(self.config.reports.daily_at, self.clock.now(), ZoneInfo(self.config.bot.timezone))
        self.wakeupAfter(timedelta(seconds=delay), payload=_DailyReportDue())

    def receiveMsg_SendDailyReport(self, msg: SendDailyReport, sender: Any) -> None:
        """Ask the PersistenceActor for the day's figures; they go out when they arrive."""
        assert self.config is not None
        day = msg.day or report_day(self.clock.now(), ZoneInfo(self.config.bot.timezone))
        if self.persistence is not None:
            self.send(self.persistence, GetDailyReport(DailyReportRequest(day), day, reply_to=self.myAddress))

    def _send_daily_report(self, result: QueryResult) -> None:
        """One message per admin with every group's day (reports.send_to_admins)."""
        assert self.config is not None
        if result.status != 200 or self.gateway is None:
            log.error("daily report not sent: %s", result.error or "no gateway")
            return
        texts = Texts(self.config.language_messages, self.config.orders.min_diamonds,
                      self.config.orders.max_diamonds, self.config.bot.language)
        day = result.data["day"]
        text = daily_report_text(texts, result.data)
        if not text:
            return
        admins = self.admins.current()
        for chat in admin_chats(admins):
            self.send(self.gateway, SendText(ReportKey(day, chat), chat, text, None, priority=2,
                                             reply_to=self.myAddress))
        log.info("daily report of %s sent to %d admins", day, len(admins))

    def receiveMsg_SendResult(self, msg: SendResult, sender: Any) -> None:
        if not msg.ok:
            log.warning("a report message was not sent (%s): %s", msg.key, msg.error)

    # -- groups -------------------------------------------------------------------------------

    def _new_group(self, group_id: str, name: str) -> GroupEntry:
        code = group_code(self.next_code)
        self.next_code += 1
        entry = self.groups[group_id] = GroupEntry(group_id, code, name)
        self.by_code[code] = group_id
        log.info("new group %s (%s): code %s", group_id, name, code)
        self._spawn(entry)
        return entry

    def _spawn(self, entry: GroupEntry) -> None:
        assert self.config is not None
        entry.n += 1
        entry.ready, entry.error = False, ""
        entry.address = self.createActor(GroupActor)
        self._route(entry)
        self.send(entry.address, InitGroup(
            entry.group_id, entry.code, entry.name, Epoch(self.boot, entry.n), self.config,
            self.persistence, self.gateway, self.own_ids, self.admins, floor=self.installed_at,
            owner=self.start.owner if self.start else None,
            clock=self.start.clock if self.start else None,
        ))
        backlog, entry.backlog = entry.backlog, []
        for message, sender in backlog:
            self._deliver(entry, message, sender)

    def _route(self, entry: GroupEntry) -> None:
        """Tell the gateway where this group's messages go (None: to us, while it restarts)."""
        if self.gateway is not None:
            self.send(self.gateway, GroupRoute(entry.group_id, entry.address))

    def _deliver(self, entry: GroupEntry, message: Any, sender: Any) -> None:
        if entry.address is None:
            entry.backlog.append((message, sender))
        else:
            self.send(entry.address, message)

    def receiveMsg_GroupReady(self, msg: GroupReady, sender: Any) -> None:
        entry = self.groups.get(msg.group_id)
        if entry is None or entry.address != sender:
            return
        entry.ready, entry.error, entry.pid = not msg.error, msg.error, msg.pid
        if entry.replay_on_ready and self.gateway is not None:
            entry.replay_on_ready = False
            self.send(self.gateway, ReplayInbox(entry.group_id))

    def receiveMsg_InboundBatch(self, msg: InboundBatch, sender: Any) -> None:
        by_group: dict[str, list[InboundItem]] = {}
        for item in msg.items:
            by_group.setdefault(item.message.group_id, []).append(item)
        for gid, items in by_group.items():
            entry = self.groups.get(gid)
            if entry is None:
                entry = self._new_group(gid, items[0].message.group_name)
            self._deliver(entry, GroupInbound(tuple(items)), sender)

    def receiveMsg_GroupsSeen(self, msg: GroupsSeen, sender: Any) -> None:
        """The groups the bot's number is in: each is known (and takes its rate) before its
        first order; one it left is told so, and stays in the ledger."""
        change = msg.change
        present = set()
        for info in change.present:
            present.add(info.group_id)
            entry = self.groups.get(info.group_id) or self._new_group(info.group_id, info.name)
            entry.name = info.name or entry.name
            self._deliver(entry, GroupNews(info.name, True), sender)
        gone = set(change.gone) - present
        if change.complete:
            gone |= set(self.groups) - present
        for group_id in gone:
            entry = self.groups.get(group_id)
            if entry is not None:
                self._deliver(entry, GroupNews(entry.name, False), sender)

    def receiveMsg_OwnIds(self, msg: OwnIds, sender: Any) -> None:
        self.own_ids = msg.ids
        for entry in self.groups.values():
            if entry.address is not None:
                self.send(entry.address, msg)

    # -- restarts -----------------------------------------------------------------------------

    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender: Any) -> None:
        if self.stopping:
            return
        owner = self.start.owner if self.start else None
        if owner is not None and not process_alive(owner.pid, owner.start_time):
            # run.py is gone and every actor is exiting (watchdogs): restarting one now would
            # only start a writer that the whole process group is about to lose.
            self.stopping = True
            return
        address = msg.childAddress
        if address == self.persistence:
            log.error("persistence actor exited; restarting it and every group")
            self.restarts += 1
            for entry in self.groups.values():
                if entry.address is not None:
                    self.send(entry.address, ActorExitRequest())
                    entry.address = None
                    self._route(entry)
            self.persistence = self.createActor(PersistenceActor)
            assert self.start is not None
            self.send(self.persistence, OpenDatabase(self.start.config, self.start.owner, self.start.clock))
            return
        if address == self.gateway:
            log.error("gateway actor exited; restarting it")
            self.restarts += 1
            self._start_gateway()
            for entry in self.groups.values():
                if entry.address is not None:
                    self.send(entry.address, GatewayMoved(self.gateway))
                    self._route(entry)
            return
        # ActorAddress is not hashable; exits are rare, so a scan is fine.
        entry = next((e for e in self.groups.values() if e.address == address), None)
        if entry is None:
            return  # an incarnation already replaced
        entry.address, entry.ready = None, False
        self._route(entry)
        self._schedule_restart(entry)

    def _schedule_restart(self, entry: GroupEntry) -> None:
        assert self.config is not None
        a = self.config.actors
        now = time.monotonic()
        entry.crashes.append(now)
        while entry.crashes and entry.crashes[0] < now - a.restart_period:
            entry.crashes.popleft()
        if len(entry.crashes) > a.restart_intensity:
            delay = a.restart_backoff_max
            entry.error = f"crashed {len(entry.crashes)} times in {a.restart_period:.0f} s"
            log.error("group %s %s; next restart in %.0f s", entry.group_id, entry.error, delay)
        else:
            delay = min(a.restart_backoff_min * 2 ** (len(entry.crashes) - 1), a.restart_backoff_max)
            log.warning("group %s actor exited; restarting in %.2f s", entry.group_id, delay)
        entry.restart_pending = True
        entry.replay_on_ready = True
        self.restarts += 1
        self.wakeupAfter(timedelta(seconds=delay), payload=_Restart(entry.group_id))

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        payload = msg.payload
        if isinstance(payload, _GatewayQuiet) and self.stopping:
            self._stop_groups()
        elif isinstance(payload, _GroupsStopped) and self.persistence is not None:
            if self.awaiting_groups:
                log.warning("%d groups did not confirm their last checkpoint in time: their latest check "
                            "counts are lost (orders are not)", len(self.awaiting_groups))
            self._stop_persistence()
        elif isinstance(payload, _DailyReportDue) and not self.stopping:
            assert self.config is not None
            if self.config.reports.send_to_admins and self.admins.current():
                self.receiveMsg_SendDailyReport(SendDailyReport(), sender)
            self._arm_daily_report()
        elif isinstance(payload, _Restart) and not self.stopping:
            entry = self.groups.get(payload.group_id)
            if entry is not None and entry.restart_pending:
                entry.restart_pending = False
                self._spawn(entry)

    # -- panel commands -----------------------------------------------------------------------

    def receiveMsg_OrderCommand(self, msg: OrderCommand, sender: Any) -> None:
        parts = split_order_id(msg.order_id)
        gid = self.by_code.get(parts[0]) if parts else None
        if gid is None:
            self.send(sender, CommandDone(msg.request_id, 404, error=f"no order {msg.order_id}"))
            return
        normalised = f"{parts[0]}{parts[1]}"  # type: ignore[index]
        self._deliver(self.groups[gid], OrderCommand(msg.request_id, normalised, msg.action, msg.by,
                                                     reply_to=sender), sender)

    def receiveMsg_UpdateGroup(self, msg: UpdateGroup, sender: Any) -> None:
        entry = self.groups.get(msg.group_id)
        if entry is None:
            self.send(sender, CommandDone(msg.request_id, 404, error=f"no group {msg.group_id}"))
            return
        self._deliver(entry, UpdateGroup(msg.request_id, msg.group_id, msg.patch, msg.by, reply_to=sender),
                      sender)

    def _forward_read(self, msg: Any, sender: Any) -> None:
        """Panel reads go to whichever PersistenceActor is current (it may have restarted)."""
        self.send(self.persistence, replace(msg, reply_to=sender))

    receiveMsg_ListOrders = receiveMsg_GetOrder = receiveMsg_ListGroups = receiveMsg_GetReport = _forward_read
    receiveMsg_Subscribe = _forward_read
    receiveMsg_ListPayments = receiveMsg_GetLedger = receiveMsg_GetDailyReport = _forward_read
    receiveMsg_ListUsers = receiveMsg_SaveUser = _forward_read  # the panel's users (issue 13)

    def receiveMsg_VoidPayment(self, msg: VoidPayment, sender: Any) -> None:
        if not msg.group_id:
            # Payment ids are "P" + the group's code + a number ("PA3"): the id names its group.
            code = payment_group_code(msg.payment_id)
            group_id = self.by_code.get(code, "") if code else ""
            if not group_id and msg.reply_to is None:
                # Not that form (imported: "P3"): the PersistenceActor knows whose it is, and
                # sends it back here with its group, or answers 404.
                self.send(self.persistence, replace(msg, reply_to=sender))
                return
            msg = replace(msg, group_id=group_id)
        reply_to = msg.reply_to or sender
        entry = self.groups.get(msg.group_id)
        if entry is None:
            self.send(reply_to, CommandDone(msg.request_id, 404, error=f"no payment {msg.payment_id}"))
            return
        self._deliver(entry, replace(msg, reply_to=reply_to), reply_to)

    def receiveMsg_RecordPayment(self, msg: RecordPayment, sender: Any) -> None:
        entry = self.groups.get(msg.group_id)
        if entry is None:
            self.send(sender, CommandDone(msg.request_id, 404, error=f"no group {msg.group_id}"))
            return
        self._deliver(entry, replace(msg, reply_to=sender), sender)

    def receiveMsg_GetGatewayStatus(self, msg: GetGatewayStatus, sender: Any) -> None:
        self.send(self.gateway, replace(msg, reply_to=sender))

    def receiveMsg_RePair(self, msg: RePair, sender: Any) -> None:
        self.send(self.gateway, replace(msg, reply_to=sender))

    def receiveMsg_Locate(self, msg: Locate, sender: Any) -> None:
        entry = self.groups.get(msg.group_id)
        if entry is None or entry.address is None:
            self.send(sender, QueryResult(msg.request_id, 404, error=f"no running actor for {msg.group_id}"))
        else:
            self.send(sender, QueryResult(msg.request_id, 200, entry.address))

    def receiveMsg_GatewayStatus(self, msg: GatewayStatus, sender: Any) -> None:
        self.gateway_status = msg

    def receiveMsg_GetStatus(self, msg: GetStatus, sender: Any) -> None:
        g = self.gateway_status
        self.send(sender, QueryResult(msg.request_id, 200, {
            "boot": self.boot,
            "started": self.started,
            "uptime": time.time() - self.started_at,
            "gateway": {"state": g.state.value, "detail": g.detail.message, "queued": g.queued,
                        "paused_until": g.paused_until, "sent_last_hour": g.sent_last_hour,
                        "kind": self.config.gateway.kind if self.config else ""},
            "groups": {
                "total": len(self.groups),
                "ready": sum(1 for e in self.groups.values() if e.ready),
                "failed": {e.group_id: e.error for e in self.groups.values() if e.error},
                "actors": [{"group_id": e.group_id, "code": e.code, "name": e.name, "ready": e.ready,
                            "incarnation": e.n, "pid": e.pid} for e in self.groups.values()],
            },
            "restarts": self.restarts,
            "pids": dict(self.pids),
            "pgid": os.getpgid(0),  # every actor process, with Thespian's admin and logger
        }))

    # -- stop ---------------------------------------------------------------------------------

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        # The system is shutting down: children exiting now must not be restarted.
        self.stopping = True

    def receiveMsg_StopSystem(self, msg: StopSystem, sender: Any) -> None:
        """Stop sending (the results of sends in flight reach their groups), checkpoint every
        group, then flush the journal, then answer."""
        self.stopping = True
        self.stop_requester = sender
        if self.gateway is None:
            self._stop_groups()
            return
        self.send(self.gateway, StopSystem())
        # A gateway that does not answer (dead, restarting) does not hold the stop up.
        self.wakeupAfter(timedelta(seconds=DRAIN_WAIT + 0.5), payload=_GatewayQuiet())

    def receiveMsg_SendingStopped(self, msg: SendingStopped, sender: Any) -> None:
        self._stop_groups()

    def receiveMsg_GroupStopped(self, msg: GroupStopped, sender: Any) -> None:
        self.awaiting_groups.discard(msg.group_id)
        if self.groups_stopping and not self.awaiting_groups:
            self._stop_persistence()

    def _stop_persistence(self) -> None:
        """The final flush; the PersistenceActor's SystemStopped answers the stop."""
        if not self.persistence_stopping and self.persistence is not None:
            self.persistence_stopping = True
            self.send(self.persistence, StopSystem())

    def _stop_groups(self) -> None:
        if self.groups_stopping:
            return
        self.groups_stopping = True
        for entry in self.groups.values():
            if entry.address is not None:
                self.send(entry.address, StopSystem())
                self.awaiting_groups.add(entry.group_id)
        if self.persistence is not None:
            # Each group answers once its last checkpoint is durable; one that does not answer
            # (dead, busy) does not hold the stop up for long.
            if self.awaiting_groups:
                # Thespian carries a few hundred messages a second: a large fleet needs longer.
                wait = min(GROUPS_STOP_WAIT + 0.004 * len(self.awaiting_groups), GROUPS_STOP_MAX_WAIT)
                self.wakeupAfter(timedelta(seconds=wait), payload=_GroupsStopped())
            else:
                self._stop_persistence()
        elif self.stop_requester is not None:
            self.send(self.stop_requester, SystemStopped())
            self.stop_requester = None

    def receiveMsg_SystemStopped(self, msg: SystemStopped, sender: Any) -> None:
        if self.stop_requester is not None:
            self.send(self.stop_requester, msg)
            self.stop_requester = None


def _raise_fd_limit() -> None:
    """Each child costs the Supervisor a few descriptors; 1024 runs out near 330 groups."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
