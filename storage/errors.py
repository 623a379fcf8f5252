"""Storage failures, each worded for the operator who has to act on it."""

from __future__ import annotations

import os
import shlex
from typing import Any


class StorageError(Exception):
    """A durable file could not be read or written as promised."""


class CorruptFile(StorageError):
    """A file holds data that cannot be read; it was left exactly as found."""

    def __init__(self, path: str | os.PathLike[str], reason: str, remedy: str | None = None) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.remedy = remedy
        if remedy is None:
            remedy = (
                f"restore it from a backup, or move it away (for example to {self.path}.broken) "
                "to start without it, losing everything it held"
            )
        super().__init__(
            f"Cannot read {self.path}: {reason}. The file was left untouched. "
            f"To recover, stop the bot and {remedy}."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions cross actor processes as pickles; the default would call __init__ with the message.
        return (type(self), (self.path, self.reason, self.remedy))


class FsyncFailed(StorageError):
    """An fsync failed: what was written since the last good fsync may be lost, so the file is done."""

    def __init__(self, path: str | os.PathLike[str], detail: object) -> None:
        self.path = os.fspath(path)
        self.detail = str(detail)
        super().__init__(
            f"fsync of {self.path} failed ({self.detail}). Data written since the last successful "
            "fsync may not be on disk, and this file will not be used again: a retried fsync can "
            "report success without writing anything (PostgreSQL's 'fsyncgate'). Stop the bot, "
            "check the disk (free space, errors in the system log), and start it again: the start "
            "recovers from what is on disk."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.detail))


class LockHeld(StorageError):
    """Another live process holds the lock; `owner` is what it wrote into the lock file (may be {})."""

    def __init__(self, owner: dict[str, Any], path: str | os.PathLike[str] = "") -> None:
        self.owner = dict(owner)
        self.path = os.fspath(path)
        pid = owner.get("pid", "unknown")
        argv = owner.get("argv")
        command = shlex.join(argv) if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else "?"
        where = f" on host {owner['hostname']}" if owner.get("hostname") else ""
        since = f" since {owner['started_at']}" if owner.get("started_at") else ""
        super().__init__(
            f"{self.path or 'The lock'} is held by another process: pid {pid} ({command}){where}{since}. "
            "Only one bot may use a data directory at a time: stop that process first, "
            "or give this one another data directory."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.owner, self.path))
