"""A transport that plays many resellers at once, for benchmarks.

It lives in the GatewayActor's process (the Supervisor hands it over in StartSystem), posts
`count` order messages over `groups` groups in batches through the real sink (so every
message goes through the durable inbox), and records when each receipt reached it, i.e. when
the order was durable and its confirmation handed to the transport; optionally also when each
delivery message ("✅ …", after an approval) reached it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

from domain.chat import ChatMessage, ConnectionState, GroupInfo, OutboundText, SendOutcome
from gateway.transport import Transport, TransportSink
from storage.atomic import atomic_write_bytes


def group_id(group: int) -> str:
    """The chat id of load group number `group`."""
    return f"1203639{group:011d}@g.us"


def order_message(group: int, sender: str, text: str, now: float) -> ChatMessage:
    """An order message from a reseller in load group number `group`."""
    return ChatMessage(group_id=group_id(group), group_name=f"Load {group}",
                       message_id=f"3EB0{uuid.uuid4().hex[:18].upper()}", sender=sender, sender_alt="",
                       sender_name="Load", text=text, timestamp=now)


def read_result(path: Path) -> dict:
    """A LoadTransport's result file, or the error it wrote instead."""
    result = json.loads(path.read_text())
    if "error" in result:
        raise RuntimeError(f"the load transport gave up: {result['error']}")
    return result


class LoadTransport(Transport):
    kind = "load"

    def __init__(self, *, count: int, groups: int, batch: int, result_file: str,
                 rate: float = 0.0, hold_sends: bool = False, deliveries: int = 0,
                 deliveries_file: str = "") -> None:
        self.count, self.groups, self.batch = count, groups, batch
        # Delivery messages ("✅ …") to expect, and where to write when each reached the transport.
        self.deliveries, self.deliveries_file = deliveries, deliveries_file
        self._delivered: dict[str, float] = {}  # quoted order message id -> when it was handed over
        self.rate = rate  # messages per second to offer; 0: as fast as the sink takes them
        self.result_file = result_file
        self.hold_sends = hold_sends
        self._sink: TransportSink | None = None
        self._state = ConnectionState.STOPPED
        self._lock = threading.Lock()
        self._posted_at: dict[str, float] = {}  # message id -> when it was handed to the sink
        self._latencies: list[float] = []
        self._receipts = 0
        self._started = 0.0
        self._stop = threading.Event()
        self._warming = False

    def __getstate__(self) -> dict:
        # Pickled into the gateway's process before start: only the parameters travel.
        return {k: v for k, v in self.__dict__.items() if k in
                ("count", "groups", "batch", "rate", "result_file", "hold_sends", "deliveries",
                 "deliveries_file")}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def start(self, sink: TransportSink) -> None:
        self._sink = sink
        self._state = ConnectionState.CONNECTED
        sink.state_changed(ConnectionState.CONNECTED)
        threading.Thread(target=self._post, name="load", daemon=True).start()

    def _offer(self, messages: list[ChatMessage], now: float) -> None:
        """Hand messages to the sink (it returns once the inbox fsynced them), timing each."""
        assert self._sink is not None
        with self._lock:
            for m in messages:
                self._posted_at[m.message_id] = now
        self._sink.messages_received(messages)

    def _post(self) -> None:
        # Warm up: one order per group, so every group actor exists before the clock runs
        # (the bar is throughput with 100 groups, not how fast new groups are met).
        self._warming = True
        now = time.time()
        self._offer([order_message(g, "8801700000000@lid", ".1", now) for g in range(self.groups)], now)
        deadline = time.monotonic() + 120
        while self._receipts < self.groups and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)
        if self._receipts < self.groups and not self._stop.is_set():
            # An order not confirmed is an order lost (or a stuck group): the run is void.
            atomic_write_bytes(Path(self.result_file), json.dumps(
                {"error": f"warm-up: {self._receipts} of {self.groups} orders confirmed within 120 s"}).encode())
            return
        with self._lock:
            self._warming = False
            self._receipts = 0
            self._latencies.clear()
        self._started = time.time()
        sent = 0
        while sent < self.count and not self._stop.is_set():
            n = min(self.batch, self.count - sent)
            now = time.time()
            self._offer([order_message(k % self.groups, f"{880170000000 + k % 997}@lid", f".{1 + k % 500}", now)
                         for k in range(sent, sent + n)], now)
            sent += n
            if self.rate:
                delay = self._started + sent / self.rate - time.time()
                if delay > 0:
                    time.sleep(delay)

    def send(self, request: OutboundText) -> None:
        assert self._sink is not None
        now = time.time()
        done = False
        with self._lock:
            quoted = request.quote.message_id if request.quote else ""
            if self.deliveries and request.text.startswith("✅"):
                self._delivered[quoted] = now
                if len(self._delivered) == self.deliveries:
                    # Whole or absent: the bench polls for this file and reads it as soon as it exists.
                    atomic_write_bytes(Path(self.deliveries_file), json.dumps(self._delivered).encode())
            posted = self._posted_at.pop(quoted, None)
            if posted is not None:
                self._receipts += 1
                if not self._warming:
                    self._latencies.append(now - posted)
                    done = self._receipts == self.count
        self._sink.send_finished(SendOutcome(request.request_id, True, message_id=uuid.uuid4().hex, timestamp=now))
        if done:
            self._write_result(now)

    def _write_result(self, finished: float) -> None:
        lat = sorted(self._latencies)
        result = {
            "orders": self._receipts,
            "seconds": finished - self._started,
            "orders_per_s": self._receipts / (finished - self._started),
            "latency_p50_ms": 1000 * lat[len(lat) // 2],
            "latency_p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1],
        }
        atomic_write_bytes(Path(self.result_file), json.dumps(result).encode())

    def stop(self) -> None:
        self._stop.set()
        self._state = ConnectionState.STOPPED

    def history(self, group_id: str, limit: int) -> list[ChatMessage]:
        return []

    def list_groups(self) -> list[GroupInfo]:
        return []

    @property
    def state(self) -> ConnectionState:
        return self._state
