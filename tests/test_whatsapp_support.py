"""What the WhatsApp tests share (no tests here).

* Real neonize events: protobuf messages of `neonize.proto.Neonize_pb2` loaded from the JSON
  fixtures in tests/fixtures/whatsapp/ (`json_format.MessageToDict` of events shaped as
  neonize 0.5.2's Go encoder fills them; proto2, every required field set), changed per test,
  serialised, and pushed through the client's real event path, `client.event.execute(...)`, the
  function neonize hands to its Go library as the event callback. QR codes go through
  `NewClient.__onQr`, the callback neonize hands to Go for them.
* FakeOps: the few neonize calls that would reach WhatsApp (connect, send, pairing code, group
  list, logout) replaced; the client itself is neonize's real NewClient, which never connects.
* GoLibrary: where a test needs neonize's own Python code around a call (connect(), stop(),
  send_message(), get_joined_groups()), the client's Go library is replaced instead, and
  scripted: the call runs neonize's real code up to the call into Go.
"""

from __future__ import annotations

import ctypes
import io
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from google.protobuf import json_format
from neonize import events as neonize_events
from neonize.events import EVENT_TO_INT
from neonize.proto import Neonize_pb2 as N
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as E

from domain.chat import ConnectionState, GroupInfo
from domain.clock import FakeClock
from gateway.whatsapp.ops import NeonizeOps
from gateway.whatsapp.transport import WhatsAppTransport
from tests.sinks import RecordingSink, wait_for

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
GROUP = "120363000000000001@g.us"
GROUP_NAME = "Rahim Store"
RAHIM_LID, RAHIM_PHONE = "76210050711676@lid", "8801712345678@s.whatsapp.net"
KARIM_LID, KARIM_PHONE = "76210050711677@lid", "8801712345679@s.whatsapp.net"
BOT_PHONE, BOT_LID = "8801900000001@s.whatsapp.net", "100000000000001@lid"
OTHER, OTHER_NAME = "120363000000000002@g.us", "Karim Telecom"  # the group of the group fixtures
ADMIN_LID = "76210050711690@lid"  # its admin
_ids = itertools.count(1)


def event(name: str) -> Any:
    """A fixture as its neonize protobuf message."""
    doc = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    cls = getattr(neonize_events, doc["event"], None) or getattr(N, doc["event"])
    return json_format.ParseDict(doc["proto"], cls())


def jid(text: str, device: int = 0) -> N.JID:
    user, _, server = text.partition("@")
    return N.JID(User=user, Server=server, RawAgent=0, Device=device, Integrator=0, IsEmpty=not user)


def group_message(text: str | None = ".10", *, message_id: str | None = None, sender: str = RAHIM_LID,
                  sender_alt: str = RAHIM_PHONE, name: str = "Rahim", timestamp_ms: int = 1_764_000_000_123,
                  group: str = GROUP, is_group: bool = True, from_me: bool = False, edit: str = "",
                  content: E.Message | None = None) -> N.Message:
    """A message event as neonize delivers it (the `message` fixture, changed)."""
    ev = event("message")
    src = ev.Info.MessageSource
    src.Chat.CopyFrom(jid(group))
    src.Sender.CopyFrom(jid(sender, device=12))
    src.SenderAlt.CopyFrom(jid(sender_alt))
    src.AddressingMode = N.LID if sender.endswith("@lid") else N.PN
    src.IsGroup, src.IsFromMe = is_group, from_me
    ev.Info.ID = message_id or f"3EB0{next(_ids):016X}"
    ev.Info.Pushname, ev.Info.Timestamp, ev.Info.Edit = name, timestamp_ms, edit
    ev.Message.Clear()
    if content is not None:
        ev.Message.CopyFrom(content)
    elif text is not None:
        ev.Message.conversation = text
    return ev


def revoke(of: N.Message, *, by: str = RAHIM_LID) -> N.Message:
    """The protocol message WhatsApp sends when `of` is deleted for everyone."""
    key = _key(of)
    content = E.Message(protocolMessage=E.ProtocolMessage(key=key, type=E.ProtocolMessage.REVOKE))
    return group_message(None, sender=by, edit="7", content=content)


