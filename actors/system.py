"""Starting and stopping the Thespian actor system safely.

* Loopback only: Thespian's TCP base binds its admin and every actor socket to all interfaces
  and unpickles whatever arrives (remote code execution for anyone who can connect). We bind
  each socket to the address it advertises instead, which is 127.0.0.1 on one machine.
* Signed in a convention: with several machines (cluster.role), every Thespian message carries
  an HMAC of a shared secret, checked before anything is unpickled (sign_thespian_messages).
* In order: Thespian may deliver two messages from one actor to another out of order (a retried
  transmit is overtaken); each actor passes a target's next message on once the last is done
  (keep_message_order).
* Ownership: the Thespian admin detaches (setsid) and outlives its starter. run.py records
  the system's process group in `<data_dir>/actor-system.json`; if a start finds that file, the
  previous owner died without stopping it, and its processes are killed before anything starts.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import math
import os
import pickle
import select
import selectors
import stat
import signal
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from thespian.actors import ActorSystem
from thespian.system.timing import currentTime
from thespian.system.transport import Thespian__Run_Expired, Thespian__Run_Terminated, TransmitOnly

from config import Config
from storage.atomic import atomic_write_bytes
from storage.errors import CorruptFile
from storage.lock import process_start_time

log = logging.getLogger("diamondbot.system")

SYSTEM_FILE = "actor-system.json"
LOOPBACK = "127.0.0.1"
SHARD = "diamond.shard"  # the actor-system capability naming a machine's shard


def bind_to_advertised_address() -> None:
    """Make Thespian bind each socket to its advertised address, never to all interfaces.

    Thespian's IPActorAddress binds ('', port) for any "external" address, whatever
    THESPIAN_BASE_IPADDR says; that variable only changes the address it advertises. Actor
    processes are forked, so patching the class before the system starts covers all of them.
    """
    from thespian.system.transport import IPBase

    IPBase.IPActorAddress.bindArgs = property(lambda self: (self.sockname,))  # type: ignore[assignment]


HMAC_SIZE = 32  # bytes of HMAC-SHA256 before every pickled Thespian message
MIN_SECRET = 32  # bytes of the shared secret, at least


class SecretError(Exception):
    """The shared secret's file cannot be used; the message says why (never what it holds)."""


def read_secret(path: str | os.PathLike[str]) -> bytes:
    """The shared secret of a convention, from a file only its owner can read or write.

    A secret others on the machine can read would let them sign pickles, which is running code
    in every actor of every machine; so a looser mode is refused rather than fixed."""
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise SecretError(f"cluster.secret_file {p} is not a file")
        if st.st_mode & 0o077:
            raise SecretError(f"cluster.secret_file {p} is open to others (mode {stat.S_IMODE(st.st_mode):o}); "
                              f"make it the owner's alone: chmod 600 {p}")
        secret = p.read_bytes().strip()
    except OSError as e:
        raise SecretError(f"cluster.secret_file {p} cannot be read: {e.strerror}") from None
    if len(secret) < MIN_SECRET:
        raise SecretError(f"cluster.secret_file {p} holds {len(secret)} bytes; it needs at least {MIN_SECRET} "
                          "random ones (e.g. `head -c 48 /dev/urandom | base64 > FILE`)")
    return secret


class SignedPickle:
    """Thespian's TCP serializer with an HMAC-SHA256 of the shared secret before each pickle.

    `loads` checks the HMAC before it unpickles: a message without one, or with a wrong one, is
    never unpickled. It is logged and answered as Thespian answers a corrupt packet
    (ackDataErrPacket, which Thespian's receive and ack paths both treat as "bad data": the
    socket is closed, nothing is delivered) rather than raised, so no path of Thespian's
    transport sees an exception of ours."""

    def __init__(self, secret: bytes) -> None:
        self._key = secret

    def __repr__(self) -> str:  # never the key, in any log or traceback
        return "<SignedPickle>"

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def dumps(self, obj: Any) -> bytes:
        body = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        return self._tag(body) + body

    def loads(self, data: bytes) -> Any:
        from thespian.system.transport.streamBuffer import ackDataErrPacket

        data = bytes(data)
        tag, body = data[:HMAC_SIZE], data[HMAC_SIZE:]
        if len(data) < HMAC_SIZE or not hmac.compare_digest(tag, self._tag(body)):
            log.warning("dropped a Thespian message of %d bytes without a valid HMAC (not unpickled): a "
                        "machine without the shared secret, or not one of ours, reached this port", len(data))
            return ackDataErrPacket
        return pickle.loads(body)


