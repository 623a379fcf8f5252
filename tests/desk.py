"""One group's desk (domain.desk) driven like a chat, with no actor system: messages in, the
bot's replies out, panel commands answered, the clock moved by hand.

    shop = DeskChat(admins=[ADMIN_PHONE])
    order = shop.post(ALICE, ".10")
    assert shop.last_reply.startswith("📥")
    assert shop.command("A1", "approve").status == 200

Every decision's records are applied to a database image (storage.database), so `restarted()`
gives the desk a later incarnation would load — the restart the PersistenceActor performs.
Sends are confirmed at once (like the fake transport) unless `hold_sends` is set.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Iterable

from actors.desk_setup import desk_setup
from config import Config, load_config
from domain.admins import AdminRoster
from domain.chat import ChatMessage, Source
from domain.clock import FakeClock
from domain.desk import Desk
from domain.desk_events import (
    AdminsChanged,
    Answer,
    ChatReceived,
    CycleDue,
    Decision,
    Event,
    OrderAction,
    PaymentIn,
    PaymentVoid,
    RetryDue,
    Send,
    SendDone,
    SettingsPatch,
    ShopChanged,
    Stopping,
    StoredGroup,
)
from domain.orders import Order
from domain.shop import ShopNow, ShopSettings
from storage.database import Database

GROUP = "120363000000000001@g.us"
ALICE = "76210050711676@lid"
BOB = "76210050711677@lid"
ADMIN_PHONE = "8801711111111"
ADMIN = "76210050711690@lid"  # the admin's LID; WhatsApp gives the phone as the other form
ADMIN_ALT = f"{ADMIN_PHONE}@s.whatsapp.net"
T0 = 1_764_000_000.0


def desk_config(**overrides: str) -> Config:
    """The defaults, with no duplicate guard (tests of other things order freely) and ৳100 a
    diamond for a new group (tests of groups without a rate unset it)."""
    values = {"orders.duplicate_window": "0s", "orders.default_rate": "100", **overrides}
    return load_config(env={}, overrides=values)


@dataclass
class Sent:
    send: Send
    message_id: str  # the chat id the send got ("" while held or failed)

    @property
    def text(self) -> str:
        return self.send.text


@dataclass
class DeskChat:
    admins: Iterable[str] = ()
    config: Config = field(default_factory=desk_config)
    clock: FakeClock = field(default_factory=lambda: FakeClock(T0))
    floor: float = T0 - 3600  # installed an hour ago
    hold_sends: bool = False  # keep sends unanswered (in flight) until confirm()
    fail_sends: int = 0  # the next N sends fail
    db: Database = field(default_factory=Database)
    decisions: list[Decision] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    held: list[Send] = field(default_factory=list)
    roster: AdminRoster | None = None
    shop_now: ShopNow | None = None  # what the board says of the shop (None: as the desk last heard)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        if self.roster is None:
            self.roster = AdminRoster().with_admins(list(self.admins), 0.0, "config")
        self.desk = self._restore(StoredGroup(None))

    def _restore(self, stored: StoredGroup) -> Desk:
        setup = desk_setup(self.config, GROUP, "A", "Rahim Store", floor=self.floor, admins=self.roster,
                           own_ids=frozenset({"100000000000001@lid"}))
        return Desk.restore(setup, stored, self.clock.now())

    # -- events ----------------------------------------------------------------------------

    def handle(self, event: Event) -> Decision:
        """One event; its records are written, its sends go out (or wait, or fail)."""
        decision = self.desk.handle(event, self.clock.now())
        self.decisions.append(decision)
        for record in decision.records:
            self.db.apply(record)
        for send in decision.sends:
            if self.hold_sends:
                self.held.append(send)
            else:
                self._outcome(send)
        for key in decision.withdraw:  # taken back if it is still waiting, as the gateway does
            waiting = [s for s in self.held if s.key == key]
            if waiting:
                self.held = [s for s in self.held if s.key != key]
                self.handle(SendDone(key, False, error="withdrawn", withdrawn=True))
        return decision

    def _outcome(self, send: Send) -> None:
        if self.fail_sends:
            self.fail_sends -= 1
            self.sent.append(Sent(send, ""))
            self.handle(SendDone(send.key, False, error="503 unavailable"))
            return
        message_id = f"BOT{next(self._ids)}"
        self.sent.append(Sent(send, message_id))
        self.handle(SendDone(send.key, True, message_id))

    def confirm(self) -> None:
        """The held sends go out now."""
        held, self.held = self.held, []
        for send in held:
            self._outcome(send)

    def message(self, sender: str, text: str, *, sender_alt: str = "", source: Source = Source.LIVE,
                timestamp: float | None = None, message_id: str | None = None, quoted_id: str = "",
                edits: str = "", revokes: str = "") -> ChatMessage:
        return ChatMessage(GROUP, "Rahim Store", message_id or f"3EB0{uuid.uuid4().hex[:16].upper()}", sender,
                           sender_alt, sender.split("@")[0], text,
                           self.clock.now() if timestamp is None else timestamp, source=source,
                           quoted_id=quoted_id, edits=edits, revokes=revokes)

    def post(self, sender: str, text: str, **kw: Any) -> ChatMessage:
        """Someone writes in the group."""
        msg = self.message(sender, text, **kw)
        self.deliver(msg)
        return msg

    def admin(self, text: str, **kw: Any) -> ChatMessage:
        """The shop's admin writes (known by phone, writing from a LID)."""
        return self.post(ADMIN, text, sender_alt=ADMIN_ALT, **kw)

    def deliver(self, *messages: ChatMessage) -> Decision:
        return self.handle(ChatReceived(tuple(messages), self.shop_now))

    def set_shop(self, **changes: Any) -> ShopSettings:
        """The panel changed the shop's settings (what the Supervisor tells every desk)."""
        settings = replace(self.desk.shop, **changes)
        self.handle(ShopChanged(settings))
        return settings

    def command(self, order_id: str, action: str, by: str = "admin:test") -> Answer:
        return self._answered(OrderAction(order_id, action, by))

    def patch(self, **patch: Any) -> Answer:
        return self._answered(SettingsPatch(patch, "admin:test"))

    def pay(self, amount: str, method: str = "bkash", reference: str = "", *, note: str = "", key: str = "",
            confirm: bool = False) -> Answer:
        return self._answered(PaymentIn(amount, method, reference, note, "admin:test", key, confirm))

    def void(self, payment_id: str, reason: str = "typed wrong") -> Answer:
        return self._answered(PaymentVoid(payment_id, reason, "admin:test"))

    def _answered(self, event: Event) -> Answer:
        answer = self.handle(event).answer
        assert answer is not None
        return answer

    def cycle(self) -> Decision:
        return self.handle(CycleDue())

    def retry(self) -> Decision:
        return self.handle(RetryDue())

    def stop(self) -> Decision:
        return self.handle(Stopping())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def make_admins(self, admins: Iterable[str]) -> None:
        """The admin list changes now (a restart with another config, or the panel)."""
        assert self.roster is not None
        self.roster = self.roster.with_admins(list(admins), self.clock.now(), "config")
        self.handle(AdminsChanged(self.roster))

    def restarted(self) -> DeskChat:
        """The desk a new incarnation loads from everything written so far."""
        horizon = self.clock.now() - self.config.history.max_age
        self.desk = self._restore(self.db.stored_group(GROUP, horizon))
        return self

    # -- what the chat and the book show -----------------------------------------------------

    @property
    def replies(self) -> list[str]:
        return [s.text for s in self.sent if s.message_id]

    @property
    def last_reply(self) -> str:
        return self.replies[-1] if self.replies else ""

    def bot_message_id(self, text_start: str) -> str:
        return next(s.message_id for s in reversed(self.sent) if s.message_id and s.text.startswith(text_start))

    def order(self, order_id: str) -> Order:
        return self.desk.book.orders[order_id]

    def status(self, order_id: str) -> str:
        return self.order(order_id).status.value

    def stored(self, order_id: str) -> dict[str, Any]:
        """The order as written (what the panel and a restart see)."""
        found = self.db.find(order_id)
        assert found is not None, f"{order_id} was never written"
        return found[1]

    @property
    def due(self) -> Decimal:
        return self.desk.book.due
