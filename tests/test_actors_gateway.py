"""The GatewayActor on its own (simpleSystemBase): the test plays the Supervisor and the groups."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from thespian.actors import Actor, ActorExitRequest, ActorSystem

from actors.gateway import GatewayActor
from actors.messages import (
    Batch,
    GatewayStatus,
    GetGatewayStatus,
    GroupInbound,
    GroupRoutes,
    InboundBatch,
    InboundHandled,
    OwnIds,
    QueryResult,
    SendingStopped,
    SendResult,
    SendText,
    StartGateway,
    StopSystem,
)
from actors.system import quiet_log_config
from domain.clock import FakeClock
from domain.chat import ConnectionState, Quote, Source
from gateway.fake import FakeTransport
from tests.harness import ALICE, GROUP, GROUP2, actor_config

T = timedelta(seconds=5)


class Gateway:
    def __init__(self, data_dir: Path, **overrides: str) -> None:
        self.asys = ActorSystem("simpleSystemBase", logDefs=quiet_log_config())
        self.clock = FakeClock()
        self.fake = FakeTransport(groups={GROUP: "Shop", GROUP2: "Other"}, clock_now=self.clock.now())
        self.actor = self.asys.createActor(GatewayActor)
        self.config = actor_config(data_dir, **overrides)
        self.inbox: list[Any] = []  # everything the gateway told "the Supervisor"

    def start(self) -> QueryResult:
        reply = self.asys.ask(self.actor, StartGateway("start", self.config, self.fake, clock=self.clock), T)
        return self.collect(first=reply)

    def collect(self, first: Any = None, seconds: float = 0.05) -> Any:
        """Gather messages sent to the test; return the reply to the request, if any."""
        result = None
        msg = first
        while True:
            if isinstance(msg, QueryResult):
                result = msg
            elif isinstance(msg, Batch):
                self.inbox.extend(msg.items)
            elif msg is not None:
                self.inbox.append(msg)
            msg = self.asys.listen(timedelta(seconds=seconds))
            if msg is None:
                return result

    def batches(self) -> list[InboundBatch]:
        return [m for m in self.inbox if isinstance(m, InboundBatch)]

    def results(self) -> list[SendResult]:
        return [m for m in self.inbox if isinstance(m, SendResult)]

    def stop(self) -> None:
        self.asys.tell(self.actor, ActorExitRequest())
        self.asys.shutdown()


@pytest.fixture
def gateway(data_dir: Path) -> Iterator[Gateway]:
    g = Gateway(data_dir)
    yield g
    g.stop()


def test_start_reports_connected_and_the_bots_own_ids(gateway: Gateway) -> None:
    assert gateway.start().status == 200
    states = [m.state for m in gateway.inbox if isinstance(m, GatewayStatus)]
    assert ConnectionState.CONNECTED in states
    assert OwnIds(gateway.fake.own_ids) in gateway.inbox


def test_only_order_looking_messages_go_on(gateway: Gateway) -> None:
    gateway.start()
    for text in ("hello", ".10", "10", ".abc", ".১০"):
        gateway.fake.post(GROUP, ALICE, text)
    gateway.collect()
    texts = [i.message.text for b in gateway.batches() for i in b.items]
    assert texts == [".10", ".১০"]
    assert all(i.inbox_seq > 0 for b in gateway.batches() for i in b.items)


def test_unhandled_inbox_entries_are_replayed_after_a_restart(data_dir: Path) -> None:
    first = Gateway(data_dir)
    first.start()
    first.fake.post(GROUP, ALICE, ".10")
    first.fake.post(GROUP, ALICE, ".20")
    first.collect()
    items = [i for b in first.batches() for i in b.items]
    first.asys.tell(first.actor, InboundHandled((items[0].inbox_seq,)))  # only .10 was made durable
    first.collect()
    first.stop()

    second = Gateway(data_dir)
    try:
        second.start()
        replayed = [i for b in second.batches() for i in b.items]
        assert [(i.message.text, i.message.source) for i in replayed] == [(".20", Source.INBOX)]
        assert replayed[0].message.message_id == items[1].message.message_id
    finally:
        second.stop()


def test_sends_are_paced_and_deliveries_go_first(data_dir: Path) -> None:
    g = Gateway(data_dir, **{"outbox.min_gap": "1s", "outbox.jitter": "0s"})
    try:
        g.start()
        g.fake.hold = False
        g.asys.tell(g.actor, SendText("A1:receipt", GROUP, "r1", priority=1))   # goes at once
        g.asys.tell(g.actor, SendText("A2:receipt", GROUP, "r2", priority=1))
        g.asys.tell(g.actor, SendText("A3:delivery", GROUP2, "d3", Quote("m", ALICE, ".10"), priority=0))
        g.collect()
        assert [r.text for r in g.fake.sent] == ["r1"]
        g.clock.advance(1.0)
        g.collect(seconds=1.2)  # the pump timer fires in real time; the clock says the gap is over
        assert [r.text for r in g.fake.sent] == ["r1", "d3"]
        assert g.fake.sent[1].quote == Quote("m", ALICE, ".10")
        g.clock.advance(1.0)
        g.collect(seconds=1.2)
        assert [r.text for r in g.fake.sent] == ["r1", "d3", "r2"]
        assert [(r.key, r.ok) for r in g.results()] == [("A1:receipt", True), ("A3:delivery", True),
                                                        ("A2:receipt", True)]
    finally:
        g.stop()


def test_a_rate_limit_pauses_all_sending_and_keeps_the_message(data_dir: Path) -> None:
    g = Gateway(data_dir, **{"outbox.rate_limit_pause": "30s"})
    try:
        g.start()
        g.fake.rate_limit_next = 1
        g.asys.tell(g.actor, SendText("A1:delivery", GROUP, "d1", priority=0))
        g.collect()
        assert g.fake.sent == [] and g.results() == []  # not a failure: it waits
        status = g.asys.ask(g.actor, GetGatewayStatus("s"), T).data
        assert status.paused_until == pytest.approx(g.clock.now() + 30) and status.queued == 1
        g.asys.tell(g.actor, SendText("A2:receipt", GROUP2, "r2"))
        g.collect()
        assert g.fake.sent == []  # everything waits, not just the first message
        g.clock.advance(31)
        g.asys.tell(g.actor, SendText("A3:receipt", GROUP2, "r3"))  # any event pumps the queue
        g.collect()
        assert [r.text for r in g.fake.sent] == ["d1", "r2", "r3"]
    finally:
        g.stop()


def test_a_failed_send_is_reported_to_its_group(gateway: Gateway) -> None:
    gateway.start()
    gateway.fake.fail_next = 1
    gateway.asys.tell(gateway.actor, SendText("A1:delivery", GROUP, "d1", priority=0))
    gateway.collect()
    [result] = gateway.results()
    assert (result.key, result.ok) == ("A1:delivery", False) and "503" in result.error


def test_a_stop_sends_nothing_new_and_waits_for_what_is_in_flight(gateway: Gateway) -> None:
    """So the groups write the results of the last sends before the database closes: a receipt
    that went out is not sent a second time after the restart."""
    gateway.start()
    gateway.fake.hold = True  # the transport has not answered yet
    for key in ("A1:receipt", "A2:receipt"):
        gateway.asys.tell(gateway.actor, SendText(key, GROUP, key, priority=1))
    gateway.collect()
    gateway.asys.tell(gateway.actor, StopSystem())
    gateway.asys.tell(gateway.actor, SendText("A3:receipt", GROUP, "A3:receipt", priority=1))
    gateway.collect()
    assert not [m for m in gateway.inbox if isinstance(m, SendingStopped)]  # still waiting
    gateway.fake.hold = False
    gateway.fake.release()
    gateway.collect()
    assert [(r.key, r.ok) for r in gateway.results()] == [("A1:receipt", True), ("A2:receipt", True)]
    [stopped] = [m for m in gateway.inbox if isinstance(m, SendingStopped)]
    assert stopped.unfinished == 0
    assert [r.text for r in gateway.fake.sent] == ["A1:receipt", "A2:receipt"]  # A3 waits for the next start


def test_a_stop_does_not_wait_for_a_transport_that_never_answers(gateway: Gateway) -> None:
    gateway.start()
    gateway.fake.hold = True
    gateway.asys.tell(gateway.actor, SendText("A1:receipt", GROUP, "r", priority=1))
    gateway.collect()
    gateway.asys.tell(gateway.actor, StopSystem())
    gateway.collect(seconds=1.5)  # DRAIN_WAIT passes
    [stopped] = [m for m in gateway.inbox if isinstance(m, SendingStopped)]
    assert stopped.unfinished == 1


class GroupDouble(Actor):
    """A group's actor: keeps what reaches it straight from the gateway."""

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, GroupInbound):
            self.__dict__.setdefault("got", []).extend(i.message.text for i in msg.items)
        elif msg == "report":
            self.send(sender, self.__dict__.get("got", []))


