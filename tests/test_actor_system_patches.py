"""The patches actors/system.py applies to Thespian before the system starts."""

from __future__ import annotations

import errno
import selectors
import socket
import threading
import time
from collections import deque
from datetime import timedelta
from typing import Any

import pytest
from thespian.actors import Actor, ActorSystem, ActorTypeDispatcher, WakeupMessage
from thespian.system.transport import ReceiveEnvelope, TransmitIntent

from actors.system import (
    _AddressWaits,
    _KeptPoll,
    _order_key,
    _quiet_turn,
    _SendOrder,
    describe_messages_lazily,
    index_address_waits,
    keep_message_order,
    keep_the_selector,
    quiet_log_config,
    set_signals_directly,
    wait_quietly,
)
from tests.e2e import free_port


class Costly:
    """A message whose description is expensive, and counted."""

    described = 0

    def __str__(self) -> str:
        Costly.described += 1
        return "costly message"


def test_messages_are_described_only_when_a_log_line_needs_it() -> None:
    describe_messages_lazily()
    describe_messages_lazily()  # twice is once
    envelope: Any = ReceiveEnvelope("sender-address", Costly())
    intent: Any = TransmitIntent("target-address", Costly())
    Costly.described = 0
    lazy = [envelope.identify(), intent.identify()]  # what Thespian hands to its debug log
    assert Costly.described == 0
    # Written out, they read as before (the log, str() of an envelope or intent).
    received, sent = str(lazy[0]), "%s" % lazy[1]
    assert "costly message" in received and "sender-address" in received
    assert "costly message" in sent and "target-address" in sent
    assert "costly message" in str(envelope) and "target-address" in str(intent)
    assert Costly.described == 4


# -- the kept selector ----------------------------------------------------------------------------

def turn(wanted: dict[int, int], timeout: float | None = 0) -> dict[int, int]:
    """One turn of Thespian's loop: a selector made, filled, asked and closed; fd -> events."""
    sel: Any = _KeptPoll()
    for fd, events in wanted.items():
        sel.register(fd, events)
    try:
        return {key.fd: events for key, events in sel.select(timeout)}
    finally:
        sel.close()


def test_the_kept_selector_answers_as_a_new_one_would() -> None:
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        R, W = selectors.EVENT_READ, selectors.EVENT_WRITE
        assert turn({a.fileno(): R, c.fileno(): R}) == {}  # nothing to read: the timeout
        b.send(b"x")
        assert turn({a.fileno(): R, c.fileno(): R}) == {a.fileno(): R}
        assert turn({c.fileno(): R | W}) == {c.fileno(): W}  # a dropped fd is not reported
        assert turn({a.fileno(): R, c.fileno(): W}) == {a.fileno(): R, c.fileno(): W}
        a.recv(1)
        assert turn({a.fileno(): R}, timeout=0.05) == {}
    finally:
        for s in (a, b, c, d):
            s.close()


def test_a_reused_descriptor_number_is_watched_again() -> None:
    """The pitfall of keeping an epoll set: a socket closed and its number given to a new one."""
    a, b = socket.socketpair()
    fd = a.fileno()
    assert turn({fd: selectors.EVENT_READ}) == {}  # registered in the kept poll object
    a.close()
    b.close()
    c, d = socket.socketpair()
    try:
        assert fd in (c.fileno(), d.fileno())  # the lowest free number is reused
        new, other = (c, d) if c.fileno() == fd else (d, c)
        other.send(b"x")
        assert turn({fd: selectors.EVENT_READ}, timeout=1) == {fd: selectors.EVENT_READ}
    finally:
        c.close()
        d.close()


def test_a_closed_descriptor_is_refused_as_epoll_refuses_it() -> None:
    """Thespian finds a bad descriptor by the EBADF a selector raises for it."""
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    try:
        with pytest.raises(OSError) as e:
            turn({fd: selectors.EVENT_READ})
        assert e.value.errno == errno.EBADF
        with pytest.raises(ValueError):
            turn({-1: selectors.EVENT_READ})
    finally:
        b.close()


