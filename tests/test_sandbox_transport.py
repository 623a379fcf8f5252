"""SandboxTransport against a real sandbox process: recovery, acks, sends, reconnects, shutdown."""

from __future__ import annotations

import gc
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import orjson
import pytest

from domain.chat import ChatMessage, ConnectionState, GroupInfo, GroupsChange, OutboundText, Quote, SendOutcome, Source
from gateway.sandbox.transport import SandboxTransport, chat_message
from gateway.transport import TransportError
from sandbox.state import BOT_LID, BOT_PHONE
from tests import sinks
from tests.sinks import WAIT, wait_for
from tests.test_sandbox_server import MESSAGE_ID, RAHIM, SandboxProcess


class RecordingSink(sinks.RecordingSink):
    """Records what the transport reports; can be told to fail or block on a given call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.raise_on: set[int] = set()  # call numbers (1-based) that raise
        self.block_on: set[int] = set()  # call numbers that wait for `release`
        self.release = threading.Event()
        self.threads: set[str] = set()

    def messages_received(self, messages: Sequence[ChatMessage]) -> None:
        with self._lock:
            self.calls += 1
            call = self.calls
            self.threads.add(threading.current_thread().name)
        if call in self.block_on:
            self.release.wait(WAIT)
        if call in self.raise_on:
            raise RuntimeError("disk full (test)")
        super().messages_received(messages)


def api(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(base + path, method=method, data=None if body is None else orjson.dumps(body))
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, orjson.loads(exc.read())


class World:
    """The sandbox process plus helpers to act in it as users."""

    def __init__(self, process: SandboxProcess) -> None:
        self.process = process

    @property
    def url(self) -> str:
        return self.process.url

    def group(self, name: str) -> str:
        status, body = api(self.url, "POST", "/api/groups", {"name": name})
        assert status == 201
        return body["id"]

    def post(self, group_id: str, text: str, **fields: Any) -> dict[str, Any]:
        status, body = api(self.url, "POST", f"/api/groups/{group_id}/messages", {**RAHIM, "text": text, **fields})
        assert status == 201, body
        return body

    def edit(self, group_id: str, message_id: str, text: str) -> dict[str, Any]:
        path = f"/api/groups/{group_id}/messages/{message_id}"
        status, body = api(self.url, "PATCH", path, {"sender": RAHIM["sender"], "text": text})
        assert status == 200, body
        return body

    def delete(self, group_id: str, message_id: str) -> dict[str, Any]:
        path = f"/api/groups/{group_id}/messages/{message_id}?sender={RAHIM['sender']}"
        status, body = api(self.url, "DELETE", path)
        assert status == 200, body
        return body

    def status(self) -> dict[str, Any]:
        return api(self.url, "GET", "/api/status")[1]

    def rename(self, group_id: str, name: str) -> None:
        assert api(self.url, "PATCH", f"/api/groups/{group_id}", {"name": name})[0] == 200

    def bot_member(self, group_id: str, member: bool) -> None:
        assert api(self.url, "POST", f"/api/groups/{group_id}/bot", {"member": member})[0] == 200


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    process = SandboxProcess(tmp_path / "sandbox.json", tmp_path / "sandbox.log")
    process.start()
    try:
        yield World(process)
    finally:
        process.close()


@pytest.fixture
def make_transport(world: World) -> Iterator[Callable[..., tuple[SandboxTransport, RecordingSink]]]:
    made: list[SandboxTransport] = []

    def make(sink: RecordingSink | None = None, **options: Any) -> tuple[SandboxTransport, RecordingSink]:
        options = {"reconnect_min": 0.05, "reconnect_max": 0.4, **options}
        transport = SandboxTransport(world.url, **options)
        sink = sink or RecordingSink()
        made.append(transport)
        transport.start(sink)
        return transport, sink

    try:
        yield make
    finally:
        for transport in made:
            transport.stop()


def connected(transport: SandboxTransport) -> bool:
    return transport.state is ConnectionState.CONNECTED


def test_offline_history_and_live_messages_arrive_in_order(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    other = world.group("নুসরাত টপআপ")
    order = world.post(shop, ".10")
    world.post(other, ".20", sender="8801912345678@s.whatsapp.net", sender_alt="", sender_name="Nusrat")
    received = "📥 অর্ডার গ্রহণ করা হয়েছে"
    status, reply = api(world.url, "POST", "/api/bot/send", {"group_id": shop, "text": received, "quoted_id": order["id"]})
    assert status == 201

    transport, sink = make_transport()
    wait_for(lambda: len(sink.messages(Source.HISTORY)) == 3, "history")
    assert transport.own_ids == frozenset({BOT_PHONE, BOT_LID})
    assert sink.state_names()[:2] == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]

    offline = sink.messages(Source.OFFLINE)
    assert offline == [
        ChatMessage(group_id=shop, group_name="Rahim Store", message_id=order["id"], sender=RAHIM["sender"],
                    sender_alt=RAHIM["sender_alt"], sender_name="Rahim", text=".10", timestamp=float(order["timestamp"]),
                    from_me=False, source=Source.OFFLINE, quoted_id=""),
        ChatMessage(group_id=other, group_name="নুসরাত টপআপ", message_id=offline[1].message_id,
                    sender="8801912345678@s.whatsapp.net", sender_alt="", sender_name="Nusrat", text=".20",
                    timestamp=offline[1].timestamp, from_me=False, source=Source.OFFLINE, quoted_id=""),
    ]
    assert all(isinstance(m.timestamp, float) for m in offline)
    history = sink.messages(Source.HISTORY)
    assert [(m.group_name, m.text, m.from_me) for m in history] == [
        ("Rahim Store", ".10", False), ("Rahim Store", received, True), ("নুসরাত টপআপ", ".20", False),
    ]
    assert (history[1].message_id, history[1].sender, history[1].quoted_id) == (reply["id"], BOT_LID, order["id"])
    # Offline first (acknowledged), then the history replay: the bot deduplicates the overlap.
    assert [m.source for batch in sink.batches for m in batch][:2] == [Source.OFFLINE, Source.OFFLINE]
    wait_for(lambda: world.status()["pending_for_bot"] == 0, "the offline queue to be acknowledged")

    live = world.post(shop, ".30", quoted_id=order["id"])
    got = wait_for(lambda: sink.messages(Source.LIVE), "a live message")
    assert [(m.message_id, m.text, m.quoted_id, m.source) for m in got] == [
        (live["id"], ".30", order["id"], Source.LIVE),
    ]
    assert sink.threads == {"sandbox-inbound"}


def test_history_limit_applies_per_group(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    for n in range(1, 8):
        world.post(shop, f".{n}")
    _, sink = make_transport(history_limit=3)
    wait_for(lambda: sink.messages(Source.HISTORY), "history")
    assert [m.text for m in sink.messages(Source.HISTORY)] == [".5", ".6", ".7"]
    assert len(sink.messages(Source.OFFLINE)) == 7


def test_a_sink_that_raises_gets_the_batch_again_after_reconnect(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    order = world.post(shop, ".10")
    sink = RecordingSink()
    sink.raise_on = {1}
    transport, _ = make_transport(sink)
    wait_for(lambda: sink.messages(Source.OFFLINE), "the offline batch to come again")
    assert [m.message_id for m in sink.messages(Source.OFFLINE)] == [order["id"]]
    assert any(state is ConnectionState.RECONNECTING and "sink failed" in detail.message for state, detail in sink.states)
    wait_for(lambda: world.status()["pending_for_bot"] == 0, "the ack after the sink took it")
    wait_for(lambda: sink.messages(Source.HISTORY), "history after the recovered connection")


def test_no_ack_while_the_sink_blocks(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    order = world.post(shop, ".10")
    sink = RecordingSink()
    sink.block_on = {1}
    transport, _ = make_transport(sink)
    wait_for(lambda: sink.calls == 1, "the sink to be called")
    time.sleep(0.3)
    assert world.status()["pending_for_bot"] == 1  # the sink has not returned: nothing acknowledged
    assert transport.state is ConnectionState.CONNECTED  # and the loop is not stuck behind it

    # The sandbox drops the bot while the batch is still in the sink: it must come again.
    assert api(world.url, "POST", "/api/control/disconnect") == (200, {"disconnected": True})
    wait_for(lambda: sink.state_names().count(ConnectionState.CONNECTED) == 2, "a reconnect")
    sink.release.set()
    wait_for(lambda: len(sink.messages(Source.OFFLINE)) == 2, "the redelivery")
    assert {m.message_id for m in sink.messages(Source.OFFLINE)} == {order["id"]}
    wait_for(lambda: world.status()["pending_for_bot"] == 0, "the ack")


def test_send_with_a_quote_lands_in_history(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    transport, sink = make_transport()
    wait_for(lambda: connected(transport), "connect")
    order = world.post(shop, ".10")
    incoming = wait_for(lambda: sink.messages(Source.LIVE), "the order")[0]
    text = "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000"
    transport.send(OutboundText("req-1", shop, text, Quote(incoming.message_id, incoming.sender, incoming.text)))
    outcome = wait_for(lambda: sink.outcomes, "the outcome")[0]
    assert outcome.request_id == "req-1" and outcome.ok and MESSAGE_ID.fullmatch(outcome.message_id)
    assert outcome.timestamp >= float(order["timestamp"])

    history = transport.history(shop, 10)
    assert [(m.text, m.from_me, m.quoted_id, m.source) for m in history] == [
        (".10", False, "", Source.HISTORY), (text, True, order["id"], Source.HISTORY),
    ]
    assert (history[1].message_id, history[1].group_name) == (outcome.message_id, "Rahim Store")
    assert transport.history(shop, 0) == []
    assert transport.list_groups() == [GroupInfo(shop, "Rahim Store")]
    time.sleep(0.2)
    assert [m.text for m in sink.messages(Source.LIVE)] == [".10"]  # its own send is not echoed back


def test_send_outcomes_classify_failures(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    transport, sink = make_transport()
    wait_for(lambda: connected(transport), "connect")
    assert api(world.url, "POST", "/api/control/faults", {"rate_limit_sends": 1, "fail_sends": 1})[0] == 200
    for n in range(3):
        transport.send(OutboundText(f"r{n}", shop, f"text {n}"))
    transport.send(OutboundText("unknown-group", "120363000000000000@g.us", "hi"))
    transport.send(OutboundText("unknown-quote", shop, "hi", Quote("3EB0000000000000000000", RAHIM["sender"], ".1")))
    outcomes = wait_for(lambda: len(sink.outcomes) == 5 and list(sink.outcomes), "five outcomes")
    got = {o.request_id: (o.ok, o.retryable, o.rate_limited) for o in outcomes}
    assert got == {
        "r0": (False, True, True),  # 429: pause everything
        "r1": (False, True, False),  # 503: try again
        "r2": (True, True, False),
        "unknown-group": (False, False, False),  # 404: sending again cannot help
        "unknown-quote": (False, False, False),
    }
    assert [o.request_id for o in outcomes] == ["r0", "r1", "r2", "unknown-group", "unknown-quote"]  # sent in order
    assert "429" in outcomes[0].error and "unknown group" in outcomes[3].error
    with pytest.raises(TransportError) as unknown:
        transport.history("120363000000000000@g.us", 10)
    assert unknown.value.retryable is False


def test_reconnects_after_the_sandbox_restarts(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    world.post(shop, ".10")
    transport, sink = make_transport()
    wait_for(lambda: len(sink.messages(Source.HISTORY)) == 1, "history")

    world.process.kill()
    wait_for(lambda: transport.state is ConnectionState.RECONNECTING, "RECONNECTING")
    transport.send(OutboundText("while-down", shop, "hello"))
    outcome = wait_for(lambda: sink.outcomes, "an outcome while down")[0]
    assert (outcome.ok, outcome.retryable) == (False, True)
    with pytest.raises(TransportError) as down:
        transport.list_groups()
    assert down.value.retryable is True

    time.sleep(0.5)  # a few failed attempts, backing off
    world.process.start()
    wait_for(lambda: sink.state_names().count(ConnectionState.CONNECTED) == 2, "CONNECTED again")
    after = world.post(shop, ".20")
    wait_for(lambda: [m.message_id for m in sink.messages(Source.LIVE)] == [after["id"]], "a live message")
    assert len(sink.messages(Source.HISTORY)) == 1  # history is replayed on the first connect only
    assert len(sink.messages(Source.OFFLINE)) == 1  # acknowledged before the crash: not sent again
    transport.send(OutboundText("after", shop, "back"))
    wait_for(lambda: len(sink.outcomes) == 2, "a send after the restart")
    assert sink.outcomes[1].ok


def test_a_second_bot_connection_replaces_the_first(world: World, make_transport: Any) -> None:
    first, first_sink = make_transport()
    wait_for(lambda: connected(first), "the first connection")
    second, second_sink = make_transport()
    wait_for(lambda: connected(second), "the second connection")
    # Like whatsmeow on "stream replaced": no reconnect, or the two would take turns forever.
    # The sink hears of the state just after the transport sets it: wait for what it heard.
    wait_for(lambda: first.state is ConnectionState.STOPPED and first_sink.states
             and first_sink.states[-1][0] is ConnectionState.STOPPED, "the first to give up")
    assert "replaced" in first_sink.states[-1][1].message
    time.sleep(0.3)
    assert connected(second) and world.status()["bot_connected"]


def test_stop_leaves_no_thread_and_reports_every_send(world: World) -> None:
    shop = world.group("Rahim Store")
    before = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        transport = SandboxTransport(world.url, reconnect_min=0.05, reconnect_max=0.4)
        sink = RecordingSink()
        transport.start(sink)
        wait_for(lambda: connected(transport), "connect")
        for n in range(20):
            transport.send(OutboundText(f"r{n}", shop, f"text {n}"))
        transport.stop()
        transport.stop()  # idempotent
        transport.send(OutboundText("late", shop, "after stop"))
        del transport
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert set(threading.enumerate()) == before
    assert sorted(o.request_id for o in sink.outcomes) == sorted([f"r{n}" for n in range(20)] + ["late"])
    assert sink.outcomes[-1] == SendOutcome("late", ok=False, error="transport stopped", retryable=True)
    assert sink.states[-1][0] is ConnectionState.STOPPED


def test_calls_after_stop_raise(world: World) -> None:
    transport = SandboxTransport(world.url)
    with pytest.raises(TransportError):
        transport.list_groups()  # not started
    transport.start(RecordingSink())
    transport.stop()
    with pytest.raises(TransportError):
        transport.history("120363000000000000@g.us", 5)
    assert transport.state is ConnectionState.STOPPED


# -- edits and deletes -----------------------------------------------------------------------


def change(group: str, answer: dict[str, Any], source: Source, *, text: str, edits: str = "",
           revokes: str = "") -> ChatMessage:
    """The ChatMessage of an edit or delete: its own id and time, the changed message in edits/revokes."""
    return ChatMessage(group_id=group, group_name="Rahim Store", message_id=answer["id"], sender=RAHIM["sender"],
                       sender_alt=RAHIM["sender_alt"], sender_name="Rahim", text=text,
                       timestamp=float(answer["timestamp"]), from_me=False, source=source, quoted_id="",
                       edits=edits, revokes=revokes)


def test_edits_and_deletes_arrive_live_as_changes_of_the_message(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    transport, sink = make_transport()
    wait_for(lambda: connected(transport), "connect")
    order = world.post(shop, ".10")
    wait_for(lambda: sink.messages(Source.LIVE), "the order")
    edited = world.edit(shop, order["id"], ".20")
    deleted = world.delete(shop, order["id"])
    got = wait_for(lambda: len(sink.messages(Source.LIVE)) == 3 and sink.messages(Source.LIVE), "the changes")
    assert (got[0].message_id, got[0].text, got[0].edits, got[0].revokes) == (order["id"], ".10", "", "")
    assert got[1:] == [
        change(shop, edited, Source.LIVE, text=".20", edits=order["id"]),
        change(shop, deleted, Source.LIVE, text="", revokes=order["id"]),
    ]
    wait_for(lambda: world.status()["pending_for_bot"] == 0, "the changes to be acknowledged")
    # History shows the message as it is now; a deleted one is not a message any more.
    kept = world.post(shop, ".30")
    world.edit(shop, kept["id"], ".40")
    assert [(m.message_id, m.text, m.edits, m.revokes) for m in transport.history(shop, 10)] == [
        (kept["id"], ".40", "", "")]


def test_edits_and_deletes_made_while_away_come_through_the_offline_queue(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    order = world.post(shop, ".10")
    other = world.post(shop, ".30")
    edited = world.edit(shop, order["id"], ".20")
    deleted = world.delete(shop, other["id"])
    _, sink = make_transport(history_limit=0)
    offline = wait_for(lambda: len(sink.messages(Source.OFFLINE)) == 4 and sink.messages(Source.OFFLINE), "offline")
    # The messages as first posted, then their changes, in the sandbox's order.
    assert [(m.message_id, m.text, m.edits, m.revokes) for m in offline[:2]] == [
        (order["id"], ".10", "", ""), (other["id"], ".30", "", "")]
    assert offline[2:] == [
        change(shop, edited, Source.OFFLINE, text=".20", edits=order["id"]),
        change(shop, deleted, Source.OFFLINE, text="", revokes=other["id"]),
    ]
    wait_for(lambda: world.status()["pending_for_bot"] == 0, "the offline queue to be acknowledged")


class PlainSink(RecordingSink):
    accepts_changes = False  # like a bot that does not read edits and revokes yet


def test_a_sink_that_does_not_read_changes_gets_none_but_they_are_acknowledged(
    world: World, make_transport: Any
) -> None:
    shop = world.group("Rahim Store")
    order = world.post(shop, ".10")
    world.edit(shop, order["id"], ".50")
    transport, sink = make_transport(PlainSink(), history_limit=0)
    wait_for(lambda: connected(transport), "connect")
    world.delete(shop, order["id"])
    later = world.post(shop, ".20")
    wait_for(lambda: sink.messages(Source.LIVE), "the live message")
    wait_for(lambda: world.status()["pending_for_bot"] == 0, "everything to be acknowledged")
    # The edit's ".50" must never reach a bot that would take it for a new order.
    assert [(m.message_id, m.text) for m in sink.messages()] == [(order["id"], ".10"), (later["id"], ".20")]


FRAME = {"id": "3EB0C1", "sender": RAHIM["sender"], "group_id": "120363123456789012@g.us", "timestamp": 1_800_000_000}


def test_change_frames_map_to_chat_messages_and_bad_ones_are_refused() -> None:
    edit = chat_message({**FRAME, "text": ".20", "edits": "3EB0AA"}, Source.LIVE)
    assert (edit.message_id, edit.text, edit.edits, edit.revokes) == ("3EB0C1", ".20", "3EB0AA", "")
    revoke = chat_message({**FRAME, "text": "left over", "revokes": "3EB0AA"}, Source.OFFLINE)
    assert (revoke.text, revoke.edits, revoke.revokes, revoke.source) == ("", "", "3EB0AA", Source.OFFLINE)
    assert chat_message({**FRAME, "text": ".10"}, Source.LIVE).edits == ""
    for bad in (
        {**FRAME, "text": ""},  # an empty text would read as a message: only a delete has none
        {**FRAME, "text": ".20", "edits": ""},
        {**FRAME, "text": ".20", "edits": "3EB0AA", "revokes": "3EB0AA"},
        {**FRAME, "text": ".20", "edits": 5},
        {**FRAME, "revokes": None},
    ):
        with pytest.raises(ValueError):
            chat_message(bad, Source.LIVE)


def test_the_bots_groups_come_complete_at_connect_then_each_change(world: World, make_transport: Any) -> None:
    """Issue 12: hello lists every group the bot is in; creating, renaming, removing the bot and
    adding it again reach the sink as they happen."""
    shop = world.group("Rahim Store")
    gone = world.group("Karim Telecom")
    world.bot_member(gone, False)
    world.post(gone, ".10")
    world.post(shop, ".5")
    transport, sink = make_transport()
    wait_for(lambda: sink.groups(), "the group list")
    assert sink.groups()[0] == GroupsChange((GroupInfo(shop, "Rahim Store"),), complete=True)
    assert transport.list_groups() == [GroupInfo(shop, "Rahim Store")]
    wait_for(lambda: sink.messages(Source.HISTORY), "history")
    # Offline, then history: the .10 written in a group it is not in was never its message.
    assert [(m.text, m.source) for m in sink.messages()] == [(".5", Source.OFFLINE), (".5", Source.HISTORY)]

    new = world.group("নুসরাত টপআপ")
    world.rename(shop, "Rahim Store 2")
    world.rename(gone, "Karim 2")  # not the bot's group: nothing comes
    world.bot_member(new, False)
    world.bot_member(gone, True)
    wait_for(lambda: len(sink.groups()) == 5, "four changes")
    assert sink.groups()[1:] == [
        GroupsChange(present=(GroupInfo(new, "নুসরাত টপআপ"),)),
        GroupsChange(present=(GroupInfo(shop, "Rahim Store 2"),)),
        GroupsChange(gone=(new,)),
        GroupsChange(present=(GroupInfo(gone, "Karim 2"),)),
    ]
    assert sink.threads <= {"sandbox-inbound"}  # groups do not come on the inbound thread

    # After a reconnect the list is complete again, as it is now.
    assert api(world.url, "POST", "/api/control/disconnect") == (200, {"disconnected": True})
    wait_for(lambda: len(sink.groups()) == 6, "the list again")
    assert sink.groups()[-1] == GroupsChange((GroupInfo(shop, "Rahim Store 2"), GroupInfo(gone, "Karim 2")),
                                             complete=True)


def test_history_replay_holds_only_what_the_bot_received(world: World, make_transport: Any) -> None:
    shop = world.group("Rahim Store")
    world.post(shop, ".10")
    world.bot_member(shop, False)
    world.post(shop, ".20")
    world.bot_member(shop, True)
    world.post(shop, ".30")
    transport, sink = make_transport()
    wait_for(lambda: len(sink.messages(Source.HISTORY)) == 2, "history")
    assert [m.text for m in sink.messages(Source.HISTORY)] == [".10", ".30"]
    assert [m.text for m in sink.messages(Source.OFFLINE)] == [".10", ".30"]
    assert [m.text for m in transport.history(shop, 10)] == [".10", ".30"]
    world.bot_member(shop, False)
    transport.send(OutboundText("out", shop, "hello"))
    outcome = wait_for(lambda: sink.outcomes, "the outcome")[0]
    assert (outcome.ok, outcome.retryable) == (False, False) and "not in group" in outcome.error