def sign_thespian_messages(secret: bytes) -> None:
    """Make every Thespian TCP message of this process (and the actor processes it forks) signed
    with `secret`, and refuse unsigned ones before unpickling.

    Thespian's TCPTransport takes its serializer from a module global at each send and receive
    (`serializer.dumps` / `ReceiveBuffer(serializer.loads)`), and its ACKs are pickles made once
    at import (ackMsg, ackDataErrMsg): replacing those three covers messages and acks alike."""
    from thespian.system.transport import TCPTransport
    from thespian.system.transport.streamBuffer import ackDataErrPacket, ackPacket, toSendBuffer

    signed = SignedPickle(secret)
    TCPTransport.serializer = signed  # type: ignore[attr-defined]
    TCPTransport.ackMsg = toSendBuffer(ackPacket, signed.dumps)  # type: ignore[attr-defined]
    TCPTransport.ackDataErrMsg = toSendBuffer(ackDataErrPacket, signed.dumps)  # type: ignore[attr-defined]


def close_idle_connections_sooner(period: float = 3.0) -> None:
    """Thespian keeps every connection between two actors open for 7 to 20 minutes and walks
    all of them on each event; an actor with a thousand peers (the PersistenceActor, the
    gateway) then spends a third of a core doing so. Idle connections are closed after
    `period` instead (read when each socket is made, so set before the system starts)."""
    from thespian.system.transport import TCPTransport

    TCPTransport.MAX_INCOMING_SOCKET_PERIOD = timedelta(seconds=period)
    TCPTransport.MAX_IDLE_SOCKET_PERIOD = timedelta(seconds=period)


class _KeptPoll:
    """What Thespian's transport loop asks of a selector — register, select, close — answered
    from one poll object the process keeps (`keep_the_selector`).

    Thespian makes a new epoll selector on every turn of its loop, registers every socket in it
    (a system call each), selects and closes it again. Here register() only notes what this turn
    wants, select() brings the kept poll object up to date (in memory: poll keeps no state in
    the kernel) and makes one system call, and close() forgets the notes. poll, not a kept
    epoll: a socket closed and its number reused by a new one would silently drop out of an
    epoll set that still lists the number, and Thespian names its sockets by number only."""

    _poll: Any = None  # the process's poll object, made at first use (a fork copies it, harmlessly)
    _registered: dict[int, int] = {}  # fd -> poll mask, as the poll object has them
    _lock = threading.Lock()  # the loop's thread selects; another (a check of one fd) gets its own

    __slots__ = ("_want",)

    def __init__(self) -> None:
        self._want: dict[int, int] = {}

    def register(self, fd: int, events: int, data: Any = None) -> None:
        if not isinstance(fd, int) or fd < 0:
            raise ValueError(f"Invalid file descriptor: {fd}")  # as selectors says it
        self._want[fd] = self._want.get(fd, 0) | events

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        want = {fd: (select.POLLIN if ev & selectors.EVENT_READ else 0)
                    | (select.POLLOUT if ev & selectors.EVENT_WRITE else 0)
                for fd, ev in self._want.items()}
        kept = _KeptPoll._lock.acquire(blocking=False)
        try:
            if kept:
                if _KeptPoll._poll is None:
                    _KeptPoll._poll = select.poll()
                poll, registered = _KeptPoll._poll, _KeptPoll._registered
                for fd in [fd for fd in registered if fd not in want]:
                    poll.unregister(fd)
                    del registered[fd]
                for fd, mask in want.items():
                    if registered.get(fd) != mask:
                        poll.register(fd, mask)
                        registered[fd] = mask
            else:
                poll = select.poll()
                for fd, mask in want.items():
                    poll.register(fd, mask)
            ms = None if timeout is None else max(math.ceil(timeout * 1000), 0)
            ready = poll.poll(ms)
        finally:
            if kept:
                _KeptPoll._lock.release()
        events = []
        for fd, revents in ready:
            if revents & select.POLLNVAL:  # epoll refuses a closed descriptor at register: so do we
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            mask = 0
            if revents & ~select.POLLIN:  # as selectors.PollSelector reads the events
                mask |= selectors.EVENT_WRITE
            if revents & ~select.POLLOUT:
                mask |= selectors.EVENT_READ
            mask &= self._want.get(fd, 0)
            if mask:
                events.append((_Key(fd), mask))
        return events

    def close(self) -> None:
        self._want = {}

    @staticmethod
    def reset_lock() -> None:
        _KeptPoll._lock = threading.Lock()