def edit(of: N.Message, new_text: str, *, by: str = RAHIM_LID) -> N.Message:
    """The protocol message WhatsApp sends when `of` is edited (whatsmeow unwraps editedMessage)."""
    content = E.Message(protocolMessage=E.ProtocolMessage(
        key=_key(of), type=E.ProtocolMessage.MESSAGE_EDIT, editedMessage=E.Message(conversation=new_text),
        timestampMS=of.Info.Timestamp + 60_000))
    ev = group_message(None, sender=by, edit="1", content=content)
    ev.IsEdit = True
    return ev


def _key(of: N.Message) -> Any:
    from neonize.proto.waCommon.WACommon_pb2 import MessageKey

    src = of.Info.MessageSource
    return MessageKey(remoteJID=f"{src.Chat.User}@{src.Chat.Server}", fromMe=src.IsFromMe, ID=of.Info.ID,
                      participant=f"{src.Sender.User}@{src.Sender.Server}")


def history(*messages: tuple[str, str, str, int], group: str = GROUP, name: str = GROUP_NAME) -> N.HistorySync:
    """The `history_sync` fixture with its group conversation holding `messages`
    (id, sender, text, timestamp in seconds)."""
    ev = event("history_sync")
    conv = next(c for c in ev.Data.conversations if c.ID.endswith("@g.us"))
    conv.ID, conv.name = group, name
    template = type(conv.messages[0])()
    template.CopyFrom(conv.messages[0])
    del conv.messages[:]
    for n, (mid, sender, text, ts) in enumerate(messages, 1):
        item = conv.messages.add()
        item.CopyFrom(template)
        item.msgOrderID = n
        web = item.message
        web.key.remoteJID, web.key.ID, web.key.participant = group, mid, sender
        web.participant, web.messageTimestamp = sender, ts
        web.message.conversation = text
    return ev


def group_info(gid: str, name: str) -> N.GroupInfo:
    """One group as get_joined_groups() answers it (the fixture's, renamed)."""
    info = N.GroupInfo()
    info.CopyFrom(event("joined_group").GroupInfo)
    info.JID.CopyFrom(jid(gid))
    info.GroupName.Name = name
    return info


def joined(gid: str = OTHER, name: str = OTHER_NAME) -> N.JoinedGroup:
    """The bot's number was added to a group (the `joined_group` fixture)."""
    ev = event("joined_group")
    ev.GroupInfo.CopyFrom(group_info(gid, name))
    return ev


def changed(gid: str = OTHER, *, name: str = "", join: tuple[str, ...] = (), leave: tuple[str, ...] = (),
            deleted: bool = False) -> N.GroupInfoEvent:
    """A change of a group (the `group_info` fixture): a new name, members who came or went, deleted."""
    ev = event("group_info")
    ev.JID.CopyFrom(jid(gid))
    if name:
        ev.Name.Name = name
    else:
        ev.ClearField("Name")
    ev.Join.extend(jid(j) for j in join)
    ev.Leave.extend(jid(j) for j in leave)
    if deleted:
        ev.Delete.CopyFrom(N.GroupDelete(Deleted=True, DeletedReason=""))
    return ev


def push(client: Any, ev: Any) -> None:
    """Serialise an event and run it through neonize's own event path, as its Go side does."""
    raw = ev.SerializeToString()  # raises if a required field is missing
    buffer = ctypes.create_string_buffer(raw, len(raw))
    client.event.execute(0, ctypes.addressof(buffer), len(raw), EVENT_TO_INT[type(ev)])


def push_qr(client: Any, code: str) -> None:
    """A QR code through the callback neonize gives its Go side for them."""
    buffer = ctypes.create_string_buffer(code.encode())
    client._NewClient__onQr(0, ctypes.addressof(buffer))


def push_login_status(client: Any, status: str) -> None:
    """A login status through the callback neonize gives its Go side for it."""
    buffer = ctypes.create_string_buffer(status.encode())
    client._NewClient__onLoginStatus(0, ctypes.addressof(buffer))


def connect(client: Any) -> None:
    """What neonize delivers when a session is up: the device, then Connected."""
    push(client, event("device"))
    push(client, event("connected"))


