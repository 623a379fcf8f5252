"""One group's desk: its book, its settings, and every rule by which the group's chat, the panel
and the clock change them. Pure: an event in, a Decision out (domain.desk_events).

The desk applies each change to its book at once, so the next event sees it (a repeat of a
message arriving before the first is durable is still recognised); the Decision says what must
become durable and what may be said once it is. Nobody hears of a change before it is on disk:
the GroupActor sends the records in one Persist, carrying the sends and the answer as its effects.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from datetime import time as day_start
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.admins import AdminRoster
from domain.chat import ChatMessage, Quote, Source
from domain.commands import (
    Approve,
    Cancel,
    Command,
    CommandError,
    ConfirmDuplicate,
    Help,
    MAX_COMMAND_LENGTH,
    ListPending,
    RecordPaid,
    SetRate,
    ShowDue,
    Undo,
    looks_like_command,
    needs_admin,
    parse_command,
    tell_not_admin,
)
from domain.desk_events import (
    TRACKED,
    About,
    AdminsChanged,
    Answer,
    ChatReceived,
    CycleDue,
    Decision,
    Event,
    GatewayRestarted,
    GroupNews,
    OrderAction,
    OwnIdsKnown,
    PaymentIn,
    PaymentVoid,
    RetryDue,
    Send,
    SendDone,
    SendKey,
    SettingsPatch,
    ShopChanged,
    Stopping,
    StoredGroup,
)
from domain.group import (
    GroupBook,
    GroupSettings,
    HeldOrder,
    SettingsError,
    apply_settings_patch,
    max_order_seq,
    payment_id,
    settings_from_record,
    settings_record,
)
from domain.intake import (
    AUTO_APPROVER,
    Inbound,
    Limits,
    auto_approve_allowed,
    due_limit_exceeded,
    find_by_message,
    hold_for_due,
    releasable,
    take_in,
)
from domain.money import money_str
from domain.orders import (
    Action,
    Issue,
    Order,
    Status,
    TransitionError,
    edit_diamonds,
    from_record,
    to_record,
    transition,
    undo_approval,
    with_issue,
)
from domain.parsing import InvalidOrderText, OrderText, looks_like_order, parse_order
from domain.reports import admin_chats
from domain.payments import Payment, PaymentError, new_payment, same_reference
from domain.payments import from_record as payment_from_record
from domain.payments import void as void_payment
from domain.payments import to_record as payment_record
from domain.records import ChecksRecord, GroupRecord, HeldRecord, OrderRecord, PaymentRecord, Record, SeenRecord
from domain.reconcile import CycleSummary, DayTally, Policy, Watch, backoff, reconcile, send_due
from domain.shop import ShopNow, ShopSettings
from domain.texts import Texts

log = logging.getLogger("diamondbot.group")

MAX_ADMIN_HINT_WORDS = 4  # an admin's longer reply to an order is conversation, not a missed command


@dataclass(frozen=True, slots=True)
class DeskSetup:
    """What a desk is told at start: who it is and the shop's rules (from config)."""

    group_id: str
    code: str
    name: str
    limits: Limits
    policy: Policy
    texts: Texts
    default_rate: Decimal | None  # None: a new group has no rate until the shop sets one
    auto_enable: bool  # a group never seen before takes orders
    timezone: str
    floor: float = 0.0  # install time: history before it never becomes an order
    admins: AdminRoster = AdminRoster()
    own_ids: frozenset[str] = frozenset()
    keep_cycles: int = 20
    checkpoint_interval: float = 60.0
    max_age: float = 7 * 86400.0
    shop: ShopSettings = ShopSettings()


class PaymentConflict(PaymentError):
    """A retry key sent again with a different payment."""


class DuplicateReference(PaymentError):
    """A payment whose reference (TrxID) was recorded before; recorded only when confirmed."""

    def __init__(self, earlier: Payment) -> None:
        super().__init__(f"reference {earlier.reference!r} was already recorded as payment {earlier.id} "
                         f"(৳{money_str(earlier.amount)}); confirm to record it again")
        self.earlier = earlier


@dataclass(frozen=True, slots=True)
class _PaymentQuestion:
    """A `.paid` held back because its reference was recorded before, until an admin says yes."""

    command: RecordPaid
    by: str


