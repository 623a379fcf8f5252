"""Whole-file replacement that a crash leaves either old or new, never half-written."""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

from storage.errors import FsyncFailed

log = logging.getLogger(__name__)

# "<target>.tmp-<pid>-<8 hex>": recognisable, so a start can remove what a crash left behind.
_TEMP_NAME = re.compile(r"^(?P<target>.+)\.tmp-\d+-[0-9a-f]{8}$")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make creations, renames and deletions inside a directory durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.fsync(fd)
        except OSError as e:
            raise FsyncFailed(path, e) from e
    finally:
        os.close(fd)


def ensure_dir(path: str | os.PathLike[str]) -> None:
    """Create a directory and any missing parents so that they survive a power loss."""
    path = Path(path).absolute()
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            if not directory.is_dir():
                raise
        fsync_dir(directory.parent)


def temp_path_for(path: str | os.PathLike[str]) -> Path:
    """A fresh temp name next to `path` that `remove_stale_temp_files` recognises."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """os.write until everything is written (a regular file may take less per call)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view):]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash at any instant leaves the old or the new file."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            write_all(fd, data)
            try:
                os.fsync(fd)
            except OSError as e:
                raise FsyncFailed(tmp, e) from e
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # Until the directory is synced the rename itself may be undone by a power loss.
    fsync_dir(path.parent)


def remove_stale_temp_files(directory: str | os.PathLike[str], target: str | None = None) -> list[Path]:
    """Delete temp files a crash left in `directory` (only those for file name `target` if given).

    Call it only while holding the data directory's lock: a temp file of a write still in
    progress in another process would be deleted under it.
    """
    removed: list[Path] = []
    for entry in os.scandir(directory):
        m = _TEMP_NAME.match(entry.name)
        if m is None or (target is not None and m.group("target") != target):
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Path(entry.path))
        log.info("removed %s, an unfinished write left by an earlier crash", entry.path)
    if removed:
        fsync_dir(directory)
    return removed
