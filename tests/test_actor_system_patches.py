"""The patches actors/system.py applies to Thespian before the system starts."""

from __future__ import annotations

import errno
import selectors
import socket
from datetime import timedelta
from typing import Any

import pytest
from thespian.actors import Actor, ActorSystem
from thespian.system.transport import ReceiveEnvelope, TransmitIntent

from actors.system import _KeptPoll, describe_messages_lazily, keep_the_selector, quiet_log_config
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
