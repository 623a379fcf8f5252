"""GatewayActor: owns the chat transport, the durable inbox (storage.inbox) and the paced
outbound queue (domain.pacing).

Transports run on their own threads. They hand events over through a thread-safe queue and
one `Wake` message per batch (a thread may send to its own actor; everything else happens on
the actor's thread). A slow poll timer backs the wake up.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from thespian.actors import ActorExitRequest, WakeupMessage

from actors.base import BotActor, batched, by_address
from actors.messages import (
    GatewayStatus,
    GetGatewayStatus,
    GroupInbound,
    GroupRoutes,
    GroupsSeen,
    InboundBatch,
    InboundHandled,
    InboundItem,
    OwnIds,
    QueryResult,
    RePair,
    ReplayInbox,
    SendResult,
    SendText,
    ShopChanged,
    WithdrawSend,
    SendingStopped,
    StartGateway,
    StopSystem,
)
from config import Config
from domain.chat import (
    ChatMessage,
    ConnectionDetail,
    ConnectionState,
    GroupsChange,
    OutboundText,
    SendOutcome,
    Source,
)
from domain.desk import concerns_a_desk
from domain.pacing import Item, Outbox, Pacing
from domain.shop import ShopSettings
from gateway.transport import Transport, TransportSink
from storage.inbox import Inbox

log = logging.getLogger("diamondbot.gateway")

DRAIN_WAIT = 1.0  # s a stop waits for the results of sends already handed to the transport
POLL_INTERVAL = 0.5
MAX_PAUSE = 3600.0


@dataclass(frozen=True)
class Wake:
    """A transport thread queued events."""


# Timer payloads (Thespian hands any object back in WakeupMessage.payload).


@dataclass(frozen=True)
class Poll:
    """The slow poll: drain what the wake may have missed, report the status, re-arm."""


@dataclass(frozen=True)
class Pump:
    """The outbox's next send may be due."""


@dataclass(frozen=True)
class DrainWaitOver:
    """A stop has waited long enough for the outcomes of sends in flight."""


# What transport threads queue for the actor's thread (`SendOutcome` goes on as it is).


@dataclass(frozen=True, slots=True)
class Received:
    """Inbound messages, recorded in the inbox (or replayable history)."""

    items: tuple[InboundItem, ...]


@dataclass(frozen=True, slots=True)
class StateChange:
    """The transport's connection state changed."""

    state: ConnectionState
    detail: ConnectionDetail


TransportEvent = Received | SendOutcome | StateChange | GroupsChange


def relevant(message: ChatMessage, shop: ShopSettings | None = None) -> bool:
    """Whether a message can matter to the bot (domain.desk decides which); everything else
    is not even recorded."""
    return concerns_a_desk(message, shop)


def make_transport(config: Config) -> Transport:
    kind = config.gateway.kind
    if kind == "sandbox":
        from gateway.sandbox.transport import SandboxTransport

        return SandboxTransport(config.sandbox.url, history_limit=config.history.replay_limit)
    if kind == "whatsapp":
        # Imported here: neonize loads its Go library, which belongs in this process only.
        from gateway.whatsapp.transport import WhatsAppTransport

        return WhatsAppTransport(whatsapp_session_db(config), pair_phone=config.whatsapp.pair_phone)
    raise ValueError(f"gateway.kind = {kind!r} is not available in this version")


def whatsapp_session_db(config: Config) -> str:
    """Where whatsmeow keeps the session: `<data_dir>/<whatsapp.session_db>` (or a postgres:// URL)."""
    name = config.whatsapp.session_db
    if "://" in name:
        return name
    return str(Path(config.bot.data_dir).resolve() / name)


