"""Backups a running shop can take (`run.py backup DEST`), and their restore (`run.py restore SRC`).

A backup is a directory holding a copy of every data file and `backup.json`, the manifest: each
file's size and SHA-256, so a restore refuses a copy that changed since. It is taken while the bot
runs, without a lock and without pausing anything, and each kind of file is copied the way that
gives a state the bot could have been in:

* A store (the orders, the inbox) is a snapshot plus journal generations (storage.store). Appends
  only ever grow the newest generation; a compaction first syncs it, creates the next one, then
  replaces the snapshot atomically and deletes the older generations. So the snapshot is read
  whole, then the generations it continues in are opened (an open file stays readable after a
  compaction deletes it) and read to their end: every generation but the newest is complete, the
  newest is what was on disk at that moment. A compaction that deleted one of them first makes the
  copy start over. What a crash at that moment would leave, and so everything acknowledged
  before the backup began: the bot acknowledges only what is fsynced. A record the copy caught
  half-written (never acknowledged) is left out, as a start would drop it.
* The inbox is copied before the orders: an inbox entry is marked handled only once its order is
  durable, so the later copy of the orders holds every order the inbox copy calls handled.
* Files the bot replaces whole and atomically (the panel's users, key, sessions) are read once:
  the old or the new file, never half of one. Append-only logs (the sandbox's chat) are copied up
  to their last whole line.
* SQLite databases (the WhatsApp session) are copied with SQLite's online backup API, which gives
  a consistent copy whatever whatsmeow writes meanwhile (a file copy could tear a page or miss the
  write-ahead log).

The copy is written into a hidden directory beside DEST, fsynced, checked (it must read back as the
bot would read it: storage.check, and SQLite's integrity check), and only then renamed to DEST: a
backup that is there is complete.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import orjson

from storage.atomic import fsync_dir, write_all
from storage.check import check_data
from storage.database import STORE_NAME as ORDERS
from storage.errors import StorageError
from storage.inbox import STORE_NAME as INBOX
from storage.journal import read_journal
from storage.lock import BOT_LOCKS, holding_locks
from storage.store import generations, journal_path

FORMAT = 1
MANIFEST = "backup.json"
STORES = (INBOX, ORDERS)  # in the order they are copied (see the module docstring)
ATTEMPTS = 50  # copies of one store started over because a compaction deleted what it was reading
CHUNK = 1 << 20
SQLITE_PAGES = 256  # pages per step of the online backup: whatsmeow is never kept waiting long
ASIDE = "before-restore-{stamp}"  # in the data directory: what a forced restore moved out of the way
STAGING = ".restoring-{stamp}"
LOGS = "logs"


class BackupError(StorageError):
    """A backup could not be taken, or cannot be restored; the message says why and what to do."""


class RestoreRefused(BackupError):
    """The data directory holds data and the restore was not told to put it aside (--force)."""


@dataclass(frozen=True, slots=True)
class Sources:
    """What a backup holds beside the stores, named by whoever knows those files (run.py)."""

    files: tuple[str, ...] = ()  # replaced whole and atomically by their writers: copied as read
    patterns: tuple[str, ...] = ()  # side files kept for the operator (globs in the data dir): as read
    logs: tuple[str, ...] = ()  # append-only line logs: copied up to their last whole line
    sqlite: tuple[str, ...] = ()  # SQLite databases, relative to the data dir: by the online backup API


@dataclass(slots=True)
class Report:
    """What a backup or a restore did."""

    path: Path  # the backup (backup), or the data directory (restore)
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes
    orders: int = 0
    payments: int = 0
    groups: int = 0
    aside: Path | None = None  # restore --force: where the data that was there went
    retries: int = 0  # store copies started over because of a compaction


# -- taking a backup ---------------------------------------------------------------------------------


def take_backup(data_dir: str | os.PathLike[str], dest: str | os.PathLike[str], sources: Sources = Sources(),
                *, check: Callable[[Path], None] | None = None) -> Report:
    """Copy the data directory consistently into `dest` (a directory that must not exist yet, or be
    empty), while the bot may be writing it; `check(copy)` may refuse the copy before it is named
    `dest` (raising). Raises BackupError; leaves no `dest` behind unless it succeeded."""
    data_dir, dest = Path(data_dir).resolve(), Path(dest).absolute()
    if not data_dir.is_dir():
        raise BackupError(f"there is no data directory at {data_dir} (are --config or --data-dir right?)")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} already exists and is not an empty directory; name a new one "
                          "(for example with the date in it)")
    if dest == data_dir or data_dir in dest.parents:
        raise BackupError(f"{dest} is inside the data directory {data_dir}; put backups elsewhere")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} does not exist; create it first")
    staging = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        staging.mkdir(mode=0o700)
    except OSError as e:
        raise BackupError(f"cannot write beside {dest}: {e}") from e
    report = Report(dest)
    try:
        for name in STORES:
            report.retries += _copy_store(data_dir, staging, name, report.files)
        for name in _whole_files(data_dir, sources):
            _copy_whole(data_dir / name, staging / name, report.files, name)
        for name in sources.logs:
            _copy_log(data_dir / name, staging / name, report.files, name)
        for name in sources.sqlite:
            _copy_sqlite(data_dir / name, staging / name, report.files, name)
        _verify_copy(staging, report)
        if check is not None:
            check(staging)
        _write_manifest(staging, data_dir, report.files)
        fsync_dir(staging)
        os.replace(staging, dest)  # an empty dest is replaced too
        fsync_dir(dest.parent)
    except BaseException as e:
        _remove_tree(staging)
        if isinstance(e, (OSError, sqlite3.Error)):
            raise BackupError(f"the backup failed: {e}; nothing was written to {dest}") from e
        raise
    return report


def _copy_store(data_dir: Path, dest: Path, name: str, files: dict[str, int]) -> int:
    """Copy one store as a crash at one moment would leave it; returns how often it started over."""
    snapshot_path = data_dir / f"{name}.snapshot.json"
    for attempt in range(ATTEMPTS):
        try:
            snapshot = snapshot_path.read_bytes()
        except FileNotFoundError:
            snapshot = None
        first = _journal_gen(snapshot, snapshot_path)
        gens = [g for g in generations(data_dir, name) if g >= first]
        if snapshot is None and not gens:
            return attempt  # a store the bot has not created yet
        if gens != list(range(first, first + max(len(gens), 1))):
            continue  # a compaction replaced the snapshot and deleted generations meanwhile
        opened = _open_all([journal_path(data_dir, name, g) for g in gens])
        if opened is None:
            continue  # one was deleted by a compaction before it was held open
        copied: dict[str, int] = {}
        try:
            if snapshot is not None:
                _write_new(dest / snapshot_path.name, [snapshot], copied, snapshot_path.name)
            for g, f in zip(gens, opened):
                path = journal_path(dest, name, g)
                _write_new(path, _chunks(f), copied, path.name)
        finally:
            for f in opened:
                f.close()
        newest = journal_path(dest, name, gens[-1])
        torn = read_journal(newest).torn_bytes
        if torn:  # a write the copy caught half-done: never acknowledged, dropped as a start would
            with open(newest, "r+b") as f:
                f.truncate(copied[newest.name] - torn)
                os.fsync(f.fileno())
            copied[newest.name] -= torn
        files.update(copied)
        return attempt
    raise BackupError(f"the files of the {name} store kept changing while they were copied ({ATTEMPTS} tries), "
                      "or they do not fit together: try again, and if it fails again run "
                      "`python run.py check-data`")


def _open_all(paths: list[Path]) -> list[BinaryIO] | None:
    """Every file open for reading, or None (and none left open) if one is gone."""
    opened: list[BinaryIO] = []
    try:
        for path in paths:
            opened.append(open(path, "rb"))
    except FileNotFoundError:
        for f in opened:
            f.close()
        return None
    return opened


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    """A file's contents from where it is read to its end, in chunks."""
    while chunk := f.read(CHUNK):
        yield chunk


