"""WhatsAppTransport with real neonize events pushed through a real neonize client that never
connects (see test_whatsapp_support): what reaches the sink, pairing, connection states, sends."""

from __future__ import annotations

import ctypes
import io
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

import neonize
import pytest
from neonize import _binder
from neonize.download import __GONEONIZE_VERSION__
from neonize.exc import NeonizeError, SendMessageError
from neonize.proto import Neonize_pb2 as N
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as E

from domain.clock import FakeClock
from domain.chat import ChatMessage, ConnectionState, OutboundText, Quote, Source
from gateway.transport import TransportError
from gateway.whatsapp import convert, outbound
from gateway.whatsapp import transport as whatsapp_transport
from gateway.whatsapp.pairing import QR_ROUNDS
from gateway.whatsapp.ops import NeonizeOps
from gateway.whatsapp.transport import WhatsAppTransport
from tests.sinks import RecordingSink, wait_for
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
    GoSendOps,
    Made,
    clock,  # noqa: F401  (fixture)
    connect,
    connected,
    edit,
    event,
    group_message,
    history,
    make,  # noqa: F401  (fixture)
    no_threads_left,  # noqa: F401  (autouse fixture)
    push,
    push_qr,
    revoke,
    state_of,
)

ROOT = Path(__file__).parent.parent

# --- the library itself -------------------------------------------------------------------


def test_neonize_runs_from_the_pinned_wheel_without_a_download() -> None:
    pin = re.search(r"^\s*neonize==(\S+)$", (ROOT / "setup.cfg").read_text(), re.MULTILINE)
    assert pin is not None, "setup.cfg pins neonize (see README: Upgrading neonize)"
    assert neonize.__version__ == pin[1] == __GONEONIZE_VERSION__
    library = Path(_binder.gocode._name)
    assert library.parent == Path(neonize.__file__).parent  # the wheel's own copy
    _binder.gocode.GetVersion.restype = ctypes.c_char_p
    assert _binder.gocode.GetVersion().decode() == pin[1]


