"""The outbound queue and its pacing against WhatsApp bans (pure; the caller passes `now`).

One queue for every chat message the bot sends. Delivery messages go first. Between any two
sends: a global gap with random jitter; between two sends to one group: a per-group gap; at
most `hourly_cap` per hour; a backlog drains at half speed; everything stops while paused.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from domain.chat import Quote


@dataclass(frozen=True, slots=True)
class Pacing:
    min_gap: float
    jitter: float
    per_group_gap: float
    hourly_cap: int
    backlog_threshold: int = 20

    @classmethod
    def off(cls) -> Pacing:
        """No pacing at all (benchmarks, tests)."""
        return cls(0.0, 0.0, 0.0, 10**9, 10**9)


@dataclass(slots=True)
class Item:
    key: str
    group_id: str
    text: str
    quote: Quote | None
    priority: int
    reply_to: Any = None
    enqueued_at: float = 0.0
    seq: int = 0


@dataclass(slots=True)
class Outbox:
    pacing: Pacing
    rng: random.Random = field(default_factory=random.Random)
    _heap: list[tuple[int, int, str]] = field(default_factory=list)
    _items: dict[str, Item] = field(default_factory=dict)
    _seq: int = 0
    _last_sent: float | None = None
    _gap: float = 0.0
    _group_last: dict[str, float] = field(default_factory=dict)
    _sent: deque[float] = field(default_factory=deque)
    paused_until: float | None = None
    pause_reason: str = ""

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: Item) -> bool:
        """Queue an item; one with the same key still waiting is replaced (True if so)."""
        replaced = item.key in self._items
        self._seq += 1
        item.seq = self._seq
        self._items[item.key] = item
        heapq.heappush(self._heap, (item.priority, item.seq, item.key))
        return replaced

    def pause(self, until: float, reason: str) -> None:
        self.paused_until = until if self.paused_until is None else max(until, self.paused_until)
        self.pause_reason = reason

    def sent_last_hour(self, now: float) -> int:
        self._expire(now)
        return len(self._sent)

    def _expire(self, now: float) -> None:
        # Same arithmetic as the cap's ready time (`_sent[0] + 3600`): `now - 3600` can round below
        # it, keeping a send in the window at the very instant due_at said it had left.
        while self._sent and self._sent[0] + 3600 <= now:
            self._sent.popleft()

    def _global_ready_at(self, now: float) -> float:
        """Earliest time any send is allowed, ignoring per-group gaps."""
        ready = now
        if self.paused_until is not None:
            if now < self.paused_until:
                ready = self.paused_until
            else:
                self.paused_until, self.pause_reason = None, ""
        if self._last_sent is not None:
            gap = self._gap * (2 if len(self._items) > self.pacing.backlog_threshold else 1)
            ready = max(ready, self._last_sent + gap)
        self._expire(now)
        if len(self._sent) >= self.pacing.hourly_cap:
            ready = max(ready, self._sent[0] + 3600)
        return ready

    def _live(self, key: str, seq: int) -> Item | None:
        item = self._items.get(key)
        return item if item is not None and item.seq == seq else None

    def due_at(self, now: float) -> float | None:
        """When take() could next return something; None if the queue is empty."""
        if not self._items:
            return None
        ready = self._global_ready_at(now)
        earliest_group = min(
            self._group_last.get(i.group_id, float("-inf")) + self.pacing.per_group_gap
            for i in self._items.values()
        )
        return max(ready, earliest_group)

    def take(self, now: float) -> Item | None:
        """The most urgent item allowed at `now` (recording its send), or None."""
        if not self._items or self._global_ready_at(now) > now:
            return None
        skipped: list[tuple[int, int, str]] = []
        found: Item | None = None
        while self._heap:
            entry = heapq.heappop(self._heap)
            item = self._live(entry[2], entry[1])
            if item is None:
                continue  # replaced or already taken
            if now < self._group_last.get(item.group_id, float("-inf")) + self.pacing.per_group_gap:
                skipped.append(entry)
                continue
            found = item
            break
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        if found is None:
            return None
        del self._items[found.key]
        self._last_sent = now
        self._gap = self.pacing.min_gap + self.rng.uniform(0, self.pacing.jitter)
        self._group_last[found.group_id] = now
        self._sent.append(now)
        return found

    def withdraw(self, key: Any) -> Item | None:
        """Take back a message still waiting (None if it is not waiting: sent, or never queued)."""
        return self._items.pop(key, None)

    def put_back(self, item: Item) -> None:
        """Return an item that could not be sent (rate limited) to the front of its priority."""
        if item.key in self._items:
            return  # a newer one with the same key is already waiting
        self._items[item.key] = item
        heapq.heappush(self._heap, (item.priority, item.seq, item.key))
