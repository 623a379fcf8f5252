"""GroupHost: keeps a share of the groups — starts their actors, restarts a crashed one, and
stops them — so that the Supervisor deals in a few hosts, not a thousand groups.

A host forks its GroupActors itself (Thespian forks a child from its creator's process), from a
lean process whose memory was frozen for the garbage collector first, so a group's process
costs little beyond Python's own floor. A start goes in chunks: the stored state of many groups
in one answer from the PersistenceActor, one message per new group carrying everything it starts
from, and readiness and routes reported in batches. Restarts follow OTP: a backoff that doubles
with each recent crash, past the intensity limit only the longest backoff, never given up (an
order must never be forgotten); each incarnation gets a higher epoch.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import resource
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from thespian.actors import ActorExitRequest, ChildActorExited, WakeupMessage

from actors.base import BotActor
from actors.group import GroupActor, forking_with
from actors.messages import (
    AdminsChanged,
    DropGroups,
    HostAlive,
    Epoch,
    FinalCheckpoint,
    ForGroup,
    GatewayMoved,
    GroupDown,
    GroupReady,
    GroupRoutes,
    GroupSlot,
    GroupsLoaded,
    GroupsReady,
    GroupSpec,
    HostGroups,
    HostStopped,
    InitGroup,
    LoadGroups,
    OwnIds,
    Owner,
    PersistedMany,
    PersistMany,
    ReadyGroup,
    ReloadGroups,
    ReplayInbox,
    ShopChanged,
    StartHost,
    StopSystem,
    ToGroups,
)
from domain.restarts import policy_of, restart_delay


log = logging.getLogger("diamondbot.host")

SHARD = "diamond.shard"  # the actor-system capability naming a machine's shard (actors.system)
MEMBER_OWNER = "DIAMONDBOT_MEMBER_OWNER"  # "pid:start_time:sid" of a member machine's run.py


def member_owner() -> Owner | None:
    """The run.py of this member machine, which `run.py member` puts in the environment its
    actor processes inherit; None on the leader (or one machine)."""
    raw = os.environ.get(MEMBER_OWNER, "")
    try:
        pid, start, sid = (int(x) for x in raw.split(":"))
    except ValueError:
        return None
    return Owner(pid, start, sid)

LOAD_CHUNK = 20  # groups per LoadGroups: a few answers of a few MB, not a thousand small ones
# A stop: the groups' last checkpoints are written a batch at a time as they come in, so the
# write overlaps the collection and what came in before the deadline is on disk by it. Measured
# at 1,000 groups on 2 cores: ~250-400 FinalCheckpoints/s per host (Thespian's per-message cost
# in the host), slower on a loaded machine; the old 3.0 s window lost groups there.
STOP_WAIT = 4.2  # s from StopSystem until the host writes what it has and answers
STOP_BATCH = 100  # last checkpoints per PersistMany


@dataclass
class _Hosted:
    slot: GroupSlot
    n: int = 0  # incarnation within this boot
    address: Any = None
    forked_with: GroupSpec | None = None  # the spec its process inherited (forked from this one)
    ready: bool = False
    backlog: list[Any] = field(default_factory=list)  # messages while no incarnation runs
    crashes: tuple[float, ...] = ()  # its exits within actors.restart_period
    restart_pending: bool = False
    replay_on_ready: bool = False


@dataclass(frozen=True)
class _Restart:
    group_id: str


@dataclass(frozen=True)
class _StopWaitOver:
    pass


@dataclass
class _Stop:
    """A host's stop: which groups owe their last checkpoint, and what became of those handed in."""

    expected: set[str] = field(default_factory=set)  # running groups asked for their last checkpoint
    batch: list[tuple[str, Epoch, tuple[Any, ...]]] = field(default_factory=list)  # not yet sent
    writing: int = 0  # PersistMany sent, not yet answered
    saved: int = 0
    refused: list[str] = field(default_factory=list)
    missing: tuple[str, ...] = ()  # did not hand theirs in before the deadline
    closed: bool = False  # the deadline passed or every group handed in: nothing more is taken


@dataclass(frozen=True)
class _Beat:
    """Time to tell the Supervisor this host is alive (several machines)."""


