"""The chat world as every transport reports it: messages in, texts out, connection states.

These are plain frozen dataclasses because they cross actor process boundaries as pickles.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Source(enum.Enum):
    """How a message reached the bot; everything but LIVE is a recovery path."""

    LIVE = "live"
    OFFLINE = "offline"  # queued by the server while the bot was away, delivered on connect
    HISTORY = "history"  # fetched from the chat's history at start (subject to the watermark)
    INBOX = "inbox"  # recorded in the bot's own inbox but not handled before a crash

    @property
    def recovered(self) -> bool:
        return self is not Source.LIVE


class ConnectionState(enum.Enum):
    """A transport's connection state, reported with a `ConnectionDetail` (`TransportSink.state_changed`)."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    PAIRING = "pairing"
    LOGGED_OUT = "logged_out"
    BANNED = "banned"


@dataclass(frozen=True, slots=True)
class ConnectionDetail:
    """What goes with a connection state, as the panel and the log show it. Each field is set only
    where it means something; none is ever parsed back out of another."""

    # In words: what happened, what the bot does next, what the operator should do (may be "").
    message: str = ""
    # PAIRING: the QR code to scan now ("" while none is shown) and, with phone pairing, the code
    # to type on the phone.
    qr: str = ""
    pair_code: str = ""
    # PAIRING: when the code shown stops working; BANNED: when the ban ends (epoch seconds).
    expires_at: float | None = None
    # BANNED: WhatsApp's reason.
    reason: str = ""
    # PAIRING: nobody scanned for several rounds; no code is shown until the re-pair button.
    expired: bool = False


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One inbound group message, normalised: timestamps in seconds, ids as the transport gives them."""

    group_id: str  # "<digits>@g.us"
    group_name: str
    message_id: str
    sender: str  # "<digits>@lid" or "<digits>@s.whatsapp.net", as given
    sender_alt: str  # the other form of the sender when known, else ""
    sender_name: str
    text: str
    timestamp: float  # seconds since the epoch
    from_me: bool = False  # sent by the bot's own number
    source: Source = Source.LIVE
    quoted_id: str = ""  # id of the message this one replies to
    # An edit or a delete of an earlier message of the group (WhatsApp sends both as their own
    # messages): `edits` names the edited message (`text` is its new text), `revokes` the deleted one.
    edits: str = ""
    revokes: str = ""


@dataclass(frozen=True, slots=True)
class Quote:
    """What a reply needs to quote a message, even after a restart (WhatsApp wants all three)."""

    message_id: str
    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class OutboundText:
    request_id: str
    group_id: str
    text: str
    quote: Quote | None = None


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """Result of one send. `retryable` False means sending it again cannot help."""

    request_id: str
    ok: bool
    message_id: str = ""
    timestamp: float = 0.0
    error: str = ""
    retryable: bool = True
    # The server said "slow down" or banned us: pause all sending, not just this message.
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class GroupInfo:
    group_id: str
    name: str


@dataclass(frozen=True, slots=True)
class GroupsChange:
    """What a transport learned of the groups the bot's number is in."""

    present: tuple[GroupInfo, ...] = ()  # groups it is in: joined, renamed, or listed
    gone: tuple[str, ...] = ()  # groups it is no longer in: left, removed
    # `present` is every group it is in (the list fetched at connect): any other group the
    # bot knows of was left meanwhile.
    complete: bool = False