def test_importing_the_gateway_package_or_the_panel_does_not_load_neonize() -> None:
    import subprocess
    import sys

    code = ("import sys, actors.gateway, actors.supervisor, web.routes.whatsapp, gateway.whatsapp.pairing; "
            "print('neonize' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert (run.returncode, run.stdout.strip()) == (0, "False"), run.stderr


# --- inbound --------------------------------------------------------------------------------


def test_a_group_order_from_a_lid_sender_with_its_phone_form(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    ev = group_message(".10", sender=RAHIM_LID, sender_alt=RAHIM_PHONE, timestamp_ms=1_764_000_000_123)
    push(transport.client, ev)
    [msg] = sink.messages()
    assert msg.group_id == GROUP and msg.group_name == GROUP_NAME
    assert (msg.sender, msg.sender_alt, msg.sender_name) == (RAHIM_LID, RAHIM_PHONE, "Rahim")  # device dropped
    assert msg.message_id == ev.Info.ID and msg.text == ".10"
    assert msg.timestamp == pytest.approx(1_764_000_000.123)  # neonize sends milliseconds
    assert msg.source is Source.LIVE and not msg.from_me


def test_a_phone_addressed_sender_keeps_its_lid_as_the_other_form(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    push(transport.client, group_message(".20", sender=KARIM_PHONE, sender_alt=KARIM_LID))
    push(transport.client, group_message(".30", sender=KARIM_LID, sender_alt=""))  # SenderAlt can be empty
    first, second = sink.messages()
    assert (first.sender, first.sender_alt) == (KARIM_PHONE, KARIM_LID)
    assert (second.sender, second.sender_alt) == (KARIM_LID, "")


def test_duplicates_go_through_for_the_group_to_recognise(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    ev = group_message(".10")
    push(transport.client, ev)
    push(transport.client, ev)
    assert [m.message_id for m in sink.messages()] == [ev.Info.ID, ev.Info.ID]


def test_own_messages_are_marked_and_other_chats_and_media_dropped(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    push(transport.client, group_message(".10", sender=BOT_LID, sender_alt=BOT_PHONE, from_me=True))
    push(transport.client, group_message(".10", group=RAHIM_PHONE, is_group=False))  # a private chat
    push(transport.client, group_message(".10", group="status@broadcast", is_group=False))
    push(transport.client, group_message(content=E.Message(imageMessage=E.ImageMessage(caption=".10"))))
    push(transport.client, group_message(content=E.Message(
        reactionMessage=E.ReactionMessage(text="👍"))))
    [own] = sink.messages()
    assert own.from_me and own.sender == BOT_LID


def test_extended_text_and_replies_keep_the_quoted_id(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    content = E.Message(extendedTextMessage=E.ExtendedTextMessage(
        text="done", contextInfo=E.ContextInfo(stanzaID="3EB0ORDER", participant=RAHIM_LID)))
    push(transport.client, group_message(content=content))
    [msg] = sink.messages()
    assert (msg.text, msg.quoted_id) == ("done", "3EB0ORDER")


def test_edits_and_deletes_arrive_as_changes_never_as_messages(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    order = group_message(".10", sender=RAHIM_LID, sender_alt=RAHIM_PHONE)
    changed = edit(order, ".50")
    changed.Info.Timestamp = order.Info.Timestamp + 60_000  # milliseconds, as neonize sends them
    changed.Info.MessageSource.SenderAlt.CopyFrom(order.Info.MessageSource.SenderAlt)
    deleted = revoke(order)
    deleted.Info.Timestamp = order.Info.Timestamp + 120_000
    for ev in (order, changed, deleted):
        push(transport.client, ev)
    plain, edited, revoked = sink.messages()
    assert (plain.message_id, plain.text, plain.edits, plain.revokes) == (order.Info.ID, ".10", "", "")
    assert edited == ChatMessage(
        group_id=GROUP, group_name=GROUP_NAME, message_id=changed.Info.ID, sender=RAHIM_LID, sender_alt=RAHIM_PHONE,
        sender_name="Rahim", text=".50", timestamp=pytest.approx(order.Info.Timestamp / 1000 + 60), from_me=False,
        source=Source.LIVE, quoted_id="", edits=order.Info.ID, revokes="")
    assert changed.Info.ID != order.Info.ID  # the edit is a message of its own
    assert (revoked.message_id, revoked.text, revoked.edits, revoked.revokes, revoked.sender) == (
        deleted.Info.ID, "", "", order.Info.ID, RAHIM_LID)
    assert revoked.timestamp == pytest.approx(order.Info.Timestamp / 1000 + 120)
    # Nothing but the order itself reads as a plain message.
    assert [m.text for m in sink.messages() if not (m.edits or m.revokes)] == [".10"]


def test_changes_while_away_are_offline_and_the_bots_own_are_marked(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    order = group_message(".10")
    push(transport.client, event("offline_sync_preview"))
    push(transport.client, order)
    push(transport.client, edit(order, ".20"))
    push(transport.client, event("offline_sync_completed"))
    push(transport.client, revoke(order))
    own = group_message("received", sender=BOT_LID, sender_alt=BOT_PHONE, from_me=True)
    push(transport.client, revoke(own, by=BOT_LID))
    got = [(m.text, m.edits, m.revokes, m.source) for m in sink.messages()]
    assert got[:3] == [(".10", "", "", Source.OFFLINE), (".20", order.Info.ID, "", Source.OFFLINE),
                       ("", "", order.Info.ID, Source.LIVE)]
    own_revoke = sink.messages()[3]
    assert (own_revoke.revokes, own_revoke.sender) == (own.Info.ID, BOT_LID)


def test_changes_outside_groups_or_without_a_target_are_not_delivered(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    private = group_message(".10", group=RAHIM_PHONE, is_group=False)
    private_edit = edit(private, ".50")  # in the private chat, as WhatsApp sends it there
    private_edit.Info.MessageSource.Chat.CopyFrom(private.Info.MessageSource.Chat)
    private_edit.Info.MessageSource.IsGroup = False
    push(transport.client, private_edit)
    private_delete = revoke(private)
    private_delete.Info.MessageSource.Chat.CopyFrom(private.Info.MessageSource.Chat)
    private_delete.Info.MessageSource.IsGroup = False
    push(transport.client, private_delete)
    status = edit(group_message(".10"), ".60")
    status.Info.MessageSource.Chat.CopyFrom(group_message(group="status@broadcast").Info.MessageSource.Chat)
    push(transport.client, status)  # flagged a group, but not a group chat
    push(transport.client, group_message(".70", edit="1"))  # says it is an edit, but of what?
    push(transport.client, group_message(None, edit="7", content=E.Message(
        protocolMessage=E.ProtocolMessage(type=E.ProtocolMessage.REVOKE))))  # a delete without a key
    caption = E.Message(protocolMessage=E.ProtocolMessage(
        key=revoke(group_message()).Message.protocolMessage.key, type=E.ProtocolMessage.MESSAGE_EDIT,
        editedMessage=E.Message(imageMessage=E.ImageMessage(caption=".80"))))
    push(transport.client, group_message(None, edit="1", content=caption))  # a caption: not text
    push(transport.client, group_message(".90"))
    assert [(m.text, m.edits, m.revokes) for m in sink.messages()] == [(".90", "", "")]


def test_a_sink_that_does_not_read_changes_gets_none(tmp_path: Path, clock: FakeClock) -> None:
    class PlainSink(RecordingSink):
        accepts_changes = False  # like a bot that does not read edits and revokes yet

    ops = FakeOps()
    transport = WhatsAppTransport(str(tmp_path / "session.sqlite3"), ops=ops, clock=clock.now,
                                  terminal=io.StringIO(), reconnect_min=0.01, reconnect_max=0.05)
    transport.end_poll = 0.02
    sink = PlainSink()
    transport.start(sink)
    try:
        connected((transport, sink, ops))
        order = group_message(".10")
        push(transport.client, order)
        push(transport.client, edit(order, ".50"))
        push(transport.client, revoke(order))
        # The edit's ".50" must never reach a bot that would take it for a new order.
        assert [(m.message_id, m.text) for m in sink.messages()] == [(order.Info.ID, ".10")]
    finally:
        transport.stop()
    assert not convert.accepts_changes(object()) and convert.accepts_changes(RecordingSink())


def test_a_delete_reads_as_empty_text_but_is_a_change_not_a_message() -> None:
    order = group_message(".10")
    deleted = revoke(order)
    assert convert.text_of(deleted.Message) is None
    assert convert.chat_message(deleted, GROUP_NAME, Source.LIVE) is None
    assert convert.change_of(deleted) == convert.MessageChange(
        convert.ChangeKind.REVOKE, GROUP, order.Info.ID, RAHIM_LID, "", deleted.Info.Timestamp / 1000)
    assert convert.change_of(order) is None
    # An edit attribute alone (no protocol message) is enough to keep a message off the order path.
    flagged = group_message(".10", edit="1")
    assert convert.chat_message(flagged, GROUP_NAME, Source.LIVE) is None


def test_messages_between_offline_preview_and_completed_are_marked_offline(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    push(transport.client, event("offline_sync_preview"))
    push(transport.client, group_message(".10"))
    push(transport.client, group_message(".20"))
    push(transport.client, event("offline_sync_completed"))
    push(transport.client, group_message(".30"))
    assert [(m.text, m.source) for m in sink.messages()] == [
        (".10", Source.OFFLINE), (".20", Source.OFFLINE), (".30", Source.LIVE)]
    assert all(m.source.recovered for m in sink.messages(Source.OFFLINE))


def test_a_disconnect_during_the_offline_sync_ends_it(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    push(transport.client, event("offline_sync_preview"))
    push(transport.client, event("disconnected"))
    push(transport.client, event("connected"))
    push(transport.client, group_message(".10"))
    assert [m.source for m in sink.messages()] == [Source.LIVE]


def test_history_sync_delivers_group_text_as_history(make: Callable[..., Made]) -> None:
    transport, sink, ops = make(FakeOps(groups={}))
    wait_for(lambda: ops.running, "a session")
    ev = history(("3EB0H1", RAHIM_LID, ".25", 1_764_000_000),
                 ("3EB0H2", f"{KARIM_LID[:-4]}:3@lid", "hi", 1_764_000_060),
                 ("3EB0H3", KARIM_LID, ".7", 1_763_990_000))
    push(transport.client, ev)
    got = sink.messages()
    assert [(m.message_id, m.text, m.sender, m.timestamp) for m in got] == [
        ("3EB0H3", ".7", KARIM_LID, 1_763_990_000.0),  # oldest first
        ("3EB0H1", ".25", RAHIM_LID, 1_764_000_000.0),
        ("3EB0H2", "hi", KARIM_LID, 1_764_000_060.0),  # the device part is dropped
    ]
    assert {m.source for m in got} == {Source.HISTORY} and {m.group_name for m in got} == {GROUP_NAME}
    # The private conversation in the fixture is not delivered.
    assert all(m.group_id == GROUP for m in got)


def test_group_names_come_from_the_group_list_and_group_events(make: Callable[..., Made]) -> None:
    transport, sink, ops = connected(make())
    assert ops.group_calls == 1
    for _ in range(3):
        push(transport.client, group_message(".10"))
    assert ops.group_calls == 1  # never once per message
    info = N.GroupInfoEvent(JID=N.JID(User="120363000000000001", Server="g.us", RawAgent=0, Device=0, Integrator=0),
                            Notify="", Timestamp=1_764_000_000, PrevParticipantsVersionID="", ParticipantVersionID="",
                            JoinReason="", Name=N.GroupName(Name="Rahim Store 2", NameSetAt=1_764_000_000,
                                                            NameSetBy=N.JID(User="", Server="", RawAgent=0,
                                                                            Device=0, Integrator=0)))
    push(transport.client, info)  # renamed: the event carries the new name
    push(transport.client, group_message(".10"))
    assert sink.messages()[-1].group_name == "Rahim Store 2" and ops.group_calls == 1


def test_an_unknown_group_asks_for_the_list_at_most_once_a_minute(
        make: Callable[..., Made], monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.whatsapp import transport as module

    transport, sink, ops = connected(make(FakeOps(groups={})))
    other = "120363000000000009@g.us"
    ops.groups[other] = "New Group"  # the bot was just added to it
    push(transport.client, group_message(".10", group=other))
    assert ops.group_calls == 1  # the list was fetched on connect, less than a minute ago
    monkeypatch.setattr(module, "GROUPS_MIN_INTERVAL", 0.0)  # as if a minute had passed
    push(transport.client, group_message(".20", group=other))
    wait_for(lambda: ops.group_calls == 2, "a refresh for the unknown group")
    wait_for(lambda: any(g.group_id == other for g in transport.list_groups()), "the new name")
    push(transport.client, group_message(".30", group=other))
    assert [m.group_name for m in sink.messages()] == ["", "", "New Group"]


def test_a_failing_sink_is_retried_before_the_event_thread_gives_up(
        make: Callable[..., Made], monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.whatsapp import transport as module

    monkeypatch.setattr(module, "SINK_RETRIES", (0.0, 0.0))
    transport, sink, _ = connected(make())
    calls: list[int] = []
    real = sink.messages_received

    def flaky(messages: Any) -> None:
        calls.append(len(messages))
        if len(calls) < 3:
            raise OSError("disk full")
        real(messages)

    sink.messages_received = flaky  # type: ignore[method-assign]
    push(transport.client, group_message(".10"))
    assert len(calls) == 3 and [m.text for m in sink.messages()] == [".10"]


def test_a_sink_that_keeps_failing_stops_the_receiving(
        make: Callable[..., Made], clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """whatsmeow acknowledges what it hands over: with the disk failing, taking more would only
    lose more. The session ends (WhatsApp keeps the rest) and a new one is tried later."""
    from gateway.whatsapp import transport as module

    monkeypatch.setattr(module, "SINK_RETRIES", (0.0,))
    transport, sink, ops = connected(make())
    broken = True
    real = sink.messages_received

    def failing(messages: Any) -> None:
        if broken:
            raise OSError("disk full")
        real(messages)

    sink.messages_received = failing  # type: ignore[method-assign]
    push(transport.client, group_message(".10"))
    wait_for(lambda: state_of(transport, ConnectionState.RECONNECTING), "receiving paused")
    assert "cannot record incoming messages (OSError: disk full)" in transport.detail.message
    wait_for(lambda: ops.ends == 1 and not ops.running, "the session to end")
    broken = False  # the disk has room again
    clock.advance(1)
    wait_for(lambda: ops.sessions == 2, "a new session")
    connect(transport.client)
    push(transport.client, group_message(".20"))
    assert [m.text for m in sink.messages()] == [".20"]


def test_an_undecryptable_message_is_logged_not_taken(make: Callable[..., Made],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    transport, sink, _ = connected(make())
    caplog.set_level(logging.WARNING, logger="diamondbot")
    info = group_message(".10", message_id="3EB0SECRET").Info
    push(transport.client, N.UndecryptableMessage(Info=info, IsUnavailable=False,
                                                  DecryptFailMode=N.UndecryptableMessage.DECRYPT_FAIL_SHOW))
    push(transport.client, group_message(".20"))  # the next one still comes through
    assert [m.text for m in sink.messages()] == [".20"]
    assert "3EB0SECRET" in caplog.text and "could not be decrypted" in caplog.text


# --- connection states --------------------------------------------------------------------


def test_connected_reports_the_bots_own_ids(make: Callable[..., Made]) -> None:
    transport, sink, _ = connected(make())
    assert transport.own_ids == {BOT_PHONE, BOT_LID}
    assert sink.state_names() == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]
    push(transport.client, event("disconnected"))  # whatsmeow reconnects by itself
    wait_for(lambda: state_of(transport, ConnectionState.RECONNECTING), "reconnecting")
    push(transport.client, event("connected"))
    wait_for(lambda: state_of(transport, ConnectionState.CONNECTED), "connected again")


def test_a_failed_first_connect_is_retried_with_backoff(make: Callable[..., Made]) -> None:
    ops = FakeOps()
    ops.fail_connect = [NeonizeError("dial tcp: lookup web.whatsapp.com: no such host")] * 2
    transport, sink, _ = make(ops)
    wait_for(lambda: ops.running == 3, "the third attempt")
    reconnecting = [d.message for s, d in sink.states if s is ConnectionState.RECONNECTING]
    assert [("no such host" in d, f"attempt {n}" in d) for n, d in enumerate(reconnecting, 1)] == [(True, True)] * 2
    connect(transport.client)
    wait_for(lambda: state_of(transport, ConnectionState.CONNECTED), "connected")


def test_logged_out_goes_back_to_pairing(make: Callable[..., Made]) -> None:
    transport, sink, ops = connected(make())
    push(transport.client, event("logged_out"))
    wait_for(lambda: ops.running == 2, "a new session")
    assert ops.discarded == 1  # whatever whatsmeow left of the session is moved aside
    states = sink.state_names()
    assert states[-2:] == [ConnectionState.LOGGED_OUT, ConnectionState.PAIRING]
    push_qr(transport.client, "2@new-code")
    wait_for(lambda: transport.detail.qr == "2@new-code", "the new QR code")


def test_a_replaced_stream_stops_without_fighting_back(make: Callable[..., Made]) -> None:
    transport, sink, ops = connected(make())
    push(transport.client, event("stream_replaced"))
    wait_for(lambda: ops.ends == 1 and not ops.running, "the session to end")
    assert transport.state is ConnectionState.STOPPED and transport.detail.message.startswith("replaced")
    assert ops.sessions == 1


def test_a_temporary_ban_pauses_until_it_expires(make: Callable[..., Made], clock: FakeClock) -> None:
    transport, sink, ops = connected(make())
    push(transport.client, event("temporary_ban"))  # Expire: 3600 s
    wait_for(lambda: state_of(transport, ConnectionState.BANNED), "banned")
    detail = transport.detail
    assert (detail.expires_at, detail.reason) == (clock.now() + 3600, "sent too many same message")
    wait_for(lambda: not ops.running, "the session to end")
    transport.send(OutboundText("r1", GROUP, "hello"))
    wait_for(lambda: transport_outcomes(transport), "an outcome")
    assert not transport_outcomes(transport)[0].ok and transport_outcomes(transport)[0].retryable
    clock.advance(3600 + 10)
    wait_for(lambda: ops.running == 2, "a new session once the ban is over")


def test_a_refused_connection_ends_the_session_and_a_new_one_follows(make: Callable[..., Made],
                                                                     clock: FakeClock) -> None:
    """whatsmeow sends ConnectFailure only when it will not reconnect by itself: waiting for it
    would leave the bot "reconnecting" for ever."""
    transport, sink, ops = connected(make())
    push(transport.client, N.ConnectFailure(Reason=N.ConnectFailureReason.GENERIC, Message="unknown",
                                            Raw=N.Node(Tag="failure")))
    wait_for(lambda: state_of(transport, ConnectionState.RECONNECTING), "reconnecting")
    message = transport.detail.message
    assert "refused the connection: generic unknown" in message and "next try in" in message
    wait_for(lambda: ops.ends == 1 and not ops.running, "the session to end")
    clock.advance(1)  # the backoff (at most 0.05 s here)
    wait_for(lambda: ops.sessions == 2, "a new session")
    connect(transport.client)
    wait_for(lambda: state_of(transport, ConnectionState.CONNECTED), "connected again")


def test_a_ban_without_its_length_is_waited_out_too(make: Callable[..., Made], clock: FakeClock) -> None:
    from gateway.whatsapp.transport import UNKNOWN_BAN_WAIT

    transport, sink, ops = connected(make())
    ban = event("temporary_ban")
    ban.Expire = 0  # the server did not say
    push(transport.client, ban)
    wait_for(lambda: state_of(transport, ConnectionState.BANNED), "banned")
    assert transport.detail.expires_at == clock.now() + UNKNOWN_BAN_WAIT
    wait_for(lambda: not ops.running, "the session to end")
    clock.advance(60)
    time.sleep(0.2)
    assert ops.sessions == 1  # not connecting again against the ban
    clock.advance(UNKNOWN_BAN_WAIT)
    wait_for(lambda: ops.running == 2, "a new session once the wait is over")


def transport_outcomes(transport: WhatsAppTransport) -> list[Any]:
    return transport._sink.outcomes  # type: ignore[union-attr]


def test_stop_ends_the_session_and_every_thread(tmp_path: Path, clock: FakeClock) -> None:
    ops = FakeOps()
    transport = WhatsAppTransport(str(tmp_path / "s.sqlite3"), ops=ops, clock=clock.now, terminal=io.StringIO())
    before = set(threading.enumerate())
    sink = RecordingSink()
    transport.start(sink)
    connect_made = (transport, sink, ops)
    connected(connect_made)
    transport.stop()
    transport.stop()  # idempotent
    assert set(threading.enumerate()) <= before
    assert sink.state_names()[-1] is ConnectionState.STOPPED and ops.ends == 1
    transport.send(OutboundText("late", GROUP, "x"))
    assert sink.outcomes[-1].request_id == "late" and not sink.outcomes[-1].ok


def test_a_session_that_does_not_end_is_abandoned(make: Callable[..., Made]) -> None:
    class Stuck(FakeOps):
        def end(self, client: Any) -> None:
            pass  # as neonize after an expired QR attempt: stop() cannot end it

    transport, sink, ops = make(Stuck(paired=False))
    transport.end_tries = 2
    wait_for(lambda: ops.running, "a session")
    transport.repair()
    try:
        wait_for(lambda: ops.abandoned == 1, "the stuck session abandoned")
        wait_for(lambda: ops.sessions == 2, "a new session")
    finally:
        ops.release_all()


# --- pairing ------------------------------------------------------------------------------


def test_the_qr_code_is_shown_printed_and_renewed_when_it_expires(make: Callable[..., Made],
                                                                   clock: FakeClock) -> None:
    transport, sink, ops = make(FakeOps(paired=False))
    wait_for(lambda: ops.running, "a session")
    assert transport.state is ConnectionState.PAIRING and transport.detail.qr == ""
    push_qr(transport.client, "2@first,code")
    wait_for(lambda: transport.detail.qr == "2@first,code", "the first QR code")
    assert transport.detail.expires_at == clock.now() + 60
    terminal = transport.terminal.getvalue()  # type: ignore[union-attr]
    assert "█" in terminal and "Linked devices" in terminal  # drawn for the operator, on stderr
    clock.advance(50)
    push_qr(transport.client, "2@second,code")
    wait_for(lambda: transport.detail.qr == "2@second,code", "the second QR code")
    assert transport.detail.expires_at == clock.now() + 20
    assert transport.terminal.getvalue().count("Linked devices") == 2  # type: ignore[union-attr]
    # whatsmeow gives up after its last code without telling neonize: the transport notices.
    clock.advance(26)
    wait_for(lambda: ops.sessions == 2 and ops.running == 2, "a new pairing attempt")
    assert ops.ends == 1 and transport.detail.qr == ""


def test_a_scan_at_the_last_moment_is_not_cut_off(make: Callable[..., Made], clock: FakeClock) -> None:
    transport, sink, ops = make(FakeOps(paired=False))
    wait_for(lambda: ops.running, "a session")
    push_qr(transport.client, "2@code")
    wait_for(lambda: transport.state is ConnectionState.PAIRING and transport.detail.qr, "a QR")
    ops.paired = True  # the phone scanned it; whatsmeow stored the device and is logging in
    clock.advance(66)
    wait_for(lambda: transport.state is ConnectionState.CONNECTING, "logging in")
    push(transport.client, event("pair_success"))
    connect(transport.client)
    wait_for(lambda: transport.state is ConnectionState.CONNECTED, "connected")
    assert ops.sessions == 1


def test_a_login_after_a_last_moment_scan_that_never_completes_connects_again(
        make: Callable[..., Made], clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whatsapp_transport, "PAIRED_WAIT", 0.05)
    transport, sink, ops = make(FakeOps(paired=False))
    wait_for(lambda: ops.running, "a session")
    push_qr(transport.client, "2@code")
    wait_for(lambda: transport.state is ConnectionState.PAIRING and transport.detail.qr, "a QR")
    ops.paired = True  # scanned, but whatsmeow never finishes logging in
    clock.advance(66)
    wait_for(lambda: ops.sessions == 2 and ops.running == 2, "a new session")
    assert ops.ends == 1


def test_after_several_unscanned_attempts_pairing_waits_for_re_pair(make: Callable[..., Made],
                                                                     clock: FakeClock) -> None:
    transport, sink, ops = make(FakeOps(paired=False))
    for attempt in range(1, QR_ROUNDS + 1):
        wait_for(lambda: ops.running == attempt, f"attempt {attempt}")
        push_qr(transport.client, f"2@code-{attempt}")
        wait_for(lambda: transport.detail.qr == f"2@code-{attempt}", "its QR code")
        clock.advance(66)
        wait_for(lambda: ops.ends == attempt, f"attempt {attempt} ended")
    wait_for(lambda: transport.detail.expired, "pairing given up")
    assert transport.state is ConnectionState.PAIRING and ops.sessions == QR_ROUNDS
    transport.repair()
    wait_for(lambda: ops.running == QR_ROUNDS + 1, "a new attempt after re-pair")


def test_pairing_by_phone_code_after_the_first_qr(make: Callable[..., Made], clock: FakeClock) -> None:
    transport, sink, ops = make(FakeOps(paired=False), pair_phone="8801712345678")
    wait_for(lambda: ops.running, "a session")
    push_qr(transport.client, "2@code")
    wait_for(lambda: transport.detail.pair_code, "a pairing code")
    detail = transport.detail
    assert detail.pair_code == "ABCD-EFGH" and ops.pair_codes == ["8801712345678"]
    assert detail.expires_at == clock.now() + 160  # the whole attempt, not one QR code
    terminal = transport.terminal.getvalue()  # type: ignore[union-attr]
    assert "ABCD-EFGH" in terminal and "+8801712345678" in terminal and "█" not in terminal
    push_qr(transport.client, "2@code-2")
    wait_for(lambda: transport.detail.qr == "2@code-2", "the next QR code")
    assert ops.pair_codes == ["8801712345678"]  # one code per attempt


def test_re_pair_logs_out_and_pairs_again(make: Callable[..., Made]) -> None:
    transport, sink, ops = connected(make())
    transport.repair()
    wait_for(lambda: ops.running == 2, "a new session")
    assert ops.logouts == 1 and ops.ends == 1
    assert transport.state is ConnectionState.PAIRING


def test_re_pair_before_start_is_refused(tmp_path: Path) -> None:
    transport = WhatsAppTransport(str(tmp_path / "s.sqlite3"), ops=FakeOps())
    with pytest.raises(TransportError):
        transport.repair()


# --- outbound -----------------------------------------------------------------------------


def test_a_reply_quotes_the_stored_order_message_and_its_text_stays_text(make: Callable[..., Made]) -> None:
    """Through neonize's own send_message, up to its Go library: the bytes it would send."""
    transport, sink, ops = connected(make(GoSendOps()))
    quote = Quote("3EB0C431D9A5F2B7E1AA", RAHIM_LID, ".10")  # as the order stored it: works after a restart
    text = "📥 অর্ডার গ্রহণ করা হয়েছে: call @8801711111111 (group @120363000000000001@g.us)"
    transport.send(OutboundText("r1", GROUP, text, quote))
    wait_for(lambda: sink.outcomes, "the outcome")
    [message] = ops.go.sent
    assert ops.go.calls == ["SendMessage"]  # no group lookup on the network for "@…@g.us"
    assert message.extendedTextMessage.text == text
    context = message.extendedTextMessage.contextInfo
    assert (context.stanzaID, context.participant) == ("3EB0C431D9A5F2B7E1AA", RAHIM_LID)
    assert context.quotedMessage == E.Message(conversation=".10")
    assert list(context.mentionedJID) == [] and list(context.groupMentions) == []  # "@digits" mentions nobody
    assert sink.outcomes == [outbound.SendOutcome("r1", True, message_id="3EB0BOT000001", timestamp=1_764_000_100.0)]


def test_a_text_without_quote_is_plain(make: Callable[..., Made]) -> None:
    transport, sink, ops = connected(make())
    transport.send(OutboundText("r1", GROUP, "hello"))
    transport.send(OutboundText("r2", GROUP, "quote lost", Quote("3EB0X", "not an id", ".10")))
    wait_for(lambda: len(sink.outcomes) == 2, "two outcomes")
    assert [m.conversation for _, m in ops.sent] == ["hello", "quote lost"]  # sent, without the bad quote
    assert all(o.ok for o in sink.outcomes)


def test_sends_wait_for_a_connection_and_bad_groups_fail_for_good(make: Callable[..., Made]) -> None:
    transport, sink, ops = make()
    transport.send(OutboundText("early", GROUP, "hello"))
    transport.send(OutboundText("bad", "8801712345678@s.whatsapp.net", "hello"))
    wait_for(lambda: len(sink.outcomes) == 2, "two outcomes")
    early, bad = sink.outcomes
    assert (early.ok, early.retryable, early.error) == (False, True, "not connected to WhatsApp")
    assert (bad.ok, bad.retryable) == (False, False)
    assert ops.sent == []


def test_send_errors_become_outcomes(make: Callable[..., Made]) -> None:
    transport, sink, ops = connected(make())
    ops.send_errors = [SendMessageError("server returned error 429"), SendMessageError("websocket not connected")]
    for n in range(3):
        transport.send(OutboundText(f"r{n}", GROUP, f"text {n}"))
    wait_for(lambda: len(sink.outcomes) == 3, "three outcomes")
    limited, offline, ok = sink.outcomes
    assert limited.rate_limited and limited.retryable and not limited.ok
    assert not offline.rate_limited and offline.retryable and "not connected" in offline.error
    assert ok.ok


@pytest.mark.parametrize(("error", "rate_limited", "retryable"), [
    ("server returned error 429", True, True),
    ("info query returned status 429: rate-overlimit", True, True),
    ("websocket not connected", False, True),
    ("timed out waiting for message send response", False, True),
    ("failed to get device list: info query timed out", False, True),
    ("server returned error 500", False, True),
    ("server returned error 463", False, False),
    ("info query returned status 403: forbidden", False, False),
    ("something nobody has seen before", False, True),
])
def test_neonize_errors_map_to_outcomes(error: str, rate_limited: bool, retryable: bool) -> None:
    outcome = outbound.failed("r", SendMessageError(error))
    assert (outcome.ok, outcome.rate_limited, outcome.retryable) == (False, rate_limited, retryable)
    assert outcome.error == error


# --- pure conversions ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    (1_764_000_000, 1_764_000_000.0), (1_764_000_000_123, 1_764_000_000.123),
    (1_764_000_000_123_456, 1_764_000_000.123456), (1_764_000_000_123_456_789, 1_764_000_000.123456789),
])
def test_timestamps_are_normalised_to_seconds(value: int, seconds: float) -> None:
    assert convert.to_seconds(value) == pytest.approx(seconds)


def test_ids() -> None:
    assert convert.plain_id("76210050711676:12@lid") == RAHIM_LID
    assert convert.plain_id("8801712345678.0:3@s.whatsapp.net") == RAHIM_PHONE
    assert convert.jid_text(N.JID(User="", Server="", RawAgent=0, Device=0, Integrator=0)) == ""
    with pytest.raises(ValueError):
        convert.parse_jid("no id")
    with pytest.raises(ValueError):
        outbound.group_jid(RAHIM_PHONE)


def test_the_session_file_is_kept_private(make: Callable[..., Made], tmp_path: Path) -> None:
    session = tmp_path / "session.sqlite3"
    session.write_bytes(b"")
    session.chmod(0o644)
    connected(make())
    assert session.stat().st_mode & 0o777 == 0o600


# --- the real neonize calls that stay on this machine ---------------------------------------


def test_the_session_database_is_moved_aside_offline(tmp_path: Path) -> None:
    ops = NeonizeOps()
    db = str(tmp_path / "session.sqlite3")
    ops.end(ops.new_client(db, lambda status: None))  # stop() without a session does nothing
    Path(db).write_bytes(b"")
    ops.discard_session(db)
    assert not Path(db).exists() and len(list(tmp_path.glob("session.sqlite3.old-*"))) == 1
