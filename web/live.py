"""Live updates: changes pushed by the actor system, fanned out to the panel's browsers.

One thread holds its own private ActorSystem handle, subscribes to the PersistenceActor (a
lease it renews, so a restarted PersistenceActor is subscribed again), and listens. Each change
is handed to the event loop and copied into every connected client's queue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from actors.messages import SUBSCRIPTION_TTL, Changed, Subscribe

log = logging.getLogger("diamondbot.panel.live")

CLIENT_QUEUE = 200  # a client this far behind is told to reload instead


class Closed:
    """Put in a client's queue when the panel shuts down: its stream must end now."""


CLOSED = Closed()
Item = Changed | Closed | None  # None: changes were missed, reload


class Fanout:
    """The event-loop side: one queue per connected client."""

    def __init__(self) -> None:
        self.clients: set[asyncio.Queue[Item]] = set()

    def subscribe(self) -> asyncio.Queue[Item]:
        q: asyncio.Queue[Item] = asyncio.Queue(CLIENT_QUEUE + 1)  # room for CLOSED
        self.clients.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Item]) -> None:
        self.clients.discard(q)

    def end_streams(self) -> None:
        """Make every open stream end (the panel is shutting down)."""
        for q in list(self.clients):
            while q.full():
                q.get_nowait()
            q.put_nowait(CLOSED)
        self.clients.clear()

    def publish(self, change: Changed | None) -> None:
        """Copy a change to every client; None tells them to resynchronise (a gap)."""
        for q in list(self.clients):
            if q.qsize() < CLIENT_QUEUE:
                q.put_nowait(change)
            else:
                # Too slow: drop its backlog and ask it to reload what it shows.
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(None)


class LiveFeed(Fanout):
    """Fanout fed by a listener thread inside the actor system."""

    def __init__(self, asys: Any, supervisor: Any) -> None:
        super().__init__()
        self._asys = asys
        self._supervisor = supervisor
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_seq = 0

    def subscribe(self) -> asyncio.Queue[Item]:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._listen, name="live-feed", daemon=True)
            self._thread.start()
        return super().subscribe()

    def _listen(self) -> None:
        with self._asys.private() as handle:
            renewed = 0.0
            while not self._stop.is_set():
                if time.monotonic() - renewed > SUBSCRIPTION_TTL / 3:
                    handle.tell(self._supervisor, Subscribe(uuid.uuid4().hex))
                    renewed = time.monotonic()
                msg = handle.listen(timedelta(seconds=0.5))
                if isinstance(msg, Changed) and self._loop is not None:
                    # A restarted PersistenceActor counts from 1 again; anything else is a gap.
                    gap = msg.seq != self._last_seq + 1 and self._last_seq != 0 and msg.seq != 1
                    self._last_seq = msg.seq
                    if gap:
                        self._loop.call_soon_threadsafe(self.publish, None)
                    self._loop.call_soon_threadsafe(self.publish, msg)

    def close(self) -> None:
        """Stop listening (before the actor system shuts down)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