class _Key:
    """The part of a selectors.SelectorKey Thespian reads."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd


def keep_the_selector() -> None:
    """Thespian's TCP transport creates, fills and closes a new epoll selector on every turn of
    its loop (its own comment: "perhaps this could be optimized"); a quiet group actor pays it
    on every wakeup. The transport is given a selectors stand-in whose selector is kept between
    turns instead (`_KeptPoll`); fork carries it to every actor."""
    import types

    from thespian.system.transport import TCPTransport

    if getattr(TCPTransport.selectors, "_kept", False):
        return
    TCPTransport.selectors = types.SimpleNamespace(  # type: ignore[attr-defined]
        DefaultSelector=_KeptPoll, EVENT_READ=selectors.EVENT_READ, EVENT_WRITE=selectors.EVENT_WRITE,
        _kept=True)
    # A child has only the forking thread: a lock another thread held at the fork would stay held.
    os.register_at_fork(after_in_child=_KeptPoll.reset_lock)


def wait_quietly() -> None:
    """A turn of Thespian's loop with nothing to do but wait for a timer or a connection is
    made as a few lines instead of its general loop.

    A quiet actor (no transmit on its way, no connection open, nothing received pending, no
    watched file) waits in TCPTransport._runWithExpiry: each turn builds the lists of sockets to
    select on through filters, lambdas and fmap/partition, takes the transport's lock twice
    through a contextlib manager, makes several ExpirationTimer views, walks the (empty) lists
    of intents, incoming and idle sockets after the select, and only then finds that the timer
    ran out. A group waking every 10 s among a thousand processes finds all of that cold.

    In exactly that quiet state the patched method polls the listening socket, which is all the
    general turn would select on, until the transport's run time (the next wakeup) is up, with
    a poll object the transport keeps, and returns Expired as the general turn would. Anything
    else (a connection arriving, Thespian's own interrupt_wait, which connects to that socket,
    or work another thread added meanwhile) goes to Thespian's loop unchanged, and every turn
    that is not quiet is Thespian's from the start. One difference: an abort_run from another
    thread during the wait ends the run at once, without first accepting a connection that came
    in the same moment (Thespian calls abort_run only from the actor's own thread)."""
    from thespian.system.transport.TCPTransport import TCPTransport

    if getattr(TCPTransport, "_waits_quietly", False):
        return
    general = TCPTransport._runWithExpiry

    def _runWithExpiry(self: Any, incomingHandler: Any) -> Any:
        return _quiet_turn(self, incomingHandler, general)

    TCPTransport._runWithExpiry = _runWithExpiry  # type: ignore[method-assign]
    TCPTransport._waits_quietly = True  # type: ignore[attr-defined]


def _is_quiet(t: Any) -> bool:
    """Nothing for the transport `t` to do but wait: no envelope received and not yet handled,
    no transmit on its way or waiting, no incoming or idle connection, no watched file."""
    return not (t._incomingEnvelopes or t._transmitIntents or t._waitingTransmits
                or t._incomingSockets or t._watches or t.__dict__.get("_openSockets"))


def _quiet_turn(t: Any, handler: Any, general: Any) -> Any:
    """TCPTransport._runWithExpiry for the transport `t` (wait_quietly); `general` is Thespian's."""
    if handler is None or handler is TransmitOnly or isinstance(handler, TransmitOnly) or not _is_quiet(t):
        return general(t, handler)
    state = t.__dict__
    state.pop("_aborting_run", None)  # as Thespian's loop starts: an earlier abort is spent
    fd = t.socket.fileno()
    kept = state.get("_quiet_poll")
    if kept is None or kept[0] != fd:
        kept = (fd, select.poll())  # poll keeps nothing in the kernel: a fork's copy is as good
        kept[1].register(fd, select.POLLIN)
        t._quiet_poll = kept
    poll = kept[1].poll
    while True:
        quit_at = t.run_time._time_to_quit  # the next wakeup's moment (None: none, wait for a connection)
        if quit_at is None:
            ms = None
        else:
            left = quit_at - currentTime()
            if left <= 0:
                return Thespian__Run_Expired()
            ms = math.ceil(left * 1000)  # as the selectors round: never wake before the moment
        ready = poll(ms)
        if "_aborting_run" in state:
            return Thespian__Run_Terminated()
        if ready or not _is_quiet(t):
            return general(t, handler)


def keep_message_order() -> None:
    """Messages from one actor to another arrive in the order they were sent.

    Thespian 4 hands every send to its transport at once (the "existing transmits in progress"
    check its own comment describes is gone), so a transmit that is delayed (retried on a
    connection the other side closed, or postponed until a new actor's address is known) can be
    overtaken by the next one: a host got a ForGroup 160 ms before the HostGroups sent ahead of
    it, and an order was dropped (6 of 6 bench.approve runs; none with this patch).
    So each actor passes a target's next message to the transport only once the previous one
    to that target is done (sent or failed); messages to different targets still go in parallel.
    """
    from thespian.system.systemCommon import systemCommonBase

    if getattr(systemCommonBase, "_order_kept", False):
        return
    original = systemCommonBase._send_intent

    def _send_intent(self: Any, intent: Any, curtime: Any = None) -> None:
        if getattr(intent, "_in_order", False):  # sent again by Thespian (an address resolved)
            original(self, intent, curtime)
            return
        key = _order_key(intent.targetAddr)
        if key is None:
            original(self, intent, curtime)
            return
        order = self.__dict__.get("_send_order")
        if order is None:
            order = self.__dict__.setdefault("_send_order", _SendOrder(lambda i, c: original(self, i, c)))
        order.send(key, intent, curtime)

    systemCommonBase._send_intent = _send_intent  # type: ignore[method-assign]
    systemCommonBase._order_kept = True  # type: ignore[attr-defined]


class _SendOrder:
    """Per target: the message on its way, and those waiting behind it."""

    def __init__(self, transmit: Any) -> None:
        self.transmit = transmit  # Thespian's own _send_intent
        self.lock = threading.Lock()  # sends may come from an actor's other threads
        self.waiting: dict[Any, deque[tuple[Any, Any]]] = {}

    def send(self, key: Any, intent: Any, curtime: Any) -> None:
        with self.lock:
            queue = self.waiting.get(key)
            if queue is not None:  # one is on its way to this target: wait behind it
                queue.append((intent, curtime))
                return
            self.waiting[key] = deque()
        self._run(key, intent, curtime)

    def _run(self, key: Any, intent: Any, curtime: Any) -> None:
        """Hand intents for `key` to the transport one at a time. One can be done while it is
        handed over (a failure at once); the next then follows in this loop, not recursively."""
        while intent is not None:
            state = {"handing": True, "done": False}

            def done(_result: Any = None, _intent: Any = None, state: dict[str, bool] = state) -> None:
                if state["handing"]:
                    state["done"] = True
                else:
                    self._run(key, *self._next(key))

            intent._in_order = True
            intent.addCallback(done, done)
            self.transmit(intent, curtime)
            state["handing"] = False
            if not state["done"]:
                return
            intent, curtime = self._next(key)

    def _next(self, key: Any) -> tuple[Any, Any]:
        with self.lock:
            queue = self.waiting.get(key)
            if not queue:
                self.waiting.pop(key, None)
                return None, None
            return queue.popleft()


def _order_key(address: Any) -> Any:
    """What names an actor across the sends to it: its TCP address, or, for a child its creator
    still addresses by the placeholder createActor gave (Thespian keeps using it after the
    child is up), that placeholder's number; None for anything else (such a message is not held)."""
    details = getattr(address, "addressDetails", None)
    number = getattr(details, "addressInstanceNum", None)
    if number is not None:
        return ("child", number)
    try:
        hash(details)
    except TypeError:
        return None
    return details


def index_address_waits() -> None:
    """Sends to a child not yet up wait in Thespian's AddressWaitTransmits, a list it scans with
    ActorAddress's costly equality on every send and every child's start: a host forking 500
    groups made ~90,000 such comparisons per start (its largest CPU item in a profile at 1,000
    groups). The same waits, kept by the child's placeholder number (`_AddressWaits`)."""
    from thespian.system import systemCommon

    if systemCommon.AddressWaitTransmits is _AddressWaits:
        return
    systemCommon.AddressWaitTransmits = _AddressWaits  # type: ignore[misc]  # made per actor at start


class _AddressWaits:
    """Thespian's AddressWaitTransmits with its waits for a placeholder address (a child this
    actor created: the only addresses Thespian holds sends for) found by the placeholder's
    number; any other address is looked up as Thespian does, by equality."""

    def __init__(self) -> None:
        self._by_child: dict[int, tuple[Any, list[Any]]] = {}
        self._other: list[tuple[Any, list[Any]]] = []

    @staticmethod
    def _number(addr: Any) -> int | None:
        from thespian.system.addressManager import ActorLocalAddress

        details = getattr(addr, "addressDetails", None)
        return details.addressInstanceNum if isinstance(details, ActorLocalAddress) else None

    def fmap(self, func: Any) -> Any:
        return map(func, [*self._by_child.values(), *self._other])  # lazy, as Thespian's own

    def add(self, addr: Any, intent: Any) -> None:
        number = self._number(addr)
        if number is not None:
            self._by_child.setdefault(number, (addr, []))[1].append(intent)
            return
        for each in self._other:
            if each[0] == addr:
                each[1].append(intent)
                return
        self._other.append((addr, [intent]))

    def remove_intents_for_address(self, addr: Any) -> list[Any]:
        number = self._number(addr)
        if number is not None:
            return self._by_child.pop(number, (addr, []))[1]
        for idx, each in enumerate(self._other):
            if each[0] == addr:
                del self._other[idx]
                return each[1]
        return []


def set_signals_directly() -> None:
    """A new actor process sets a handler for each of the 64 signals through signal.signal,
    whose wrapper turns every previous handler into an enum (~1,800 Python calls, 10x the
    C call's time) for a result Thespian drops: the C function instead, a part of each of a
    thousand groups' starts."""
    import _signal

    from thespian.system import multiprocCommon

    multiprocCommon.set_signal_handler = _signal.signal  # type: ignore[attr-defined]


class _Described:
    """A message's description for Thespian's debug log, made only if a line is written."""

    __slots__ = ("_describe", "_of")

    def __init__(self, describe: Any, of: Any) -> None:
        self._describe, self._of = describe, of

    def __str__(self) -> str:
        return str(self._describe(self._of))

    __repr__ = __str__


def describe_messages_lazily() -> None:
    """Thespian describes every message it sends and receives (str() of the whole message, its
    timers) as the argument of a debug log call, so even with debug logging off: measured, 8 %
    of an idle group actor's busy time, more for a Persist carrying many records. The
    description is now only made when a log line is written (fork carries this to every actor)."""
    from thespian.system.transport import ReceiveEnvelope, TransmitIntent

    for cls in (ReceiveEnvelope, TransmitIntent):
        if cls.__dict__.get("_described_lazily"):
            continue
        eager = cls.identify
        cls.identify = lambda self, eager=eager: _Described(eager, self)  # type: ignore[method-assign]
        cls.__str__ = lambda self, eager=eager: str(eager(self))  # type: ignore[method-assign]
        cls._described_lazily = True  # type: ignore[attr-defined]


def log_config(data_dir: Path, level: str = "INFO") -> dict[str, Any]:
    """logging dictConfig for every process of the system (Thespian forwards actor logs to one
    logger process, which writes them)."""
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": fmt}},
        "handlers": {
            "file": {"class": "logging.handlers.RotatingFileHandler", "formatter": "plain",
                     "filename": str(data_dir / "logs" / "bot.log"), "maxBytes": 20 << 20,
                     "backupCount": 5, "encoding": "utf-8"},
            "console": {"class": "logging.StreamHandler", "formatter": "plain",
                        "stream": "ext://sys.stderr"},
        },
        "loggers": {"Thespian": {"level": "WARNING"}},
        "root": {"handlers": ["file", "console"], "level": level},
    }


