"""What a GroupActor does with its group's chat: orders (with the duplicate guard, the due
limit and auto-approval), admins' and everyone's commands, edits and deletes of order messages,
and payments. A mixin of GroupActor: the decisions are domain calls, this turns them into
writes (`_put`, `write`) and replies sent once those are durable (`_send`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from actors.messages import CommandDone, RecordPayment, VoidPayment
from domain.commands import (
    Approve,
    Cancel,
    CommandError,
    ConfirmDuplicate,
    Help,
    ListPending,
    RecordPaid,
    SetRate,
    ShowDue,
    needs_admin,
    parse_command,
    tell_not_admin,
)
from domain.group import (
    AUTO_APPROVER,
    HeldOrder,
    Inbound,
    SettingsError,
    apply_settings_patch,
    auto_approve_allowed,
    due_limit_exceeded,
    find_by_message,
    hold_for_due,
    payment_id,
    releasable,
    take_in,
)
from domain.money import money_str
from domain.orders import Action, Order, Status, TransitionError, edit_diamonds, transition
from domain.parsing import OrderText, parse_order
from domain.payments import PaymentError, new_payment
from domain.texts import refusal
from domain.payments import void as void_payment
from domain.payments import to_record as payment_record
from domain.chat import ChatMessage, Quote, Source
from storage.database import HELD, PAYMENT, SEEN

if TYPE_CHECKING:
    from actors.group import GroupActor

log = logging.getLogger("diamondbot.group")


def _inbound(m: ChatMessage, *, confirmed: bool = False) -> Inbound:
    return Inbound(message_id=m.message_id, sender=m.sender, sender_alt=m.sender_alt,
                   sender_name=m.sender_name, text=m.text, timestamp=m.timestamp,
                   group_name=m.group_name, from_me=m.from_me, recovered=m.source.recovered,
                   check_watermark=m.source is Source.HISTORY, confirmed=confirmed)


class ChatHandling:
    """GroupActor's chat behaviour (see the module docstring)."""

    def handle_chat(self: GroupActor, m: ChatMessage, now: float) -> None:
        """One message of the group, in the order they arrived."""
        book = self.book
        assert book is not None
        if m.from_me or m.sender in self.own_ids:
            return
        if m.revokes or m.edits:
            if self._first_time(m):
                self._on_revoke(m, now) if m.revokes else self._on_edit(m, now)
            return
        command = parse_command(m.text, m.quoted_id)
        if command is not None:
            if needs_admin(command) and not self._is_admin(m):
                if tell_not_admin(command) and self._first_time(m):
                    self._reply(m, self.texts.command_error(self._lang(
                        "only the shop's admins can use this command", "এই কমান্ড শুধু দোকানের অ্যাডমিনরা দিতে পারেন")))
                return  # "done" from a reseller is chat, not a command
            if self._first_time(m):
                self._on_command(command, m, now)
            return
        self._take_orders([_inbound(m)], now)

    def _first_time(self: GroupActor, m: ChatMessage) -> bool:
        """Record a command, edit or delete as handled; False if it was handled before (a replay)."""
        assert self.book is not None
        if m.message_id in self.book.seen:
            return False
        self.book.seen[m.message_id] = m.timestamp
        self.write([{"t": SEEN, "g": self.book.group_id, "v": {m.message_id: m.timestamp}}])
        return True

    def _is_admin(self: GroupActor, m: ChatMessage) -> bool:
        from domain.commands import is_admin

        assert self.init is not None
        return is_admin(m.sender, m.sender_alt, self.init.config.whatsapp.admins)

    def _reply(self: GroupActor, m: ChatMessage, text: str) -> None:
        # An edit is a protocol message nobody can quote: the answer quotes the edited message.
        quoted = m.edits or m.message_id
        self._send(f"reply:{m.message_id}", text, Quote(quoted, m.sender, m.text), priority=2)

    # -- orders ------------------------------------------------------------------------------

    def _take_orders(self: GroupActor, messages: list[Inbound], now: float) -> list[Order]:
        """Orders from messages: the duplicate guard, auto-approval and the due limit decide
        what each gets back."""
        book = self.book
        assert book is not None
        watermark, settings = book.watermark, book.settings
        result = take_in(book, messages, now=now, limits=self.limits, own_ids=self.own_ids)
        if result.seen:
            order_ids = {o.message_id for o in result.new_orders}
            others = {mid: ts for mid, ts in result.seen.items() if mid not in order_ids}
            if others:
                self.write([{"t": SEEN, "g": book.group_id, "v": others}])
        if result.new_orders or book.settings != settings or book.watermark != watermark:
            self.settings_changed = True
        for m, reason in result.invalid:
            self._send(f"invalid:{m.message_id}", self.texts.invalid(),
                       Quote(m.message_id, m.sender, m.text), priority=2)
        for m, diamonds, earlier in result.held:
            self._hold(m, diamonds, earlier, now)
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
                self._send_delivery(approved)
            else:
                self._send_receipt(order)  # says "on hold" when the due limit is reached
        return result.new_orders

    def release_held_for_due(self: GroupActor, now: float) -> None:
        """After a payment or a change of the group's limits: approve the orders the due limit
        held, as far as auto-approval now allows."""
        assert self.book is not None
        for order in releasable(self.book):
            approved = transition(order, Action.APPROVE, by=AUTO_APPROVER, now=now,
                                  note="the due is within the limit again")
            self._put(approved)
            log.info("order %s: approved automatically, the due is within the limit again", order.id)
            self._send_delivery(approved)

    def held_text(self: GroupActor, order: Order) -> str | None:
        """The receipt's text when taking the order went over the group's due limit."""
        book = self.book
        assert book is not None
        limit = book.settings.due_limit
        if limit is None or order.status is not Status.PENDING:
            return None
        due_after = book.due + order.amount
        return self.texts.held_due(order, due_after, limit) if due_limit_exceeded(book.settings, due_after) else None

    def _hold(self: GroupActor, m: Inbound, diamonds: int, earlier: Order, now: float) -> None:
        """A repeat of a recent order: ask before taking it (the message is kept until then)."""
        book = self.book
        assert book is not None
        held = HeldOrder(m.message_id, m.sender, m.sender_alt, m.sender_name, m.text, diamonds,
                         m.timestamp, earlier.id)
        book.held[m.message_id] = held
        self.write([{"t": HELD, "g": book.group_id, "v": {m.message_id: held.to_record()}}])
        minutes = max((m.timestamp - (earlier.created_at or m.timestamp)) / 60, 0)
        log.info("order message %s held: repeats %s", m.message_id, earlier.id)
        self._send(f"dup:{m.message_id}", self.texts.duplicate(earlier, minutes),
                   Quote(m.message_id, m.sender, m.text), priority=2)

    def question_sent(self: GroupActor, message_id: str, question_id: str) -> None:
        """Remember which chat message asked about a held order (its "yes" quotes it)."""
        book = self.book
        assert book is not None
        held = book.held.get(message_id)
        if held is not None and question_id:
            held = replace(held, question_id=question_id)
            book.held[message_id] = held
            self.write([{"t": HELD, "g": book.group_id, "v": {message_id: held.to_record()}}], sync=False)

    def _release(self: GroupActor, message_id: str) -> None:
        book = self.book
        assert book is not None
        if book.held.pop(message_id, None) is not None:
            self.write([{"t": HELD, "g": book.group_id, "v": {message_id: None}}])

    # -- commands ----------------------------------------------------------------------------

    def _on_command(self: GroupActor, command: Any, m: ChatMessage, now: float) -> None:
        handler = _HANDLERS.get(type(command))
        if handler is not None:
            handler(self, command, m, now)

    def _order_replied_to(self: GroupActor, target_id: str, m: ChatMessage) -> Order | None:
        assert self.book is not None
        order = find_by_message(self.book.orders.values(), target_id)
        if order is None:
            self._reply(m, self.texts.command_error(self._lang("no order for that message",
                                                               "এই বার্তার কোনো অর্ডার নেই")))
        return order

    def _refusal(self: GroupActor, order: Order, what: str) -> str:
        assert self.init is not None
        return self.texts.command_error(refusal(order, what, self.init.config.bot.language))

    def _lang(self: GroupActor, en: str, bn: str) -> str:
        assert self.init is not None
        return bn if self.init.config.bot.language == "bn" else en

    def _cmd_approve(self: GroupActor, cmd: Approve, m: ChatMessage, now: float) -> None:
        order = self._order_replied_to(cmd.target_id, m)
        if order is not None:
            self._act(order, Action.APPROVE, m, now)

    def _cmd_cancel(self: GroupActor, cmd: Cancel, m: ChatMessage, now: float) -> None:
        order = self._order_replied_to(cmd.target_id, m)
        if order is not None:
            self._act(order, Action.CANCEL, m, now)

    def _act(self: GroupActor, order: Order, action: Action, m: ChatMessage, now: float) -> None:
        try:
            updated = transition(order, action, by=f"whatsapp:{m.sender}", now=now)
        except TransitionError:
            self._reply(m, self._refusal(order, action.value))
            return
        self._put(updated)
        log.info("order %s: %s by whatsapp:%s", updated.id, action.value, m.sender)
        self._announce(updated)

    def _cmd_rate(self: GroupActor, cmd: SetRate, m: ChatMessage, now: float) -> None:
        assert self.book is not None
        try:
            self.book.settings = apply_settings_patch(self.book.settings, {"rate": str(cmd.rate)})
        except SettingsError as e:
            self._reply(m, self.texts.command_error(str(e)))
            return
        self.settings_changed = True
        log.info("group %s rate set to %s by whatsapp:%s", self.book.group_id, self.book.settings.rate, m.sender)
        self._reply(m, self.texts.rate_set(self.book.settings.rate))

    def _cmd_paid(self: GroupActor, cmd: RecordPaid, m: ChatMessage, now: float) -> None:
        try:
            payment = self.record_payment(str(cmd.amount), cmd.method, cmd.reference, "",
                                          f"whatsapp:{m.sender}", now)
        except PaymentError as e:
            self._reply(m, self.texts.command_error(str(e)))
            return
        assert self.book is not None
        self._reply(m, self.texts.paid(payment, self.book.due))

    def _cmd_pending(self: GroupActor, cmd: ListPending, m: ChatMessage, now: float) -> None:
        assert self.book is not None
        waiting = sorted((o for o in self.book.orders.values() if o.status in (Status.PENDING, Status.PROCESSING)),
                         key=lambda o: (o.created_at or 0.0, o.id))
        self._reply(m, self.texts.pending_list(waiting))

    def _cmd_due(self: GroupActor, cmd: ShowDue, m: ChatMessage, now: float) -> None:
        assert self.book is not None
        self._reply(m, self.texts.due(self.book.due))

    def _cmd_help(self: GroupActor, cmd: Help, m: ChatMessage, now: float) -> None:
        self._reply(m, self.texts.help())

    def _cmd_confirm(self: GroupActor, cmd: ConfirmDuplicate, m: ChatMessage, now: float) -> None:
        """"yes" to a duplicate question (or to the held message itself), from its sender."""
        book = self.book
        assert book is not None
        who = {m.sender, m.sender_alt} - {""}
        held = next((h for h in book.held.values()
                     if cmd.target_id in (h.question_id, h.message_id) and who & ({h.sender, h.sender_alt} - {""})),
                    None)
        if held is None:
            return  # a "yes" to something else: chat
        self._release(held.message_id)
        book.seen.pop(held.message_id, None)  # so take_in treats it as new, once
        taken = self._take_orders([Inbound(held.message_id, held.sender, held.sender_alt, held.sender_name,
                                           held.text, held.timestamp, confirmed=True)], now)
        if not taken:
            log.warning("held message %s could not become an order when confirmed", held.message_id)

    def _cmd_error(self: GroupActor, cmd: CommandError, m: ChatMessage, now: float) -> None:
        assert self.init is not None
        self._reply(m, self.texts.command_error(cmd.in_language(self.init.config.bot.language)))

    # -- edits and deletes -------------------------------------------------------------------

    def _order_of_message(self: GroupActor, message_id: str) -> Order | None:
        assert self.book is not None
        return next((o for o in self.book.orders.values() if o.message_id == message_id), None)

    def _on_edit(self: GroupActor, m: ChatMessage, now: float) -> None:
        """`.10` edited to `.100`: a pending order changes; a message that was not an order
        and now is one becomes one."""
        book = self.book
        assert book is not None
        parsed = parse_order(m.text, self.limits.min_diamonds, self.limits.max_diamonds)
        order = self._order_of_message(m.edits)
        if order is None:
            if isinstance(parsed, OrderText) and m.edits not in book.held:
                book.seen.pop(m.edits, None)  # it was answered as "not understood"
                self._take_orders([replace(_inbound(m), message_id=m.edits)], now)
            return
        if not isinstance(parsed, OrderText):
            self._reply(m, self.texts.invalid())
            return
        try:
            edited = edit_diamonds(order, parsed.diamonds, text=m.text, by=f"whatsapp:{m.sender}", now=now)
        except TransitionError:
            self._reply(m, self._refusal(order, "edit"))
            return
        if edited is order:
            return
        self._put(edited)
        log.info("order %s edited in the chat: %d diamonds", edited.id, edited.diamonds)
        self._send(f"edited:{m.message_id}", self.texts.edited(edited), self._quote(edited), priority=2)

    def _on_revoke(self: GroupActor, m: ChatMessage, now: float) -> None:
        """A deleted order message cancels its still-pending order (or drops a held one)."""
        book = self.book
        assert book is not None
        if m.revokes in book.held:
            self._release(m.revokes)
            return
        order = self._order_of_message(m.revokes)
        if order is None or order.status is not Status.PENDING:
            return
        if m.sender not in (order.user_id, order.user_alt) and not self._is_admin(m):
            return  # someone else's deletion (a group admin): leave it to the shop's admins
        cancelled = transition(order, Action.CANCEL, by=f"whatsapp:{m.sender}", now=now,
                               note="the order message was deleted in WhatsApp")
        self._put(cancelled)
        log.info("order %s cancelled: its message was deleted", cancelled.id)
        self._send(f"withdrawn:{cancelled.id}", self.texts.withdrawn(cancelled), None, priority=2)

    # -- payments ------------------------------------------------------------------------------

    def record_payment(self: GroupActor, amount: str, method: str, reference: str, note: str, by: str,
                       now: float, client_key: str = "") -> Any:
        """A payment from the panel, the API or `.paid`; PaymentError if it cannot be taken.
        A retry (same client_key) gets the payment recorded the first time."""
        book = self.book
        assert book is not None
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
        book.next_payment_seq += 1
        book.paid += payment.amount
        book.payments[payment.id] = payment
        self.settings_changed = True
        self.write([{"t": PAYMENT, "g": book.group_id, "v": payment_record(payment)}])
        self.release_held_for_due(now)
        log.info("payment %s: ৳%s %s by %s in group %s", payment.id, payment.amount, payment.method, by,
                 book.group_id)
        return payment

    def receiveMsg_RecordPayment(self: GroupActor, msg: RecordPayment, sender: Any) -> None:
        reply_to = self._requester(msg, sender)
        if reply_to is None:
            return
        try:
            payment = self.record_payment(msg.amount, msg.method, msg.reference, msg.note, msg.by,
                                          self.clock.now(), msg.client_key)
        except PaymentError as e:
            status = 409 if isinstance(e, PaymentConflict) else 400
            self.send(reply_to, CommandDone(msg.request_id, status, error=str(e)))
            return
        self._answer_payment(msg.request_id, reply_to, payment)

    def _answer_payment(self: GroupActor, request_id: str, reply_to: Any, payment: Any) -> None:
        """The panel's answer, once what was written is durable."""
        assert self.book is not None
        self.after_write(reply_to, CommandDone(request_id, 200, result={
            "payment": payment_record(payment), "due": money_str(self.book.due)}))

    def receiveMsg_VoidPayment(self: GroupActor, msg: VoidPayment, sender: Any) -> None:
        reply_to = self._requester(msg, sender)
        if reply_to is None:
            return
        book = self.book
        assert book is not None
        payment = book.payments.get(msg.payment_id.strip().upper())
        if payment is None:
            self.send(reply_to, CommandDone(msg.request_id, 404, error=f"no payment {msg.payment_id} in this group"))
            return
        try:
            voided = void_payment(payment, by=msg.by, reason=msg.reason, at=self.clock.now())
        except PaymentError as e:
            status = 409 if payment.voided else 400
            self.send(reply_to, CommandDone(msg.request_id, status, error=str(e)))
            return
        book.payments[voided.id] = voided
        book.paid -= voided.amount
        self.write([{"t": PAYMENT, "g": book.group_id, "v": payment_record(voided)}])
        log.info("payment %s (৳%s) voided by %s: %s", voided.id, voided.amount, msg.by, voided.void_reason)
        self._answer_payment(msg.request_id, reply_to, voided)


class PaymentConflict(PaymentError):
    """A retry key sent again with a different payment."""


# The dispatch table: a command's type -> what the group does with it.
_HANDLERS: dict[type, Any] = {
    Approve: ChatHandling._cmd_approve,
    Cancel: ChatHandling._cmd_cancel,
    SetRate: ChatHandling._cmd_rate,
    RecordPaid: ChatHandling._cmd_paid,
    ListPending: ChatHandling._cmd_pending,
    ShowDue: ChatHandling._cmd_due,
    Help: ChatHandling._cmd_help,
    ConfirmDuplicate: ChatHandling._cmd_confirm,
    CommandError: ChatHandling._cmd_error,
}