def test_the_poll_object_is_kept_between_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    import select

    made = []
    real = select.poll
    monkeypatch.setattr(_KeptPoll, "_poll", None)
    monkeypatch.setattr(_KeptPoll, "_registered", {})
    monkeypatch.setattr(select, "poll", lambda: made.append(1) or real())
    a, b = socket.socketpair()
    try:
        for _ in range(50):
            turn({a.fileno(): selectors.EVENT_READ})
        assert len(made) == 1
    finally:
        a.close()
        b.close()


def test_a_process_forked_while_the_selector_is_in_use_gets_it_free() -> None:
    """A fork keeps only the forking thread: a lock held by another at that moment is reset."""
    import os

    keep_the_selector()
    with _KeptPoll._lock:  # as if another thread were selecting
        pid = os.fork()
        if pid == 0:
            os._exit(0 if _KeptPoll._lock.acquire(blocking=False) else 1)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


class Echo(Actor):
    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, str):
            self.send(sender, msg.upper())


def test_actors_talk_on_the_production_base_with_the_kept_selector() -> None:
    from thespian.system.transport import TCPTransport

    keep_the_selector()
    keep_the_selector()  # twice is once
    assert TCPTransport.selectors.DefaultSelector is _KeptPoll
    asys = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()}, logDefs=quiet_log_config())
    try:
        echoes = [asys.createActor(Echo) for _ in range(3)]
        for n in range(20):
            assert asys.ask(echoes[n % 3], f"m{n}", timedelta(seconds=10)) == f"M{n}"
    finally:
        asys.shutdown()


# -- wait_quietly ----------------------------------------------------------------------------------

class Transport:
    """What _quiet_turn reads of a TCPTransport: a listening socket, the next wakeup's moment
    (run_time) and the lists of work in progress; all empty is quiet."""

    def __init__(self, due_in: float | None) -> None:
        from thespian.system.timing import ExpirationTimer

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(5)
        self.run_time = ExpirationTimer(None if due_in is None else timedelta(seconds=due_in))
        self._incomingEnvelopes: list[Any] = []
        self._transmitIntents: dict[Any, Any] = {}
        self._waitingTransmits: list[Any] = []
        self._incomingSockets: dict[Any, Any] = {}
        self._watches: list[int] = []
        self._openSockets: dict[Any, Any] = {}

    def connect(self) -> socket.socket:
        return socket.create_connection(self.socket.getsockname())


