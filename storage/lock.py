"""One process per data directory: an flock that dies with its owner, and says who the owner is."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.errors import LockHeld

__all__ = ["BOT_LOCKS", "FileLock", "LockHeld", "holding_locks", "process_alive", "process_start_time",
           "read_lock_owner"]

# run.py holds the first while it runs, the PersistenceActor (the one writer of the orders) the second:
# a command that changes the data directory holds both, so no bot starts or writes meanwhile.
BOT_LOCKS = ("bot.lock", "persistence.lock")

# Locks whose fd a forked child must close. Registered once: os.register_at_fork cannot be undone.
_CLOSE_IN_CHILD: weakref.WeakSet[FileLock] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lock in list(_CLOSE_IN_CHILD):
        lock._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class FileLock:
    """An exclusive, non-blocking flock on `path` that records its owner in the file."""

    def __init__(self, path: str | os.PathLike[str], *, close_on_fork: bool = True) -> None:
        self.path = Path(path)
        self.close_on_fork = close_on_fork
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the process that has it."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FileLock")
        # O_CLOEXEC: an exec'd program must not keep our lock alive either.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(read_lock_owner(self.path) or {}, self.path) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if self.close_on_fork:
            _CLOSE_IN_CHILD.add(self)
        try:
            # Written after locking: before that, the file belongs to whoever holds the lock.
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_owner_info()).encode(), 0)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Give the lock up (also for any forked child still holding the fd); no-op if not held."""
        fd, self._fd = self._fd, None
        _CLOSE_IN_CHILD.discard(self)
        if fd is None:
            return
        try:
            try:
                os.ftruncate(fd, 0)  # so read_lock_owner does not report a process that has let go
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _forget_after_fork(self) -> None:
        # Close only: LOCK_UN on the shared open file description would unlock the parent too.
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


@contextmanager
def holding_locks(directory: str | os.PathLike[str], names: tuple[str, ...] = BOT_LOCKS) -> Iterator[None]:
    """Hold the named locks of a directory, in order; LockHeld (nothing held) if another process has one."""
    held: list[FileLock] = []
    try:
        for name in names:
            lock = FileLock(Path(directory) / name)
            lock.acquire()
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()


def _owner_info() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "pid": pid,
        "start_time": process_start_time(pid),
        "boot_id": _boot_id(),
        "hostname": socket.gethostname(),
        "argv": list(sys.argv),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def read_lock_owner(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The owner info in a lock file, None if absent or unreadable (it is advisory)."""
    try:
        owner = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields 3.. of /proc/<pid>/stat (index 0 is field 3, the state)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return _fields_after_comm(raw)


def _fields_after_comm(raw: bytes) -> list[bytes] | None:
    # Field 2, the command name, is in parentheses and may itself hold spaces and ")": the last ")" ends it.
    _, sep, rest = raw.rpartition(b")")
    return rest.split() if sep else None


def _start_time_from_fields(fields: list[bytes] | None) -> int | None:
    try:
        return int(fields[22 - 3]) if fields is not None else None
    except (IndexError, ValueError):
        return None


def process_start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); None if no such process."""
    if pid <= 0:
        return None
    return _start_time_from_fields(_stat_fields(pid))


def process_alive(pid: int, start_time: int | None) -> bool:
    """Whether the process `pid` that started at `start_time` still runs (a reused pid does not count)."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if not fields or fields[0] in (b"Z", b"X"):  # a zombie holds no files any more
        return False
    return start_time is None or _start_time_from_fields(fields) == start_time
