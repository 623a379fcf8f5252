"""GroupActor: the shell around one group's desk (domain.desk), the sole owner of its orders.

A message in becomes an event; the desk decides; everything one arriving message (or Batch)
causes leaves as one Persist, carrying what may be said once it is durable: chat messages for
the GatewayActor, answers for the panel. Nothing here decides anything about orders.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from thespian.actors import ActorExitRequest, WakeupMessage

from actors import board
from actors.base import BotActor, batched, by_address, release_memory
from actors.desk_setup import desk_setup, shared_rules
from actors.messages import (
    AdminsChanged,
    CommandDone,
    GatewayMoved,
    GroupInbound,
    GroupNews,
    GroupReady,
    FinalCheckpoint,
    GroupSpec,
    InboundHandled,
    InitGroup,
    OrderCommand,
    OwnIds,
    Packed,
    Persist,
    PersistRefused,
    RecordPayment,
    SendResult,
    SendText,
    ShopChanged,
    StopSystem,
    UpdateGroup,
    VoidPayment,
    WithdrawSend,
)
from domain import desk_events as ev
from domain.desk import Desk
from domain.desk_events import StoredGroup
from domain.group import SettingsError, code_number

log = logging.getLogger("diamondbot.group")

# The spec of the host that forks group processes, as it was at the fork (GroupHost._load sets it
# just before): a forked group finds it in its inherited memory, so its InitGroup need not carry
# it. Unpickling a copy cost each group ~250 kB of private memory (BENCHMARKS.md, "Group memory").
_forked_with: GroupSpec | None = None


def forking_with(spec: GroupSpec) -> None:
    """The host is about to fork groups: they inherit this spec (and the config's shared desk
    rules, built here once, see actors.desk_setup) in memory they share with the host."""
    global _forked_with
    _forked_with = spec
    shared_rules(spec.config)


@dataclass(frozen=True)
class _CycleTimer:
    """The reconciliation timer's payload."""


@dataclass(frozen=True)
class _RetryTimer:
    """A prompt retry of failed sends."""


_CYCLE_TIMER = _CycleTimer()  # every cycle's payload (they are all alike)