class General:
    """Thespian's own turn, stood in for: records each call and returns a marker."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, t: Any, handler: Any) -> str:
        self.calls.append(handler)
        return "general"


def handler(envelope: Any) -> bool:
    return True


def test_a_quiet_turn_waits_for_its_timer_and_expires_as_thespians_would() -> None:
    from thespian.system.transport import Thespian__Run_Expired

    t, general = Transport(due_in=0.15), General()
    try:
        started = time.monotonic()
        result = _quiet_turn(t, handler, general)
        waited = time.monotonic() - started
        assert isinstance(result, Thespian__Run_Expired)
        assert general.calls == []  # Thespian's loop never ran
        assert 0.14 <= waited < 1.0  # not before the moment (the poll's milliseconds round up)
        assert isinstance(_quiet_turn(Transport(due_in=-1), handler, general), Thespian__Run_Expired)  # overdue: at once
        poll = t._quiet_poll  # type: ignore[attr-defined]
        t.run_time = Transport(due_in=0.01).run_time
        _quiet_turn(t, handler, general)
        assert t._quiet_poll is poll  # type: ignore[attr-defined]  # kept, not made again
    finally:
        t.socket.close()


def test_a_connection_during_the_wait_goes_to_thespians_loop() -> None:
    """A message arriving (or Thespian's interrupt_wait, which connects to the same socket)."""
    for due_in in (5.0, None):  # a timer later, or none at all
        t, general = Transport(due_in), General()
        threading.Timer(0.1, lambda: t.__dict__.setdefault("peer", t.connect())).start()
        try:
            started = time.monotonic()
            assert _quiet_turn(t, handler, general) == "general"
            assert general.calls == [handler]
            assert time.monotonic() - started < 2.0
        finally:
            time.sleep(0.05)
            t.socket.close()
            t.__dict__["peer"].close()


@pytest.mark.parametrize("busy", ["_incomingEnvelopes", "_transmitIntents", "_waitingTransmits",
                                  "_incomingSockets", "_watches", "_openSockets", "no handler",
                                  "transmit only"])
def test_a_turn_with_anything_to_do_is_thespians_from_the_start(busy: str) -> None:
    from thespian.system.transport import TransmitOnly

    t, general = Transport(due_in=5.0), General()
    try:
        how = handler
        if busy == "no handler":
            how = None  # type: ignore[assignment]
        elif busy == "transmit only":
            how = TransmitOnly  # type: ignore[assignment]
        else:
            work = getattr(t, busy)
            if isinstance(work, dict):
                work[7] = object()
            else:
                work.append(7)
        started = time.monotonic()
        assert _quiet_turn(t, how, general) == "general"
        assert general.calls == [how]
        assert time.monotonic() - started < 1.0  # no wait for the timer first
    finally:
        t.socket.close()


def test_work_added_by_another_thread_is_handed_to_thespian_when_the_wait_ends() -> None:
    t, general = Transport(due_in=None), General()

    def add_work_and_interrupt() -> None:
        t._transmitIntents[3] = object()
        t.__dict__["peer"] = t.connect()  # as Thespian's interrupt_wait does

    threading.Timer(0.1, add_work_and_interrupt).start()
    try:
        assert _quiet_turn(t, handler, general) == "general"
    finally:
        time.sleep(0.05)
        t.socket.close()
        t.__dict__["peer"].close()


def test_an_abort_ends_the_wait_and_an_earlier_one_is_spent() -> None:
    from thespian.system.transport import Thespian__Run_Expired, Thespian__Run_Terminated

    t, general = Transport(due_in=0.05), General()
    try:
        t._aborting_run = False  # type: ignore[attr-defined]  # an abort from before this run, as Thespian forgets it
        assert isinstance(_quiet_turn(t, handler, general), Thespian__Run_Expired)
        assert not hasattr(t, "_aborting_run")
        t.run_time = Transport(due_in=None).run_time

        def abort() -> None:
            t._aborting_run = False  # type: ignore[attr-defined]
            t.__dict__["peer"] = t.connect()

        threading.Timer(0.1, abort).start()
        assert isinstance(_quiet_turn(t, handler, general), Thespian__Run_Terminated)
        assert general.calls == []
    finally:
        time.sleep(0.05)
        t.socket.close()
        t.__dict__["peer"].close()


class Napper(ActorTypeDispatcher):
    """Wakes `n` times, `period` apart, answering messages in between; reports whether its
    transport waited the quiet way."""

    def receiveMsg_tuple(self, msg: tuple[int, float], sender: Any) -> None:
        self.left, self.period, self.woke = msg[0], msg[1], []
        self.wakeupAfter(timedelta(seconds=self.period), payload=0)
        self.send(sender, "started")

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        self.woke.append(msg.payload)
        if len(self.woke) < self.left:
            self.wakeupAfter(timedelta(seconds=self.period), payload=len(self.woke))

    def receiveMsg_str(self, msg: str, sender: Any) -> None:
        transport = self._myRef.transport  # type: ignore[attr-defined]
        self.send(sender, (msg.upper(), list(self.woke), "_quiet_poll" in transport.__dict__))


def test_actors_wake_and_talk_on_the_production_base_when_waiting_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    from thespian.system.transport import TCPTransport as tcp

    keep_the_selector()
    wait_quietly()
    wait_quietly()  # twice is once
    assert tcp.TCPTransport._runWithExpiry.__name__ == "_runWithExpiry"
    # Connections left idle by the start close soon (as close_idle_connections_sooner has them,
    # sooner still), so the actors are quiet between their wakeups.
    monkeypatch.setattr(tcp, "MAX_IDLE_SOCKET_PERIOD", timedelta(seconds=0.3))
    monkeypatch.setattr(tcp, "MAX_INCOMING_SOCKET_PERIOD", timedelta(seconds=0.3))
    asys = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()}, logDefs=quiet_log_config())
    try:
        nappers = [asys.createActor(Napper) for _ in range(3)]
        for n in nappers:
            assert asys.ask(n, (30, 0.05), timedelta(seconds=10)) == "started"
        assert asys.ask(nappers[0], "now", timedelta(seconds=10))[0] == "NOW"  # a message between wakeups
        deadline = time.monotonic() + 20
        answers: list[Any] = []
        while time.monotonic() < deadline:
            time.sleep(1.0)
            answers = [asys.ask(n, "how", timedelta(seconds=10)) for n in nappers]
            if all(len(a[1]) == 30 for a in answers):
                break
        for text, woke, quietly in answers:
            assert text == "HOW"
            assert woke == list(range(30))  # every wakeup, once, in order
            assert quietly  # the quiet turn did run in the actor's process
    finally:
        asys.shutdown()


