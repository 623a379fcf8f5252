"""Starting and stopping the Thespian actor system safely.

* Loopback only: Thespian's TCP base binds its admin and every actor socket to all interfaces
  and unpickles whatever arrives (remote code execution for anyone who can connect). We bind
  each socket to the address it advertises instead, which is 127.0.0.1 on one machine.
* Ownership: the Thespian admin detaches (setsid) and outlives its starter. run.py records
  the system's process group in `<data_dir>/actor-system.json`; if a start finds that file, the
  previous owner died without stopping it, and its processes are killed before anything starts.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import select
import selectors
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from thespian.actors import ActorSystem

from config import Config
from storage.atomic import atomic_write_bytes
from storage.errors import CorruptFile
from storage.lock import process_start_time

log = logging.getLogger("diamondbot.system")

SYSTEM_FILE = "actor-system.json"
LOOPBACK = "127.0.0.1"


def bind_to_advertised_address() -> None:
    """Make Thespian bind each socket to its advertised address, never to all interfaces.

    Thespian's IPActorAddress binds ('', port) for any "external" address, whatever
    THESPIAN_BASE_IPADDR says; that variable only changes the address it advertises. Actor
    processes are forked, so patching the class before the system starts covers all of them.
    """
    from thespian.system.transport import IPBase

    IPBase.IPActorAddress.bindArgs = property(lambda self: (self.sockname,))  # type: ignore[assignment]


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
    convention = config.actors.convention_address
    # On one machine: advertise loopback. In a convention, this machine's private address
    # (THESPIAN_BASE_IPADDR set by the operator) — see the README's firewall rule.
    if not convention:
        os.environ["THESPIAN_BASE_IPADDR"] = LOOPBACK
    os.environ.setdefault("THESPLOG_FILE", str(data_dir / "logs" / "thespian.log"))
    os.environ.setdefault("THESPLOG_FILE_MAXSIZE", str(10 << 20))
    bind_to_advertised_address()
    close_idle_connections_sooner()
    describe_messages_lazily()
    keep_the_selector()
    capabilities: dict[str, Any] = {"Admin Port": config.actors.admin_port}
    if convention:
        capabilities["Convention Address.IPv4"] = convention
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

