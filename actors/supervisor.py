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
from dataclasses import dataclass, replace
from decimal import Decimal
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from thespian.actors import ActorExitRequest, ActorSystemConventionUpdate, ChildActorExited, WakeupMessage

from actors import board
from actors.base import BotActor
from actors.gateway import DRAIN_WAIT, GatewayActor
from actors.host import SHARD, STOP_WAIT, GroupHost, default_hosts, host_of
from actors.messages import (
    DropGroups,
    HostAlive,
    GroupRoutes,
    MoveGroup,
    SavePlacement,
    ForGroup,
    GroupDown,
    GroupSlot,
    GroupSpec,
    GroupsReady,
    HostGroups,
    HostStopped,
    ReloadGroups,
    StartHost,
    ToGroups,
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
    AdminsChanged,
    GetShop,
    GroupNews,
    ListGroups,
    SaveShop,
    SendReminders,
    ShopChanged,
    ShopSaved,
    StockOut,
    UpdateShop,
    GroupsSeen,
    InboundBatch,
    InboundItem,
    Locate,
    OpenDatabase,
    OrderCommand,
    OwnIds,
    QueryResult,
    RecordPayment,
    VoidPayment,
    RePair,
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
from domain.money import MoneyError, parse_amount
from domain.placement import PLACED_ON, least_loaded, next_placement_n, rehome
from domain.restarts import policy_of, restart_delay
from domain.records import AdminsRecord, GroupRecord, ShopRecord
from actors.desk_setup import shop_defaults, text_rules
from domain.shop import (
    SYSTEM_STOCK,
    ReminderKey,
    ShopError,
    ShopNoticeKey,
    ShopSettings,
    patch_shop,
    reminder_targets,
    shop_view,
    stored,
    with_stored,
)
from domain.texts import Texts
from domain.chat import ConnectionState

log = logging.getLogger("diamondbot.supervisor")

# s for every host to write its groups' last checkpoints: the hosts' own deadline and time for
# their last batch (run.py gives the whole stop 8 s; the gateway takes up to 1.5 s of it)
HOSTS_STOP_WAIT = STOP_WAIT + 0.8


# Timer payloads.
@dataclass(frozen=True)
class _GatewayQuiet:
    """The gateway had its time to stop sending."""


@dataclass(frozen=True)
class _HostsStopped:
    """The hosts had their time to write their groups' last checkpoints."""


@dataclass(frozen=True)
class _DailyReportDue:
    pass


@dataclass(frozen=True)
class _JoinWaitOver:
    """Members whose groups were placed on them had their time to join (cluster.join_wait)."""


@dataclass(frozen=True)
class _CheckShards:
    """Time to look for members whose hosts stopped beating."""


@dataclass(frozen=True, eq=False)
class _RestartHost:
    """Time to start the group host at that index again, unless it was replaced meanwhile."""

    index: int
    exited: Any  # the address of the host that exited


@dataclass(frozen=True)
class _StopOrphans:
    """A lost member is heard again: its old hosts (and their groups) stop now."""

    hosts: tuple[int, ...]


MISSED_BEATS = 3  # heartbeats missed before a member is lost


@dataclass(frozen=True)
class _Placed:
    """The request of a SavePlacement: where a group runs now."""

    group_id: str
    shard: str


HOSTS_CAPABILITY = "diamond.hosts"  # how many group hosts a member machine runs (actors.system)


@dataclass
class Shard:
    """A machine's share of the groups: its hosts (indexes into Supervisor.hosts), whether it is
    connected, since when."""

    name: str
    hosts: list[int]
    live: bool = True
    admin: str = ""  # a member's admin address (empty: the leader's own shard)
    since: float = 0.0
    lost_at: float = 0.0
    heard: float = 0.0  # time.monotonic() of its hosts' last heartbeat
    # A registration of the member while it counted as live: (time.monotonic(), hosts, admin).
    registered: tuple[float, int, str] | None = None


@dataclass(frozen=True)
class _ShopUpdate:
    """A panel's change of the shop, waiting for its records to be durable."""

    request: UpdateShop
    reply_to: Any
    settings: ShopSettings
    roster: AdminRoster
    what: str  # what changed, in words (the audit's)


@dataclass(frozen=True)
class _Notice:
    """Post the shop's open/closed notice to every group that takes orders (ListGroups answer)."""

    opened: bool


@dataclass(frozen=True)
class _Reminders:
    """Send dues reminders once the groups' dues are known (ListGroups answer)."""

    request: SendReminders
    reply_to: Any


@dataclass(frozen=True)
class DailyReportRequest:
    """The request id of the Supervisor's own GetDailyReport: which day it asked for."""

    day: str


@dataclass
class GroupEntry:
    """A group as the Supervisor knows it: which host keeps it and where its actor runs."""

    group_id: str
    code: str
    name: str
    host: int = -1  # index into Supervisor.hosts (-1: no host yet: its shard has not joined)
    shard: str = ""  # where it runs (several machines); recorded in the journal
    address: Any = None  # the running actor (None: starting or restarting: its host holds messages)
    epoch: Epoch | None = None
    ready: bool = False
    error: str = ""
    pid: int = 0
    left: bool | None = None  # whether the bot's number left it (None: not heard yet)
    n_floor: int = 0  # its current placement's incarnations count up from here (domain.placement)

    def slot(self, boot: int, replay: bool = False) -> GroupSlot:
        n = self.epoch.n if self.epoch is not None and self.epoch.boot == boot else 0
        return GroupSlot(self.group_id, self.code, self.name, max(n, self.n_floor), replay)


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
        self.shop = ShopSettings()
        self.shop_audit: list[dict[str, Any]] = []
        self.stock_left: int | None = None
        self.board: board.Board | None = None
        self.admins = AdminRoster()
        self.started = False
        self.stopping = False
        self.hosts: list[Any] = []  # GroupHost addresses
        self.host_shard: list[str] = []  # the shard of each host
        self.host_exits: dict[int, tuple[float, ...]] = {}  # recent exits of each host (monotonic)
        self.shards: dict[str, Shard] = {}
        self.placements: dict[str, str] = {}  # as the journal had them at the start
        self.waiting: dict[str, list[Any]] = {}  # messages for groups whose shard has not joined yet
        self.hosts_stopping = False
        self.persistence_stopping = False
        self.awaiting_hosts = 0  # hosts whose groups' last checkpoints are not yet durable
        self.hosts_answered: list[Any] = []  # hosts that did (ActorAddress is not hashable)
        self.checkpoints_missing = 0
        self.checkpoints_saved = 0
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
        self.board = board.create()  # before any child: every actor process inherits it
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
        self.shop = with_stored(shop_defaults(self.start.config), msg.shop)
        self.shop_audit = list(msg.shop_audit)
        self.stock_left = msg.stock_left
        self.placements = dict(msg.placements)
        if self.board is not None:
            self.board.set_open(self.shop.open)
        for gid, code, name in msg.groups:
            if not code or gid in self.groups:
                continue
            self._known(gid, code, name)
        if self.started:
            # The PersistenceActor was restarted: every group reloads under a new epoch (the
            # boot number rose), and gets again what its unacknowledged writes had taken in.
            for entry in self.groups.values():
                entry.address, entry.ready = None, False
            for host in self._live_hosts():
                self.send(host, ReloadGroups(self.boot, self.persistence))
            return
        self._start_gateway()

    def _host_count(self) -> int:
        return (self.config.actors.group_hosts if self.config else 0) or default_hosts()

    def _known(self, group_id: str, code: str, name: str) -> GroupEntry:
        entry = self.groups[group_id] = GroupEntry(group_id, code, name,
                                                       shard=self.placements.get(group_id, "") if self._cluster() else "")
        self.by_code[code] = group_id
        self.next_code = max(self.next_code, code_number(code) + 1)
        return entry

    def _start_gateway(self) -> None:
        assert self.start is not None
        self.gateway = self.createActor(GatewayActor)
        self.gateway_request = uuid.uuid4().hex
        self.send(self.gateway, StartGateway(self.gateway_request, self.start.config,
                                             self.start.transport, self.start.owner, self.start.clock, self.shop))

    def receiveMsg_QueryResult(self, msg: QueryResult, sender: Any) -> None:
        if isinstance(msg.request_id, DailyReportRequest):
            self._send_daily_report(msg)
            return
        if isinstance(msg.request_id, _Notice):
            self._post_notice(msg.request_id.opened, msg.data if msg.status == 200 else [])
            return
        if isinstance(msg.request_id, _Reminders):
            self._send_reminders(msg.request_id, msg)
            return
        if msg.request_id != self.gateway_request:
            return
        if msg.status != 200:
            self._fail(msg.error)
            return
        self.pids["gateway"] = (msg.data or {}).get("pid", 0)
        if not self.started:
            self._start_hosts()
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

    def _spec(self) -> GroupSpec:
        """What every group starts from (the hosts keep it current with the news they pass on)."""
        assert self.config is not None
        return GroupSpec(self.config, self.persistence, self.gateway, self.boot, self.own_ids, self.admins, self.shop,
                         self.installed_at, self.start.owner if self.start else None,
                         self.start.clock if self.start else None)

    def _start_hosts(self) -> None:
        """A few hosts (one per core) on this machine's shard, each starting its share of the
        groups in batches; with several machines, members' shards follow as they join."""
        assert self.config is not None
        self._add_shard(self._own_shard(), self._host_count())
        if self._cluster():
            self.notifyOnSystemRegistrationChanges(True)  # members joining and lost
            self.wakeupAfter(timedelta(seconds=self.config.cluster.join_wait), payload=_JoinWaitOver())
            self.wakeupAfter(timedelta(seconds=self.config.cluster.check_in), payload=_CheckShards())

    # -- shards: several machines (issue 16) ------------------------------------------------------

    def _cluster(self) -> bool:
        return bool(self.config and self.config.cluster.role)

    def _own_shard(self) -> str:
        return self.config.cluster.shard if self.config else "leader"

    def _live_shards(self) -> list[str]:
        return [name for name, shard in self.shards.items() if shard.live]

    def _live_hosts(self) -> list[Any]:
        return [self.hosts[i] for shard in self.shards.values() if shard.live for i in shard.hosts]

    def _add_shard(self, name: str, count: int, admin: str = "") -> None:
        """Hosts on that shard's machine, starting the groups placed there (and, on this
        machine's shard, those placed nowhere yet)."""
        spec = self._spec()
        requirements = {SHARD: name} if self._cluster() else None
        first = len(self.hosts)
        for _ in range(max(count, 1)):
            self.hosts.append(self.createActor(GroupHost, targetActorRequirements=requirements))
            self.host_shard.append(name)
        shard = self.shards[name] = Shard(name, list(range(first, len(self.hosts))), True, admin, time.time(),
                                          heard=time.monotonic())
        own = name == self._own_shard()
        mine = [e for e in self.groups.values() if e.host < 0 and (e.shard == name or (own and not e.shard))]
        for entry in mine:
            self._assign(entry, name)
        for i in shard.hosts:
            self.send(self.hosts[i], StartHost(spec, tuple(e.slot(self.boot) for e in mine if e.host == i)))
        for entry in mine:
            self._flush_waiting(entry)

    def _assign(self, entry: GroupEntry, name: str) -> None:
        """The group runs on that shard, on the host its code number picks (stable)."""
        shard = self.shards[name]
        entry.host = shard.hosts[host_of(code_number(entry.code), len(shard.hosts))]
        if entry.shard != name and self._cluster():
            self._record_placement(entry.group_id, name)
        entry.shard = name

    def _record_placement(self, group_id: str, shard: str) -> None:
        """In the journal, so a restart puts the group back where it runs now."""
        self.send(self.persistence, SavePlacement(_Placed(group_id, shard), (GroupRecord(group_id, {PLACED_ON: shard}),)))

    def _flush_waiting(self, entry: GroupEntry) -> None:
        for message in self.waiting.pop(entry.group_id, []):
            self._deliver(entry, message)

    def _relocate(self, entry: GroupEntry, name: str) -> None:
        """Start the group on another shard's host under a new placement: its epochs there
        outnumber every incarnation the old placement may still run (an orphan on a cut-off
        machine), so the PersistenceActor refuses their writes; the gateway's inbox hands the new
        incarnation what the old one had not made durable."""
        n = entry.epoch.n if entry.epoch is not None and entry.epoch.boot == self.boot else 0
        entry.n_floor = next_placement_n(max(n, entry.n_floor))
        entry.address, entry.ready = None, False
        self._assign(entry, name)
        self.send(self.hosts[entry.host], HostGroups((entry.slot(self.boot, replay=True),)))
        if self.gateway is not None:
            self.send(self.gateway, GroupRoutes(((entry.group_id, None),)))  # through here until it is ready
        self._flush_waiting(entry)

    def _lose_shard(self, name: str) -> None:
        """A member is gone: its groups start on the shards that are left."""
        shard = self.shards.get(name)
        if shard is None or not shard.live or name == self._own_shard():
            return
        shard.live, shard.lost_at = False, time.time()
        lost = [gid for gid, e in self.groups.items() if e.shard == name]
        log.error("member %s (shard %s) is gone: starting its %d groups on %s", shard.admin, name, len(lost),
                  ", ".join(self._live_shards()))
        self.restarts += 1
        placed = {gid: e.shard for gid, e in self.groups.items()}
        for gid, target in rehome(lost, placed, self._live_shards()).items():
            self._relocate(self.groups[gid], target)

    def receiveMsg_HostAlive(self, msg: HostAlive, sender: Any) -> None:
        index = next((i for i, h in enumerate(self.hosts) if h == sender), None)
        if index is None or self.stopping:
            return
        shard = self.shards.get(self.host_shard[index])
        if shard is None:
            return
        if shard.live and index in shard.hosts:
            shard.heard = time.monotonic()
            return
        if shard.live:
            return  # an old host of a shard that is back already: its groups are being stopped
        # A lost member is reachable again (a partition healed): it becomes a shard without
        # groups, and its old hosts stop — one check-in later; until then the epoch fence keeps
        # their groups' writes out of the journal.
        old = tuple(shard.hosts)
        log.warning("member %s (shard %s) is reachable again: it takes new groups; its old group actors stop",
                    shard.admin, shard.name)
        self._add_shard(shard.name, len(old), shard.admin)
        check_in = self.config.cluster.check_in if self.config else 5.0
        self.wakeupAfter(timedelta(seconds=check_in), payload=_StopOrphans(old))

    def _check_shards(self) -> None:
        assert self.config is not None
        check_in = self.config.cluster.check_in
        now = time.monotonic()
        for shard in list(self.shards.values()):
            if shard.live and shard.name != self._own_shard() and now - shard.heard > MISSED_BEATS * check_in:
                log.error("no heartbeat from shard %s for %.0f s", shard.name, now - shard.heard)
                self._lose_shard(shard.name)
                if shard.registered is not None and shard.registered[0] >= shard.heard:
                    _, hosts, admin = shard.registered
                    log.info("member %s joined: shard %s (restarted; back: its groups stay where they run now)",
                             admin, shard.name)
                    self._add_shard(shard.name, hosts, admin)
        self.wakeupAfter(timedelta(seconds=check_in), payload=_CheckShards())

    def receiveMsg_ActorSystemConventionUpdate(self, msg: ActorSystemConventionUpdate, sender: Any) -> None:
        capabilities = msg.remoteCapabilities or {}
        name = capabilities.get(SHARD)
        if not name or self.stopping or not self.started:
            return
        if name == self._own_shard():
            log.error("member %s calls itself shard %s, the leader's own: ignored", msg.remoteAdminAddress, name)
            return
        if not msg.remoteAdded:
            # Thespian also reports members it could not reach once (seen after a member was
            # frozen for a few seconds); the heartbeats decide: lost only if they are late too.
            shard = self.shards.get(name)
            check_in = self.config.cluster.check_in if self.config else 5.0
            if shard is not None and time.monotonic() - shard.heard > check_in * 1.5:
                self._lose_shard(name)
            elif shard is not None and shard.live:
                log.warning("Thespian reports member %s (shard %s) gone, but its hosts beat: kept",
                            msg.remoteAdminAddress, name)
            return
        shard = self.shards.get(name)
        hosts = int(capabilities.get(HOSTS_CAPABILITY) or 1)
        if shard is not None and shard.live:
            # A registration repeated, or the member restarted (systemctl restart) before its
            # hosts were missed: Thespian says so once only, so it is kept, and if no heartbeat
            # comes after it the shard is back as soon as it is lost (_check_shards).
            shard.registered = (time.monotonic(), hosts, str(msg.remoteAdminAddress))
            return
        log.info("member %s joined: shard %s%s", msg.remoteAdminAddress, name,
                 " (back: its groups stay where they run now)" if shard is not None else "")
        self._add_shard(name, hosts, str(msg.remoteAdminAddress))

    def _join_wait_over(self) -> None:
        """Groups whose member has not joined start on the shards that are here."""
        waiting = [gid for gid, e in self.groups.items() if e.host < 0]
        if not waiting:
            return
        log.warning("%d groups were placed on members that did not join within %.0f s; starting them on %s",
                    len(waiting), self.config.cluster.join_wait if self.config else 0, ", ".join(self._live_shards()))
        placed = {gid: e.shard for gid, e in self.groups.items() if e.host >= 0}
        for gid, target in rehome(waiting, placed, self._live_shards()).items():
            self._relocate(self.groups[gid], target)

    def receiveMsg_MoveGroup(self, msg: MoveGroup, sender: Any) -> None:
        """An operator's move: the old incarnation stops, the new one starts on the shard under a
        new placement (its writes fence the old one's)."""
        reply_to = msg.reply_to or sender
        entry = self.groups.get(msg.group_id)
        shard = self.shards.get(msg.shard)
        if entry is None:
            self.send(reply_to, CommandDone(msg.request_id, 404, error=f"no group {msg.group_id}"))
            return
        if shard is None or not shard.live:
            known = ", ".join(self._live_shards())
            self.send(reply_to, CommandDone(msg.request_id, 409, error=f"shard {msg.shard} is not connected "
                                            f"(connected: {known})"))
            return
        before = entry.shard
        if before != msg.shard or entry.host < 0:
            if entry.host >= 0 and self.shards.get(self.host_shard[entry.host], shard).live:
                self.send(self.hosts[entry.host], DropGroups((entry.group_id,)))
            self._relocate(entry, msg.shard)
            log.info("group %s (%s) moved from shard %s to %s by %s", entry.group_id, entry.code, before,
                     msg.shard, msg.by)
        self.send(reply_to, CommandDone(msg.request_id, 200, result={"group_id": entry.group_id, "shard": msg.shard,
                                                                     "from": before}))

    def _new_group(self, group_id: str, name: str) -> GroupEntry:
        entry = self._known(group_id, group_code(self.next_code), name)
        target = least_loaded({gid: e.shard for gid, e in self.groups.items() if e.host >= 0}, self._live_shards())
        self._assign(entry, target)
        log.info("new group %s (%s): code %s on shard %s", group_id, name, entry.code, target)
        self.send(self.hosts[entry.host], HostGroups((entry.slot(self.boot),)))
        return entry

    def _deliver(self, entry: GroupEntry, message: Any, sender: Any = None, through_host: bool = False) -> None:
        """To the group's actor; while it (re)starts (or when asked), to its host, which holds
        it or passes it on in order; while its shard has not joined, here."""
        if entry.address is not None and entry.ready and not through_host:
            self.send(entry.address, message)
        elif entry.host >= 0:
            self.send(self.hosts[entry.host], ForGroup(entry.group_id, message))
        else:
            self.waiting.setdefault(entry.group_id, []).append(message)

    def _to_all_groups(self, message: Any) -> None:
        for host in self._live_hosts():
            self.send(host, ToGroups(message))

    def _from_its_host(self, entry: GroupEntry, sender: Any) -> bool:
        """Whether a report about the group comes from the host that keeps it now (not from one
        it was moved away from, or an orphan on a lost member)."""
        return entry.host >= 0 and self.hosts[entry.host] == sender

    def receiveMsg_GroupsReady(self, msg: GroupsReady, sender: Any) -> None:
        for ready in msg.groups:
            entry = self.groups.get(ready.group_id)
            if entry is None or not self._from_its_host(entry, sender):
                continue
            entry.address, entry.epoch, entry.pid = ready.address, ready.epoch, ready.pid
            entry.ready, entry.error = not ready.error, ready.error

    def receiveMsg_GroupDown(self, msg: GroupDown, sender: Any) -> None:
        entry = self.groups.get(msg.group_id)
        if entry is not None and self._from_its_host(entry, sender):
            entry.address, entry.ready = None, False
            self.restarts += 1

    def receiveMsg_InboundBatch(self, msg: InboundBatch, sender: Any) -> None:
        by_group: dict[str, list[InboundItem]] = {}
        for item in msg.items:
            by_group.setdefault(item.message.group_id, []).append(item)
        for gid, items in by_group.items():
            entry = self.groups.get(gid)
            if entry is None:
                entry = self._new_group(gid, items[0].message.group_name)
            # Always through the host: the gateway sends here only while a group has no route or
            # has messages on this way not yet handled, and a message sent straight to the group
            # could overtake one its host still holds or has yet to pass on.
            self._deliver(entry, GroupInbound(tuple(items)), sender, through_host=True)

    def receiveMsg_GroupsSeen(self, msg: GroupsSeen, sender: Any) -> None:
        """The groups the bot's number is in: each is known (and takes its rate) before its
        first order; one it left is told so, and stays in the ledger."""
        change = msg.change
        present = set()
        for info in change.present:
            present.add(info.group_id)
            entry = self.groups.get(info.group_id) or self._new_group(info.group_id, info.name)
            if entry.left is not False or (info.name and info.name != entry.name):  # news to it
                entry.name, entry.left = info.name or entry.name, False
                self._deliver(entry, GroupNews(info.name, True))
        gone = set(change.gone) - present
        if change.complete:
            gone |= set(self.groups) - present
        for group_id in gone:
            entry = self.groups.get(group_id)
            if entry is not None and entry.left is not True:
                entry.left = True
                self._deliver(entry, GroupNews(entry.name, False))

    def receiveMsg_OwnIds(self, msg: OwnIds, sender: Any) -> None:
        self.own_ids = msg.ids
        self._to_all_groups(msg)

    # -- the shop's day (issue 13): open/closed, stock, texts, admins — changed on the panel -----

    def _texts(self) -> Texts:
        assert self.config is not None
        cfg = self.config
        return Texts(cfg.language_messages, cfg.orders.min_diamonds, cfg.orders.max_diamonds,
                     cfg.bot.language).with_shop(self.shop)

    def _shop_view(self) -> dict[str, Any]:
        assert self.config is not None
        now = self.board.shop_now() if self.board is not None else None  # the stock as of the last approval
        left = now.stock_left if now is not None else self.stock_left
        return shop_view(self.shop, left, self.config.messages, self.admins, self.shop_audit,
                         text_rules(self.config))

    def receiveMsg_GetShop(self, msg: GetShop, sender: Any) -> None:
        self.send(msg.reply_to or sender, QueryResult(msg.request_id, 200, self._shop_view()))

    def receiveMsg_UpdateShop(self, msg: UpdateShop, sender: Any) -> None:
        """Validate a panel change, write it, and only then act on it (_shop_saved)."""
        assert self.config is not None
        reply_to = msg.reply_to or sender
        now = self.clock.now()
        try:
            settings, roster, what = patch_shop(self.shop, self.admins, msg.patch, text_rules(self.config), now, msg.by)
        except ShopError as e:
            self.send(reply_to, CommandDone(msg.request_id, 400, error=str(e)))
            return
        records: list[Any] = [ShopRecord(stored(settings), now, msg.by, what)]
        if roster != self.admins:
            records.append(AdminsRecord.of(roster))
        self.send(self.persistence, SaveShop(_ShopUpdate(msg, reply_to, settings, roster, what), tuple(records)))

    def receiveMsg_ShopSaved(self, msg: ShopSaved, sender: Any) -> None:
        update = msg.request
        if isinstance(update, _Placed) and not msg.ok:
            log.error("where group %s runs (shard %s) was not recorded: %s", update.group_id, update.shard, msg.error)
        if not isinstance(update, _ShopUpdate):
            return
        if not msg.ok:
            self.send(update.reply_to, CommandDone(update.request.request_id, 503, error=msg.error))
            return
        self._shop_changed(update.settings, update.roster, update.request.by, update.what)
        self.stock_left = msg.stock_left if update.settings.stock is not None else None
        if update.reply_to is not None:
            self.send(update.reply_to, CommandDone(update.request.request_id, 200, result=self._shop_view()))

    def _shop_changed(self, settings: ShopSettings, roster: AdminRoster, by: str, what: str) -> None:
        """Tell everyone who acts on the shop's settings; post the notice if it opened or closed."""
        opened = settings.open and not self.shop.open
        closed = self.shop.open and not settings.open
        self.shop_audit.append({"at": self.clock.now(), "by": by, "what": what})
        self.shop = settings
        if self.board is not None:
            self.board.set_open(settings.open)
        self._to_all_groups(ShopChanged(settings))
        if self.gateway is not None:
            self.send(self.gateway, ShopChanged(settings))
        if roster != self.admins:
            self.admins = roster
            self._to_all_groups(AdminsChanged(roster))
        if opened or closed:
            log.info("the shop is %s (%s)", "open" if opened else "closed", by)
            self.send(self.persistence, ListGroups(_Notice(opened), reply_to=self.myAddress))

    def _post_notice(self, opened: bool, groups: list[dict[str, Any]]) -> None:
        """The open/closed notice to every group that takes orders, paced like every message."""
        text = self._texts().shop_notice(opened)
        now = self.clock.now()
        for g in groups:
            settings = g["settings"]
            if settings.get("enabled", True) and not settings.get("leftAt") and self.gateway is not None:
                self.send(self.gateway, SendText(ShopNoticeKey(opened, g["group_id"], now), g["group_id"], text,
                                                 priority=2, reply_to=self.myAddress))

    def receiveMsg_StockOut(self, msg: StockOut, sender: Any) -> None:
        """The stock ran out: the shop closes itself, with its notice, and the admins are told."""
        self.stock_left = msg.left
        if not self.shop.open:
            return
        log.warning("stock out (%d diamonds left): closing the shop", msg.left)
        settings = replace(self.shop, open=False)
        now = self.clock.now()
        self.send(self.persistence, SaveShop(_ShopUpdate(UpdateShop("stock-out", {"open": False}, SYSTEM_STOCK),
                                                         None, settings, self.admins, "stock out: closed the shop"),
                                             (ShopRecord(stored(settings), now, SYSTEM_STOCK, "stock out: closed the shop"),)))
        text = self._texts().stock_out()
        for chat in admin_chats(self.admins.current()):
            if self.gateway is not None:
                self.send(self.gateway, SendText(ShopNoticeKey(False, chat, now), chat, text, priority=2,
                                                 reply_to=self.myAddress))

    def receiveMsg_SendReminders(self, msg: SendReminders, sender: Any) -> None:
        reply_to = msg.reply_to or sender
        try:
            parse_amount(msg.min_due)
        except MoneyError as e:
            self.send(reply_to, CommandDone(msg.request_id, 400, error=f"min_due: {e}"))
            return
        self.send(self.persistence, ListGroups(_Reminders(msg, reply_to), reply_to=self.myAddress))

    def _send_reminders(self, pending: _Reminders, result: QueryResult) -> None:
        msg = pending.request
        if result.status != 200:
            self.send(pending.reply_to, CommandDone(msg.request_id, result.status, error=result.error))
            return
        chosen = reminder_targets(result.data, msg.group_ids, Decimal(msg.min_due))
        texts, now = self._texts(), self.clock.now()
        for g in chosen.send:
            self.send(self.gateway, SendText(ReminderKey(g["group_id"], now), g["group_id"],
                                             texts.due_reminder(g["settings"].get("groupName") or g["group_id"],
                                                                Decimal(g["due"])),
                                             priority=2, reply_to=self.myAddress))
        log.info("dues reminders sent to %d groups by %s", len(chosen.send), msg.by)
        self.send(pending.reply_to, CommandDone(msg.request_id, 200, result={
            "sent": [g["group_id"] for g in chosen.send], "skipped": chosen.skipped}))

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
        assert self.start is not None
        if address == self.persistence:
            log.error("persistence actor exited; restarting it and every group")
            self.restarts += 1
            for entry in self.groups.values():
                entry.address, entry.ready = None, False
            self.persistence = self.createActor(PersistenceActor)
            self.send(self.persistence, OpenDatabase(self.start.config, self.start.owner, self.start.clock))
            return
        if address == self.gateway:
            log.error("gateway actor exited; restarting it")
            self.restarts += 1
            self._start_gateway()
            self._to_all_groups(GatewayMoved(self.gateway))  # the hosts send the routes again
            return
        index = next((i for i, h in enumerate(self.hosts) if h == address), None)
        if index is not None and not self._current_host(index):
            return  # a host of a lost member, or an old one of a member that is back: no groups
        if index is not None:
            # Its groups died with it (their parent's death ends them): a new host starts them
            # again, each under a new epoch. Again and again only after a growing delay: a member
            # stopping cleanly refuses each new host at once, until it is declared lost.
            a = self.start.config.actors
            recent, delay = restart_delay(self.host_exits.get(index, ()), time.monotonic(), policy_of(a))
            self.host_exits[index] = recent
            if delay > 0:
                log.error("group host %d exited %d times in %.0f s; starting it again in %.1f s", index,
                          len(recent), a.restart_period, delay)
                self.wakeupAfter(timedelta(seconds=delay), payload=_RestartHost(index, address))
                return
            log.error("group host %d exited; starting it again with its groups", index)
            self._restart_host(index)

    def _current_host(self, index: int) -> bool:
        """Whether the host at that index keeps groups now: its shard is connected and the host
        is one of the shard's (a member that came back got new hosts; its old ones stay listed)."""
        shard = self.shards[self.host_shard[index]]
        return shard.live and index in shard.hosts

    def _restart_host(self, index: int) -> None:
        """A new host on the exited one's shard starts its groups, each under a new epoch."""
        self.restarts += 1
        shard_name = self.host_shard[index]
        self.hosts[index] = self.createActor(GroupHost, targetActorRequirements={SHARD: shard_name}
                                             if self._cluster() else None)
        for entry in self.groups.values():
            if entry.host == index:
                entry.address, entry.ready = None, False
        self.send(self.hosts[index], StartHost(self._spec(), tuple(e.slot(self.boot) for e in self.groups.values()
                                                                   if e.host == index)))

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        payload = msg.payload
        if isinstance(payload, _GatewayQuiet) and self.stopping:
            self._stop_hosts()
        elif isinstance(payload, _HostsStopped) and self.persistence is not None:
            if self.awaiting_hosts:
                silent = [i for i, h in enumerate(self.hosts) if h not in self.hosts_answered]
                self.checkpoints_missing += sum(1 for e in self.groups.values() if e.host in silent)
                self.hosts_answered.extend(self.hosts[i] for i in silent)  # a late answer counts no more
                log.warning("%d group hosts did not write their groups' last checkpoints in time: those "
                            "check counts are lost (orders are not)", self.awaiting_hosts)
            self._stop_persistence()
        elif isinstance(payload, _CheckShards) and not self.stopping:
            self._check_shards()
        elif isinstance(payload, _RestartHost) and not self.stopping:
            if self.hosts[payload.index] == payload.exited and self._current_host(payload.index):
                self._restart_host(payload.index)
        elif isinstance(payload, _StopOrphans):
            for i in payload.hosts:
                self.send(self.hosts[i], ActorExitRequest())  # its group actors end with it
        elif isinstance(payload, _JoinWaitOver) and not self.stopping:
            self._join_wait_over()
        elif isinstance(payload, _DailyReportDue) and not self.stopping:
            assert self.config is not None
            if self.config.reports.send_to_admins and self.admins.current():
                self.receiveMsg_SendDailyReport(SendDailyReport(), sender)
            self._arm_daily_report()

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
        if msg.host is not None:
            found = 0 <= msg.host < len(self.hosts)
            self.send(sender, QueryResult(msg.request_id, 200, self.hosts[msg.host]) if found else
                      QueryResult(msg.request_id, 404, error=f"no group host {msg.host}"))
            return
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
                            "incarnation": e.epoch.n if e.epoch else 0, "host": e.host, "pid": e.pid,
                            "shard": e.shard or self._own_shard()}
                           for e in self.groups.values()],
                "hosts": len(self._live_hosts()),
            },
            "cluster": {
                "role": self.config.cluster.role if self.config else "",
                "shards": [{"name": s.name, "live": s.live, "member": s.admin, "hosts": len(s.hosts),
                            "since": s.since, "lost_at": s.lost_at,
                            "groups": sum(1 for e in self.groups.values() if e.shard == s.name and e.host >= 0),
                            "ready": sum(1 for e in self.groups.values() if e.shard == s.name and e.ready)}
                           for s in self.shards.values()],
                "waiting": sum(1 for e in self.groups.values() if e.host < 0),
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
            self._stop_hosts()
            return
        self.send(self.gateway, StopSystem())
        # A gateway that does not answer (dead, restarting) does not hold the stop up.
        self.wakeupAfter(timedelta(seconds=DRAIN_WAIT + 0.5), payload=_GatewayQuiet())

    def receiveMsg_SendingStopped(self, msg: SendingStopped, sender: Any) -> None:
        self._stop_hosts()

    def _stop_hosts(self) -> None:
        """Every host collects its groups' last checkpoints and writes them in one go."""
        if self.hosts_stopping:
            return
        self.hosts_stopping = True
        hosts = self._live_hosts()
        for host in hosts:
            self.send(host, StopSystem())
        self.awaiting_hosts = len(hosts)
        if self.persistence is None:
            if self.stop_requester is not None:
                self.send(self.stop_requester, SystemStopped())
                self.stop_requester = None
        elif self.awaiting_hosts:
            # A host that does not answer (dead, busy) does not hold the stop up for long.
            self.wakeupAfter(timedelta(seconds=HOSTS_STOP_WAIT), payload=_HostsStopped())
        else:
            self._stop_persistence()

    def receiveMsg_HostStopped(self, msg: HostStopped, sender: Any) -> None:
        if sender in self.hosts_answered:
            return
        self.hosts_answered.append(sender)
        self.awaiting_hosts -= 1
        self.checkpoints_missing += len(msg.missing)
        self.checkpoints_saved += msg.saved
        if self.hosts_stopping and self.awaiting_hosts <= 0:
            self._stop_persistence()

    def _stop_persistence(self) -> None:
        """The final flush; the PersistenceActor's SystemStopped answers the stop."""
        if not self.persistence_stopping and self.persistence is not None:
            self.persistence_stopping = True
            self.send(self.persistence, StopSystem())

    def receiveMsg_SystemStopped(self, msg: SystemStopped, sender: Any) -> None:
        if self.stop_requester is not None:
            missing = self.checkpoints_missing
            if missing:
                log.warning("%d groups' last check counts were lost at the stop (orders are not)", missing)
            self.send(self.stop_requester, SystemStopped(missing, self.checkpoints_saved))
            self.stop_requester = None


def _raise_fd_limit() -> None:
    """Each child costs the Supervisor a few descriptors; 1024 runs out near 330 groups."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