# -- keep_message_order ---------------------------------------------------------------------------

def intent(n: int, to: Any = "B") -> Any:
    return TransmitIntent(to, n)


def test_a_targets_next_message_waits_until_the_last_is_done() -> None:
    """Thespian retries a transmit while the next one to the same actor goes ahead on a new
    connection (a host got a ForGroup before the HostGroups sent first); held behind it, the
    next one cannot overtake."""
    handed: list[Any] = []
    order = _SendOrder(lambda i, c: handed.append(i))
    first, second, third, other = intent(1), intent(2), intent(3), intent(9)
    order.send("B", first, None)
    order.send("B", second, None)
    order.send("B", third, None)
    order.send("C", other, None)  # another target is not held up
    assert [i.message for i in handed] == [1, 9]
    from thespian.system.transport import SendStatus

    handed[0].tx_done(SendStatus.Failed)  # the first one failed: the next goes all the same
    assert [i.message for i in handed] == [1, 9, 2]
    handed[2].tx_done(SendStatus.Sent)
    assert [i.message for i in handed] == [1, 9, 2, 3]
    handed[3].tx_done(SendStatus.Sent)
    assert order.waiting == {"C": deque()}  # B has nothing on its way; C's one is


def test_messages_done_while_handed_over_go_on_in_a_loop_not_a_recursion() -> None:
    from thespian.system.transport import SendStatus

    handed: list[int] = []

    def transmit(i: Any, c: Any) -> None:
        if len(handed) == 0:
            handed.append(i.message)  # the first stays on its way
            return
        handed.append(i.message)
        i.tx_done(SendStatus.Sent)  # done at once, as a send to itself is

    order = _SendOrder(transmit)
    first = intent(0)
    order.send("B", first, None)
    for n in range(1, 5000):
        order.send("B", intent(n), None)
    first.tx_done(SendStatus.Sent)  # 4,999 follow, each done as it is handed over
    assert handed == list(range(5000))
    assert order.waiting == {}


def test_a_placeholder_address_is_one_target_before_and_after_its_actor_is_up() -> None:
    from thespian.actors import ActorAddress
    from thespian.system.addressManager import ActorLocalAddress

    placeholder = ActorAddress(ActorLocalAddress("creator", 7, None))
    assert _order_key(placeholder) == ("child", 7) == _order_key(ActorAddress(ActorLocalAddress("creator", 7, None)))
    assert _order_key(ActorAddress(None)) is None


