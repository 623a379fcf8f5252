"""A snapshot plus the journal generations written after it: the durable state of one named store.

Files in the directory: `<name>.snapshot.json` holds `{"format": 1, "journal_gen": G, "data": ...}`
and `<name>.journal.<gen>` hold records; the store's content is the snapshot's data followed by
the records of every generation >= G, in order.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from storage.atomic import atomic_write_bytes, ensure_dir, fsync_dir, remove_stale_temp_files
from storage.errors import CorruptFile, FsyncFailed, StorageError
from storage.journal import Journal, JournalContents, JournalScan, damage_error, read_journal

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
_NAME = re.compile(r"[A-Za-z0-9_-]+")


class Store:
    """An open store. Not thread-safe; `sync` before acknowledging what was appended."""

    def __init__(self, directory: Path, name: str, first_gen: int, journal: Journal,
                 older_bytes: int, snapshot_bytes: int) -> None:
        """Use `Store.open`."""
        self.directory = directory
        self.name = name
        self._first_gen = first_gen  # the snapshot's journal_gen: first generation not in it
        self._journal = journal  # the newest generation, the only one appended to
        self._gen = _gen_of(journal.path, name)
        self._older_bytes = older_bytes  # generations in [first_gen, newest)
        self._snapshot_bytes = snapshot_bytes
        self._broken: StorageError | None = None

    @classmethod
    def open(cls, directory: str | os.PathLike[str], name: str) -> tuple[Store, Any, list[bytes]]:
        """Open (creating if new) and return the store, the snapshot's data (None if none) and the records after it."""
        directory = Path(directory)
        if not _NAME.fullmatch(name):
            raise ValueError(f"store name {name!r} must match {_NAME.pattern}")
        ensure_dir(directory)
        # Read and check everything before changing anything: a file that cannot be read is left as found.
        layout = read_layout(directory, name)
        scans: list[JournalScan] = []
        for gen, path in layout.current:
            contents = read_journal(path)
            if contents.damaged:
                raise CorruptFile(path, damage_error(path, contents).reason, damaged_remedy(directory, name))
            if contents.torn_bytes and gen != layout.current[-1][0]:
                raise torn_older_generation(path, contents, damaged_remedy(directory, name))
            scans.append(JournalScan([r.payload for r in contents.records], contents.torn_at, contents.torn_bytes))

        remove_stale_temp_files(directory, layout.snapshot_path.name)
        if layout.older:
            # Left by a crash after a snapshot that already holds them was written.
            for gen in layout.older:
                journal_path(directory, name, gen).unlink()
                log.info("%s: removed journal generation %d, already in the snapshot", directory, gen)
            fsync_dir(directory)
        if layout.current:
            journal = Journal.open(layout.current[-1][1], scans[-1])
        else:
            journal = Journal.create(journal_path(directory, name, layout.first_gen))
        older_bytes = sum(s.valid_size for s in scans[:-1])
        records = [r for s in scans for r in s.records]
        return (cls(directory, name, layout.first_gen, journal, older_bytes, layout.snapshot_bytes),
                layout.data, records)

    @property
    def snapshot_path(self) -> Path:
        return self.directory / f"{self.name}.snapshot.json"

    @property
    def generation(self) -> int:
        """The journal generation appends go to."""
        return self._gen

    @property
    def journal_bytes(self) -> int:
        """Journal bytes written since the last snapshot (all generations not in it)."""
        return self._older_bytes + self._journal.size

    @property
    def snapshot_bytes(self) -> int:
        """Size of the current snapshot file (0 if there is none)."""
        return self._snapshot_bytes

    def append(self, payloads: Iterable[bytes]) -> int:
        """Append records (durable only after `sync`); returns the bytes written."""
        self._check()
        return self._journal.append(payloads)

    def sync(self) -> None:
        """Make every appended record durable."""
        self._check()
        self._journal.sync()

    def compact(self, data: Any) -> None:
        """Replace the snapshot with `data`, which must include everything appended so far, and drop old journals."""
        self._check()
        # Serialise first: data the caller cannot encode must not leave a compaction half-done.
        gen = self._gen + 1
        snapshot = orjson.dumps({"format": SNAPSHOT_FORMAT, "journal_gen": gen, "data": data})
        # An older generation must never end torn (open treats that as corruption).
        self._journal.sync()
        try:
            self._start_generation(gen)
            self._write_snapshot(snapshot, gen)
            self._delete_generations_before(gen)
        except FsyncFailed as e:
            self._broken = e
            raise

    def close(self) -> None:
        """Close the journal without syncing."""
        self._journal.close()

    def _start_generation(self, gen: int) -> None:
        """Compaction step 1: create generation `gen` durably and append to it from now on."""
        journal = Journal.create(journal_path(self.directory, self.name, gen))
        old, self._journal, self._gen = self._journal, journal, gen
        self._older_bytes += old.size
        old.close()

    def _write_snapshot(self, snapshot: bytes, gen: int) -> None:
        """Compaction step 2: atomically replace the snapshot by one that continues at `gen`."""
        atomic_write_bytes(self.snapshot_path, snapshot)
        self._first_gen = gen
        self._snapshot_bytes = len(snapshot)
        self._older_bytes = 0

    def _delete_generations_before(self, gen: int) -> None:
        """Compaction step 3: delete the journal generations the snapshot now holds."""
        old = [g for g in generations(self.directory, self.name) if g < gen]
        for g in old:
            journal_path(self.directory, self.name, g).unlink(missing_ok=True)
        if old:
            fsync_dir(self.directory)

    def _check(self) -> None:
        if self._broken is not None:
            raise copy.copy(self._broken) from self._broken