class GroupActor(BotActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init: InitGroup | None = None
        self.host: Any = None
        self.desk: Desk | None = None
        self.own_ids: frozenset[str] = frozenset()
        self.backlog: list[tuple[Any, Any]] = []  # (message, sender) received before the desk was ready
        self.next_batch = 1
        # What the message being handled decided: (decision, its extra effects, the requester
        # as (request id, address) if a panel command is to be answered).
        self.decided: list[tuple[ev.Decision, list[tuple[Any, Any]], tuple[str, Any] | None]] = []
        self.stopped = False
        self.board = board.inherited()  # where the panel reads this group's cycles live
        self.inherited_spec = _forked_with  # what an InitGroup without a spec means
        self.trim_pending = False

    # -- start ---------------------------------------------------------------------------------

    def receiveMsg_InitGroup(self, msg: InitGroup, sender: Any) -> None:
        """Everything the group starts from arrives in this one message (from its host)."""
        if self.init is not None:
            return
        if msg.spec is None:
            assert self.inherited_spec is not None, "an InitGroup without a spec for a group that inherited none"
            msg = replace(msg, spec=self.inherited_spec)
        assert msg.spec is not None
        self.init, self.host, self.own_ids = msg, sender, msg.spec.own_ids
        spec, slot = msg.spec, msg.slot
        self.adopt(spec.owner, spec.clock)
        try:
            setup = desk_setup(spec.config, slot.group_id, slot.code, slot.name, floor=spec.floor,
                               admins=spec.admins, own_ids=self.own_ids, shop=spec.shop)
            self.desk = Desk.restore(setup, msg.stored.open(), self.clock.now())
        except SettingsError as e:
            log.error("group %s cannot start: %s", slot.group_id, e)
            self.send(sender, GroupReady(slot.group_id, msg.epoch, error=str(e)))
            return
        book = self.desk.book
        log.info("group %s (%s, code %s) ready: %d open orders", slot.group_id, book.settings.name or slot.name,
                 book.settings.code, len(book.open_orders()))
        if self.board is not None:
            self.board.reset(code_number(slot.code))
        self.send(sender, GroupReady(slot.group_id, msg.epoch, pid=os.getpid()))
        self._arm_cycle(first=True)
        self.init = replace(msg, stored=Packed.of(StoredGroup(None)))  # the loaded records are in the desk now
        self.trim_pending = spec.owner is not None  # its own process: give the load's memory back later
        backlog, self.backlog = self.backlog, []
        for message, source in backlog:
            self.receiveMessage(message, source)

    @property
    def group_id(self) -> str:
        assert self.init is not None
        return self.init.slot.group_id

    @property
    def gateway(self) -> Any:
        assert self.init is not None
        return self.init.spec.gateway

    def _ready(self, msg: Any, sender: Any) -> Desk | None:
        """The desk; None (and the message kept for later) while it is still loading."""
        if self.desk is None:
            self.backlog.append((msg, sender))
        return self.desk

    # -- events in, one Persist out ------------------------------------------------------------

    def _decide(self, event: ev.Event, requester: tuple[str, Any] | None = None,
                *effects: tuple[Any, Any]) -> None:
        """Hand an event to the desk; its decision leaves with this message's Persist."""
        assert self.desk is not None
        decision = self.desk.handle(event, self.clock.now())
        self.decided.append((decision, list(effects), requester))

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if type(msg) is WakeupMessage:  # every 10 s: straight to its handler, which the
            self.receiveMsg_WakeupMessage(msg, sender)  # dispatcher's search would find first
        else:
            super().receiveMessage(msg, sender)
        self._commit()

    def _commit(self) -> None:
        """One Persist for everything the handled message decided, carrying what to send after
        it; without a write, the messages go at once (merged per address)."""
        decided, self.decided = self.decided, []
        if not decided or self.init is None:
            return
        records: list[Any] = []
        sync = False
        effects: list[tuple[Any, Any]] = []
        retry_in: float | None = None
        for decision, extra, requester in decided:
            records.extend(decision.records)
            sync = sync or decision.sync
            if decision.sends:
                effects.extend((self.gateway, self._send_text(s)) for s in decision.sends)
            if decision.withdraw:
                effects.extend((self.gateway, WithdrawSend(k, self.myAddress)) for k in decision.withdraw)
            if decision.answer is not None and requester is not None:
                answer = _command_done(decision.answer, requester)
                if decision.answer_after_write:
                    effects.append(answer)
                else:
                    self.send(*answer)
            effects.extend(extra)
            if decision.cycle is not None and self.board is not None:
                self.board.record(self._board_slot(), decision.cycle, self.desk.today)
            if decision.retry_in is not None:
                retry_in = decision.retry_in if retry_in is None else min(retry_in, decision.retry_in)
        if retry_in is not None:
            self.wakeupAfter(timedelta(seconds=max(retry_in, 0.001)), payload=_RetryTimer())
        if records:
            batch = self.next_batch
            self.next_batch += 1
            self.send(self.init.spec.persistence, Persist(self.group_id, self.init.epoch, batch, tuple(records),
                                                     sync, tuple(effects), ack=False))
            return
        if effects:
            for address, messages in by_address(effects):
                self.send(address, batched(messages))

    def _send_text(self, s: ev.Send) -> SendText:
        assert self.init is not None
        return SendText(s.key, s.to or self.group_id, s.text, s.quote, s.priority, reply_to=self.myAddress)

    def receiveMsg_PersistRefused(self, msg: PersistRefused, sender: Any) -> None:
        # A newer incarnation owns this group, or the disk failed: this one must not go on.
        # After StopSystem it is only the last checkpoint (check counts) arriving after the
        # journal closed: a few checks forgotten, nothing acknowledged.
        (log.info if self.stopped else log.error)(
            "group %s: write refused (%s); stopping this incarnation", msg.group_id, msg.reason)
        self.stopped = True
        self.send(self.myAddress, ActorExitRequest())

    # -- chat ----------------------------------------------------------------------------------

    def receiveMsg_GroupInbound(self, msg: GroupInbound, sender: Any) -> None:
        if self._ready(msg, sender) is None or self.stopped:
            return
        assert self.init is not None
        seqs = tuple(item.inbox_seq for item in msg.items if item.inbox_seq)
        handled = [(self.gateway, InboundHandled(seqs))] if seqs else []
        shop = self.board.shop_now() if self.board is not None else None
        self._decide(ev.ChatReceived(tuple(item.message for item in msg.items), shop), None, *handled)

    def receiveMsg_SendResult(self, msg: SendResult, sender: Any) -> None:
        if self._ready(msg, sender) is not None and not self.stopped:
            self._decide(ev.SendDone(msg.key, msg.ok, msg.message_id, msg.error, msg.withdrawn))

    # -- the panel's commands ------------------------------------------------------------------

    def _command(self, msg: Any, sender: Any, event: ev.Event) -> None:
        if self._ready(msg, sender) is not None:
            self._decide(event, (msg.request_id, msg.reply_to or sender))

    def receiveMsg_OrderCommand(self, msg: OrderCommand, sender: Any) -> None:
        self._command(msg, sender, ev.OrderAction(msg.order_id, msg.action, msg.by))

    def receiveMsg_UpdateGroup(self, msg: UpdateGroup, sender: Any) -> None:
        self._command(msg, sender, ev.SettingsPatch(msg.patch, msg.by))

    def receiveMsg_RecordPayment(self, msg: RecordPayment, sender: Any) -> None:
        self._command(msg, sender, ev.PaymentIn(msg.amount, msg.method, msg.reference, msg.note, msg.by,
                                                msg.client_key, msg.confirm_duplicate))

    def receiveMsg_VoidPayment(self, msg: VoidPayment, sender: Any) -> None:
        self._command(msg, sender, ev.PaymentVoid(msg.payment_id, msg.reason, msg.by))

    # -- news from the system ------------------------------------------------------------------

    def receiveMsg_OwnIds(self, msg: OwnIds, sender: Any) -> None:
        self.own_ids = msg.ids
        if self.desk is not None:
            self._decide(ev.OwnIdsKnown(msg.ids))

    def receiveMsg_AdminsChanged(self, msg: AdminsChanged, sender: Any) -> None:
        if self.init is not None:
            self.init = replace(self.init, spec=replace(self.init.spec, admins=msg.roster))
        if self.desk is not None:
            self._decide(ev.AdminsChanged(msg.roster))

    def receiveMsg_ShopChanged(self, msg: ShopChanged, sender: Any) -> None:
        if self.init is not None:
            self.init = replace(self.init, spec=replace(self.init.spec, shop=msg.settings))
        if self.desk is not None:
            self._decide(ev.ShopChanged(msg.settings))

    def receiveMsg_GroupNews(self, msg: GroupNews, sender: Any) -> None:
        if self._ready(msg, sender) is not None:
            self._decide(ev.GroupNews(msg.name, msg.present))

    def receiveMsg_GatewayMoved(self, msg: GatewayMoved, sender: Any) -> None:
        if self.init is not None:
            self.init = replace(self.init, spec=replace(self.init.spec, gateway=msg.address))
        if self.desk is not None:
            self._decide(ev.GatewayRestarted())

    # -- timers --------------------------------------------------------------------------------

    def _arm_cycle(self, first: bool = False) -> None:
        timing = self.__dict__.get("_cycle_timing")
        if timing is None:  # worked out once: this runs every 10 s, with everything it reads cold
            assert self.init is not None
            cfg = self.init.spec.config.reconciliation
            timing = self._cycle_timing = (cfg.interval, cfg.jitter * cfg.interval,
                                           min(cfg.first_cycle_within, cfg.interval))
        interval, spread, first_within = timing
        # The first tick comes soon after the load (what waited while the bot was down is looked
        # at at once), at a random moment so groups loaded together do not all fire together.
        delay = random.uniform(0, first_within) if first else interval + random.uniform(-spread, spread)
        self.wakeupAfter(timedelta(seconds=max(delay, 0.001)), payload=_CYCLE_TIMER)

    def _board_slot(self) -> int:
        """This group's slot on the board (its code's number), worked out once."""
        slot = self.__dict__.get("_slot_number")
        if slot is None:
            assert self.init is not None
            slot = self._slot_number = code_number(self.init.slot.code)
        return slot

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        if self.desk is None or self.stopped:
            return
        if self.trim_pending:  # the start's message is gone by now: its buffers can be returned
            self.trim_pending = False
            release_memory()
        if isinstance(msg.payload, _RetryTimer):
            self._decide(ev.RetryDue())
        elif isinstance(msg.payload, _CycleTimer):
            try:
                self._decide(ev.CycleDue())
            except Exception:  # the loop must survive anything a cycle meets
                log.exception("group %s: reconciliation cycle failed", self.desk.book.group_id)
            finally:
                self._arm_cycle()

    def receiveMsg_StopSystem(self, msg: StopSystem, sender: Any) -> None:
        """The system is stopping: the last check counts go to the host, which writes every
        group's in one go; nothing is written after (late results would only be refused)."""
        if self.init is None:
            return
        records: tuple[Any, ...] = ()
        if self.desk is not None and not self.stopped:
            records = tuple(self.desk.handle(ev.Stopping(), self.clock.now()).records)
        self.stopped = True
        self.send(sender, FinalCheckpoint(self.group_id, self.init.epoch, records))


def _command_done(answer: ev.Answer, reply_to: tuple[str, Any]) -> tuple[Any, CommandDone]:
    """(address, CommandDone) for a panel request answered with `answer`."""
    request_id, address = reply_to
    return address, CommandDone(request_id, answer.status, answer.result, answer.error)