def test_actors_keep_the_order_of_a_burst_on_the_production_base() -> None:
    """The patched sends still work between processes (a quiet burst is in order with or
    without the patch; the reordering needs a retried transmit, as the tests above model)."""
    keep_message_order()
    keep_message_order()  # twice is once
    asys = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()}, logDefs=quiet_log_config())
    try:
        sink, source = asys.createActor(Sink), asys.createActor(Source)
        assert asys.ask(source, (sink, 500), timedelta(seconds=30)) == "sent"
        got: list[int] = []
        deadline = time.monotonic() + 20
        while len(got) < 500 and time.monotonic() < deadline:
            got = asys.ask(sink, "report", timedelta(seconds=10))
        assert got == list(range(500))
    finally:
        asys.shutdown()


class Sink(Actor):
    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, (int, tuple)):
            self.__dict__.setdefault("got", []).append(msg)
        elif msg == "report":
            self.send(sender, self.__dict__.get("got", []))


class Source(Actor):
    """Creates nothing: sends a burst to an actor it was given (a TCP address)."""

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, tuple):
            to, n = msg
            for i in range(n):
                self.send(to, i)
            self.send(sender, "sent")


# -- index_address_waits ----------------------------------------------------------------------------

def placeholder(n: int) -> Any:
    from thespian.actors import ActorAddress
    from thespian.system.addressManager import ActorLocalAddress

    return ActorAddress(ActorLocalAddress("creator", n, None))


class Equal:
    """An address Thespian compares by equality (not a placeholder)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Equal) and other.name == self.name


def test_sends_wait_per_child_in_order_and_are_handed_back_once() -> None:
    waits = _AddressWaits()
    for n, i in [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (1, "e")]:
        waits.add(placeholder(n), i)
    assert waits.remove_intents_for_address(placeholder(1)) == ["a", "c", "e"]
    assert waits.remove_intents_for_address(placeholder(1)) == []  # handed back once
    assert waits.remove_intents_for_address(placeholder(9)) == []
    assert waits.remove_intents_for_address(placeholder(3)) == ["d"]
    assert waits.remove_intents_for_address(placeholder(2)) == ["b"]


def test_other_addresses_wait_by_equality_as_in_thespian() -> None:
    waits = _AddressWaits()
    waits.add(Equal("x"), 1)
    waits.add(placeholder(4), 2)
    waits.add(Equal("x"), 3)
    waits.add(Equal("y"), 4)
    assert waits.remove_intents_for_address(Equal("x")) == [1, 3]
    assert waits.remove_intents_for_address(Equal("y")) == [4]
    assert waits.remove_intents_for_address(Equal("z")) == []
    assert [len(intents) for _, intents in waits.fmap(lambda e: e)] == [1]  # only the placeholder's is left


class Child(Actor):
    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, tuple):  # (collector, child number, message number)
            self.send(msg[0], msg[1:])


class Parent(Actor):
    """Creates children and sends to each at once, before any of them is up."""

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, tuple):
            collector, children, each = msg
            kids = [self.createActor(Child) for _ in range(children)]
            for i in range(each):
                for c, kid in enumerate(kids):
                    self.send(kid, (collector, c, i))
            self.send(sender, "sent")


def test_messages_to_children_not_yet_up_arrive_in_order_on_the_production_base() -> None:
    from thespian.system import systemCommon

    index_address_waits()
    index_address_waits()  # twice is once
    set_signals_directly()
    assert systemCommon.AddressWaitTransmits is _AddressWaits
    asys = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()}, logDefs=quiet_log_config())
    try:
        sink, parent = asys.createActor(Sink), asys.createActor(Parent)
        assert asys.ask(parent, (sink, 12, 4), timedelta(seconds=30)) == "sent"
        got: list[Any] = []
        deadline = time.monotonic() + 20
        while len(got) < 48 and time.monotonic() < deadline:
            got = asys.ask(sink, "report", timedelta(seconds=10))
        assert sorted(got) == [(c, i) for c in range(12) for i in range(4)]
        for c in range(12):
            assert [i for k, i in got if k == c] == [0, 1, 2, 3]  # each child's in order
    finally:
        asys.shutdown()


def test_signal_handlers_are_set_by_the_c_function() -> None:
    import _signal

    from thespian.system import multiprocCommon

    set_signals_directly()
    assert multiprocCommon.set_signal_handler is _signal.signal