def quiet_log_config() -> dict[str, Any]:
    """For tests: change nothing (Thespian wants a real dict, never logDefs=False). On
    simpleSystemBase it is applied to the test process itself, where pytest captures logs."""
    return {"version": 1, "disable_existing_loggers": False}


def start_actor_system(config: Config, logdefs: dict[str, Any] | None = None) -> ActorSystem:
    """Start (or, in the same process, return) the actor system named by config.actors."""
    data_dir = Path(config.bot.data_dir).resolve()
    logdefs = logdefs if logdefs is not None else log_config(data_dir)
    base = config.actors.system_base
    if base == "simpleSystemBase":
        return ActorSystem("simpleSystemBase", logDefs=logdefs)
    cluster = config.cluster
    # One machine: advertise (and so bind, below) loopback. In a convention: only this
    # machine's configured private address (the config refuses a non-loopback one without a role).
    os.environ["THESPIAN_BASE_IPADDR"] = cluster.address if cluster.role else LOOPBACK
    os.environ.setdefault("THESPLOG_FILE", str(data_dir / "logs" / "thespian.log"))
    os.environ.setdefault("THESPLOG_FILE_MAXSIZE", str(10 << 20))
    bind_to_advertised_address()
    close_idle_connections_sooner()
    describe_messages_lazily()
    keep_the_selector()
    wait_quietly()
    keep_message_order()
    index_address_waits()
    set_signals_directly()
    capabilities: dict[str, Any] = {"Admin Port": config.actors.admin_port, SHARD: cluster.shard,
                                    # how many group hosts the leader starts on this machine's shard
                                    "diamond.hosts": config.actors.group_hosts or max(os.cpu_count() or 1, 1)}
    if cluster.role:
        sign_thespian_messages(read_secret(cluster.secret_file))  # before any socket exists
        if cluster.role == "member":  # the leader names none: it is the convention's address
            capabilities["Convention Address.IPv4"] = config.actors.convention_address
    return ActorSystem(base, capabilities, logDefs=logdefs)