def _journal_gen(snapshot: bytes | None, path: Path) -> int:
    """The first journal generation a snapshot continues in (0 without a snapshot)."""
    if snapshot is None:
        return 0
    try:
        gen = orjson.loads(snapshot)["journal_gen"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        gen = None
    if type(gen) is not int or gen < 0:
        raise BackupError(f"{path} cannot be read (the bot could not start from it either): "
                          "run `python run.py check-data`")
    return gen


def _whole_files(data_dir: Path, sources: Sources) -> list[str]:
    """The files copied as they are read: the named ones that exist, and the side files."""
    found = [name for name in sources.files if (data_dir / name).is_file()]
    for entry in sorted(os.scandir(data_dir), key=lambda e: e.name):
        if entry.is_file(follow_symlinks=False) and entry.name not in found and \
                any(fnmatch.fnmatchcase(entry.name, p) for p in sources.patterns):
            found.append(entry.name)
    return found


def _copy_whole(src: Path, dest: Path, files: dict[str, int], name: str) -> None:
    try:
        data = src.read_bytes()
    except FileNotFoundError:
        return  # removed meanwhile (set-password removes the first password's file)
    _write_new(dest, [data], files, name)


def _copy_log(src: Path, dest: Path, files: dict[str, int], name: str) -> None:
    try:
        data = src.read_bytes()
    except FileNotFoundError:
        return
    _write_new(dest, [data[:data.rfind(b"\n") + 1]], files, name)


def _copy_sqlite(src: Path, dest: Path, files: dict[str, int], name: str) -> None:
    """SQLite's online backup: a consistent copy while whatsmeow writes."""
    if not src.is_file():
        return
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Read-only, so the backup can never change the session (it only reads pages and the WAL).
    with closing(sqlite3.connect(f"{src.as_uri()}?mode=ro", uri=True, timeout=30.0)) as source, \
            closing(sqlite3.connect(dest)) as copy:
        source.backup(copy, pages=SQLITE_PAGES)
        result = copy.execute("PRAGMA integrity_check").fetchone()[0]
    # Closing the copy's last connection folds a write-ahead log into it: one self-contained file.
    if result != "ok":
        raise BackupError(f"the copy of {src} fails SQLite's integrity check ({result})")
    os.chmod(dest, 0o600)
    with open(dest, "rb") as f:
        os.fsync(f.fileno())
    files[name] = dest.stat().st_size


def _write_new(path: Path, chunks: Iterable[bytes], files: dict[str, int], name: str) -> None:
    """Write a new private file and fsync it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    size = 0
    try:
        for chunk in chunks:
            write_all(fd, chunk)
            size += len(chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    files[name] = size


def _verify_copy(copy: Path, report: Report) -> None:
    """The stores of the copy must read back as the bot would read them (the SQLite copies were
    checked as they were made); BackupError naming what does not."""
    problems = verify_stores(copy, report)
    if problems:
        raise BackupError("the copy does not read back: " + "; ".join(problems) +
                          ". Run `python run.py check-data` on the data directory")


def verify_stores(directory: Path, report: Report | None = None) -> list[str]:
    """What is wrong with the stores in `directory` as storage.check reads them ([] if nothing);
    fills the report's counts."""
    check = check_data(directory)
    problems = [str(p) for p in check.problems]
    problems += [f"{d.where}: {d.damage.reason}" for d in check.damaged]
    problems += [f"{j.path.name} ends in an incomplete record" for s in check.stores for j in s.journals if j.torn]
    if report is not None and check.database is not None:
        db = check.database
        report.orders, report.payments, report.groups = len(db.order_group), len(db.payments), len(db.groups)
    return problems


def _write_manifest(copy: Path, data_dir: Path, files: dict[str, int]) -> None:
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_dir": str(data_dir),
        "files": {name: {"bytes": size, "sha256": _sha256(copy / name)} for name, size in sorted(files.items())},
    }
    _write_new(copy / MANIFEST, [orjson.dumps(manifest, option=orjson.OPT_INDENT_2)], {}, MANIFEST)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_tree(path: Path) -> None:
    """Remove a half-written copy of our own making (never the data directory)."""
    if not path.exists():
        return
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            os.rmdir(os.path.join(dirpath, name))
    os.rmdir(path)