class GroupHost(BotActor):
    @staticmethod
    def actorSystemCapabilityCheck(capabilities: dict[str, Any], requirements: dict[str, Any]) -> bool:
        """A host asked for on a shard runs on the machine of that shard (several machines);
        one asked for without a shard runs where it is created."""
        wanted = requirements.get(SHARD)
        return wanted is None or capabilities.get(SHARD) == wanted

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: GroupSpec | None = None
        self.supervisor: Any = None
        self.groups: dict[str, _Hosted] = {}
        self.ready: list[ReadyGroup] = []  # reported at the end of the message being handled
        self.routes: list[tuple[str, Any]] = []
        self.stopping = False
        self.stop_requester: Any = None
        self.stop = _Stop()  # a stop's progress: last checkpoints collected and written
        # Thespian does not keep the order of two messages from one actor to another (seen under
        # load: a ForGroup overtook the HostGroups sent before it, and the order it carried was
        # dropped). What arrives before what it depends on waits here for it.
        self.before_start: list[tuple[Any, Any]] = []
        self.early: dict[str, list[Any]] = {}  # for groups this host has not been given yet
        self.dropped: set[str] = set()  # groups moved to another host

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if self.spec is None and isinstance(msg, _AFTER_START):
            self.before_start.append((msg, sender))
            return
        super().receiveMessage(msg, sender)
        if isinstance(msg, StartHost) and self.spec is not None:
            held, self.before_start = self.before_start, []
            for early, early_sender in held:
                super().receiveMessage(early, early_sender)
        self._report()

    def _report(self) -> None:
        """Readiness to the Supervisor and routes to the gateway: one message each."""
        ready, self.ready = self.ready, []
        routes, self.routes = self.routes, []
        if ready and self.supervisor is not None:
            self.send(self.supervisor, GroupsReady(tuple(ready)))
        if routes and self.spec is not None and self.spec.gateway is not None:
            self.send(self.spec.gateway, GroupRoutes(tuple(routes)))

    # -- start -----------------------------------------------------------------------------------

    def receiveMsg_StartHost(self, msg: StartHost, sender: Any) -> None:
        if self.spec is not None:
            return
        spec = msg.spec
        local = member_owner()
        if local is not None:
            # On a member machine the process to outlive is that machine's run.py, not the
            # leader's (whose pid means nothing here); the groups forked from here watch it too.
            spec = replace(spec, owner=local)
        self.spec, self.supervisor = spec, sender
        self.adopt(spec.owner, spec.clock)
        if spec.config.cluster.role:
            self._beat()
        _raise_fd_limit()
        gc.collect()  # what the Supervisor's process held is garbage here: leave it out of the forks
        self._add(msg.groups)

    def receiveMsg_HostGroups(self, msg: HostGroups, sender: Any) -> None:
        self._add(msg.groups)

    def _add(self, slots: tuple[GroupSlot, ...]) -> None:
        new = [s for s in slots if s.group_id not in self.groups]
        for slot in new:
            self.dropped.discard(slot.group_id)  # moved back
            self.groups[slot.group_id] = _Hosted(slot, n=slot.n, replay_on_ready=slot.replay,
                                                 backlog=self.early.pop(slot.group_id, []))
        self._load([self.groups[s.group_id] for s in new])

    def _load(self, hosted: list[_Hosted]) -> None:
        """Fork the groups' actors now, while this process holds little, then ask for their
        stored state a chunk at a time, each under a new epoch."""
        assert self.spec is not None
        # Forked from here, the groups inherit the spec and the desks' shared rules: made here
        # once, only touched there.
        inherits = forks_groups()
        if inherits:
            forking_with(self.spec)
        # Frozen, a child's collector never walks (and so never copies) what it inherits; and they
        # stay frozen here too: a full collection in the host wrote to every object it holds, so
        # the kernel copied each page the host still shares with its groups (perf, 1,000 groups).
        gc.freeze()
        for h in hosted:
            if h.address is None:
                h.address = self.createActor(GroupActor)
                h.forked_with = self.spec if inherits else None
        horizon = self.clock.now() - self.spec.config.history.max_age
        for start in range(0, len(hosted), LOAD_CHUNK):
            chunk = hosted[start:start + LOAD_CHUNK]
            for h in chunk:
                h.n += 1
                h.ready = False
            self.send(self.spec.persistence, LoadGroups(
                tuple((h.slot.group_id, Epoch(self.spec.boot, h.n)) for h in chunk), horizon))

    def receiveMsg_GroupsLoaded(self, msg: GroupsLoaded, sender: Any) -> None:
        assert self.spec is not None
        for loaded in msg.groups:
            h = self.groups.get(loaded.group_id)
            if h is None or loaded.epoch != Epoch(self.spec.boot, h.n) or self.stopping:
                continue
            if loaded.stored is None or h.address is None:
                log.error("group %s not loaded: %s", loaded.group_id, loaded.refused or "no actor")
                if h.address is not None:  # the forked actor waits for a state it will not get
                    self.send(h.address, ActorExitRequest())
                    h.address = None
                continue
            # The spec it inherited, unless the news changed it since (a copy costs a group ~250 kB).
            spec = None if h.forked_with is self.spec else self.spec
            self.send(h.address, InitGroup(h.slot, loaded.epoch, spec, loaded.stored))
        del msg  # the stored state of a chunk of groups: let it go before the next arrives

    def receiveMsg_GroupReady(self, msg: GroupReady, sender: Any) -> None:
        h = self.groups.get(msg.group_id)
        if h is None or h.address != sender:
            return
        h.ready = not msg.error
        self.ready.append(ReadyGroup(msg.group_id, msg.epoch, sender, msg.pid, msg.error))
        if msg.error:
            return
        self.routes.append((msg.group_id, sender))
        backlog, h.backlog = h.backlog, []
        for message in backlog:
            self.send(sender, message)
        if h.replay_on_ready and self.spec is not None and self.spec.gateway is not None:
            h.replay_on_ready = False
            self.send(self.spec.gateway, ReplayInbox(msg.group_id))

    # -- messages for the groups ---------------------------------------------------------------

    def receiveMsg_ForGroup(self, msg: ForGroup, sender: Any) -> None:
        h = self.groups.get(msg.group_id)
        if h is None:
            if msg.group_id in self.dropped:  # moved away: its chat comes again from the inbox there
                log.info("group %s moved away; a message for it dropped here", msg.group_id)
            else:  # its HostGroups is still on the way
                self.early.setdefault(msg.group_id, []).append(msg.message)
            return
        if h.ready and h.address is not None:
            self.send(h.address, msg.message)
        else:
            h.backlog.append(msg.message)

    def receiveMsg_ToGroups(self, msg: ToGroups, sender: Any) -> None:
        """News for every group; the spec keeps it for groups started later."""
        assert self.spec is not None
        news = msg.message
        if isinstance(news, OwnIds):
            self.spec = replace(self.spec, own_ids=news.ids)
        elif isinstance(news, AdminsChanged):
            self.spec = replace(self.spec, admins=news.roster)
        elif isinstance(news, ShopChanged):
            self.spec = replace(self.spec, shop=news.settings)
        elif isinstance(news, GatewayMoved):
            self.spec = replace(self.spec, gateway=news.address)
            self.routes.extend((h.slot.group_id, h.address) for h in self.groups.values() if h.ready)
        for h in self.groups.values():
            if h.ready and h.address is not None:
                self.send(h.address, news)
            elif not isinstance(news, GatewayMoved):
                h.backlog.append(news)

    def receiveMsg_DropGroups(self, msg: DropGroups, sender: Any) -> None:
        """Groups moved to another host: their actors stop and nothing restarts them here."""
        for group_id in msg.group_ids:
            self.dropped.add(group_id)
            self.early.pop(group_id, None)
            h = self.groups.pop(group_id, None)
            if h is not None and h.address is not None:
                self.send(h.address, ActorExitRequest())

    # -- restarts ------------------------------------------------------------------------------

    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender: Any) -> None:
        if self.stopping or self.spec is None:
            return
        # ActorAddress is not hashable; exits are rare, so a scan is fine.
        h = next((x for x in self.groups.values() if x.address == msg.childAddress), None)
        if h is None:
            return  # an incarnation already replaced
        h.address, h.ready = None, False
        self.routes.append((h.slot.group_id, None))
        if self.supervisor is not None:
            self.send(self.supervisor, GroupDown(h.slot.group_id))
        self._schedule_restart(h)

    def _schedule_restart(self, h: _Hosted) -> None:
        assert self.spec is not None
        a = self.spec.config.actors
        h.crashes, delay = restart_delay(h.crashes, time.monotonic(), policy_of(a), first_at_once=False)
        if len(h.crashes) > a.restart_intensity:
            log.error("group %s crashed %d times in %.0f s; next restart in %.0f s", h.slot.group_id,
                      len(h.crashes), a.restart_period, delay)
        else:
            log.warning("group %s actor exited; restarting in %.2f s", h.slot.group_id, delay)
        h.restart_pending = h.replay_on_ready = True
        self.wakeupAfter(timedelta(seconds=delay), payload=_Restart(h.slot.group_id))

    def _beat(self) -> None:
        """Heartbeats, not Thespian's convention check-ins, tell the Supervisor a member is there:
        those were seen to lapse for live members on this machine (README)."""
        assert self.spec is not None
        self.send(self.supervisor, HostAlive())
        self.wakeupAfter(timedelta(seconds=self.spec.config.cluster.check_in), payload=_Beat())

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        if isinstance(msg.payload, _Beat):
            if not self.stopping:
                self._beat()
        elif isinstance(msg.payload, _StopWaitOver):
            self._close_stop()
        elif isinstance(msg.payload, _Restart) and not self.stopping:
            h = self.groups.get(msg.payload.group_id)
            if h is not None and h.restart_pending:
                h.restart_pending = False
                self._load([h])

    def receiveMsg_ReloadGroups(self, msg: ReloadGroups, sender: Any) -> None:
        """The PersistenceActor restarted: every group again, under the new boot's epochs (what
        the old incarnations had taken in comes again from the inbox)."""
        assert self.spec is not None
        self.spec = replace(self.spec, boot=msg.boot, persistence=msg.persistence)
        for h in self.groups.values():
            if h.address is not None:
                self.send(h.address, ActorExitRequest())
            h.address, h.ready, h.n, h.replay_on_ready = None, False, 0, True
            self.routes.append((h.slot.group_id, None))
        self._load(list(self.groups.values()))

    # -- stop ----------------------------------------------------------------------------------

    def receiveMsg_StopSystem(self, msg: StopSystem, sender: Any) -> None:
        """Every group hands in its last checkpoint; the host writes them a batch at a time."""
        if self.stopping:
            return
        self.stopping, self.stop_requester = True, sender
        running = [h for h in self.groups.values() if h.address is not None]
        self.stop.expected = {h.slot.group_id for h in running}
        for h in running:
            self.send(h.address, StopSystem())
        if not running:
            self._close_stop()
            return
        self.wakeupAfter(timedelta(seconds=STOP_WAIT), payload=_StopWaitOver())

    def receiveMsg_FinalCheckpoint(self, msg: FinalCheckpoint, sender: Any) -> None:
        stop = self.stop
        if stop.closed or msg.group_id not in stop.expected:
            return  # too late (counted missing), or not asked
        stop.expected.discard(msg.group_id)
        if msg.records:
            stop.batch.append((msg.group_id, msg.epoch, msg.records))
        else:
            stop.saved += 1  # nothing to write is nothing lost
        if not stop.expected:
            self._close_stop()
        elif len(stop.batch) >= STOP_BATCH:
            self._write_batch()

    def _write_batch(self) -> None:
        assert self.spec is not None
        batch, self.stop.batch = self.stop.batch, []
        if batch:
            self.stop.writing += 1
            self.send(self.spec.persistence, PersistMany(tuple(batch)))

    def _close_stop(self) -> None:
        """Every group handed in, or the deadline passed: write the rest, then answer."""
        stop = self.stop
        if stop.closed or self.stop_requester is None or self.spec is None:
            return
        stop.closed = True
        stop.missing, stop.expected = tuple(sorted(stop.expected)), set()
        self._write_batch()
        self._answer_stop()

    def receiveMsg_PersistedMany(self, msg: PersistedMany, sender: Any) -> None:
        self.stop.writing -= 1
        self.stop.saved += len(msg.saved)
        self.stop.refused.extend(msg.refused)
        self._answer_stop()

    def _answer_stop(self) -> None:
        """Once the stop is closed and every batch is answered."""
        stop = self.stop
        if not stop.closed or stop.writing > 0 or self.stop_requester is None:
            return
        missing = stop.missing + tuple(stop.refused)
        if missing:
            log.warning("%d groups did not hand in their last checkpoint: their latest check counts are "
                        "lost (orders are not)", len(missing))
        self.send(self.stop_requester, HostStopped(stop.saved, missing))
        self.stop_requester = None
        if member_owner() is not None:
            # On a member, the leader's stop ends the actor system on the leader's machine only:
            # this host and its groups (children of its) would outlive it, one more set after
            # each leader restart. On the leader's machine the system's shutdown ends them.
            self.send(self.myAddress, ActorExitRequest())


# What a host can only handle once StartHost gave it its spec.
_AFTER_START = (HostGroups, DropGroups, ForGroup, ToGroups, ReloadGroups, StopSystem)


def _raise_fd_limit() -> None:
    """Each child costs its parent a few descriptors; 1024 runs out near 330 groups."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def forks_groups() -> bool:
    """Whether Thespian forks this host's groups from its process: wherever the host is an actor
    process Thespian forked itself (not under simpleSystemBase, which runs every actor here)."""
    return multiprocessing.parent_process() is not None


def host_of(code_number: int, hosts: int) -> int:
    """Which of `hosts` keeps the group with this code number (stable across restarts)."""
    return (code_number - 1) % max(hosts, 1)


def default_hosts() -> int:
    """One host per core."""
    return max(os.cpu_count() or 1, 1)