class _Sink(TransportSink):
    """Runs on transport threads: record durably, queue, wake the actor. Nothing else."""

    # The groups handle edits and deletes of messages (ChatMessage.edits / .revokes).
    accepts_changes = True

    def __init__(self, actor: GatewayActor) -> None:
        self.actor = actor
        self.events: queue.SimpleQueue[TransportEvent] = queue.SimpleQueue()
        self._wake_lock = threading.Lock()
        self._wake_pending = False

    def messages_received(self, messages: Sequence[ChatMessage]) -> None:
        keep = [m for m in messages if relevant(m, self.actor.shop)]
        if not keep:
            return
        transport = self.actor.transport
        if all(m.source is Source.HISTORY for m in keep) and transport is not None and transport.history_replayable:
            # History the server keeps and sends again at the next start: recording it too
            # would only grow the inbox.
            items = tuple(InboundItem(m) for m in keep)
        else:
            seqs = self.actor.inbox.record(keep)
            items = tuple(InboundItem(m, s) for m, s in zip(keep, seqs))
        self.put(Received(items))

    def send_finished(self, outcome: SendOutcome) -> None:
        self.put(outcome)

    def groups_changed(self, change: GroupsChange) -> None:
        self.put(change)

    def state_changed(self, state: ConnectionState, detail: ConnectionDetail = ConnectionDetail()) -> None:
        self.put(StateChange(state, detail))

    def put(self, event: TransportEvent) -> None:
        self.events.put(event)
        self.wake()

    def wake(self) -> None:
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self.actor.send(self.actor.myAddress, Wake())

    def woken(self) -> None:
        with self._wake_lock:
            self._wake_pending = False


