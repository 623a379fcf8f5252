"""The chat world as every transport reports it: messages in, texts out, connection states.

These are plain frozen dataclasses because they cross actor process boundaries as pickles.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson


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
    """A transport's connection state, reported with a `detail` string (`TransportSink.state_changed`).

    The detail is plain text (an error, "replaced", ...) except in two states, where it is a JSON
    object so the panel can use its fields (`parse_detail` reads either form):

    * PAIRING: `{"qr": "<QR payload>", "expires_at": <epoch s>}` while a QR code is shown;
      with phone pairing also `"pair_code": "ABCD-EFGH"`; `{"expired": true, "message": "..."}`
      when nobody scanned for several rounds and pairing waits for the re-pair button.
    * BANNED: `{"expires_at": <epoch s>, "reason": "..."}`: when the ban ends (all sending stays
      paused until then and until the transport is connected again).
    """

    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    PAIRING = "pairing"
    LOGGED_OUT = "logged_out"
    BANNED = "banned"


def state_detail(**fields: Any) -> str:
    """A structured state detail (see ConnectionState), as compact JSON text."""
    return orjson.dumps(fields).decode()


def parse_detail(detail: str) -> dict[str, Any]:
    """The fields of a state detail: a JSON object as written by `state_detail`, else `{"message": detail}`."""
    if detail.startswith("{"):
        try:
            data = orjson.loads(detail)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return data
    return {"message": detail} if detail else {}


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
