"""The WhatsApp transport inside the real actors (simpleSystemBase, FakeClock): real neonize
events in, InboundBatch and orders out; paced, quoted replies; the pause on a ban; re-pair."""

from __future__ import annotations

import io
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from neonize.exc import SendMessageError
from thespian.actors import ActorExitRequest, ActorSystem

from actors.gateway import GatewayActor, make_transport
from actors.messages import (
    Batch,
    GatewayStatus,
    GetGatewayStatus,
    InboundBatch,
    QueryResult,
    RePair,
    SendResult,
    SendText,
    StartGateway,
)
from actors.system import quiet_log_config
from domain.clock import FakeClock, from_iso
from domain.chat import ConnectionState, Quote, Source
from gateway.whatsapp.transport import WhatsAppTransport
from tests.harness import ChatBot, actor_config
from tests.sinks import wait_for
from tests.test_whatsapp_support import (
    BOT_LID,
    BOT_PHONE,
    GROUP,
    GROUP_NAME,
    KARIM_LID,
    KARIM_PHONE,
    RAHIM_LID,
    RAHIM_PHONE,
    FakeOps,
    changed,
    connect,
    edit,
    event,
    group_message,
    groups_cached,
    history,
    joined,
    no_threads_left,  # noqa: F401  (autouse fixture)
    push,
    revoke,
)

T = timedelta(seconds=5)
GROUP2 = "120363000000000002@g.us"
HOUR = 3600.0


def whatsapp(data_dir: Path, clock: FakeClock, ops: FakeOps | None = None) -> WhatsAppTransport:
    transport = WhatsAppTransport(str(data_dir / "whatsapp-session.sqlite3"), ops=ops or FakeOps(clock=clock.now),
                                  clock=clock.now, terminal=io.StringIO(), reconnect_min=0.01, reconnect_max=0.05)
    transport.end_poll = 0.02
    return transport


