"""Append-only log of checksummed records, one per line: `<crc32 8 hex> <length> <payload>\\n`."""

from __future__ import annotations

import copy
import logging
import os
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from storage.atomic import fsync_dir, write_all
from storage.errors import CorruptFile, FsyncFailed, StorageError

log = logging.getLogger(__name__)

# Strict on purpose (lowercase hex, no leading zeros) so damage to a header cannot still parse.
_HEADER = re.compile(rb"([0-9a-f]{8}) (0|[1-9][0-9]{0,9}) ")
_NL = 0x0A
_ZEROS = bytes(8)  # part of a block a power loss left unwritten


@dataclass(frozen=True, slots=True)
class JournalScan:
    """What a journal file holds: its intact records, and the torn tail a crash may have left."""

    records: list[bytes]
    valid_size: int  # bytes up to the end of the last intact record
    torn_bytes: int  # bytes after it: a write cut short by a crash, never acknowledged


def encode_record(payload: bytes) -> bytes:
    """One journal line for `payload`; raises ValueError if the payload holds a newline."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"journal payloads are bytes, not {type(payload).__name__}")
    payload = bytes(payload)
    if b"\n" in payload:
        raise ValueError("a journal payload must not contain a newline (b'\\n')")
    return b"%08x %d " % (zlib.crc32(payload), len(payload)) + payload + b"\n"


def _parse_at(data: bytes, pos: int) -> tuple[bytes, int] | str:
    """The record at `pos` and where the next one starts, or why there is no intact record there."""
    m = _HEADER.match(data, pos)
    if m is None:
        return "unreadable or incomplete header"
    start = m.end()
    end = start + int(m.group(2))
    if end >= len(data):
        return f"shorter than the {end - start} bytes its header declares"
    if data[end] != _NL:
        return "no line end where its header says the record ends"
    payload = data[start:end]
    if zlib.crc32(payload) != int(m.group(1), 16):
        return "checksum mismatch"
    return payload, end + 1


def _find_intact_record(data: bytes, start: int) -> int | None:
    """Offset of the first intact record at or after `start`, wherever it begins."""
    # Any offset, not only line starts: damage may have eaten the newline before a good record.
    pos = start
    while (m := _HEADER.search(data, pos)) is not None:
        if not isinstance(_parse_at(data, m.start()), str):
            return m.start()
        pos = m.start() + 1
    return None


@dataclass(frozen=True, slots=True)
class Record:
    """An intact record: where its line starts and ends, its line number (from 1) and its payload."""

    offset: int
    end: int  # just after its newline
    line: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that are no intact record: one damaged line, kept verbatim."""

    offset: int
    line: int  # the line number it has in the file, counting intact and damaged lines from 1
    raw: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class JournalContents:
    """Everything a journal file holds, damage included; reading it changes nothing."""

    records: list[Record]
    damaged: list[Damage]  # in file order; a torn tail is not among them
    torn_at: int  # where a write cut short by a crash begins (== size when there is none)
    size: int

    @property
    def torn_bytes(self) -> int:
        return self.size - self.torn_at

    def intact_after(self, offset: int) -> int | None:
        """Offset of the first intact record after `offset`, None if there is none."""
        return next((r.offset for r in self.records if r.offset > offset), None)


def _is_torn(tail: bytes) -> bool:
    """Whether damaged bytes at the end of a journal are a write cut short by a crash.

    A crash leaves a prefix of the last write, which holds no line end (a record's newline is its
    last byte), or whole blocks of zeros where a power loss left them unwritten (records never
    hold a zero byte; a run of them is no flipped bit). A complete line that fails its checksum
    is damage to an acknowledged record: dropping it would lose it silently.
    """
    return b"\n" not in tail or _ZEROS in tail


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Every intact record and every damaged line of a journal (a missing file reads as empty)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return JournalContents([], [], 0, 0)
    records: list[Record] = []
    damaged: list[Damage] = []
    pos, line = 0, 1
    while pos < len(data):
        parsed = _parse_at(data, pos)
        if not isinstance(parsed, str):
            payload, end = parsed
            records.append(Record(pos, end, line, payload))
            pos, line = end, line + 1
            continue
        later = _find_intact_record(data, pos + 1)
        if later is None and _is_torn(data[pos:]):
            return JournalContents(records, damaged, pos, len(data))
        end = len(data) if later is None else later
        # One entry per damaged line, so each can be told apart (and set aside) on its own.
        while pos < end:
            newline = data.find(b"\n", pos, end)
            stop = end if newline < 0 else newline + 1
            reason = parsed if isinstance(parsed, str) else "damaged"
            damaged.append(Damage(pos, line, data[pos:stop], reason))
            pos, line = stop, line + 1
            parsed = _parse_at(data, pos) if pos < end else ""
    return JournalContents(records, damaged, len(data), len(data))


