"""What a group's desk (domain.desk) takes in and what it decides: the vocabulary of the core.

Events in: a chat message, a send's outcome, a panel command, the reconciliation clock. A
`Decision` out: the records to make durable, the chat messages to send once they are, the
answer to whoever asked. The GroupActor turns messages into events and a Decision into one
Persist; nothing here knows an actor, a file or a socket.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from domain.admins import AdminRoster
from domain.chat import ChatMessage, Quote
from domain.records import Record
from domain.reconcile import CycleSummary
from domain.shop import ShopNow, ShopSettings

# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatReceived:
    """Messages of the group, in the order they arrived (live, recovered or replayed), and the
    shop as it is now (None: as the desk last heard)."""

    messages: tuple[ChatMessage, ...]
    shop: ShopNow | None = None


@dataclass(frozen=True, slots=True)
class SendDone:
    """The outcome of a chat message the desk asked for."""

    key: SendKey
    ok: bool
    message_id: str = ""
    error: str = ""
    withdrawn: bool = False  # taken back before it was sent, as the desk asked


@dataclass(frozen=True, slots=True)
class OrderAction:
    """process | approve | cancel | delete an order, from the panel."""

    order_id: str
    action: str
    by: str


@dataclass(frozen=True, slots=True)
class SettingsPatch:
    """A change of the group's settings from the panel (`domain.group.apply_settings_patch`)."""

    patch: dict[str, Any]
    by: str


@dataclass(frozen=True, slots=True)
class PaymentIn:
    """A payment to record, from the panel or the API."""

    amount: str
    method: str
    reference: str
    note: str
    by: str
    client_key: str = ""  # a retry with the same key gets the payment recorded the first time
    confirm_duplicate: bool = False  # record it although its reference was recorded before


@dataclass(frozen=True, slots=True)
class PaymentVoid:
    payment_id: str
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class CycleDue:
    """Time for a reconciliation cycle."""


@dataclass(frozen=True, slots=True)
class RetryDue:
    """Time to retry sends that failed a moment ago (sooner than the next cycle)."""


@dataclass(frozen=True, slots=True)
class Stopping:
    """The system stops: write the check counts once more, then nothing else."""


@dataclass(frozen=True, slots=True)
class GatewayRestarted:
    """Sends in flight died with the old gateway."""


@dataclass(frozen=True, slots=True)
class OwnIdsKnown:
    ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class AdminsChanged:
    roster: AdminRoster


@dataclass(frozen=True, slots=True)
class ShopChanged:
    """The shop's settings changed on the panel (texts, payment numbers, undo, open/closed)."""

    settings: ShopSettings


@dataclass(frozen=True, slots=True)
class GroupNews:
    """What the transport says of the group: its name, and whether the bot's number is in it."""

    name: str
    present: bool = True


Event = (ChatReceived | SendDone | OrderAction | SettingsPatch | PaymentIn | PaymentVoid | CycleDue | RetryDue
         | Stopping | GatewayRestarted | OwnIdsKnown | AdminsChanged | GroupNews | ShopChanged)


# -- what a chat message is about ----------------------------------------------------------


class About(enum.Enum):
    """What a message the desk sends is about; RECEIPT and DELIVERY are tracked on the order."""

    RECEIPT = "receipt"
    DELIVERY = "delivery"
    CANCELLED = "cancelled"  # an order cancelled by an admin or the panel
    WITHDRAWN = "withdrawn"  # an order cancelled because its message was deleted
    EDITED = "edited"  # an order changed by an edit of its message
    INVALID = "invalid"  # order-looking text that is not an order
    QUESTION = "question"  # the duplicate guard's question about a held message
    REPLY = "reply"  # any other answer to a chat message (commands, refusals)
    UNDONE = "undone"  # the correction after an approval was undone
    AUTO_APPROVED = "auto_approved"  # the (optional) word that an order was approved automatically
    ALERT = "alert"  # a word to the shop's admins (a group without a rate)


TRACKED = (About.RECEIPT, About.DELIVERY)


@dataclass(frozen=True, slots=True)
class SendKey:
    """Identifies a chat message: the gateway keeps one waiting message per key (a newer one
    replaces it), and the outcome comes back with it. `subject` is an order id or a message id."""

    about: About
    subject: str


@dataclass(frozen=True, slots=True)
class Send:
    """A chat message to send once the decision's records are durable."""

    key: SendKey
    text: str
    quote: Quote | None = None
    priority: int = 2  # 0 delivery messages, 1 receipts, 2 everything else
    to: str = ""  # another chat (an admin's); "" is the group


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a panel command: an HTTP-like status and the result or the reason."""

    status: int
    result: dict[str, Any] | None = None
    error: str = ""


@dataclass(slots=True)
class Decision:
    """Everything one event causes."""

    records: list[Record] = field(default_factory=list)
    sync: bool = False  # some record must be fsynced promptly (False: a checkpoint may wait)
    sends: list[Send] = field(default_factory=list)
    withdraw: list[SendKey] = field(default_factory=list)  # messages to take back if still waiting
    answer: Answer | None = None
    # The answer may only be given once the records are durable (False: at once — a refusal).
    answer_after_write: bool = True
    retry_in: float | None = None  # wake the desk with RetryDue after this many seconds
    cycle: CycleSummary | None = None  # the cycle this event ran, for the live figures

    @property
    def empty(self) -> bool:
        return not self.records and not self.sends and not self.withdraw and self.answer is None


# -- the stored state a desk starts from ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """What the PersistenceActor hands a starting desk: the group as its records left it."""

    settings: dict[str, Any] | None  # None: a group never seen before
    entries: tuple[dict[str, Any], ...] = ()
    seen: dict[str, float] = field(default_factory=dict)
    checks: dict[str, list[Any]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)  # the DayTally, as checkpointed
    billed: Decimal = Decimal("0.00")  # every approved and completed order, also archived ones
    paid: Decimal = Decimal("0.00")  # every payment that counts
    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: tuple[dict[str, Any], ...] = ()