def groups_cached(transport: Any, ops: "FakeOps") -> bool:
    """Whether the transport fetched the group list and cached its names (after Connected)."""
    return ops.group_calls > 0 and len(transport.list_groups()) >= sum(1 for n in ops.groups.values() if n)


@pytest.fixture(autouse=True)
def no_threads_left() -> Iterator[None]:
    """Every thread a test's transports started has ended by the end of the test (import this
    fixture into a test module to apply it there)."""
    before = set(threading.enumerate())
    yield
    wait_for(lambda: set(threading.enumerate()) <= before,
             f"the transport's threads to end: {set(threading.enumerate()) - before}")


Made = tuple["WhatsAppTransport", RecordingSink, "FakeOps"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., Made]]:
    """Started transports on FakeOps (a session runs until ended); every one is stopped after."""
    made: list[WhatsAppTransport] = []

    def build(ops: FakeOps | None = None, **options: Any) -> Made:
        ops = ops or FakeOps()
        transport = WhatsAppTransport(str(tmp_path / "session.sqlite3"), ops=ops, clock=clock.now,
                                      terminal=io.StringIO(), reconnect_min=0.01, reconnect_max=0.05,
                                      read_grace=0.05, **options)
        transport.end_poll = 0.02
        sink = RecordingSink()
        made.append(transport)
        transport.start(sink)
        return transport, sink, ops

    yield build
    for transport in made:
        transport.stop()


def connected(made: Made) -> Made:
    """A transport whose session is up, with the group list fetched."""
    transport, _, ops = made
    wait_for(lambda: ops.running, "a session")
    connect(transport.client)
    wait_for(lambda: transport.state is ConnectionState.CONNECTED, "connected")
    wait_for(lambda: groups_cached(transport, ops), "the group list")
    return made


def state_of(transport: WhatsAppTransport, state: ConnectionState) -> bool:
    return transport.state is state


class FakeOps(NeonizeOps):
    """neonize's network calls replaced; `new_client` stays real (a NewClient that never connects)."""

    def __init__(self, *, paired: bool = True, groups: dict[str, str] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.paired = paired
        self.clock = clock
        self.sent_at: list[float] = []  # clock() at each send
        self.groups = dict(groups if groups is not None else {GROUP: GROUP_NAME})
        self.fail_connect: list[Exception] = []  # the next sessions fail at once with these
        self.send_errors: list[Exception] = []  # the next sends raise these
        self.sent: list[tuple[N.JID, E.Message]] = []
        self.pair_codes: list[str] = []
        self.group_calls = self.logouts = self.discarded = self.abandoned = 0
        self.sessions = self.ends = 0
        self._cond = threading.Condition()
        self._running = 0  # the session number blocked in run(), 0 if none

    # sessions: run() blocks until end() is called for it
    def run(self, client: Any) -> None:
        with self._cond:
            self.sessions += 1
            number = self.sessions
            if self.fail_connect:
                raise self.fail_connect.pop(0)
            self._running = number
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.ends >= number)
            self._running = 0

    def end(self, client: Any) -> None:
        with self._cond:
            if self._running:
                self.ends = max(self.ends, self._running)
                self._cond.notify_all()

    def release_all(self) -> None:
        """Let every session still blocked in run() return (sessions a test made unstoppable)."""
        with self._cond:
            self.ends = self.sessions + 1
            self._cond.notify_all()

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    def send(self, client: Any, to: Any, message: Any) -> Any:
        self.sent.append((to, message))
        self.sent_at.append(self.clock() if self.clock else time.time())
        if self.send_errors:
            raise self.send_errors.pop(0)
        return N.SendResponse(ID=f"3EB0BOT{len(self.sent):06d}", Timestamp=1_764_000_100, ServerID=0)

    def pair_code(self, client: Any, phone: str) -> str:
        self.pair_codes.append(phone)
        return "ABCD-EFGH"

    def joined_groups(self, client: Any) -> list[GroupInfo]:
        self.group_calls += 1
        return [GroupInfo(g, n) for g, n in self.groups.items()]

    def logout(self, client: Any) -> None:
        self.logouts += 1
        self.paired = False

    def has_session(self, session_db: str) -> bool | None:
        return self.paired

    def discard_session(self, session_db: str) -> None:
        self.discarded += 1
        self.paired = False

    def abandon(self, client: Any) -> None:
        self.abandoned += 1

    def texts(self) -> list[str]:
        return [m.conversation or m.extendedTextMessage.text for _, m in self.sent]




