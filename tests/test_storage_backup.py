"""Backups taken while the files are written (storage.backup): a store being appended to and
compacted, a SQLite database with its write-ahead log; and restores that refuse what they must."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from storage.backup import BackupError, RestoreRefused, Sources, read_backup, restore_backup, take_backup
from storage.errors import LockHeld
from storage.inbox import STORE_NAME as INBOX
from storage.journal import read_journal
from storage.lock import FileLock
from storage.store import Store, read_layout
from tests.e2e import REPO, process_env
from tests.sinks import wait_for


def store_contents(directory: Path, name: str) -> list[int]:
    """The numbers a test store holds: those its snapshot counts, then its journal records."""
    layout = read_layout(directory, name)
    numbers = list(range(layout.data["n"])) if layout.data is not None else []
    for _, path in layout.current:
        contents = read_journal(path)
        assert not contents.damaged and not contents.torn_bytes, path
        numbers += [orjson.loads(r.payload)["i"] for r in contents.records]
    return numbers


WRITER = textwrap.dedent("""
    import os, sys, orjson
    from storage.store import Store
    store, _, _ = Store.open(sys.argv[1], "inbox")
    counter = os.open(sys.argv[2], os.O_WRONLY)
    n = 0
    while True:
        store.append([orjson.dumps({"i": n})])
        store.sync()
        n += 1
        os.pwrite(counter, b"%12d" % n, 0)  # how many records are synced (acknowledged) now
        if n % 5 == 0:
            store.compact({"n": n})
