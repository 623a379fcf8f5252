"""One interface for every way the bot reaches a chat: WhatsApp, the sandbox, the test fake.

The GatewayActor owns a transport. A transport does its I/O on its own threads and reports
back through a `TransportSink`; the actor makes every decision (what to send, when).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, Sequence

from domain.chat import (
    ChatMessage,
    ConnectionDetail,
    ConnectionState,
    GroupInfo,
    GroupsChange,
    OutboundText,
    SendOutcome,
)


class TransportError(Exception):
    """A transport failure, whatever library raised it. `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class TransportSink(Protocol):
    """Where a transport reports. Methods may be called from any transport thread."""

    def messages_received(self, messages: Sequence[ChatMessage]) -> None:
        """Take inbound messages. Returns only once they are durable: a transport acknowledges
        them to its server after this returns, never before."""

    def send_finished(self, outcome: SendOutcome) -> None:
        """Report the result of one `Transport.send`."""

    def groups_changed(self, change: GroupsChange) -> None:
        """Report the groups the bot's number is in: all of them when connected (complete), and
        each join, rename and leave as it happens."""

    def state_changed(self, state: ConnectionState, detail: ConnectionDetail = ConnectionDetail()) -> None:
        """Report a connection state change with what goes with it (a QR code, an error, a ban's end)."""


class Transport(ABC):
    """The contract every chat backend implements."""

    kind: str = "abstract"
    # Whether history delivered at start can be asked for again (the sandbox keeps it and sends
    # it on every start). WhatsApp sends its history sync once, after pairing: what it delivers
    # must be recorded like any live message.
    history_replayable: bool = False
    # Whether the transport is linked to an account that can be unlinked and paired again (the
    # panel's re-pair button): see `repair`.
    pairing: bool = False

    @abstractmethod
    def start(self, sink: TransportSink) -> None:
        """Begin connecting in the background and return at once. On the first successful
        connect of this process, deliver what the bot may have missed (the server's offline
        queue as Source.OFFLINE, recent history as Source.HISTORY) through the sink."""

    @abstractmethod
    def stop(self) -> None:
        """Disconnect and stop every thread of the transport; idempotent."""

    @abstractmethod
    def send(self, request: OutboundText) -> None:
        """Queue one text for sending and return at once; the result arrives as exactly one
        `sink.send_finished` with the same request_id. Never blocks on the network."""

    @abstractmethod
    def history(self, group_id: str, limit: int) -> list[ChatMessage]:
        """The last `limit` messages of a group, oldest first, as Source.HISTORY. Blocking;
        raises TransportError. A transport without history returns []."""

    @abstractmethod
    def list_groups(self) -> list[GroupInfo]:
        """The groups the bot's number is in. Blocking; raises TransportError."""

    @property
    @abstractmethod
    def state(self) -> ConnectionState:
        """The current connection state."""

    def repair(self) -> None:
        """Unlink the account and pair it again; returns at once (the outcome shows in the
        connection state). Raises TransportError when it cannot start now; a transport whose
        `pairing` is False has nothing to pair and refuses."""
        raise TransportError(f"the {self.kind} gateway has nothing to pair", retryable=False)

    @property
    def own_ids(self) -> frozenset[str]:
        """The bot's own sender ids (LID and phone form), to ignore its own messages."""
        return frozenset()