class GoLibrary:
    """Stands in for neonize's Go library under one real client (`client._NewClient__client`):
    neonize's Python code runs as it is, up to the call into Go, which is scripted here. Any call
    not scripted would reach WhatsApp: it is recorded and fails."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.sent: list[E.Message] = []
        self.answer_sends = threading.Event()  # cleared: SendMessage waits, as it may in whatsmeow
        self.answer_sends.set()
        self.sessions = 0
        self.joined: list[N.GroupInfo] = []  # what GetJoinedGroups answers ...
        self.joined_errors: list[str] = []  # ... unless the next answers are these errors
        self.session_up = threading.Event()
        self.ignore_stop = False  # as the Go side in its FetchMe wait after a pairing attempt
        self._stopped = threading.Event()
        self._callbacks: tuple[Any, ...] = ()

    def install(self, client: Any) -> Any:
        client._NewClient__client = self
        return client

    # connect(): the session, until Stop
    def Neonize(self, name: bytes, uuid: bytes, *args: Any) -> None:  # noqa: N802
        self.calls.append("Neonize")
        self.sessions += 1
        self._callbacks = args[4:6]  # (qr, login status), as goneonize receives them
        self._stopped.clear()
        self.session_up.set()
        self._stopped.wait()
        return None

    def Stop(self, uuid: bytes) -> None:  # noqa: N802
        self.calls.append("Stop")
        if not self.ignore_stop:
            self._stopped.set()

    def release(self) -> None:
        """Let every waiting call return (a test's cleanup)."""
        self.ignore_stop = False
        self._stopped.set()
        self.answer_sends.set()

    def login_status(self, status: str) -> None:
        """What goneonize does when the QR channel ends: the login status, as a C string."""
        buffer = ctypes.create_string_buffer(status.encode())
        self._callbacks[1](0, ctypes.addressof(buffer))

    def SendMessage(self, uuid: bytes, to: bytes, to_size: int, message: bytes, size: int) -> bytes:  # noqa: N802
        self.calls.append("SendMessage")
        self.sent.append(E.Message.FromString(message))
        self.answer_sends.wait()
        timings = N.MessageDebugTimings(**{f.name: 0 for f in N.MessageDebugTimings.DESCRIPTOR.fields})
        response = N.SendResponse(ID=f"3EB0BOT{len(self.sent):06d}", Timestamp=1_764_000_100, ServerID=0,
                                  DebugTimings=timings)
        return N.SendMessageReturnFunction(SendResponse=response).SerializeToString()

    def GetJoinedGroups(self, uuid: bytes) -> bytes:  # noqa: N802
        self.calls.append("GetJoinedGroups")
        error = self.joined_errors.pop(0) if self.joined_errors else ""
        return N.GetJoinedGroupsReturnFunction(Group=[] if error else self.joined, Error=error).SerializeToString()

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> Any:
            self.calls.append(name)
            raise RuntimeError(f"{name} would reach WhatsApp")

        return call


class GoSendOps(FakeOps):
    """FakeOps whose sends go through neonize's real send_message into a GoLibrary."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.go = GoLibrary()

    def new_client(self, session_db: str, on_login_status: Callable[[str], None]) -> Any:
        return self.go.install(super().new_client(session_db, on_login_status))

    def send(self, client: Any, to: Any, message: Any) -> Any:
        return NeonizeOps.send(self, client, to, message)


class GoGroupsOps(GoSendOps):
    """FakeOps whose group list comes through neonize's real get_joined_groups() from a GoLibrary."""

    def joined_groups(self, client: Any) -> list[GroupInfo]:
        self.group_calls += 1
        return NeonizeOps.joined_groups(self, client)


class GoSessionOps(GoSendOps):
    """Sessions through neonize's real connect() and stop() into a GoLibrary."""

    def run(self, client: Any) -> None:
        NeonizeOps.run(self, client)

    def end(self, client: Any) -> None:
        NeonizeOps.end(self, client)
