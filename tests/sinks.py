"""For transport tests: a TransportSink that records what the transport reports, thread-safely,
and a wait for what transport threads do."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from domain.chat import ChatMessage, ConnectionDetail, ConnectionState, GroupsChange, SendOutcome, Source


WAIT = 10.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll until `condition()` is truthy and return it; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


class RecordingSink:
    """Records every batch, send outcome, state change and change of the bot's groups."""

    accepts_changes = True  # it reads ChatMessage.edits and revokes

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches: list[list[ChatMessage]] = []  # only the batches the sink accepted
        self.outcomes: list[SendOutcome] = []
        self.states: list[tuple[ConnectionState, ConnectionDetail]] = []
        self.group_changes: list[GroupsChange] = []

    def messages_received(self, messages: Any) -> None:
        with self._lock:
            self.batches.append(list(messages))

    def send_finished(self, outcome: SendOutcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def state_changed(self, state: ConnectionState, detail: ConnectionDetail = ConnectionDetail()) -> None:
        with self._lock:
            self.states.append((state, detail))

    def groups_changed(self, change: GroupsChange) -> None:
        with self._lock:
            self.group_changes.append(change)

    def groups(self) -> list[GroupsChange]:
        with self._lock:
            return list(self.group_changes)

    def messages(self, source: Source | None = None) -> list[ChatMessage]:
        with self._lock:
            return [m for batch in self.batches for m in batch if source is None or m.source is source]

    def state_names(self) -> list[ConnectionState]:
        with self._lock:
            return [state for state, _ in self.states]

    def last_state(self) -> tuple[ConnectionState, ConnectionDetail] | None:
        with self._lock:
            return self.states[-1] if self.states else None
