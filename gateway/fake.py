"""An in-memory transport for tests: records what the bot sends, delivers what a test posts.

Everything happens synchronously on the caller's thread, so actor tests on simpleSystemBase
stay deterministic. Tests read like a chat: `fake.post(group, user, ".10")`, then look at
`fake.sent`.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Sequence

from domain.chat import ChatMessage, ConnectionState, GroupInfo, GroupsChange, OutboundText, SendOutcome, Source
from gateway.transport import Transport, TransportSink

BOT_ID = "100000000000001@lid"


@dataclass
class FakeTransport(Transport):
    kind = "fake"
    history_replayable = True  # `history_messages` is served again on every start, like the sandbox
    groups: dict[str, str] = field(default_factory=dict)  # id -> name
    sent: list[OutboundText] = field(default_factory=list)
    sent_ids: list[str] = field(default_factory=list)  # the chat id each of `sent` got
    history_messages: dict[str, list[ChatMessage]] = field(default_factory=dict)
    fail_next: int = 0  # the next N sends fail (retryable)
    rate_limit_next: int = 0
    hold: bool = False  # keep sends pending until release()
    announce_groups: bool = False  # tell the bot its groups on start, as WhatsApp and the sandbox do
    _held: list[OutboundText] = field(default_factory=list)
    _sink: TransportSink | None = None
    _state: ConnectionState = ConnectionState.STOPPED
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    clock_now: float = 1_764_000_000.0
    # Edits and deletes are protocol messages: they cannot be quoted (the sandbox refuses such a
    # quote, WhatsApp shows nothing to quote), so a reply quoting one fails like it does there.
    _unquotable: set[str] = field(default_factory=set)

    def start(self, sink: TransportSink) -> None:
        self._sink = sink
        self._state = ConnectionState.CONNECTED
        sink.state_changed(ConnectionState.CONNECTED)
        if self.announce_groups:
            sink.groups_changed(GroupsChange(tuple(self.list_groups()), complete=True))

    def group_news(self, change: GroupsChange) -> None:
        """The bot is added to a group, a group is renamed, or the bot leaves one."""
        assert self._sink is not None, "news before start"
        for info in change.present:
            self.groups[info.group_id] = info.name
        for group_id in change.gone:
            self.groups.pop(group_id, None)
        self._sink.groups_changed(change)

    def stop(self) -> None:
        self._state = ConnectionState.STOPPED

    def send(self, request: OutboundText) -> None:
        assert self._sink is not None, "send before start"
        if self.hold:
            self._held.append(request)
            return
        self._finish(request)

    def _finish(self, request: OutboundText) -> None:
        assert self._sink is not None
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            self._sink.send_finished(SendOutcome(request.request_id, False, error="429 rate limited",
                                                 rate_limited=True))
            return
        if request.quote is not None and request.quote.message_id in self._unquotable:
            self._sink.send_finished(SendOutcome(request.request_id, False, retryable=False,
                                                 error=f"404 quoted message {request.quote.message_id!r} "
                                                       f"is not in group {request.group_id}"))
            return
        if self.fail_next:
            self.fail_next -= 1
            self._sink.send_finished(SendOutcome(request.request_id, False, error="503 unavailable"))
            return
        self.sent.append(request)
        message_id = f"BOT{next(self._ids)}"
        self.sent_ids.append(message_id)
        self._sink.send_finished(SendOutcome(request.request_id, True, message_id=message_id,
                                             timestamp=self.clock_now))

    def release(self) -> None:
        held, self._held = self._held, []
        for request in held:
            self._finish(request)

    def history(self, group_id: str, limit: int) -> list[ChatMessage]:
        return self.history_messages.get(group_id, [])[-limit:]

    def list_groups(self) -> list[GroupInfo]:
        return [GroupInfo(g, n) for g, n in self.groups.items()]

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def own_ids(self) -> frozenset[str]:
        return frozenset({BOT_ID})

    def post(self, group_id: str, sender: str, text: str, *, name: str = "", timestamp: float | None = None,
             source: Source = Source.LIVE, message_id: str | None = None) -> ChatMessage:
        """A user posts in a group; the message is delivered to the bot at once."""
        msg = ChatMessage(group_id=group_id, group_name=self.groups.get(group_id, group_id),
                          message_id=message_id or f"3EB0{uuid.uuid4().hex[:18].upper()}", sender=sender, sender_alt="",
                          sender_name=name or sender.split("@")[0], text=text,
                          timestamp=self.clock_now if timestamp is None else timestamp, source=source)
        self.deliver([msg])
        return msg

    def deliver(self, messages: Sequence[ChatMessage]) -> None:
        assert self._sink is not None, "deliver before start"
        self._unquotable.update(m.message_id for m in messages if m.edits or m.revokes)
        self._sink.messages_received(messages)

    def texts_to(self, group_id: str) -> list[str]:
        return [r.text for r in self.sent if r.group_id == group_id]