""")


def test_a_store_copied_while_another_process_appends_and_compacts_holds_every_synced_record(
        tmp_path: Path) -> None:
    """Each copy is a state the store was in: numbers 0..k without a gap, k at least every record
    synced before the copy began, however often a compaction replaced its files meanwhile."""
    data = tmp_path / "data"
    data.mkdir()
    counter = tmp_path / "synced"
    counter.write_bytes(b"%12d" % 0)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(data), str(counter)], cwd=REPO, env=process_env())
    try:
        wait_for(lambda: int(counter.read_bytes()) > 50, "the writer")
        first = int(counter.read_bytes())
        for k in range(40):
            before = int(counter.read_bytes())
            take_backup(data, tmp_path / f"backup-{k}")
            numbers = store_contents(tmp_path / f"backup-{k}", INBOX)
            assert numbers == list(range(len(numbers))), f"backup {k} has a gap or a duplicate"
            assert len(numbers) >= before, f"backup {k} lost records synced before it began"
            read_backup(tmp_path / f"backup-{k}")  # its manifest matches
        assert int(counter.read_bytes()) > first + 50  # it went on writing and compacting all along
    finally:
        writer.kill()
        writer.wait()


def compaction_store(data: Path) -> Store:
    """A store whose snapshot holds 0..9 and whose journal generation 1 holds 10..14."""
    data.mkdir()
    store, _, _ = Store.open(data, INBOX)
    store.append([orjson.dumps({"i": n}) for n in range(10)])
    store.compact({"n": 10})
    store.append([orjson.dumps({"i": n}) for n in range(10, 15)])
    store.sync()
    return store


@pytest.mark.parametrize(("window", "retries"), [("listing", 1), ("opening", 1), ("reading", 0)])
def test_a_compaction_at_each_step_of_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               window: str, retries: int) -> None:
    """A compaction (15..19 appended, a new snapshot of 0..19, generation 1 deleted) between the
    snapshot and the listing of the generations, between the listing and their opening, or while
    they are read: the copy starts over, or reads the files it holds open."""
    from storage import backup

    store = compaction_store(tmp_path / "data")
    fired: list[str] = []

    def compact() -> None:
        if not fired:
            fired.append(window)
            store.append([orjson.dumps({"i": n}) for n in range(15, 20)])
            store.compact({"n": 20})
            assert not (tmp_path / "data" / "inbox.journal.00000001").exists()

    real = {"listing": backup.generations, "opening": backup._open_all, "reading": backup._chunks}[window]

    def step(*args: Any) -> Any:
        compact()
        return real(*args)

    monkeypatch.setattr(backup, {"listing": "generations", "opening": "_open_all", "reading": "_chunks"}[window],
                        step)
    try:
        report = take_backup(tmp_path / "data", tmp_path / "backup")
    finally:
        store.close()
    assert fired == [window] and report.retries == retries
    # Started over: the new snapshot; or the deleted generation, held open, read to its end.
    assert store_contents(tmp_path / "backup", INBOX) == list(range(20))


def test_a_sqlite_database_is_copied_with_its_write_ahead_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with closing(sqlite3.connect(data / "whatsapp-session.sqlite3")) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")  # the rows stay in the -wal file
        db.execute("CREATE TABLE whatsmeow_device (jid TEXT)")
        db.executemany("INSERT INTO whatsmeow_device VALUES (?)", [(f"8801{n}@s.whatsapp.net",) for n in range(500)])
        db.commit()
        assert (data / "whatsapp-session.sqlite3-wal").stat().st_size > 0
        stop = threading.Event()

        def whatsmeow() -> None:  # goes on writing while the backup runs
            with closing(sqlite3.connect(data / "whatsapp-session.sqlite3")) as other:
                while not stop.is_set():
                    other.execute("INSERT INTO whatsmeow_device VALUES ('x')")
                    other.commit()

        thread = threading.Thread(target=whatsmeow)
        thread.start()
        try:
            report = take_backup(data, tmp_path / "backup", Sources(sqlite=("whatsapp-session.sqlite3",)))
        finally:
            stop.set()
            thread.join()
    copy = tmp_path / "backup" / "whatsapp-session.sqlite3"
    assert report.files["whatsapp-session.sqlite3"] == copy.stat().st_size
    assert not (tmp_path / "backup" / "whatsapp-session.sqlite3-wal").exists()  # one self-contained file
    with closing(sqlite3.connect(copy)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM whatsmeow_device WHERE jid != 'x'").fetchone()[0] == 500
    assert copy.stat().st_mode & 0o777 == 0o600


def test_a_backup_needs_a_new_place_and_leaves_nothing_when_it_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BackupError, match="not an empty directory"):
        take_backup(data, tmp_path / "full")
    with pytest.raises(BackupError, match="inside the data directory"):
        take_backup(data, data / "backup")
    with pytest.raises(BackupError, match="no data directory"):
        take_backup(tmp_path / "nowhere", tmp_path / "b")
    (data / "orders.snapshot.json").write_bytes(b"{not json")  # the bot could not start from it either
    with pytest.raises(BackupError, match="check-data"):
        take_backup(data, tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "full"]  # no half-written copy


def backup_of_one_store(tmp_path: Path, count: int = 3) -> Path:
    data = tmp_path / "source"
    data.mkdir()
    store, _, _ = Store.open(data, INBOX)
    store.append([orjson.dumps({"i": n}) for n in range(count)])
    store.sync()
    store.close()
    (data / "panel-users.json").write_text("{}")
    take_backup(data, tmp_path / "backup", Sources(files=("panel-users.json",)))
    return tmp_path / "backup"


def test_restore_refuses_a_data_dir_with_data_unless_forced_and_keeps_it_aside(tmp_path: Path) -> None:
    backup = backup_of_one_store(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "panel-users.json").write_text('{"admin": "old"}')
    (data / "logs").mkdir()
    with pytest.raises(RestoreRefused, match="--force"):
        restore_backup(backup, data)
    assert (data / "panel-users.json").read_text() == '{"admin": "old"}'  # untouched
    report = restore_backup(backup, data, force=True)
    assert report.aside is not None and report.aside.parent == data
    assert (report.aside / "panel-users.json").read_text() == '{"admin": "old"}'  # kept, not deleted
    assert (data / "panel-users.json").read_text() == "{}"
    assert store_contents(data, INBOX) == [0, 1, 2]
    assert (data / "logs").is_dir()  # the logs stay where they are
    assert not list(data.glob(".restoring-*"))
    # Into an empty data directory (or one that does not exist yet) no --force is needed.
    report = restore_backup(backup, tmp_path / "new")
    assert report.aside is None and store_contents(tmp_path / "new", INBOX) == [0, 1, 2]


def test_restore_refuses_a_backup_that_changed_and_touches_nothing(tmp_path: Path) -> None:
    backup = backup_of_one_store(tmp_path)
    journal = next(backup.glob("inbox.journal.*"))
    raw = journal.read_bytes()
    journal.write_bytes(raw.replace(b'"i":1', b'"i":7'))
    with pytest.raises(BackupError, match="SHA-256"):
        restore_backup(backup, tmp_path / "data")
    assert not (tmp_path / "data").exists()
    journal.write_bytes(raw)
    (backup / "stray.txt").write_text("?")
    with pytest.raises(BackupError, match="stray.txt"):
        restore_backup(backup, tmp_path / "data")
    (backup / "stray.txt").unlink()
    manifest = orjson.loads((backup / "backup.json").read_bytes())
    manifest["files"]["../escape"] = {"bytes": 1, "sha256": "0"}
    (backup / "backup.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(BackupError, match="outside the backup"):
        restore_backup(backup, tmp_path / "data")
    with pytest.raises(BackupError, match="not a backup"):
        restore_backup(tmp_path / "source", tmp_path / "data")


def test_restore_refuses_while_a_bot_holds_the_data_dir(tmp_path: Path) -> None:
    backup = backup_of_one_store(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    with FileLock(data / "persistence.lock"):
        with pytest.raises(LockHeld):
            restore_backup(backup, data, force=True)
    assert {p.name for p in data.iterdir()} <= {"bot.lock", "persistence.lock"}  # nothing restored