def damage_error(path: str | os.PathLike[str], contents: JournalContents) -> CorruptFile:
    """The CorruptFile for a journal holding damaged records (the first one described)."""
    first = contents.damaged[0]
    later = contents.intact_after(first.offset)
    where = (f"but an intact record follows at byte offset {later}" if later is not None else
             "and it is complete, so it is not a write cut short by a crash")
    more = f" ({len(contents.damaged)} damaged lines in all)" if len(contents.damaged) > 1 else ""
    return CorruptFile(path, f"the record on line {first.line} (byte offset {first.offset}) is damaged "
                             f"({first.reason}), {where}{more}")


def scan_journal(path: str | os.PathLike[str]) -> JournalScan:
    """Read every intact record; a torn tail is reported, any other damage raises CorruptFile."""
    contents = read_journal(path)
    if contents.damaged:
        # Acknowledged records are damaged: skipping them would lose orders silently.
        raise damage_error(path, contents)
    return JournalScan([r.payload for r in contents.records], contents.torn_at, contents.torn_bytes)


class Journal:
    """An open journal for appending. Not thread-safe; call `sync` before acknowledging anything."""

    def __init__(self, path: Path, fd: int, size: int) -> None:
        """Use `Journal.open` or `Journal.create`."""
        self.path = path
        self._fd: int | None = fd
        self._size = size
        self._broken: StorageError | None = None

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Journal:
        """Create a new, empty journal durably; FileExistsError if there is one already."""
        path = Path(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _fsync(fd, path)
            fsync_dir(path.parent)  # the new name is not durable until its directory is
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, 0)

    @classmethod
    def open(cls, path: str | os.PathLike[str], scan: JournalScan | None = None) -> Journal:
        """Open for appending, creating the file if missing and cutting off a torn tail."""
        path = Path(path)
        if scan is None:
            scan = scan_journal(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            if scan.valid_size or scan.torn_bytes:
                raise StorageError(f"{path} disappeared after it was scanned") from None
            return cls.create(path)
        try:
            size = os.fstat(fd).st_size
            if size != scan.valid_size + scan.torn_bytes:
                raise StorageError(f"{path} changed after it was scanned ({size} bytes, scan saw "
                                   f"{scan.valid_size + scan.torn_bytes}); is another process using it?")
            if scan.torn_bytes:
                # The only repair allowed: these bytes were never synced, so never acknowledged.
                log.warning("%s: dropping %d bytes of a record cut short by a crash at byte offset %d",
                            path, scan.torn_bytes, scan.valid_size)
                os.ftruncate(fd, scan.valid_size)
                _fsync(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, scan.valid_size)

    @property
    def size(self) -> int:
        """Bytes in the file, all of them intact records."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._fd is None

    def append(self, payloads: Iterable[bytes]) -> int:
        """Write records (not yet durable: call `sync`); returns the bytes written."""
        fd = self._usable_fd()
        # Encode everything first so a bad payload leaves nothing half-written.
        buf = b"".join([encode_record(p) for p in payloads])
        if not buf:
            return 0
        try:
            write_all(fd, buf)
        except OSError as e:
            # Part of a record may be on disk now: appending after it would bury it mid-file.
            self._broken = StorageError(
                f"writing to {self.path} failed ({e}); the journal is not used again. Stop the bot, "
                "fix the cause (free space?) and start it again: the start drops the partial write."
            )
            raise copy.copy(self._broken) from e
        self._size += len(buf)
        return len(buf)

    def sync(self) -> None:
        """Make everything appended so far durable; a failure breaks the journal for good."""
        fd = self._usable_fd()
        try:
            os.fdatasync(fd)
        except OSError as e:
            self._broken = FsyncFailed(self.path, e)
            raise copy.copy(self._broken) from e

    def close(self) -> None:
        """Close the file without syncing; safe to call twice and on a broken journal."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _usable_fd(self) -> int:
        if self._broken is not None:
            raise copy.copy(self._broken) from self._broken
        if self._fd is None:
            raise StorageError(f"{self.path} is closed")
        return self._fd


def _fsync(fd: int, path: Path) -> None:
    try:
        os.fsync(fd)
    except OSError as e:
        raise FsyncFailed(path, e) from e