# -- the record of a running system, and cleaning up after a crashed owner ----------------------


def record_system(data_dir: Path, pgid: int, admin_port: int) -> None:
    info = {"pgid": pgid, "admin_port": admin_port, "owner_pid": os.getpid(),
            "owner_start": process_start_time(os.getpid()), "started_at": time.time()}
    atomic_write_bytes(data_dir / SYSTEM_FILE, orjson.dumps(info))


def started_system_group() -> int:
    """The process group of the actor system this process started, 0 if there is none.

    Thespian starts its admin through a child of ours that calls setsid, so that child's pid is
    the group of every actor process; known this way before the Supervisor reports it, a start
    that fails half-way can still wait for (or kill) everything it started."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[1]) == me and int(fields[2]) == int(entry):
            return int(entry)
    return 0


def reap_admin_starter(pgid: int) -> None:
    """Thespian starts its admin through a child that calls setsid (so its pid is the system's
    process group), forks the admin and exits; Thespian detaches that child and never waits for
    it, which would leave a <defunct> process beside the bot for as long as it runs."""
    def reap() -> None:
        try:
            os.waitpid(pgid, 0)
        except ChildProcessError:  # not our child (a system started elsewhere) or reaped already
            pass

    threading.Thread(target=reap, name="reap-admin-starter", daemon=True).start()


def forget_system(data_dir: Path) -> None:
    try:
        (data_dir / SYSTEM_FILE).unlink()
    except FileNotFoundError:
        pass


def group_members(pgid: int) -> list[int]:
    """Live pids whose process group is pgid (from /proc/<pid>/stat; zombies are dead)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def read_system_record(data_dir: Path) -> dict[str, Any] | None:
    """What `record_system` wrote, None when there is no record; CorruptFile when it cannot be read."""
    path = data_dir / SYSTEM_FILE
    try:
        info = orjson.loads(path.read_bytes())
        int(info["pgid"])
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OSError) as e:
        # Guessing "nothing is left" could leave a second writer of the orders running.
        reason = e.strerror if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
        raise CorruptFile(path, f"it does not say which actor processes an earlier run left ({reason})", (
            "look for actor processes of an earlier run on this data directory (`ps -eo pid,pgid,args`), "
            "stop them, then delete the file")) from None
    return dict(info)


def stop_stale_system(data_dir: Path, timeout: float = 5.0) -> int:
    """Kill what a dead owner left running; returns how many processes were stopped.

    Only called with the instance lock held, so the recorded owner is known to be gone.
    CorruptFile when the record cannot be read (it is left as found)."""
    info = read_system_record(data_dir)
    if info is None:
        return 0
    pgid = int(info["pgid"])
    # Never our own group (a pgid reused by us), never init's.
    if pgid <= 1 or pgid == os.getpgid(0):
        forget_system(data_dir)
        return 0
    members = group_members(pgid)
    if members:
        log.warning("stopping %d processes left by a previous run (process group %d)", len(members), pgid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout / 2
            while group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not group_members(pgid):
                break
    forget_system(data_dir)
    return len(members)

