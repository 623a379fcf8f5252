"""GroupActor: the sole owner of one chat group's orders.

Message in, domain call, messages out. State changes are applied to the in-memory book at
once (so the next message sees them) and made durable through the PersistenceActor; anything a
person can observe — a chat reply, a panel answer — is an effect of that write, sent by the
PersistenceActor once it is on disk. Everything one arriving message (or Batch) causes becomes
one Persist at the end: Thespian's transport makes every message costly.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import deque
from dataclasses import asdict, replace
from decimal import Decimal
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from thespian.actors import ActorExitRequest, WakeupMessage

from actors.base import BotActor, batched, by_address
from actors.group_chat import ChatHandling
from actors.messages import (
    CommandDone,
    GatewayMoved,
    GroupInbound,
    GroupLoaded,
    GroupReady,
    GroupStopped,
    InboundHandled,
    InitGroup,
    LoadGroup,
    OrderCommand,
    OwnIds,
    Persist,
    PersistRefused,
    SendResult,
    SendText,
    StopSystem,
    UpdateGroup,
)
from actors.watchdog import start_watchdog
from domain.clock import Clock, SystemClock
from domain.group import (
    GroupBook,
    GroupSettings,
    HeldOrder,
    Limits,
    SettingsError,
    apply_settings_patch,
    max_order_seq,
    settings_from_record,
    settings_record,
)
from domain.money import money_str
from domain.payments import PaymentError
from domain.payments import from_record as payment_from_record
from domain.orders import Action, Order, Status, TransitionError, from_record, to_record, transition
from domain.reconcile import CheckState, CycleSummary, DayTally, Policy, reconcile
from domain.texts import Texts
from domain.chat import Quote
from storage.database import CHECKS, GROUP, ORDER

log = logging.getLogger("diamondbot.group")

RECONCILE = "reconcile"
RECEIPT, DELIVERY = "receipt", "delivery"


def order_key(order_id: str, kind: str) -> str:
    return f"{order_id}:{kind}"


class GroupActor(ChatHandling, BotActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init: InitGroup | None = None
        self.clock: Clock = SystemClock()
        self.book: GroupBook | None = None
        self.backlog: list[tuple[Any, Any]] = []  # (message, sender) received before the book loaded
        self.next_batch = 1
        # What the message being handled causes: records to write, and messages to send once
        # they are durable (or at once, if nothing is written). See _commit.
        self.writes: list[dict[str, Any]] = []
        self.writes_sync = False
        self.effects: list[tuple[Any, Any]] = []
        self.touched: dict[str, bool] = {}  # order id -> only a lazy write is needed
        self.settings_changed = False
        self.checks: dict[str, CheckState] = {}
        self.in_flight: dict[tuple[str, str], float] = {}
        self.cycles: deque[CycleSummary] = deque(maxlen=20)
        self.today = DayTally()
        self.last_checkpoint = 0.0
        self.cycled = False  # no reconciliation cycle yet in this incarnation
        self.last_prune = 0.0
        self.own_ids: frozenset[str] = frozenset()
        self.stopped = False

    # -- start -------------------------------------------------------------------------------

    def receiveMsg_InitGroup(self, msg: InitGroup, sender: Any) -> None:
        if self.init is not None:
            return
        self.init = msg
        self.supervisor = sender
        if msg.clock is not None:
            self.clock = msg.clock
        if msg.owner is not None:
            start_watchdog(msg.owner)
        cfg = msg.config
        self.own_ids = msg.own_ids
        self.limits = Limits(cfg.orders.min_diamonds, cfg.orders.max_diamonds,
                             cfg.history.max_age, cfg.orders.reply_invalid, cfg.orders.duplicate_window)
        self.policy = Policy(
            pending_stuck_after=cfg.reconciliation.pending_stuck_after,
            processing_timeout=cfg.reconciliation.processing_timeout,
            delivery_confirm_after=cfg.reconciliation.delivery_confirm_after,
            max_attempts=cfg.delivery.max_attempts,
            retry_backoff=cfg.delivery.retry_backoff,
        )
        self.texts = Texts(cfg.language_messages, cfg.orders.min_diamonds, cfg.orders.max_diamonds)
        self.cycles = deque(maxlen=cfg.reconciliation.keep_cycles)
        self.tz = ZoneInfo(cfg.bot.timezone)
        now = self.clock.now()
        self.send(msg.persistence, LoadGroup(msg.group_id, msg.epoch, horizon=now - cfg.history.max_age))

    def receiveMsg_GroupLoaded(self, msg: GroupLoaded, sender: Any) -> None:
        init = self.init
        if init is None or msg.epoch != init.epoch or self.book is not None:
            return
        cfg = init.config
        now = self.clock.now()
        orders = [from_record(e, group_id=init.group_id) for e in msg.entries]
        if msg.settings is None:
            settings = GroupSettings(init.group_id, init.name, init.code, cfg.orders.default_rate,
                                     enabled=cfg.groups.auto_enable)
            stored_seq, watermark = 1, init.floor
        else:
            try:
                settings = settings_from_record(init.group_id, msg.settings, cfg.orders.default_rate)
            except SettingsError as e:
                # Never guess a rate for someone's money: the group stays down, the panel shows why.
                log.error("group %s cannot start: %s", init.group_id, e)
                self.send(self.supervisor, GroupReady(init.group_id, init.epoch, error=str(e)))
                return
            settings = replace(settings, code=settings.code or init.code)
            stored_seq = int(msg.settings.get("nextSeq") or 1)
            watermark = float(msg.settings.get("watermark") or init.floor)
        book = GroupBook(settings=settings, watermark=watermark)
        book.next_seq = max(stored_seq, max_order_seq(orders, settings.code) + 1)
        if msg.settings is not None:
            book.next_payment_seq = int(msg.settings.get("nextPaymentSeq") or 1)
        book.held = {mid: HeldOrder.from_record(h) for mid, h in msg.held.items()}
        for record in msg.payments:
            try:
                payment = payment_from_record(record)
            except PaymentError:
                continue  # unreadable: counted nowhere, as the store counts it
            book.payments[payment.id] = payment
        for order in orders:
            if order.status in (Status.PENDING, Status.PROCESSING):
                # Its receipt may have died with the last incarnation: send it again at once
                # (deliveries wait for delivery_confirm_after, as the spec says).
                order = replace(order, receipt=order.receipt.interrupted())
            book.put(order)
            if order.message_id and order.created_at is not None:
                book.seen[order.message_id] = order.created_at
        book.seen.update(msg.seen)
        # The account covers every order, also those no longer in memory: as the store has it.
        book.billed, book.paid = Decimal(msg.billed), Decimal(msg.paid)
        for oid, (count, last_at, last_status) in msg.checks.items():
            self.checks[oid] = CheckState(int(count), last_at, str(last_status))
        if msg.stats:
            self.today = DayTally(str(msg.stats.get("day", "")), int(msg.stats.get("checks", 0)),
                                  int(msg.stats.get("cycles", 0)))
        self.book = book
        self.last_checkpoint = self.last_prune = now
        if msg.settings is None:
            self.settings_changed = True
        log.info("group %s (%s, code %s) ready: %d open orders", init.group_id, settings.name,
                 settings.code, len(book.open_orders()))
        self.send(self.supervisor, GroupReady(init.group_id, init.epoch, pid=os.getpid()))
        self._arm_timer(first=True)
        backlog, self.backlog = self.backlog, []
        for message, sender in backlog:
            self.receiveMessage(message, sender)

    def _defer(self, msg: Any, sender: Any) -> bool:
        """Keep messages that arrive before the book is loaded; True if deferred."""
        if self.book is None:
            self.backlog.append((msg, sender))
            return True
        return False

    # -- persistence -----------------------------------------------------------------------

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        super().receiveMessage(msg, sender)
        self._commit()

    def write(self, records: list[dict[str, Any]], sync: bool = True) -> None:
        """Records to make durable when the current message is handled."""
        self.writes.extend(records)
        self.writes_sync = self.writes_sync or sync

    def _put(self, order: Order, lazy: bool = False) -> None:
        """Change an order in the book; it is written when the current message is handled
        (lazy: may wait for the next fsync — a receipt's confirmation, nothing more)."""
        assert self.book is not None
        self.book.put(order)
        self.touched[order.id] = self.touched.get(order.id, True) and lazy

    def after_write(self, address: Any, message: Any) -> None:
        """A message to send once what the current message wrote is durable."""
        self.effects.append((address, message))

    def _commit(self) -> None:
        """One Persist for everything the handled message wrote, carrying what to send after
        it; without a write, the messages go at once (merged per address)."""
        if self.book is not None:
            # Each order this message changed, as it is now, once; then the settings.
            for order_id, lazy in self.touched.items():
                order = self.book.orders.get(order_id)
                if order is not None:
                    self.writes.append(self._order_record(order))
                    self.writes_sync = self.writes_sync or not lazy
            if self.settings_changed:
                self.writes.append(self._settings_record())
                self.writes_sync = True
        self.touched, self.settings_changed = {}, False
        writes, effects, sync = self.writes, self.effects, self.writes_sync
        self.writes, self.effects, self.writes_sync = [], [], False
        if self.init is None or (not writes and not effects):
            return
        if writes:
            batch = self.next_batch
            self.next_batch += 1
            self.send(self.init.persistence, Persist(self.init.group_id, self.init.epoch, batch,
                                                     tuple(writes), sync, tuple(effects), ack=False))
            return
        for address, messages in by_address(effects):
            self.send(address, batched(messages))

    def receiveMsg_PersistRefused(self, msg: PersistRefused, sender: Any) -> None:
        # A newer incarnation owns this group, or the disk failed: this one must not go on.
        # After StopSystem it is only the last checkpoint (check counts) arriving after the
        # journal closed: a few checks forgotten, nothing acknowledged.
        (log.info if self.stopped else log.error)(
            "group %s: write refused (%s); stopping this incarnation", msg.group_id, msg.reason)
        self.stopped = True
        self.send(self.myAddress, ActorExitRequest())

    def _settings_record(self) -> dict[str, Any]:
        assert self.book is not None
        return {"t": GROUP, "g": self.book.group_id, "v": settings_record(self.book)}

    def _order_record(self, order: Order) -> dict[str, Any]:
        return {"t": ORDER, "g": order.group_id, "v": to_record(order)}

    # -- intake ------------------------------------------------------------------------------

    def receiveMsg_GroupInbound(self, msg: GroupInbound, sender: Any) -> None:
        if self._defer(msg, sender) or self.stopped:
            return
        assert self.init is not None
        now = self.clock.now()
        for item in msg.items:
            self.handle_chat(item.message, now)
        seqs = tuple(item.inbox_seq for item in msg.items if item.inbox_seq)
        if seqs:
            self.after_write(self.init.gateway, InboundHandled(seqs))

    # -- sending ------------------------------------------------------------------------------

    def _send(self, key: str, text: str, quote: Quote | None, priority: int) -> None:
        """Queue a chat message: sent once this message's writes are durable."""
        assert self.init is not None
        self.after_write(self.init.gateway, SendText(key, self.init.group_id, text, quote, priority,
                                                     reply_to=self.myAddress))

    def _quote(self, order: Order) -> Quote | None:
        return Quote(order.message_id, order.user_id, order.text) if order.message_id else None

    # The chat messages whose sending is tracked on the order; each kind is also the name of
    # the order's Delivery field. Delivery messages go first (priority 0).
    def _tracked_text(self, order: Order, kind: str) -> tuple[str, int]:
        if kind == DELIVERY:
            return self.texts.delivered(order), 0
        return self.held_text(order) or self.texts.receipt(order), 1

    def _send_tracked(self, order: Order, kind: str) -> None:
        """Send an order's receipt or delivery message, counting the attempt."""
        assert self.book is not None
        now = self.clock.now()
        # The caller's copy may be stale (an order approved meanwhile): start from the book.
        order = self.book.orders.get(order.id, order)
        order = replace(order, **{kind: getattr(order, kind).attempted(now)})
        self.book.put(order)
        self.in_flight[(order.id, kind)] = now
        text, priority = self._tracked_text(order, kind)
        self._send(order_key(order.id, kind), text, self._quote(order), priority)

    def _send_receipt(self, order: Order) -> None:
        self._send_tracked(order, RECEIPT)

    def _send_delivery(self, order: Order) -> None:
        self._send_tracked(order, DELIVERY)

    def receiveMsg_SendResult(self, msg: SendResult, sender: Any) -> None:
        if self._defer(msg, sender) or self.stopped:
            return
        assert self.book is not None
        if msg.key.startswith("dup:"):
            if msg.ok:
                self.question_sent(msg.key[4:], msg.message_id)
            return
        order_id, _, kind = msg.key.rpartition(":")
        self.in_flight.pop((order_id, kind), None)
        order = self.book.orders.get(order_id)
        if order is None or kind not in (RECEIPT, DELIVERY):
            return  # a notice (cancelled, invalid) or an order no longer in memory
        now = self.clock.now()
        sent = getattr(order, kind)
        updated = replace(order, **{kind: sent.succeeded(msg.message_id, now) if msg.ok else sent.failed(msg.error)})
        if kind == DELIVERY and msg.ok and updated.status is Status.APPROVED:
            updated = transition(updated, Action.COMPLETE, by="system", now=now, note="delivery message sent")
        elif kind == DELIVERY and not msg.ok:
            log.warning("order %s: delivery message failed (attempt %d): %s",
                        order.id, updated.delivery.attempts, msg.error)
        # A receipt's confirmation may wait for the next fsync (losing it only sends the receipt
        # again); a delivery completes the order: that one is written at once.
        self._put(updated, lazy=kind == RECEIPT)

    # -- commands from the panel or admins ---------------------------------------------------

    def _requester(self, msg: Any, sender: Any) -> Any:
        """Who a panel command is answered to; None if it must wait for the book (deferred) or
        was already answered because the group is stopping."""
        if self._defer(msg, sender):
            return None
        reply_to = msg.reply_to or sender
        if self.stopped:
            self.send(reply_to, CommandDone(msg.request_id, 503, error="the bot is stopping"))
            return None
        return reply_to

    def receiveMsg_OrderCommand(self, msg: OrderCommand, sender: Any) -> None:
        reply_to = self._requester(msg, sender)
        if reply_to is None:
            return
        assert self.book is not None
        order = self.book.orders.get(msg.order_id)
        if order is None:
            self.send(reply_to, CommandDone(msg.request_id, 404, error=f"no order {msg.order_id}"))
            return
        try:
            action = Action(msg.action)
            if action is Action.COMPLETE:
                raise ValueError
        except ValueError:
            self.send(reply_to, CommandDone(msg.request_id, 400, error=f"unknown action {msg.action!r}"))
            return
        now = self.clock.now()
        try:
            updated = transition(order, action, by=msg.by, now=now)
        except TransitionError as e:
            self.send(reply_to, CommandDone(msg.request_id, 409, error=str(e)))
            return
        self._put(updated)
        log.info("order %s: %s by %s", updated.id, action.value, msg.by)
        self._announce(updated)
        self.after_write(reply_to, CommandDone(msg.request_id, 200, result=self._order_view(updated)))

    def _announce(self, order: Order) -> None:
        """Tell the chat what a transition means for the reseller."""
        if order.status is Status.APPROVED:
            self._send_delivery(order)
        elif order.status is Status.CANCELLED:
            self._send(order_key(order.id, "cancelled"), self.texts.cancelled(order), self._quote(order), 2)

    def receiveMsg_UpdateGroup(self, msg: UpdateGroup, sender: Any) -> None:
        reply_to = self._requester(msg, sender)
        if reply_to is None:
            return
        assert self.book is not None
        try:
            settings = apply_settings_patch(self.book.settings, msg.patch)
        except SettingsError as e:
            self.send(reply_to, CommandDone(msg.request_id, 400, error=str(e)))
            return
        self.book.settings = settings
        self.settings_changed = True
        log.info("group %s settings changed by %s: %s", self.book.group_id, msg.by, sorted(msg.patch))
        self.release_held_for_due(self.clock.now())  # a higher limit, auto-approval turned on
        self.after_write(reply_to, CommandDone(msg.request_id, 200, result={
            "group_id": self.book.group_id, **settings_record(self.book), "due": money_str(self.book.due)}))

    def _order_view(self, order: Order) -> dict[str, Any]:
        check = self.checks.get(order.id)
        return {"record": to_record(order),
                "check": [check.count, check.last_at, check.last_status] if check else None}

    def receiveMsg_OwnIds(self, msg: OwnIds, sender: Any) -> None:
        self.own_ids = msg.ids

    def receiveMsg_GatewayMoved(self, msg: GatewayMoved, sender: Any) -> None:
        if self.init is not None:
            self.init = replace(self.init, gateway=msg.address)
        # Sends in flight died with the old gateway: count them as failed so reconciliation
        # retries them after the backoff instead of waiting out the confirmation window.
        assert self.book is not None
        for order_id, kind in list(self.in_flight):
            order = self.book.orders.get(order_id)
            if order is not None:
                self.book.put(replace(order, **{kind: getattr(order, kind).failed("gateway restarted")}))
        self.in_flight.clear()

    # -- reconciliation ----------------------------------------------------------------------

    def _arm_timer(self, first: bool = False) -> None:
        assert self.init is not None
        cfg = self.init.config.reconciliation
        spread = cfg.jitter * cfg.interval
        # The first tick lands anywhere in one interval, so groups started together spread out.
        delay = random.uniform(0, cfg.interval) if first else cfg.interval + random.uniform(-spread, spread)
        self.wakeupAfter(timedelta(seconds=max(delay, 0.001)), payload=RECONCILE)

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        if msg.payload != RECONCILE or self.book is None or self.stopped:
            return
        try:
            self.reconcile()
        except Exception:  # the loop must survive anything a cycle meets
            log.exception("group %s: reconciliation cycle failed", self.book.group_id)
        finally:
            self._arm_timer()

    def reconcile(self) -> CycleSummary:
        assert self.book is not None and self.init is not None
        book, cfg = self.book, self.init.config
        started = time.perf_counter()
        now = self.clock.now()
        outcome = reconcile(book.group_id, book.orders.values(), self.checks, self.in_flight,
                            now, self.policy)
        for order in outcome.changed:
            self._put(order)
        for order, issue in outcome.raised:
            log.warning("order %s: issue %s", order.id, issue.value)
        for order in outcome.send_deliveries:
            self._send_delivery(book.orders[order.id])
        for order in outcome.send_receipts:
            self._send_receipt(book.orders[order.id])
        for order_id, count in outcome.milestones:
            log.info("order %s: check #%d", order_id, count)
        summary = outcome.summary
        summary.duration = time.perf_counter() - started
        previous = self.cycles[-1] if self.cycles else None
        self.cycles.append(summary)
        self.today.count(datetime.fromtimestamp(now, self.tz).date().isoformat(), summary.checked)
        if summary.new_issues or summary.actions:
            log.info("group %s cycle: %d checked, %d open issues (%d new), %d actions, %.1f ms",
                     book.group_id, summary.checked, summary.open_issues, summary.new_issues,
                     summary.actions, summary.duration * 1000)
        # The panel reads checks and cycles from checkpoints: one after this incarnation's first
        # cycle and whenever the issues change, so what it shows agrees with the orders' issues;
        # otherwise once per checkpoint_interval (a write per cycle would cost 1,000 groups dear).
        news = (not self.cycled or summary.new_issues or summary.actions
                or (previous is not None and previous.open_issues != summary.open_issues))
        self.cycled = True
        if news or now - self.last_checkpoint >= cfg.reconciliation.checkpoint_interval:
            self.checkpoint(now)
        if now - self.last_prune >= 3600:
            self.last_prune = now
            dropped = book.prune(now, cfg.history.max_age)
            for oid in [oid for oid in self.checks if oid not in book.orders]:
                del self.checks[oid]
            if dropped:
                log.info("group %s: %d archived orders left memory", book.group_id, dropped)
        return summary

    def checkpoint(self, now: float) -> None:
        """Write check counts and recent cycle summaries: one record per group, not per order."""
        assert self.book is not None
        self.last_checkpoint = now
        counts = {oid: [c.count, c.last_at, c.last_status] for oid, c in self.checks.items()}
        cycles = [asdict(s) for s in self.cycles]
        self.write([{"t": CHECKS, "g": self.book.group_id, "v": counts, "cycles": cycles,
                     "stats": asdict(self.today)}], sync=False)

    def receiveMsg_StopSystem(self, msg: StopSystem, sender: Any) -> None:
        """The system is stopping: write the check counts once more, then write nothing else
        (late send results would only be refused by the closed database)."""
        if self.book is not None and not self.stopped:
            self.checkpoint(self.clock.now())
        self.stopped = True
        # The Supervisor closes the journal once every group said so (or its patience ran out).
        self.after_write(sender, GroupStopped(self.init.group_id if self.init is not None else ""))