# -- restoring one -----------------------------------------------------------------------------------


def read_backup(src: str | os.PathLike[str]) -> dict[str, int]:
    """The files of a backup (name -> bytes), each checked against the manifest; BackupError if the
    backup is incomplete, changed or damaged."""
    src = Path(src)
    try:
        manifest = orjson.loads((src / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise BackupError(f"{src} is not a backup: it has no {MANIFEST} (was it made by `run.py backup`?)") from None
    except orjson.JSONDecodeError as e:
        raise BackupError(f"{src / MANIFEST} cannot be read ({e}); the backup cannot be trusted") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{src / MANIFEST} is not a backup manifest of format {FORMAT}")
    files: dict[str, int] = {}
    for name, entry in manifest["files"].items():
        if not _safe_name(name) or not isinstance(entry, dict):
            raise BackupError(f"{src / MANIFEST} names a file outside the backup: {name!r}")
        path = src / name
        if not path.is_file():
            raise BackupError(f"{path} is missing from the backup")
        if path.stat().st_size != entry.get("bytes") or _sha256(path) != entry.get("sha256"):
            raise BackupError(f"{path} is not as it was backed up (its size or SHA-256 differs): the backup is "
                              "damaged; use another one")
        files[name] = entry["bytes"]
    extra = [p.name for p in src.iterdir() if p.name != MANIFEST and p.name not in files and
             not any(n.startswith(p.name + "/") for n in files)]
    if extra:
        raise BackupError(f"{src} holds files its manifest does not list ({', '.join(sorted(extra))}); "
                          "the backup cannot be trusted")
    problems = verify_stores(src)
    if problems:
        raise BackupError(f"the backup in {src} does not read back: " + "; ".join(problems))
    return files


def data_present(data_dir: Path) -> list[str]:
    """What in the data directory is data (all but the lock files, the logs and earlier set-aside data)."""
    if not data_dir.is_dir():
        return []
    return sorted(e.name for e in os.scandir(data_dir)
                  if e.name not in BOT_LOCKS and e.name != LOGS and not fnmatch.fnmatchcase(e.name, ASIDE.format(stamp="*")))


def restore_backup(src: str | os.PathLike[str], data_dir: str | os.PathLike[str], *, force: bool = False) -> Report:
    """Put a backup in place as the data directory. Refuses (RestoreRefused) a data directory that
    holds data unless `force`, which moves that data aside into `before-restore-<time>/` in it
    (never deleting it); LockHeld while a bot uses the data directory; BackupError for a backup
    that is not complete and intact (checked before anything is touched)."""
    src, data_dir = Path(src).absolute(), Path(data_dir).resolve()
    if src == data_dir:
        raise BackupError(f"{src} is the data directory itself")
    files = read_backup(src)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    report = Report(data_dir, dict(files))
    with holding_locks(data_dir):  # no bot may start (or run) meanwhile
        present = data_present(data_dir)
        if present and not force:
            raise RestoreRefused(
                f"{data_dir} holds data ({', '.join(present[:6])}{' …' if len(present) > 6 else ''}); "
                "restoring over it would replace it. Pass --force to restore anyway: what is there now is "
                f"moved into {data_dir / ASIDE.format(stamp='<time>')}, nothing is deleted")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        staging = data_dir / STAGING.format(stamp=stamp)
        staging.mkdir(mode=0o700)
        try:
            for name in files:
                with open(src / name, "rb") as f:
                    _write_new(staging / name, _chunks(f), {}, name)
                _fsync_tree(staging / name, staging)
        except BaseException:
            _remove_tree(staging)
            raise
        aside = data_dir / ASIDE.format(stamp=stamp)
        try:
            if present:
                aside.mkdir(mode=0o700)
                report.aside = aside
                for name in present:
                    os.rename(data_dir / name, aside / name)
                fsync_dir(aside)
            for entry in os.scandir(staging):
                os.rename(entry.path, data_dir / entry.name)
            os.rmdir(staging)
            fsync_dir(data_dir)
        except OSError as e:
            raise BackupError(
                f"the restore stopped half-way ({e}): the data that was in {data_dir} is in "
                f"{aside if report.aside else data_dir}, the backup's files are in {staging} or already in "
                f"{data_dir}; nothing was deleted. Do not start the bot: fix the cause and run the restore "
                "again with --force") from e
        verify_stores(data_dir, report)
    return report


def _safe_name(name: Any) -> bool:
    """A relative path inside the backup, without `..`."""
    if not isinstance(name, str) or not name or name == MANIFEST:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


def _fsync_tree(path: Path, top: Path) -> None:
    """fsync the directories from `path`'s up to `top`, so new names in them are durable."""
    parent = path.parent
    while True:
        fsync_dir(parent)
        if parent == top:
            return
        parent = parent.parent