class Gateway:
    """The GatewayActor with a WhatsApp transport; the test plays the Supervisor and the groups."""

    def __init__(self, data_dir: Path, **overrides: str) -> None:
        self.asys = ActorSystem("simpleSystemBase", logDefs=quiet_log_config())
        self.clock = FakeClock()
        self.ops = FakeOps(clock=self.clock.now)
        self.transport = whatsapp(data_dir, self.clock, self.ops)
        self.actor = self.asys.createActor(GatewayActor)
        self.config = actor_config(data_dir, **overrides)
        self.inbox: list[Any] = []  # everything the gateway told "the Supervisor" and "the groups"

    @property
    def client(self) -> Any:
        return self.transport.client

    def start(self) -> None:
        reply = self.asys.ask(self.actor, StartGateway("start", self.config, self.transport, clock=self.clock), T)
        assert isinstance(reply, QueryResult) and reply.status == 200, reply
        self.settle()

    def connect(self) -> None:
        wait_for(lambda: self.ops.running, "a session")
        connect(self.client)
        wait_for(lambda: self.transport.state is ConnectionState.CONNECTED, "connected")
        wait_for(lambda: groups_cached(self.transport, self.ops), "the group list")
        self.settle(lambda: self.status().state is ConnectionState.CONNECTED)

    def settle(self, until: Callable[[], Any] | None = None, timeout: float = 5.0) -> None:
        """Let the actor work (its transport's threads report on their own time) until `until`
        holds, or until nothing happens for a moment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.asys.listen(timedelta(seconds=0.05))
            if msg is not None:
                self.inbox.extend(msg.items if isinstance(msg, Batch) else [msg])
            elif until is None:
                return
            if until is not None and until():
                return
        if until is not None:
            raise AssertionError("timed out waiting for the gateway")

    def tell(self, msg: Any) -> None:
        self.asys.tell(self.actor, msg)

    def status(self) -> GatewayStatus:
        reply = self.asys.ask(self.actor, GetGatewayStatus(uuid.uuid4().hex), T)
        while not isinstance(reply, QueryResult):
            self.inbox.extend(reply.items if isinstance(reply, Batch) else [reply])
            reply = self.asys.listen(T)
        return reply.data

    def batches(self) -> list[InboundBatch]:
        return [m for m in self.inbox if isinstance(m, InboundBatch)]

    def results(self) -> list[SendResult]:
        return [m for m in self.inbox if isinstance(m, SendResult)]

    def stop(self) -> None:
        self.asys.tell(self.actor, ActorExitRequest())
        self.asys.shutdown()


@pytest.fixture
def make_gateway(data_dir: Path) -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(**overrides: str) -> Gateway:
        g = Gateway(data_dir, **overrides)
        made.append(g)
        g.start()
        g.connect()
        return g

    yield make
    for g in made:
        g.stop()


# --- inbound through the GatewayActor -------------------------------------------------------


def test_what_the_gateway_passes_on_from_real_neonize_events(make_gateway: Callable[..., Gateway]) -> None:
    g = make_gateway()
    now_ms = int(g.clock.now() * 1000) + 123
    push(g.client, group_message(".10", sender=RAHIM_LID, sender_alt=RAHIM_PHONE, timestamp_ms=now_ms))
    push(g.client, group_message("hello"))  # chat: not even recorded
    push(g.client, group_message(".20", sender=KARIM_PHONE, sender_alt=KARIM_LID, timestamp_ms=now_ms))
    push(g.client, event("offline_sync_preview"))
    push(g.client, group_message(".30", timestamp_ms=now_ms))
    push(g.client, event("offline_sync_completed"))
    order = group_message(".40", timestamp_ms=now_ms)
    push(g.client, order)
    push(g.client, edit(order, ".50"))
    push(g.client, revoke(order))
    push(g.client, group_message(".60", sender=BOT_LID, sender_alt=BOT_PHONE, from_me=True))
    push(g.client, group_message(".70", group="8801712345678@s.whatsapp.net", is_group=False))
    push(g.client, history(("3EB0H1", RAHIM_LID, ".80", int(g.clock.now()) - 60)))
    g.settle(lambda: sum(len(b.items) for b in g.batches()) >= 7)
    g.settle()
    items = [i for b in g.batches() for i in b.items]
    order_id = order.Info.ID
    assert [(i.message.text, i.message.sender, i.message.sender_alt, i.message.source,
             i.message.edits, i.message.revokes) for i in items] == [
        (".10", RAHIM_LID, RAHIM_PHONE, Source.LIVE, "", ""),
        (".20", KARIM_PHONE, KARIM_LID, Source.LIVE, "", ""),
        (".30", RAHIM_LID, RAHIM_PHONE, Source.OFFLINE, "", ""),
        (".40", RAHIM_LID, RAHIM_PHONE, Source.LIVE, "", ""),
        (".50", RAHIM_LID, RAHIM_PHONE, Source.LIVE, order_id, ""),  # an edit, never a new order
        ("", RAHIM_LID, RAHIM_PHONE, Source.LIVE, "", order_id),  # a delete
        (".80", RAHIM_LID, "", Source.HISTORY, "", ""),
    ]
    assert items[0].message.timestamp == pytest.approx(now_ms / 1000)
    assert {i.message.group_name for i in items} == {GROUP_NAME}
    # Recorded in the durable inbox before anything else — history too: WhatsApp sends its
    # history sync once, after pairing, and cannot be asked for it again.
    assert [i.inbox_seq > 0 for i in items] == [True] * 7


# --- outbound through the GatewayActor ------------------------------------------------------


def test_replies_are_paced_deliveries_first_and_quote_the_order(make_gateway: Callable[..., Gateway]) -> None:
    g = make_gateway(**{"outbox.min_gap": "1s", "outbox.jitter": "0s", "outbox.per_group_gap": "3s"})
    quote = Quote("3EB0ORDER3", RAHIM_LID, ".30")
    g.tell(SendText("A1:receipt", GROUP, "r1", Quote("3EB0ORDER1", RAHIM_LID, ".10"), priority=1))
    g.tell(SendText("A2:receipt", GROUP, "r2", Quote("3EB0ORDER2", KARIM_PHONE, ".20"), priority=1))
    g.tell(SendText("B3:delivery", GROUP2, "d3", quote, priority=0))
    g.settle(lambda: len(g.results()) == 1)
    assert g.ops.texts() == ["r1"]
    g.clock.advance(1.0)  # the global gap is over; GROUP's own gap is not
    g.settle(lambda: len(g.results()) == 2)
    assert g.ops.texts() == ["r1", "d3"]
    g.clock.advance(1.0)
    g.settle()
    assert g.ops.texts() == ["r1", "d3"]  # r2 waits for the per-group gap
    g.clock.advance(1.0)
    g.settle(lambda: len(g.results()) == 3)
    assert g.ops.texts() == ["r1", "d3", "r2"]
    start = g.ops.sent_at[0]
    assert [t - start for t in g.ops.sent_at] == [0.0, 1.0, 3.0]
    context = g.ops.sent[1][1].extendedTextMessage.contextInfo
    assert (context.stanzaID, context.participant, context.quotedMessage.conversation) == (
        "3EB0ORDER3", RAHIM_LID, ".30")
    assert g.ops.sent[1][0].User == "120363000000000002"
    assert g.ops.sent[2][1].extendedTextMessage.contextInfo.participant == KARIM_PHONE
    assert [(r.key, r.ok, r.message_id) for r in g.results()] == [
        ("A1:receipt", True, "3EB0BOT000001"), ("B3:delivery", True, "3EB0BOT000002"),
        ("A2:receipt", True, "3EB0BOT000003")]


def test_a_ban_pauses_all_sending_until_connected_again(make_gateway: Callable[..., Gateway]) -> None:
    g = make_gateway()
    push(g.client, event("temporary_ban"))  # 3600 s
    g.settle(lambda: g.status().state is ConnectionState.BANNED)
    status = g.status()
    assert status.paused_until == pytest.approx(g.clock.now() + HOUR)  # visible on the panel
    g.tell(SendText("A1:delivery", GROUP, "d1", priority=0))
    g.settle()
    assert g.ops.sent == [] and g.results() == [] and g.status().queued == 1
    g.clock.advance(HOUR + 10)  # the ban is over: the transport connects again by itself
    g.tell(SendText("A2:receipt", GROUP, "r2"))  # any event pumps the queue
    g.settle()
    assert g.ops.sent == []  # not connected yet: still nothing goes out
    wait_for(lambda: g.ops.running == 2, "a new session after the ban")
    connect(g.client)
    g.settle(lambda: len(g.results()) == 2)
    assert g.ops.texts() == ["d1", "r2"] and g.status().paused_until is None


def test_a_rate_limit_error_pauses_and_keeps_the_message_other_failures_go_back(
        make_gateway: Callable[..., Gateway]) -> None:
    g = make_gateway(**{"outbox.rate_limit_pause": "30s"})
    g.ops.send_errors = [SendMessageError("server returned error 429")]
    g.tell(SendText("A1:delivery", GROUP, "d1", priority=0))
    g.settle(lambda: g.status().paused_until is not None)  # the outcome comes from the send thread
    assert g.results() == [] and g.status().paused_until == pytest.approx(g.clock.now() + 30)
    g.clock.advance(31)
    g.tell(SendText("A2:receipt", GROUP, "r2"))
    g.settle(lambda: len(g.results()) == 2)
    assert g.ops.texts() == ["d1", "d1", "r2"] and all(r.ok for r in g.results())

    g.ops.send_errors = [SendMessageError("websocket not connected")]
    g.tell(SendText("A3:delivery", GROUP, "d3", priority=0))
    g.settle(lambda: len(g.results()) == 3)
    failed = g.results()[-1]
    assert (failed.key, failed.ok) == ("A3:delivery", False) and "not connected" in failed.error
    g.tell(SendText("A3:delivery", GROUP, "d3", priority=0))  # the group's retry
    g.settle(lambda: len(g.results()) == 4)
    assert g.results()[-1].ok


# --- the whole system -----------------------------------------------------------------------


@pytest.fixture
def wa_bot(make_bot: Callable[..., ChatBot], data_dir: Path) -> Iterator[tuple[ChatBot, WhatsAppTransport, FakeOps]]:
    clock = FakeClock()
    ops = FakeOps(clock=clock.now, groups={GROUP: GROUP_NAME, GROUP2: "Karim Telecom"})
    transport = whatsapp(data_dir, clock, ops)
    bot = make_bot(clock=clock, fake=transport)
    wait_for(lambda: ops.running, "a session")
    connect(transport.client)
    wait_for(lambda: transport.state is ConnectionState.CONNECTED, "connected")
    wait_for(lambda: groups_cached(transport, ops), "the group list")
    settle(bot, lambda: bot.status()["gateway"]["state"] == "connected")
    yield bot, transport, ops
    transport.stop()  # simpleSystemBase's shutdown sends no ActorExitRequest to the GatewayActor


def settle(bot: ChatBot, until: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bot.pump()
        if until():
            return
    raise AssertionError("timed out waiting for the actors")


def test_orders_from_whatsapp_events(wa_bot: tuple[ChatBot, WhatsAppTransport, FakeOps]) -> None:
    bot, transport, ops = wa_bot
    t0 = bot.clock.now()
    ms = int(t0 * 1000) + 250
    order = group_message(".10", sender=RAHIM_LID, sender_alt=RAHIM_PHONE, timestamp_ms=ms)
    push(transport.client, order)
    settle(bot, lambda: len(ops.sent) == 1)
    push(transport.client, order)  # delivered twice
    push(transport.client, edit(order, ".50"))  # the pending order changes, and the bot says so
    settle(bot, lambda: len(ops.sent) == 2)
    push(transport.client, revoke(order))  # deleting the message cancels the pending order
    settle(bot, lambda: len(ops.sent) == 3)
    push(transport.client, group_message(".15", sender=BOT_LID, sender_alt=BOT_PHONE, from_me=True))
    push(transport.client, group_message(".99", group=RAHIM_PHONE, is_group=False))
    push(transport.client, event("offline_sync_preview"))
    push(transport.client, group_message(".20", sender=KARIM_PHONE, sender_alt=KARIM_LID, timestamp_ms=ms + 1000))
    push(transport.client, event("offline_sync_completed"))
    settle(bot, lambda: len(ops.sent) == 4)
    bot.advance(2 * 24 * HOUR)  # two days after the install: history of the day before
    now = bot.clock.now()
    push(transport.client, history(("3EB0OLD", KARIM_LID, ".30", int(now - 25 * HOUR)),
                                   ("3EB0NEW", KARIM_LID, ".40", int(now - HOUR)),
                                   group=GROUP2, name="Karim Telecom"))
    settle(bot, lambda: len(ops.sent) == 5)
    bot.pump(0.2)

    orders = sorted(bot.orders(), key=lambda o: from_iso(o["date"]))
    assert [(o["groupId"], o["diamonds"], o["userId"], o["userAlt"], o["recovered"], o["status"])
            for o in orders] == [
        (GROUP, 50, RAHIM_LID, RAHIM_PHONE, False, "cancelled"),  # once; edited, then deleted
        (GROUP, 20, KARIM_PHONE, KARIM_LID, True, "pending"),  # sent while the bot was offline
        (GROUP2, 40, KARIM_LID, "", True, "pending"),  # history newer than history.max_age; not the older one
    ]
    assert from_iso(orders[0]["date"]) == pytest.approx(ms / 1000, abs=0.001)  # milliseconds, normalised
    assert orders[0]["messageId"] == order.Info.ID and orders[0]["groupName"] == GROUP_NAME
    assert orders[2]["groupName"] == "Karim Telecom"
    # Each receipt quotes its order message, as stored with the order.
    quoted = [(m.extendedTextMessage.contextInfo.stanzaID, m.extendedTextMessage.contextInfo.participant)
              for _, m in ops.sent if m.extendedTextMessage.text.startswith("📥")]
    assert quoted == [(order.Info.ID, RAHIM_LID), (orders[1]["messageId"], KARIM_PHONE), ("3EB0NEW", KARIM_LID)]


def test_re_pair_through_the_supervisor(wa_bot: tuple[ChatBot, WhatsAppTransport, FakeOps]) -> None:
    bot, transport, ops = wa_bot
    reply = bot.asys.ask(bot.supervisor, RePair("r1"), T)
    assert isinstance(reply, QueryResult) and (reply.request_id, reply.status, reply.data) == ("r1", 200, {"ok": True})
    wait_for(lambda: ops.running == 2, "a new session")
    assert ops.logouts == 1
    settle(bot, lambda: bot.status()["gateway"]["state"] == "pairing")


def test_re_pair_is_refused_by_a_transport_without_pairing(bot: ChatBot) -> None:
    reply = bot.asys.ask(bot.supervisor, RePair("r1"), T)
    assert isinstance(reply, QueryResult) and reply.status == 409 and "nothing to pair" in reply.error


def test_gateway_kind_whatsapp_builds_the_transport(data_dir: Path) -> None:
    config = actor_config(data_dir, **{"gateway.kind": "whatsapp", "whatsapp.pair_phone": "+880 1712-345678"})
    transport = make_transport(config)
    assert isinstance(transport, WhatsAppTransport)
    assert transport.session_db == str(data_dir.resolve() / "whatsapp-session.sqlite3")
    assert transport.pair_phone == "8801712345678"
    transport.stop()  # never started: nothing to do


def test_groups_from_whatsapp_are_known_before_their_first_order(
        wa_bot: tuple[ChatBot, WhatsAppTransport, FakeOps]) -> None:
    """Issue 12: the joined-groups list makes every group known; being added to one, renamed
    or removed reaches the ledger from neonize's events."""
    bot, transport, ops = wa_bot
    settle(bot, lambda: {g["group_id"] for g in bot.groups()} == {GROUP, GROUP2})
    new = "120363000000000003@g.us"
    push(transport.client, joined(new, "Nusrat Topup"))
    settle(bot, lambda: any(g["group_id"] == new for g in bot.groups()))
    push(transport.client, changed(GROUP2, leave=(BOT_LID,)))
    settle(bot, lambda: {g["group_id"]: g["settings"]["leftAt"] for g in bot.groups()}[GROUP2])
    groups = {g["group_id"]: g["settings"] for g in bot.groups()}
    assert groups[new]["groupName"] == "Nusrat Topup" and groups[new]["joinedAt"]
    assert not groups[GROUP]["leftAt"] and not groups[new]["leftAt"]
    assert bot.update_group(new, rate="2.50").status == 200
    push(transport.client, group_message("576515275\n100", group=new, timestamp_ms=int(bot.clock.now() * 1000)))
    settle(bot, lambda: bot.orders())
    [order] = bot.orders()
    assert (order["groupId"], order["amount"], order["playerId"]) == (new, "250.00", "576515275")
