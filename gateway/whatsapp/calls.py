"""neonize calls made safe: the Go client table they read, and a deadline on each.

neonize 0.5.2 keeps its clients in a Go map (goneonize main.go, `clients`). Each call looks its
client up there first; a session's start writes the map and `Stop` deletes from it. A map read
while it is written is a fatal Go error that ends the whole process, so:

* a call is made only while a session has set its client up (the gate is *open*);
* `Stop` (the one write the transport makes) waits for the calls in progress, but only for their
  first moments: the lookup is the first thing each call does, and a call that has run for
  `READ_GRACE` is past it, waiting for the network. Stop, a ban, a logout or a new pairing
  never wait behind a send whose answer does not come.

No neonize call takes a timeout (`send_message` can wait for ever): each runs on a daemon thread
of its own, and its caller waits at most a deadline, or until the transport stops.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Generic, TypeVar

from gateway.transport import TransportError

T = TypeVar("T")

READ_GRACE = 1.0  # s: a call this old has looked its client up long ago


class NoSession(TransportError):
    """No session has set neonize's client up, or the session is ending."""


class Halted(TransportError):
    """The transport stopped while the call was waiting."""

    def __init__(self, message: str = "transport stopped") -> None:
        super().__init__(message, retryable=True)


class CallTimedOut(TransportError):
    """WhatsApp did not answer in time; the call goes on on its own thread (`call.finished`)."""

    def __init__(self, message: str, call: Call[Any]) -> None:
        super().__init__(message, retryable=True)
        self.call = call


class Call(Generic[T]):
    """One neonize call on its thread: when it began, whether it is over, what it gave."""

    def __init__(self) -> None:
        self.began: float | None = None  # time.monotonic() right before the call into Go
        self.finished = False
        self.value: T | None = None
        self.error: BaseException | None = None


class Gate:
    """Lets neonize calls run together while a session is set up; holds `Stop` back only for the
    calls that may still be reading the client table (see the module docstring)."""

    def __init__(self, grace: float = READ_GRACE) -> None:
        self.grace = grace
        self._cond = threading.Condition()
        self._open = False
        self._halted = False
        self._calls: set[Call[Any]] = set()

    @property
    def is_open(self) -> bool:
        with self._cond:
            return self._open

    def open(self) -> None:
        """A session has set its client up: calls may be made."""
        with self._cond:
            if not self._halted:
                self._open = True

    def close(self) -> None:
        """The session ends: no new calls."""
        with self._cond:
            self._open = False

    def settle(self) -> None:
        """Close, and wait until every call in progress is past its lookup in the client table."""
        with self._cond:
            self._open = False
            while True:
                now = time.monotonic()
                young = [now - c.began if c.began is not None else 0.0 for c in self._calls
                         if c.began is None or now - c.began < self.grace]
                if not young:
                    return
                self._cond.wait(self.grace - max(young))

    def halt(self) -> None:
        """The transport stops: every waiting caller returns now (Halted), no call starts again."""
        with self._cond:
            self._halted, self._open = True, False
            self._cond.notify_all()

    def call(self, fn: Callable[[], T], timeout: float, what: str) -> T:
        """Run `fn` (one neonize call) on a thread of its own and wait at most `timeout` for it.
        Raises NoSession, Halted, CallTimedOut, or what `fn` raised."""
        call: Call[T] = Call()
        with self._cond:
            if self._halted:
                raise Halted()
            if not self._open:
                raise NoSession("not connected to WhatsApp")
            self._calls.add(call)
        threading.Thread(target=self._run, args=(call, fn), name=f"whatsapp-call-{what}", daemon=True).start()
        with self._cond:
            self._cond.wait_for(lambda: call.finished or self._halted, timeout)
            if call.finished:
                if call.error is not None:
                    raise call.error
                return call.value  # type: ignore[return-value]
            if self._halted:
                raise Halted()
        raise CallTimedOut(f"WhatsApp did not answer the {what} within {timeout:.0f} s", call)

    def _run(self, call: Call[T], fn: Callable[[], T]) -> None:
        with self._cond:
            call.began = time.monotonic()
        value: T | None = None
        error: BaseException | None = None
        try:
            value = fn()
        except BaseException as e:  # handed to the caller, which may be gone: never lost silently
            error = e
        with self._cond:
            call.value, call.error, call.finished = value, error, True
            self._calls.discard(call)
            self._cond.notify_all()