class Desk:
    """One group's behaviour (see the module docstring)."""

    def __init__(self, setup: DeskSetup, book: GroupBook, now: float) -> None:
        self.setup = setup
        self.book = book
        self.shop = setup.shop
        self.shop_now = ShopNow(setup.shop.open, setup.shop.stock)
        self.texts = setup.texts.with_shop(setup.shop)
        self.numbers_told: dict[str, float] = {}  # sender -> when the payment numbers were last said
        self.tz = ZoneInfo(setup.timezone)
        self.admins = setup.admins
        self.own_ids = setup.own_ids
        self.watch = Watch(setup.policy)  # check counts and deadlines between cycles
        # (order id, "receipt" | "delivery") -> when handed to the gateway, still without an outcome
        self.in_flight: dict[tuple[str, str], float] = {}
        self.cycles: deque[CycleSummary] = deque(maxlen=setup.keep_cycles)
        self.today = DayTally()
        self.last_checkpoint = self.last_prune = now
        self.cycled = False  # no reconciliation cycle yet in this incarnation
        self.stopped = False
        # Payment confirmations asked in the chat: the question's message id (once sent) or the
        # `.paid` message's id (until then) -> the payment waiting for "yes". In memory only: after
        # a restart the admin is asked to send the command again.
        self.payment_questions: dict[str, _PaymentQuestion] = {}
        # Orders cancelled because their message was deleted while the receipt was still on its
        # way: the receipt is taken back, and only if it went out anyway is the reseller told.
        self.untold: set[str] = set()
        self.rate_alerted = False  # the admins were told this group has orders but no rate
        # The decision being built while one event is handled.
        self._d = Decision()
        self._touched: dict[str, bool] = {}  # order id -> only a lazy write is needed
        self._settings_changed = False

    # -- start ---------------------------------------------------------------------------------

    @classmethod
    def restore(cls, setup: DeskSetup, stored: StoredGroup, now: float) -> Desk:
        """The desk as the group's records left it; SettingsError if a stored setting is unusable
        (never guess a rate for someone's money: the group stays down and the panel says why)."""
        orders = [from_record(e, group_id=setup.group_id) for e in stored.entries]
        if stored.settings is None:
            settings = GroupSettings(setup.group_id, setup.name, setup.code, setup.default_rate,
                                     enabled=setup.auto_enable, joined_at=now)
            stored_seq, watermark, payment_seq = 1, setup.floor, 1
        else:
            settings = settings_from_record(setup.group_id, stored.settings, setup.default_rate)
            settings = replace(settings, code=settings.code or setup.code)
            stored_seq = int(stored.settings.get("nextSeq") or 1)
            watermark = float(stored.settings.get("watermark") or setup.floor)
            payment_seq = int(stored.settings.get("nextPaymentSeq") or 1)
        book = GroupBook(settings=settings, watermark=watermark, next_payment_seq=payment_seq)
        book.next_seq = max(stored_seq, max_order_seq(orders, settings.code) + 1)
        book.held = {mid: HeldOrder.from_record(h) for mid, h in stored.held.items()}
        for record in stored.payments:
            try:
                payment = payment_from_record(record)
            except PaymentError:
                continue  # unreadable: counted nowhere, as the store counts it
            book.payments[payment.id] = payment
        for order in orders:
            if order.status in (Status.PENDING, Status.PROCESSING):
                # Its receipt may have died with the last incarnation: send it again at once
                # (deliveries wait for delivery_confirm_after, as the spec says).
                receipt = order.receipt.interrupted()
                if receipt is not order.receipt:  # most were confirmed: no copy of the order
                    order = replace(order, receipt=receipt)
            book.put(order)
            if order.message_id and order.created_at is not None:
                book.seen[order.message_id] = order.created_at
        book.seen.update(stored.seen)
        # The account covers every order, also those no longer in memory: as the store has it.
        book.billed, book.paid = stored.billed, stored.paid
        desk = cls(setup, book, now)
        for oid, (count, last_at, last_status) in stored.checks.items():
            desk.watch.restore(oid, int(count), last_at, str(last_status))
        if stored.stats:
            desk.today = DayTally(str(stored.stats.get("day", "")), int(stored.stats.get("checks", 0)),
                                  int(stored.stats.get("cycles", 0)))
        # A group never seen before writes its settings with the first event it handles.
        desk._settings_changed = stored.settings is None
        return desk

    # -- the one entry point -------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> Decision:
        """What `event` changes in the book, and what must be written and said because of it."""
        match event:
            case ChatReceived(messages=messages, shop=shop):
                if shop is not None:
                    self.shop_now = shop
                if not self.stopped:
                    self._chat(messages, now)
            case SendDone():
                if not self.stopped:
                    self._send_done(event, now)
            case OrderAction() | SettingsPatch() | PaymentIn() | PaymentVoid() if self.stopped:
                self._refuse(503, "the bot is stopping")
            case OrderAction():
                self._order_action(event, now)
            case SettingsPatch():
                self._settings_patch(event, now)
            case PaymentIn():
                self._payment_in(event, now)
            case PaymentVoid():
                self._payment_void(event, now)
            case CycleDue():
                if not self.stopped:
                    self._cycle(now)
            case RetryDue():
                if not self.stopped:
                    self._resend_due(now)
            case Stopping():
                if not self.stopped:
                    self._checkpoint(now)
                self.stopped = True
            case GatewayRestarted():
                self._gateway_restarted()
            case OwnIdsKnown(ids=ids):
                self.own_ids = ids
            case AdminsChanged(roster=roster):
                self.admins = roster
            case GroupNews():
                self._group_news(event, now)
            case ShopChanged(settings=settings):
                self.shop = settings
                self.shop_now = ShopNow(settings.open, self.shop_now.stock_left if settings.stock is not None else None)
                self.texts = self.setup.texts.with_shop(settings)
        return self._finish()

    # -- the decision being built --------------------------------------------------------------

    def _write(self, record: Record, sync: bool = True) -> None:
        self._d.records.append(record)
        self._d.sync = self._d.sync or sync

    def _put(self, order: Order, lazy: bool = False) -> None:
        """Change an order in the book; it is written with this event's decision (lazy: it may
        wait for the next fsync — a receipt's confirmation, nothing more)."""
        self.book.put(order)
        self._touched[order.id] = self._touched.get(order.id, True) and lazy

    def _send(self, about: About, subject: str, text: str, quote: Quote | None, priority: int = 2) -> None:
        self._d.sends.append(Send(SendKey(about, subject), text, quote, priority))

    def _answer(self, status: int, result: dict | None = None) -> None:
        """The requester's answer, given once this event's records are durable."""
        self._d.answer = Answer(status, result)

    def _refuse(self, status: int, error: str, result: dict | None = None) -> None:
        """The requester's answer at once: nothing changed."""
        self._d.answer = Answer(status, result, error)
        self._d.answer_after_write = False

    def _finish(self) -> Decision:
        """The decision: written records first, then each changed order once, then the settings."""
        d = self._d
        for order_id, lazy in self._touched.items():
            order = self.book.orders.get(order_id)
            if order is not None:
                self._write(OrderRecord.of(order), sync=not lazy)
        if self._settings_changed:
            self._write(GroupRecord(self.book.group_id, settings_record(self.book)))
        self._d, self._touched, self._settings_changed = Decision(), {}, False
        return d

    # -- the chat ------------------------------------------------------------------------------

    def _chat(self, messages: tuple[ChatMessage, ...], now: float) -> None:
        """Messages of the group, in the order they arrived."""
        # A message deleted later in the same arrival (both were waiting while the bot was down)
        # never becomes an order: nobody is told of something already gone.
        deleted = {m.revokes for m in messages if m.revokes}
        for m in messages:
            if m.from_me or m.sender in self.own_ids:
                continue
            if m.revokes or m.edits:
                if self._first_time(m.message_id, m.timestamp):
                    self._on_revoke(m, now) if m.revokes else self._on_edit(m, now)
                continue
            if m.message_id in deleted:
                self._first_time(m.message_id, m.timestamp)
                continue
            command = parse_command(m.text, m.quoted_id)
            if command is not None:
                self._on_command(command, m, now)
            elif m.quoted_id and self._is_admin(m) and self._admin_reply(m):
                continue
            elif not looks_like_order(m.text) and self.shop.keyword_in(m.text):
                self._payment_numbers(m)
            else:
                self._take_orders([_inbound(m)], now)

    def _payment_numbers(self, m: ChatMessage) -> None:
        """Someone asked for the payment numbers ("bkash number?"): say them, once a cooldown."""
        if not self.texts.enabled("payment_numbers") or not self._first_time(m.message_id, m.timestamp):
            return
        last = self.numbers_told.get(m.sender)
        if last is not None and m.timestamp - last < self.shop.cooldown:
            return
        self.numbers_told[m.sender] = m.timestamp
        self._reply(m, self.texts.payment_numbers())

    def _first_time(self, message_id: str, at: float) -> bool:
        """Record a message as handled; False if it was handled before (a replay)."""
        if message_id in self.book.seen:
            return False
        self.book.seen[message_id] = at
        self._write(SeenRecord(self.book.group_id, {message_id: at}))
        return True

    def _is_admin(self, m: ChatMessage) -> bool:
        """Whether the sender was an admin when the message was written (not: is one now)."""
        return self.admins.is_admin(m.sender, m.sender_alt, m.timestamp)

    def _reply(self, m: ChatMessage, text: str) -> None:
        # An edit is a protocol message nobody can quote: the answer quotes the edited message.
        quoted = m.edits or m.message_id
        self._send(About.REPLY, m.message_id, text, Quote(quoted, m.sender, m.text))

    # -- orders ----------------------------------------------------------------------------------

    def _take_orders(self, messages: list[Inbound], now: float) -> list[Order]:
        """Orders from messages: the duplicate guard, auto-approval and the due limit decide
        what each gets back."""
        book = self.book
        watermark, settings = book.watermark, book.settings
        limits = self.setup.limits
        if not self.texts.enabled("duplicate"):
            limits = replace(limits, duplicate_window=0.0)  # no question to ask: no guard
        result = take_in(book, messages, now=now, limits=limits, own_ids=self.own_ids, shop=self.shop_now)
        if result.seen:
            order_ids = {o.message_id for o in result.new_orders}
            others = {mid: ts for mid, ts in result.seen.items() if mid not in order_ids}
            if others:
                self._write(SeenRecord(book.group_id, others))
        if result.new_orders or book.settings != settings or book.watermark != watermark:
            self._settings_changed = True
        for m, why in result.invalid:
            if self.texts.enabled("invalid_player" if why.player_form else "invalid"):
                self._send(About.INVALID, m.message_id, self.texts.invalid(why.player_form),
                           Quote(m.message_id, m.sender, m.text))
        for m in result.closed:
            self._send(About.REPLY, m.message_id, self.texts.closed_order(), Quote(m.message_id, m.sender, m.text))
        for m, left in result.over_stock:
            self._send(About.REPLY, m.message_id, self.texts.out_of_stock(left), Quote(m.message_id, m.sender, m.text))
        for m in result.unpriced:
            self._send(About.REPLY, m.message_id, self.texts.rate_not_set(), Quote(m.message_id, m.sender, m.text))
            self._alert_rate_missing()
        for m, diamonds, earlier in result.held:
            self._hold(m, diamonds, earlier)
        for order in result.new_orders:
            log.info("order %s: %d diamonds from %s in %s%s", order.id, order.diamonds,
                     order.user_id, order.group_name, " (recovered)" if order.recovered else "")
            due_after = book.due + order.amount
            if due_limit_exceeded(book.settings, due_after):
                order = hold_for_due(order)
            self._put(order)
            if auto_approve_allowed(book.settings, order, due_after):
                approved = transition(order, Action.APPROVE, by=AUTO_APPROVER, now=now)
                self._put(approved)
                log.info("order %s: approved automatically", order.id)
                if self.texts.enabled("auto_approved"):
                    self._send(About.AUTO_APPROVED, order.id, self.texts.auto_approved(approved), _quote(approved), 1)
                self._deliver(approved, now)
            else:
                self._send_tracked(order, About.RECEIPT, now)  # says "on hold" when the due limit is reached
        return result.new_orders

    def _alert_rate_missing(self) -> None:
        """Tell the admins, once until the rate is set, that a group has orders but no rate."""
        if self.rate_alerted:
            return
        self.rate_alerted = True
        name = self.book.settings.name or self.book.group_id
        log.warning("group %s (%s) has orders but no rate: they are refused until it is set", name,
                    self.book.group_id)
        for chat in admin_chats(self.admins.current()):
            self._d.sends.append(Send(SendKey(About.ALERT, f"{self.book.group_id}:{chat}"),
                                      self.texts.rate_missing(name), None, 2, to=chat))

    def _release_held_for_due(self, now: float) -> None:
        """After a payment or a change of the group's limits: approve the orders the due limit
        held, as far as auto-approval now allows."""
        for order in releasable(self.book):
            approved = transition(order, Action.APPROVE, by=AUTO_APPROVER, now=now,
                                  note="the due is within the limit again")
            self._put(approved)
            log.info("order %s: approved automatically, the due is within the limit again", order.id)
            self._deliver(approved, now)

    def _held_text(self, order: Order) -> str | None:
        """The receipt's text when taking the order went over the group's due limit."""
        limit = self.book.settings.due_limit
        if limit is None or order.status is not Status.PENDING:
            return None
        due_after = self.book.due + order.amount
        if not due_limit_exceeded(self.book.settings, due_after):
            return None
        return self.texts.held_due(order, due_after, limit)

    def _hold(self, m: Inbound, diamonds: int, earlier: Order) -> None:
        """A repeat of a recent order: ask before taking it (the message is kept until then)."""
        held = HeldOrder(m.message_id, m.sender, m.sender_alt, m.sender_name, m.text, diamonds,
                         m.timestamp, earlier.id)
        self.book.held[m.message_id] = held
        self._write(HeldRecord(self.book.group_id, {m.message_id: held.to_record()}))
        seconds = max(m.timestamp - (earlier.created_at or m.timestamp), 0.0)
        log.info("order message %s held: repeats %s", m.message_id, earlier.id)
        self._send(About.QUESTION, m.message_id, self.texts.duplicate(earlier, seconds),
                   Quote(m.message_id, m.sender, m.text))

    def _question_sent(self, subject: str, question_id: str) -> None:
        """Remember which chat message asked about a held order or payment (its "yes" quotes it)."""
        held = self.book.held.get(subject)
        if held is not None and question_id:
            held = replace(held, question_id=question_id)
            self.book.held[subject] = held
            self._write(HeldRecord(self.book.group_id, {subject: held.to_record()}), sync=False)
        question = self.payment_questions.pop(subject, None)
        if question is not None and question_id:
            self.payment_questions[question_id] = question

    def _release(self, message_id: str) -> None:
        if self.book.held.pop(message_id, None) is not None:
            self._write(HeldRecord(self.book.group_id, {message_id: None}))

    # -- messages about orders -------------------------------------------------------------------

    def _send_tracked(self, order: Order, about: About, now: float) -> None:
        """Send an order's receipt or delivery message, counting the attempt."""
        # The caller's copy may be stale (an order approved meanwhile): start from the book.
        order = self.book.orders.get(order.id, order)
        kind = about.value
        held = about is About.RECEIPT and self._held_text(order)
        if about is About.RECEIPT and not held and not self.texts.enabled("recovered" if order.recovered else "received"):
            # The shop switched receipts off: nothing to send, nothing for reconciliation to chase.
            self._put(replace(order, receipt=order.receipt.succeeded("", now)), lazy=True)
            return
        order = replace(order, **{kind: getattr(order, kind).attempted(now)})
        self.book.put(order)
        self.in_flight[(order.id, kind)] = now
        if about is About.DELIVERY:
            text, priority = self.texts.delivered(order), 0
        else:
            text, priority = self._held_text(order) or self.texts.receipt(order), 1
        self._send(about, order.id, text, _quote(order), priority)

    def _announce(self, order: Order, now: float) -> None:
        """Tell the chat what a transition means for the reseller."""
        if order.status is Status.APPROVED:
            self._deliver(order, now)
        elif order.status is Status.CANCELLED and self.texts.enabled("cancelled"):
            self._send(About.CANCELLED, order.id, self.texts.cancelled(order), _quote(order))

    def _deliver(self, order: Order, now: float) -> None:
        """Send an approved order's delivery message — or, where the shop wants an undo to be
        silent, once the undo window has passed (the desk asks to be woken then)."""
        wait = self._delivery_wait(order, now)
        if wait > 0:
            self._retry_within(wait)
        else:
            self._send_tracked(order, About.DELIVERY, now)

    def _delivery_wait(self, order: Order, now: float) -> float:
        """Seconds until an approved order's delivery may go (0: now)."""
        if not self.shop.delivery_waits_for_undo or order.approved_at is None:
            return 0.0
        return max(order.approved_at + self.shop.undo_window - now, 0.0)

    def _send_done(self, ev: SendDone, now: float) -> None:
        key = ev.key
        if key.about is About.QUESTION:
            if ev.ok:
                self._question_sent(key.subject, ev.message_id)
            return
        if key.about not in TRACKED:
            return  # a notice (cancelled, invalid, a reply): nothing is tracked
        kind = key.about.value
        self.in_flight.pop((key.subject, kind), None)
        self.book.changed.add(key.subject)  # its next reconciliation moment moved
        order = self.book.orders.get(key.subject)
        if order is None:
            return  # no longer in memory
        if key.subject in self.untold and key.about is About.RECEIPT:
            self.untold.discard(key.subject)
            if ev.ok:  # it went out before it could be taken back: say what became of it
                self._send(About.WITHDRAWN, order.id, self.texts.withdrawn(order), None)
        if key.about is About.DELIVERY and order.status not in (Status.APPROVED, Status.COMPLETED):
            # Its approval was undone while the message was on its way: if it went out, correct it.
            if ev.ok:
                self._send(About.UNDONE, order.id, self.texts.undone(order), _quote(order))
            return
        if ev.withdrawn:
            return
        sent = getattr(order, kind)
        updated = replace(order, **{kind: sent.succeeded(ev.message_id, now) if ev.ok else sent.failed(ev.error)})
        if key.about is About.DELIVERY and ev.ok and updated.status is Status.APPROVED:
            updated = transition(updated, Action.COMPLETE, by="system", now=now, note="delivery message sent")
        elif key.about is About.DELIVERY and not ev.ok:
            attempts = updated.delivery.attempts
            log.warning("order %s: delivery message failed (attempt %d): %s", order.id, attempts, ev.error)
            if attempts < self.setup.policy.max_attempts:
                # Shown on the panel at once, with why; cleared when the message goes out.
                updated = with_issue(updated, Issue.DELIVERY_RETRYING, now, ev.error[:200])
            self._retry_within(backoff(attempts, self.setup.policy))
        # A receipt's confirmation may wait for the next fsync (losing it only sends the receipt
        # again); a delivery completes the order: that one is written at once.
        self._put(updated, lazy=key.about is About.RECEIPT)

    def _retry_within(self, seconds: float) -> None:
        """Ask to be woken to retry failed sends (sooner than the next cycle, if it is sooner)."""
        if seconds < self.setup.policy.max_backoff:
            current = self._d.retry_in
            self._d.retry_in = seconds if current is None else min(current, seconds)

    def _resend_due(self, now: float) -> None:
        """Send again the delivery messages whose retry is due (between cycles)."""
        policy = self.setup.policy
        for order in list(self.book.orders.values()):
            d = order.delivery
            if order.status is Status.APPROVED and not d.confirmed and send_due(
                    d.attempts, d.last_attempt_at, d.last_error, self.in_flight.get((order.id, "delivery")), now,
                    policy):
                self._deliver(order, now)

    def _gateway_restarted(self) -> None:
        # Sends in flight died with the old gateway: count them as failed so reconciliation
        # retries them after the backoff instead of waiting out the confirmation window.
        for order_id, kind in list(self.in_flight):
            order = self.book.orders.get(order_id)
            if order is not None:
                self.book.put(replace(order, **{kind: getattr(order, kind).failed("gateway restarted")}))
        self.in_flight.clear()

    # -- commands ------------------------------------------------------------------------------

    def _on_command(self, command: Command, m: ChatMessage, now: float) -> None:
        """A command, judged by who its sender was when it was written, answered once."""
        if not self._first_time(m.message_id, m.timestamp):
            return  # handled (or refused) before: a replay changes nothing
        if needs_admin(command) and not self._is_admin(m):
            if tell_not_admin(command):
                explicit_order = isinstance(command, (Approve, Cancel))
                self._reply(m, self.texts.say("not_admin_order" if explicit_order else "not_admin"))
            return
        match command:
            case Approve(target_id=target):
                self._act_on_reply(target, Action.APPROVE, m, now)
            case Cancel(target_id=target):
                self._act_on_reply(target, Action.CANCEL, m, now)
            case Undo(target_id=target):
                order = self._approved_by(target) or find_by_message(self.book.orders.values(), target)
                if order is None:
                    self._reply(m, self.texts.say("no_order"))
                else:
                    self._undo(order, f"whatsapp:{m.sender}", now, m)
            case SetRate(rate=rate):
                self._set_rate(rate, m)
            case RecordPaid():
                self._paid_in_chat(command, f"whatsapp:{m.sender}", m, now, confirmed=False)
            case ListPending():
                waiting = sorted(
                    (o for o in self.book.orders.values() if o.status in (Status.PENDING, Status.PROCESSING)),
                    key=lambda o: (o.created_at or 0.0, o.id))
                self._reply(m, self.texts.pending_list(waiting))
            case ShowDue():
                self._reply(m, self.texts.due(self.book.due))
            case Help():
                self._reply(m, self.texts.help())
            case ConfirmDuplicate(target_id=target):
                self._confirm(target, m, now)
            case CommandError():
                self._reply(m, self.texts.wrong(command))

    def _admin_reply(self, m: ChatMessage) -> bool:
        """An admin's short reply to an order that is no command: say how, instead of silence
        (the admin may believe the order was approved). False if it is no such reply."""
        if len(m.text.split()) > MAX_ADMIN_HINT_WORDS or find_by_message(self.book.orders.values(), m.quoted_id) is None:
            return False
        if self._first_time(m.message_id, m.timestamp):
            self._reply(m, self.texts.say("admin_hint"))
        return True

    def _approved_by(self, message_id: str) -> Order | None:
        """The order a chat message ("done") approved, if it did."""
        if not message_id:
            return None
        return next((o for o in self.book.orders.values()
                     if any(a.message_id == message_id and a.to_status == Status.APPROVED for a in o.audit)), None)

    def _undo(self, order: Order, by: str, now: float, m: ChatMessage | None = None) -> None:
        """An approval undone within the window: the order goes back; the group never keeps a
        wrong delivery message uncorrected (taken back if still waiting, corrected if sent)."""
        try:
            undone = undo_approval(order, by=by, now=now, window=self.shop.undo_window)
        except TransitionError as e:
            if m is not None:
                self._reply(m, self.texts.command_error(str(e)))
            else:
                self._refuse(409, str(e))
            return
        self._put(undone)
        log.info("order %s: approval undone by %s", order.id, by)
        if order.delivery.confirmed:
            self._send(About.UNDONE, order.id, self.texts.undone(undone), _quote(undone))
        elif (order.id, About.DELIVERY.value) in self.in_flight:
            self._d.withdraw.append(SendKey(About.DELIVERY, order.id))  # corrected if it went out anyway
        if m is None:
            self._answer(200, self.order_view(undone))

    def _act_on_reply(self, target_id: str, action: Action, m: ChatMessage, now: float) -> None:
        order = find_by_message(self.book.orders.values(), target_id)
        if order is None:
            self._reply(m, self.texts.say("no_order"))
            return
        try:
            updated = transition(order, action, by=f"whatsapp:{m.sender}", now=now, message_id=m.message_id)
        except TransitionError:
            self._reply(m, self.texts.refusal(order, action.value))
            return
        self._put(updated)
        log.info("order %s: %s by whatsapp:%s", updated.id, action.value, m.sender)
        self._announce(updated, now)

    def _set_rate(self, rate: Decimal, m: ChatMessage) -> None:
        try:
            self.book.settings = apply_settings_patch(self.book.settings, {"rate": str(rate)})
        except SettingsError as e:
            self._reply(m, self.texts.command_error(str(e)))
            return
        self._settings_changed = True
        self.rate_alerted = False
        log.info("group %s rate set to %s by whatsapp:%s", self.book.group_id, self.book.settings.rate, m.sender)
        self._reply(m, self.texts.rate_set(self.book.settings.rate))

    def _paid_in_chat(self, cmd: RecordPaid, by: str, m: ChatMessage, now: float, *, confirmed: bool) -> None:
        """`.paid` (or the "yes" that confirms one whose reference was recorded before)."""
        try:
            payment = self._record_payment(str(cmd.amount), cmd.method, cmd.reference, "", by, now,
                                           confirm_duplicate=confirmed)
        except DuplicateReference as e:
            self.payment_questions[m.message_id] = _PaymentQuestion(cmd, by)
            self._send(About.QUESTION, m.message_id, self.texts.duplicate_reference(e.earlier, self.tz),
                       Quote(m.message_id, m.sender, m.text))
            return
        except PaymentError as e:
            self._reply(m, self.texts.command_error(str(e)))
            return
        self._reply(m, self.texts.paid(payment, self.book.due))

    def _confirm(self, target_id: str, m: ChatMessage, now: float) -> None:
        """"yes" to a question: a held order (from its sender) or a payment (from an admin)."""
        who = {m.sender, m.sender_alt} - {""}
        held = next((h for h in self.book.held.values()
                     if target_id in (h.question_id, h.message_id) and who & ({h.sender, h.sender_alt} - {""})),
                    None)
        if held is not None:
            self._release(held.message_id)
            self.book.seen.pop(held.message_id, None)  # so take_in treats it as new, once
            taken = self._take_orders([Inbound(held.message_id, held.sender, held.sender_alt, held.sender_name,
                                               held.text, held.timestamp, confirmed=True)], now)
            if not taken:
                log.warning("held message %s could not become an order when confirmed", held.message_id)
            return
        question = self.payment_questions.get(target_id)
        if question is not None and self._is_admin(m):
            del self.payment_questions[target_id]
            self._paid_in_chat(question.command, f"whatsapp:{m.sender}", m, now, confirmed=True)
        # otherwise a "yes" to something else: chat

    # -- edits and deletes ---------------------------------------------------------------------

    def _order_of_message(self, message_id: str) -> Order | None:
        return next((o for o in self.book.orders.values() if o.message_id == message_id), None)

    def _on_edit(self, m: ChatMessage, now: float) -> None:
        """`.10` edited to `.100`: a pending order changes; a message that was not an order
        and now is one becomes one."""
        approved = self._approved_by(m.edits)
        if approved is not None:
            # An admin's "done" edited into something else: the approval is undone.
            if self._is_admin(m) and not isinstance(parse_command(m.text, "quoted"), Approve):
                self._undo(approved, f"whatsapp:{m.sender}", now, m)
            return
        limits = self.setup.limits
        parsed = parse_order(m.text, limits.min_diamonds, limits.max_diamonds, limits.forms)
        order = self._order_of_message(m.edits)
        if order is None:
            if isinstance(parsed, OrderText) and m.edits not in self.book.held:
                self.book.seen.pop(m.edits, None)  # it was answered as "not understood"
                self._take_orders([replace(_inbound(m), message_id=m.edits)], now)
            return
        if not isinstance(parsed, OrderText):
            self._reply(m, self.texts.invalid(isinstance(parsed, InvalidOrderText) and parsed.player_form))
            return
        try:
            edited = edit_diamonds(order, parsed.diamonds, text=m.text, by=f"whatsapp:{m.sender}", now=now,
                                   player_id=parsed.player_id)
        except TransitionError:
            self._reply(m, self.texts.refusal(order, "edit"))
            return
        if edited is order:
            return
        self._put(edited)
        log.info("order %s edited in the chat: %d diamonds", edited.id, edited.diamonds)
        self._send(About.EDITED, m.message_id, self.texts.edited(edited), _quote(edited))

    def _on_revoke(self, m: ChatMessage, now: float) -> None:
        """A deleted order message cancels its still-pending order (or drops a held one); a
        deleted "done" undoes its approval, within the undo window."""
        if m.revokes in self.book.held:
            self._release(m.revokes)
            return
        approved = self._approved_by(m.revokes)
        if approved is not None:
            if self._is_admin(m):
                self._undo(approved, f"whatsapp:{m.sender}", now, m)
            return
        order = self._order_of_message(m.revokes)
        if order is None:
            # Deleted before it reached us (or before we took it): if it comes later, from the
            # history or an offline queue, it is already handled and becomes nothing.
            self._first_time(m.revokes, m.timestamp)
            return
        if order.status is not Status.PENDING:
            return
        if m.sender not in (order.user_id, order.user_alt) and not self._is_admin(m):
            return  # someone else's deletion (a group admin): leave it to the shop's admins
        cancelled = transition(order, Action.CANCEL, by=f"whatsapp:{m.sender}", now=now,
                               note="the order message was deleted in WhatsApp")
        self._put(cancelled)
        log.info("order %s cancelled: its message was deleted", cancelled.id)
        if (order.id, About.RECEIPT.value) in self.in_flight:
            # Deleted before the bot answered (both came in while it was down): take the receipt
            # back; nobody is told of an order that never was, unless the receipt went out.
            self.untold.add(order.id)
            self._d.withdraw.append(SendKey(About.RECEIPT, order.id))
        else:
            self._send(About.WITHDRAWN, cancelled.id, self.texts.withdrawn(cancelled), None)

    # -- the panel's commands --------------------------------------------------------------------

    def _order_action(self, ev: OrderAction, now: float) -> None:
        order = self.book.orders.get(ev.order_id)
        if order is None:
            self._refuse(404, f"no order {ev.order_id}")
            return
        if ev.action == "undo":
            self._undo(order, ev.by, now)
            return
        try:
            action = Action(ev.action)
            if action is Action.COMPLETE:
                raise ValueError
        except ValueError:
            self._refuse(400, f"unknown action {ev.action!r}")
            return
        try:
            updated = transition(order, action, by=ev.by, now=now)
        except TransitionError as e:
            self._refuse(409, str(e))
            return
        self._put(updated)
        log.info("order %s: %s by %s", updated.id, action.value, ev.by)
        self._announce(updated, now)
        self._answer(200, self.order_view(updated))

    def _settings_patch(self, ev: SettingsPatch, now: float) -> None:
        try:
            settings = apply_settings_patch(self.book.settings, ev.patch)
        except SettingsError as e:
            self._refuse(400, str(e))
            return
        self.book.settings = settings
        self._settings_changed = True
        self.rate_alerted = self.rate_alerted and settings.rate is None
        log.info("group %s settings changed by %s: %s", self.book.group_id, ev.by, sorted(ev.patch))
        self._release_held_for_due(now)  # a higher limit, auto-approval turned on
        self._answer(200, {"group_id": self.book.group_id, **settings_record(self.book),
                           "due": money_str(self.book.due)})

    def _group_news(self, news: GroupNews, now: float) -> None:
        """The group was named, joined, renamed or left (a left group stays in the ledger)."""
        s = self.book.settings
        changes: dict = {}
        if news.name and news.name != s.name:
            changes["name"] = news.name
        if news.present and s.left_at is not None:
            changes["left_at"] = None
        elif not news.present and s.left_at is None:
            changes["left_at"] = now
        if changes:
            self.book.settings = replace(s, **changes)
            self._settings_changed = True
            log.info("group %s: %s", self.book.group_id, ", ".join(f"{k} {v}" for k, v in changes.items()))

    def order_view(self, order: Order) -> dict:
        """An order as the panel's answers carry it: the record and its check log entry."""
        return {"record": to_record(order), "check": self.watch.check(order.id)}

    # -- payments --------------------------------------------------------------------------------

    def _record_payment(self, amount: str, method: str, reference: str, note: str, by: str, now: float,
                        client_key: str = "", confirm_duplicate: bool = False) -> Payment:
        """A payment from the panel, the API or `.paid`; PaymentError if it cannot be taken.
        A retry (same client_key) gets the payment recorded the first time."""
        book = self.book
        payment = new_payment(payment_id=payment_id(book.settings.code, book.next_payment_seq),
                              group_id=book.group_id, amount=amount, method=method, reference=reference,
                              note=note, at=now, by=by, client_key=client_key)
        if client_key:
            earlier = next((p for p in book.payments.values() if p.client_key == client_key), None)
            if earlier is not None:
                fields = ("amount", "method", "reference", "note")
                if any(getattr(earlier, f) != getattr(payment, f) for f in fields):
                    raise PaymentConflict(f"this key was already used for payment {earlier.id}, with "
                                          f"other details; use a new key for a new payment")
                return earlier
        if not confirm_duplicate:
            earlier = same_reference(book.payments.values(), payment.reference)
            if earlier is not None:
                raise DuplicateReference(earlier)
        book.next_payment_seq += 1
        book.paid += payment.amount
        book.payments[payment.id] = payment
        self._settings_changed = True
        self._write(PaymentRecord.of(payment))
        self._release_held_for_due(now)
        log.info("payment %s: ৳%s %s by %s in group %s", payment.id, payment.amount, payment.method, by,
                 book.group_id)
        return payment

    def _payment_in(self, ev: PaymentIn, now: float) -> None:
        try:
            payment = self._record_payment(ev.amount, ev.method, ev.reference, ev.note, ev.by, now,
                                           ev.client_key, ev.confirm_duplicate)
        except DuplicateReference as e:
            self._refuse(409, str(e), {"duplicate_of": payment_record(e.earlier)})
            return
        except PaymentError as e:
            self._refuse(409 if isinstance(e, PaymentConflict) else 400, str(e))
            return
        self._answer(200, {"payment": payment_record(payment), "due": money_str(self.book.due)})

    def _payment_void(self, ev: PaymentVoid, now: float) -> None:
        book = self.book
        payment = book.payments.get(ev.payment_id.strip().upper())
        if payment is None:
            self._refuse(404, f"no payment {ev.payment_id} in this group")
            return
        try:
            voided = void_payment(payment, by=ev.by, reason=ev.reason, at=now)
        except PaymentError as e:
            self._refuse(409 if payment.voided else 400, str(e))
            return
        book.payments[voided.id] = voided
        book.paid -= voided.amount
        self._write(PaymentRecord.of(voided))
        log.info("payment %s (৳%s) voided by %s: %s", voided.id, voided.amount, ev.by, voided.void_reason)
        self._answer(200, {"payment": payment_record(voided), "due": money_str(book.due)})

    # -- reconciliation --------------------------------------------------------------------------

    def _cycle(self, now: float) -> None:
        """One reconciliation cycle (SPEC §4), over the orders that can have something to do
        (domain.reconcile.Watch)."""
        book, setup, watch = self.book, self.setup, self.watch
        started = time.perf_counter()
        due, milestones = watch.begin(book.orders, book.changed, book.open_ids, now)
        checked = len(book.open_ids)
        if due:
            outcome = reconcile(book.group_id, due, self.in_flight, now, setup.policy)
            for order in outcome.changed:
                self._put(order)
            for order, issue in outcome.raised:
                log.warning("order %s: issue %s", order.id, issue.value)
            for order in outcome.send_deliveries:
                self._deliver(book.orders[order.id], now)
            for order in outcome.send_receipts:
                self._send_tracked(book.orders[order.id], About.RECEIPT, now)
            watch.end(due, book.orders, self.in_flight, now)
            summary = outcome.summary
        else:  # most cycles: no order changed and no deadline came, so nothing to decide
            summary = CycleSummary(book.group_id, now)
        for order_id, count in milestones:
            log.info("order %s: check #%d", order_id, count)
        summary.checked, summary.open_issues = checked, book.open_issues
        summary.duration = time.perf_counter() - started
        previous = self.cycles[-1] if self.cycles else None
        self.cycles.append(summary)
        self.today.count(self._local_day(now), summary.checked)
        self._d.cycle = summary
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
        if news or now - self.last_checkpoint >= setup.checkpoint_interval:
            self._checkpoint(now)
        if now - self.last_prune >= 3600:
            self.last_prune = now
            dropped = book.prune(now, setup.max_age)
            for oid in [oid for oid in watch.entries if oid not in book.orders]:
                watch.forget(oid)
            if dropped:
                log.info("group %s: %d archived orders left memory", book.group_id, dropped)

    _day_span: tuple[float, float, str] = (0.0, 0.0, "")  # [from, until) seconds: that local day

    def _local_day(self, now: float) -> str:
        """The local day (YYYY-MM-DD in bot.timezone) at `now`. Worked out once a day and kept
        with its bounds, not every cycle: a time zone's rules are cold memory for a group that
        wakes every 10 s among a thousand."""
        start, end, day = self._day_span
        if start <= now < end:
            return day
        date = datetime.fromtimestamp(now, self.tz).date()
        day = date.isoformat()
        start = datetime.combine(date, day_start(), self.tz).timestamp()
        end = datetime.combine(date + timedelta(days=1), day_start(), self.tz).timestamp()
        if start <= now < end:  # always, with zoneinfo's rules; otherwise nothing is kept
            self._day_span = (start, end, day)
        return day

    def _checkpoint(self, now: float) -> None:
        """Write check counts and recent cycle summaries: one record per group, not per order."""
        self.last_checkpoint = now
        counts = self.watch.checks()
        self._write(ChecksRecord(self.book.group_id, counts, [asdict(s) for s in self.cycles], asdict(self.today)),
                    sync=False)


def concerns_a_desk(m: ChatMessage, shop: ShopSettings | None = None) -> bool:
    """Whether a message may matter to a desk (the gateway records only those, durably): an
    order, a command, an edit or a delete, a short reply (an admin's answer to an order), or a
    question for the payment numbers."""
    if m.from_me:
        return False
    return bool(m.edits or m.revokes or looks_like_order(m.text) or looks_like_command(m.text, m.quoted_id)
                or (m.quoted_id and len(m.text) <= MAX_COMMAND_LENGTH
                    and len(m.text.split()) <= MAX_ADMIN_HINT_WORDS)
                or (shop is not None and shop.keyword_in(m.text)))


def _quote(order: Order) -> Quote | None:
    return Quote(order.message_id, order.user_id, order.text) if order.message_id else None


def _inbound(m: ChatMessage, *, confirmed: bool = False) -> Inbound:
    return Inbound(message_id=m.message_id, sender=m.sender, sender_alt=m.sender_alt,
                   sender_name=m.sender_name, text=m.text, timestamp=m.timestamp,
                   group_name=m.group_name, from_me=m.from_me, recovered=m.source.recovered,
                   check_watermark=m.source is Source.HISTORY, confirmed=confirmed)