@dataclass(frozen=True, slots=True)
class Layout:
    """The files of one store as they are on disk, checked to fit together."""

    snapshot_path: Path
    data: Any  # the snapshot's data, None when there is no snapshot
    snapshot_bytes: int
    first_gen: int  # the first journal generation not in the snapshot
    older: list[int]  # generations the snapshot already holds (a crash left them)
    current: list[tuple[int, Path]]  # the generations after the snapshot, in order


def restore_remedy(directory: Path, name: str) -> str:
    return (f"restore the files {name}.* in {directory} from a backup, or move all of them away "
            "to start with an empty store, losing everything they held")


def damaged_remedy(directory: Path, name: str) -> str:
    return (f"run `python run.py check-data` (with the bot's --config or --data-dir) to see what the damaged "
            "records held, then `python run.py repair-data` to move them into a side file and start from "
            f"the rest; or restore the files {name}.* in {directory} from a backup")


def torn_older_generation(path: Path, contents: JournalContents, remedy: str) -> CorruptFile:
    # Compaction syncs a generation before starting the next, so only the newest may be torn.
    lines = len(contents.records) + len(contents.damaged)
    return CorruptFile(path, f"the record on line {lines + 1} (byte offset {contents.torn_at}) is damaged "
                             "or incomplete, and a newer journal generation exists, so it is not a write "
                             "cut short by a crash", remedy)


def read_layout(directory: str | os.PathLike[str], name: str) -> Layout:
    """Which files make up the store, without changing anything; CorruptFile when they do not fit."""
    directory = Path(directory)
    snapshot_path = directory / f"{name}.snapshot.json"
    remedy = restore_remedy(directory, name)
    snapshot = _read_snapshot(snapshot_path, remedy)
    data, first_gen, snapshot_bytes = snapshot if snapshot is not None else (None, 0, 0)
    gens = generations(directory, name) if directory.is_dir() else []
    older = [g for g in gens if g < first_gen]
    current = [g for g in gens if g >= first_gen]
    if current and current[0] != first_gen:
        missing = journal_path(directory, name, first_gen)
        if snapshot is None:
            raise CorruptFile(snapshot_path, f"it is missing, but journal generation {current[0]} exists, "
                              "so the snapshot holding the data before it was lost", remedy)
        raise CorruptFile(missing, f"it is missing, but {snapshot_path.name} says records continue in it",
                          remedy)
    if not current and snapshot is not None:
        raise CorruptFile(journal_path(directory, name, first_gen),
                          f"it is missing, but {snapshot_path.name} says records continue in it", remedy)
    for a, b in zip(current, current[1:]):
        if b != a + 1:
            raise CorruptFile(journal_path(directory, name, a + 1),
                              f"it is missing between generations {a} and {b}", remedy)
    return Layout(snapshot_path, data, snapshot_bytes, first_gen, older,
                  [(g, journal_path(directory, name, g)) for g in current])


def journal_path(directory: Path, name: str, gen: int) -> Path:
    """The file of journal generation `gen` of store `name`."""
    return directory / f"{name}.journal.{gen:08d}"


def _gen_of(path: Path, name: str) -> int:
    return int(path.name[len(name) + len(".journal."):])


def generations(directory: Path, name: str) -> list[int]:
    """The journal generations of store `name` in `directory`, oldest first."""
    pattern = re.compile(re.escape(name) + r"\.journal\.([0-9]+)")
    return sorted(int(m.group(1)) for e in os.scandir(directory) if (m := pattern.fullmatch(e.name)))


def _read_snapshot(path: Path, remedy: str) -> tuple[Any, int, int] | None:
    """(data, journal_gen, size in bytes) of the snapshot, None if there is none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise CorruptFile(path, f"it is not valid JSON ({e})", remedy) from None
    if not isinstance(doc, dict):
        raise CorruptFile(path, f"it holds a JSON {type(doc).__name__}, not an object", remedy)
    fmt = doc.get("format")
    if type(fmt) is int and fmt > SNAPSHOT_FORMAT:
        raise CorruptFile(path, f"it is in format {fmt}, newer than this version reads ({SNAPSHOT_FORMAT})",
                          f"run a version of the bot that reads format {fmt}")
    if fmt != SNAPSHOT_FORMAT or type(fmt) is not int:
        raise CorruptFile(path, f"its \"format\" is {fmt!r}, expected {SNAPSHOT_FORMAT}", remedy)
    gen = doc.get("journal_gen")
    if type(gen) is not int or gen < 0:
        raise CorruptFile(path, f"its \"journal_gen\" is {gen!r}, expected a generation number", remedy)
    if "data" not in doc:
        raise CorruptFile(path, "it has no \"data\"", remedy)
    return doc["data"], gen, len(raw)