class GatewayActor(BotActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config: Config | None = None
        self.transport: Transport | None = None
        self.inbox: Inbox
        self.sink = _Sink(self)
        self.shop: ShopSettings | None = None
        self.outbox = Outbox(Pacing.off())
        self.in_flight: dict[str, Item] = {}
        self.reported: GatewayStatus | None = None  # the last status the Supervisor got
        self.supervisor: Any = None
        self.state = ConnectionState.STOPPED
        self.detail = ConnectionDetail()
        self.pump_at: float | None = None
        self.sending_stopped = False  # after StopSystem: the outbox keeps what it holds
        self.stop_requester: Any = None
        self.rate_limit_pause = 60.0
        self.ban_until: float | None = None  # the outbox pause set for a ban, lifted on reconnect
        # group id -> its actor, from the Supervisor: inbound goes there directly
        self.routes: dict[str, Any] = {}
        # A group's messages sent through the Supervisor and not yet handled: while there are
        # any, its next ones take the same way, or a later one sent straight to the group could
        # overtake them (two orders posted together to a starting group numbered the wrong way).
        self.detours: dict[str, set[int]] = {}
        self.detour_of: dict[int, str] = {}  # inbox seq -> its group
        self.results: list[tuple[Any, SendResult]] = []  # to send at the end of a drain

    # -- start / stop ------------------------------------------------------------------------

    def receiveMsg_StartGateway(self, msg: StartGateway, sender: Any) -> None:
        if self.transport is not None:
            return
        self.config = cfg = msg.config
        self.supervisor = sender
        self.adopt(msg.owner, msg.clock)
        self.shop = msg.shop
        o = cfg.outbox
        self.outbox = Outbox(Pacing(o.min_gap, o.jitter, o.per_group_gap, o.hourly_cap, o.backlog_threshold))
        self.rate_limit_pause = o.rate_limit_pause
        try:
            self.inbox = Inbox.open(Path(cfg.bot.data_dir).resolve())
            dropped = self.inbox.drop_older_than(self.clock.now() - cfg.history.max_age)
            self.transport = msg.transport or make_transport(cfg)
        except Exception as e:  # reported to the Supervisor, which stops the start
            log.error("gateway cannot start: %s", e)
            self.send(sender, QueryResult(msg.request_id, 500, error=f"gateway: {e}"))
            return
        pending = self.inbox.unhandled()
        if dropped or pending:
            log.info("inbox: %d messages to recover, %d too old dropped", len(pending), dropped)
        # Recover what was received but not handled before anything new arrives.
        if pending:
            self.through_supervisor([InboundItem(m, s) for s, m in pending])
        self.transport.start(self.sink)
        self.wakeupAfter(timedelta(seconds=POLL_INTERVAL), payload=Poll())
        self.send(sender, QueryResult(msg.request_id, 200, {"kind": self.transport.kind, "pid": os.getpid()}))

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        if self.transport is not None:
            self.transport.stop()
            self.inbox.close()

    # -- events from the transport ------------------------------------------------------------

    def receiveMsg_Wake(self, msg: Wake, sender: Any) -> None:
        self.drain()

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        match msg.payload:
            case Poll():
                self.drain()
                self.report_status()  # the queue and the hourly count move without a state change
                self.wakeupAfter(timedelta(seconds=POLL_INTERVAL), payload=Poll())
            case Pump():
                self.pump_at = None
                self.pump()
            case DrainWaitOver():
                self.answer_stop()

    def receiveMsg_StopSystem(self, msg: StopSystem, sender: Any) -> None:
        """The system stops: send nothing new (what stays queued is sent again after the
        restart, from the groups' own records), and let the results of the sends in flight
        reach their groups while the database is still open."""
        self.sending_stopped = True
        self.stop_requester = sender
        self.wakeupAfter(timedelta(seconds=DRAIN_WAIT), payload=DrainWaitOver())
        self.drain()

    def answer_stop(self) -> None:
        if self.stop_requester is None:
            return
        self.flush_results()
        if self.in_flight:
            log.warning("stopping with %d sends still unanswered by the transport", len(self.in_flight))
        self.send(self.stop_requester, SendingStopped(len(self.in_flight)))
        self.stop_requester = None

    def drain(self) -> None:
        self.sink.woken()
        inbound: list[InboundItem] = []
        while True:
            try:
                event = self.sink.events.get_nowait()
            except queue.Empty:
                break
            match event:
                case Received(items):
                    inbound.extend(items)
                case SendOutcome():
                    self.finished(event)
                case StateChange(state, detail):
                    self.state_changed(state, detail)
                case GroupsChange():
                    self.send(self.supervisor, GroupsSeen(event))
        self.route(inbound)
        self.pump()
        self.flush_results()
        if self.stop_requester is not None and not self.in_flight:
            self.answer_stop()

    def route(self, items: list[InboundItem]) -> None:
        """Each group's messages to its actor in one message; groups without a known actor
        (new, or restarting) through the Supervisor, which creates or holds them."""
        by_group: dict[str, list[InboundItem]] = {}
        for item in items:
            by_group.setdefault(item.message.group_id, []).append(item)
        unrouted: list[InboundItem] = []
        for group_id, group_items in by_group.items():
            address = self.routes.get(group_id)
            if address is None or group_id in self.detours:
                unrouted.extend(group_items)
            else:
                self.send(address, GroupInbound(tuple(group_items)))
        if unrouted:
            self.through_supervisor(unrouted)

    def through_supervisor(self, items: list[InboundItem]) -> None:
        """To the Supervisor, which creates, holds or passes on: noted as detours until handled."""
        for item in items:
            if item.inbox_seq:
                self.detours.setdefault(item.message.group_id, set()).add(item.inbox_seq)
                self.detour_of[item.inbox_seq] = item.message.group_id
        self.send(self.supervisor, InboundBatch(tuple(items)))

    def receiveMsg_GroupRoutes(self, msg: GroupRoutes, sender: Any) -> None:
        for group_id, address in msg.routes:
            if address is None:
                self.routes.pop(group_id, None)
            else:
                self.routes[group_id] = address

    def flush_results(self) -> None:
        """Send outcomes gathered during a drain: one message per group actor."""
        results, self.results = self.results, []
        for address, batch in by_address(results):
            self.send(address, batched(batch))

    def state_changed(self, state: ConnectionState, detail: ConnectionDetail) -> None:
        if state is not self.state:
            kind = self.transport.kind if self.transport else "?"
            log.info("transport %s: %s %s", kind, state.value, detail.message)
        self.state, self.detail = state, detail
        if state is ConnectionState.BANNED:
            self.banned(detail)
        elif state is ConnectionState.CONNECTED and self.ban_until is not None:
            # Connected again: the ban is over, whatever its announced expiry said.
            if self.outbox.paused_until == self.ban_until:
                self.outbox.paused_until, self.outbox.pause_reason = None, ""
            self.ban_until = None
        if state is ConnectionState.CONNECTED and self.transport is not None and self.transport.own_ids:
            self.send(self.supervisor, OwnIds(self.transport.own_ids))
        self.report_status()

    def banned(self, detail: ConnectionDetail) -> None:
        """Pause all sending until the ban's expiry (or longer: pump waits for CONNECTED too)."""
        until = detail.expires_at if detail.expires_at is not None else self.clock.now() + MAX_PAUSE
        self.outbox.pause(until, f"banned: {detail.reason or detail.message or 'temporary ban'}")
        self.ban_until = self.outbox.paused_until
        log.warning("sending paused until the ban ends (%.0f s)", until - self.clock.now())

    def report_status(self) -> None:
        """Keep the Supervisor's copy (what the panel shows) current; only a change is sent."""
        status = self.status()
        if status != self.reported:
            self.reported = status
            self.send(self.supervisor, status)

    def status(self) -> GatewayStatus:
        now = self.clock.now()
        return GatewayStatus(self.state, self.detail, len(self.outbox), self.outbox.paused_until,
                             self.outbox.sent_last_hour(now))

    # -- inbox ---------------------------------------------------------------------------------

    def receiveMsg_InboundHandled(self, msg: InboundHandled, sender: Any) -> None:
        self.inbox.mark_handled(msg.inbox_seqs)
        for seq in msg.inbox_seqs:
            group_id = self.detour_of.pop(seq, None)
            if group_id is None:
                continue
            waiting = self.detours.get(group_id, set())
            waiting.discard(seq)
            if not waiting:
                self.detours.pop(group_id, None)  # handled: its next messages may go straight there

    def receiveMsg_ReplayInbox(self, msg: ReplayInbox, sender: Any) -> None:
        """A group restarted: hand it again whatever it had not made durable."""
        pending = self.inbox.unhandled(msg.group_id)
        if pending:
            self.through_supervisor([InboundItem(m, s) for s, m in pending])

    # -- outbound ------------------------------------------------------------------------------

    def receiveMsg_SendText(self, msg: SendText, sender: Any) -> None:
        self.outbox.push(Item(msg.key, msg.group_id, msg.text, msg.quote, msg.priority,
                              reply_to=msg.reply_to or sender, enqueued_at=self.clock.now()))
        self.pump()

    def receiveMsg_ShopChanged(self, msg: ShopChanged, sender: Any) -> None:
        self.shop = msg.settings  # the payment-number keywords decide which messages are recorded

    def receiveMsg_WithdrawSend(self, msg: WithdrawSend, sender: Any) -> None:
        item = self.outbox.withdraw(msg.key)
        if item is not None:
            self.send(item.reply_to, SendResult(msg.key, False, error="withdrawn", withdrawn=True))

    def pump(self) -> None:
        """Hand every message whose time has come to the transport; then wait for the next."""
        if self.transport is None or self.state is not ConnectionState.CONNECTED or self.sending_stopped:
            return
        now = self.clock.now()
        while (item := self.outbox.take(now)) is not None:
            request_id = uuid.uuid4().hex
            self.in_flight[request_id] = item
            self.transport.send(OutboundText(request_id, item.group_id, item.text, item.quote))
        due = self.outbox.due_at(now)
        if due is not None and (self.pump_at is None or due < self.pump_at):
            self.pump_at = due
            self.wakeupAfter(timedelta(seconds=max(due - now, 0.001)), payload=Pump())

    def finished(self, outcome: SendOutcome) -> None:
        item = self.in_flight.pop(outcome.request_id, None)
        if item is None:
            return
        if outcome.ok:
            assert self.config is not None
            self.rate_limit_pause = self.config.outbox.rate_limit_pause
            self.results.append((item.reply_to, SendResult(item.key, True, outcome.message_id)))
            return
        if outcome.rate_limited:
            # The server asked us to slow down: stop everything, keep the message, try later.
            now = self.clock.now()
            self.outbox.pause(now + self.rate_limit_pause, outcome.error or "rate limited")
            log.warning("sending paused for %.0f s: %s", self.rate_limit_pause, outcome.error)
            self.rate_limit_pause = min(self.rate_limit_pause * 2, MAX_PAUSE)
            self.outbox.put_back(item)
            self.report_status()
            return
        log.warning("send %s to %s failed%s: %s", item.key, item.group_id,
                    "" if outcome.retryable else " for good", outcome.error or "no reason given")
        self.results.append((item.reply_to, SendResult(item.key, False, error=outcome.error or "send failed")))

    def receiveMsg_GetGatewayStatus(self, msg: GetGatewayStatus, sender: Any) -> None:
        self.send(msg.reply_to or sender, QueryResult(msg.request_id, 200, self.status()))

    def receiveMsg_RePair(self, msg: RePair, sender: Any) -> None:
        """The panel's re-pair button: the transport forgets its session and pairs again."""
        reply_to = msg.reply_to or sender
        if self.transport is None or not self.transport.pairing:
            kind = self.transport.kind if self.transport is not None else "unstarted"
            self.send(reply_to, QueryResult(msg.request_id, 409, error=f"the {kind} gateway has nothing to pair"))
            return
        try:
            self.transport.repair()
        except Exception as e:
            self.send(reply_to, QueryResult(msg.request_id, 503, error=f"cannot re-pair now: {e}"))
            return
        self.send(reply_to, QueryResult(msg.request_id, 200, {"ok": True}))