def test_a_later_message_never_overtakes_one_sent_through_the_supervisor(gateway: Gateway) -> None:
    """Two orders posted together to a starting group: the first goes through the Supervisor
    (no route yet), the route arrives, the second must follow the first's way until the first is
    handled, or it could reach the group first and take the lower order number."""
    gateway.start()
    group = gateway.asys.createActor(GroupDouble)
    gateway.fake.post(GROUP, ALICE, ".10")
    gateway.collect()
    first = [i for b in gateway.batches() for i in b.items]
    assert [i.message.text for i in first] == [".10"]  # no route: through the Supervisor

    gateway.asys.tell(gateway.actor, GroupRoutes(((GROUP, group),)))
    gateway.fake.post(GROUP, ALICE, ".20")
    gateway.fake.post(GROUP2, ALICE, ".30")  # another group, nothing detoured: as before
    gateway.collect()
    via_supervisor = [i.message.text for b in gateway.batches() for i in b.items]
    assert via_supervisor == [".10", ".20", ".30"]  # .20 followed .10; GROUP2 has no route either
    assert gateway.asys.ask(group, "report", T) == []

    handled = tuple(i.inbox_seq for b in gateway.batches() for i in b.items if i.message.group_id == GROUP)
    gateway.asys.tell(gateway.actor, InboundHandled(handled))  # the group made both durable
    gateway.fake.post(GROUP, ALICE, ".40")
    gateway.collect()
    assert gateway.asys.ask(group, "report", T) == [".40"]  # now straight to the group
    assert [i.message.text for b in gateway.batches() for i in b.items] == [".10", ".20", ".30"]


def test_only_the_detoured_messages_hold_the_way(gateway: Gateway) -> None:
    gateway.start()
    group = gateway.asys.createActor(GroupDouble)
    gateway.fake.post(GROUP, ALICE, ".10")
    gateway.fake.post(GROUP, ALICE, ".20")
    gateway.collect()
    seqs = [i.inbox_seq for b in gateway.batches() for i in b.items]
    gateway.asys.tell(gateway.actor, GroupRoutes(((GROUP, group),)))
    gateway.asys.tell(gateway.actor, InboundHandled((seqs[0],)))  # one of two handled: still held
    gateway.fake.post(GROUP, ALICE, ".30")
    gateway.collect()
    assert gateway.asys.ask(group, "report", T) == []
    gateway.asys.tell(gateway.actor, InboundHandled(tuple(i.inbox_seq for b in gateway.batches()
                                                          for i in b.items)))
    gateway.fake.post(GROUP, ALICE, ".50")
    gateway.collect()
    assert gateway.asys.ask(group, "report", T) == [".50"]
