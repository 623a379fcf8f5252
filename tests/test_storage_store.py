"""A store recovers the same content after a crash at any point, and stops at files it cannot read."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest

from storage import atomic
from storage.errors import CorruptFile, FsyncFailed
from storage.store import Store

REPO = Path(__file__).resolve().parent.parent
NAME = "orders"


def content(data: Any, records: list[bytes]) -> list[int]:
    """The store's logical content in these tests: a snapshot list of ints, then one int per record."""
    return list(data or []) + [orjson.loads(r) for r in records]


def reopen(directory: Path) -> list[int]:
    store, data, records = Store.open(directory, NAME)
    store.close()
    return content(data, records)


def append_range(store: Store, start: int, stop: int) -> None:
    store.append(orjson.dumps(i) for i in range(start, stop))
    store.sync()


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_open_empty_creates_the_first_generation(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "nested"
    store, data, records = Store.open(directory, NAME)
    assert (data, records) == (None, [])
    assert (store.generation, store.journal_bytes, store.snapshot_bytes) == (0, 0, 0)
    assert files(directory) == {"orders.journal.00000000": b""}
    store.close()


def test_append_sync_reopen(tmp_path: Path) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 5)
    size = store.journal_bytes
    store.close()
    store, data, records = Store.open(tmp_path, NAME)
    assert content(data, records) == [0, 1, 2, 3, 4] and data is None
    assert store.journal_bytes == size
    append_range(store, 5, 7)
    store.close()
    assert reopen(tmp_path) == list(range(7))


def test_compaction_then_reopen(tmp_path: Path) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 100)
    store.compact(list(range(100)))
    assert store.journal_bytes == 0 and store.snapshot_bytes == (tmp_path / "orders.snapshot.json").stat().st_size
    append_range(store, 100, 103)
    store.close()
    assert set(files(tmp_path)) == {"orders.snapshot.json", "orders.journal.00000001"}
    snapshot = orjson.loads((tmp_path / "orders.snapshot.json").read_bytes())
    assert snapshot == {"format": 1, "journal_gen": 1, "data": list(range(100))}
    store, data, records = Store.open(tmp_path, NAME)
    assert data == list(range(100)) and content(data, records) == list(range(103))
    assert store.generation == 1 and store.journal_bytes > 0
    store.compact(list(range(103)))
    store.close()
    store, data, records = Store.open(tmp_path, NAME)
    assert (data, records, store.generation) == (list(range(103)), [], 2)
    store.close()


class CrashRecorder:
    """Copies the data directory at each instant of a compaction: what a kill -9 there would leave."""

    def __init__(self, source: Path, dest: Path) -> None:
        self.source, self.dest = source, dest
        self.points: list[tuple[str, Path]] = []

    def crash_here(self, label: str) -> None:
        copy = self.dest / f"{len(self.points):02d}-{label}"
        shutil.copytree(self.source, copy)
        self.points.append((label, copy))

    def after(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            self.crash_here(label)
            return result
        return wrapper


def instrument(monkeypatch: pytest.MonkeyPatch, rec: CrashRecorder) -> None:
    monkeypatch.setattr(Store, "_start_generation", rec.after("generation-started", Store._start_generation))
    monkeypatch.setattr(Store, "_write_snapshot", rec.after("snapshot-written", Store._write_snapshot))
    monkeypatch.setattr(Store, "_delete_generations_before",
                        rec.after("old-generations-deleted", Store._delete_generations_before))
    real_replace, real_unlink = os.replace, Path.unlink

    def replace(src: Any, dst: Any) -> None:
        rec.crash_here("snapshot-temp-written")  # temp file complete and synced, not yet renamed
        real_replace(src, dst)

    def unlink(self: Path, missing_ok: bool = False) -> None:
        real_unlink(self, missing_ok)
        if ".journal." in self.name:
            rec.crash_here(f"deleted-{self.name}")

    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)


@pytest.mark.parametrize("two_generations", [False, True], ids=["one-generation", "two-generations"])
def test_crash_at_every_compaction_step_recovers_the_same_content(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_generations: bool) -> None:
    live = tmp_path / "live"
    store, _, _ = Store.open(live, NAME)
    append_range(store, 0, 10)
    if two_generations:
        # As a crash right after compaction step 1 leaves it: two generations after the snapshot.
        store._start_generation(1)
        append_range(store, 10, 20)
        store.close()
        store, _, _ = Store.open(live, NAME)
    expected = reopen(live)
    assert expected == list(range(20 if two_generations else 10))

    rec = CrashRecorder(live, tmp_path / "crashes")
    rec.crash_here("before-compaction")
    instrument(monkeypatch, rec)
    store.compact(expected)
    monkeypatch.undo()
    store.close()
    labels = [label for label, _ in rec.points]
    assert labels[:4] == ["before-compaction", "generation-started", "snapshot-temp-written", "snapshot-written"]
    assert labels[-1] == "old-generations-deleted"
    assert len([x for x in labels if x.startswith("deleted-")]) == (2 if two_generations else 1)

    for label, copy in rec.points + [("after-compaction", live)]:
        store, data, records = Store.open(copy, NAME)
        assert content(data, records) == expected, label
        # The recovered store keeps working: append, compact again, reopen.
        n = len(expected)
        append_range(store, n, n + 3)
        store.close()
        assert reopen(copy) == list(range(n + 3)), label
        store, data, records = Store.open(copy, NAME)
        store.compact(content(data, records))
        store.close()
        store, data, records = Store.open(copy, NAME)
        assert (data, records) == (list(range(n + 3)), []), label
        assert [p.name for p in copy.iterdir() if ".tmp-" in p.name] == [], label
        store.close()


@pytest.mark.parametrize("raw", [
    b"",
    b'{"format": 1, "journal_gen": 0, "data": [1, 2',
    b"[1, 2, 3]",
    b'{"journal_gen": 0, "data": []}',
    b'{"format": true, "journal_gen": 0, "data": []}',
    b'{"format": 2, "journal_gen": 0, "data": []}',
    b'{"format": 1, "journal_gen": "0", "data": []}',
    b'{"format": 1, "journal_gen": -1, "data": []}',
    b'{"format": 1, "journal_gen": 0}',
])
def test_unreadable_snapshot_is_corruption_and_left_as_found(tmp_path: Path, raw: bytes) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 3)
    store.close()
    snapshot = tmp_path / "orders.snapshot.json"
    snapshot.write_bytes(raw)
    (tmp_path / "orders.snapshot.json.tmp-123-0badcafe").write_bytes(b"half a snapshot")
    before = files(tmp_path)
    with pytest.raises(CorruptFile) as info:
        Store.open(tmp_path, NAME)
    assert info.value.path == str(snapshot) and str(snapshot) in str(info.value)
    assert "left untouched" in str(info.value)
    assert files(tmp_path) == before


def test_torn_tail_in_an_older_generation_is_corruption(tmp_path: Path) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 3)
    store._start_generation(1)
    append_range(store, 3, 5)
    store.close()
    old = tmp_path / "orders.journal.00000000"
    with old.open("ab") as f:
        f.write(b"1234abcd 10 {\"i\":")
    before = files(tmp_path)
    with pytest.raises(CorruptFile, match="newer journal generation exists") as info:
        Store.open(tmp_path, NAME)
    assert info.value.path == str(old) and "orders.*" in str(info.value)
    assert files(tmp_path) == before


def test_torn_tail_in_the_newest_generation_is_repaired(tmp_path: Path) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 3)
    store._start_generation(1)
    append_range(store, 3, 5)
    store.close()
    newest = tmp_path / "orders.journal.00000001"
    intact = newest.read_bytes()
    newest.write_bytes(intact + b"1234abcd 10 {\"i\":")
    assert reopen(tmp_path) == list(range(5))
    assert newest.read_bytes() == intact


def test_damage_inside_a_journal_names_the_store_files(tmp_path: Path) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 3)
    store.close()
    journal = tmp_path / "orders.journal.00000000"
    damaged = bytearray(journal.read_bytes())
    damaged[2] ^= 0x01
    journal.write_bytes(bytes(damaged))
    with pytest.raises(CorruptFile, match="line 1 .byte offset 0.") as info:
        Store.open(tmp_path, NAME)
    assert "orders.*" in str(info.value)
    assert journal.read_bytes() == bytes(damaged)


def test_missing_files_are_corruption(tmp_path: Path) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 3)
    store.compact([0, 1, 2])
    append_range(store, 3, 4)
    store._start_generation(2)
    store._start_generation(3)
    store.close()
    (tmp_path / "orders.journal.00000002").unlink()
    with pytest.raises(CorruptFile, match="missing between generations 1 and 3"):
        Store.open(tmp_path, NAME)
    (tmp_path / "orders.journal.00000001").unlink()
    with pytest.raises(CorruptFile, match="says records continue in it"):
        Store.open(tmp_path, NAME)
    (tmp_path / "orders.snapshot.json").unlink()
    with pytest.raises(CorruptFile, match="snapshot holding the data before it was lost"):
        Store.open(tmp_path, NAME)
    assert set(files(tmp_path)) == {"orders.journal.00000003"}


def test_open_cleans_only_its_own_leftovers(tmp_path: Path) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 3)
    store.compact([0, 1, 2])
    store.close()
    (tmp_path / "orders.journal.00000000").write_bytes(b"left by a crash during step 3")
    (tmp_path / "orders.snapshot.json.tmp-99-0123abcd").write_bytes(b"unfinished")
    (tmp_path / "payments.snapshot.json.tmp-99-0123abcd").write_bytes(b"another store's write")
    assert reopen(tmp_path) == [0, 1, 2]
    assert set(files(tmp_path)) == {"orders.snapshot.json", "orders.journal.00000001",
                                    "payments.snapshot.json.tmp-99-0123abcd"}


def test_compact_with_unencodable_data_changes_nothing(tmp_path: Path) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 3)
    before = files(tmp_path)
    with pytest.raises(TypeError):
        store.compact({"bad": object()})
    assert files(tmp_path) == before and store.generation == 0
    append_range(store, 3, 4)
    store.close()
    assert reopen(tmp_path) == [0, 1, 2, 3]


def test_fsync_failure_during_compaction_breaks_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _, _ = Store.open(tmp_path, NAME)
    append_range(store, 0, 3)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith("orders.snapshot.json.tmp-"):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(FsyncFailed):
        store.compact([0, 1, 2])
    monkeypatch.undo()
    with pytest.raises(FsyncFailed):
        store.append([b"3"])
    with pytest.raises(FsyncFailed):
        store.compact([0, 1, 2])
    store.close()
    assert not any(".tmp-" in name for name in files(tmp_path))
    assert reopen(tmp_path) == [0, 1, 2]


def test_store_name_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Store.open(tmp_path, "../escape")


CHILD = textwrap.dedent("""
    import random, sys
    import orjson
    from storage.store import Store

    store, data, records = Store.open(sys.argv[1], "orders")
    n = len(data or []) + len(records)
    rng = random.Random(int(sys.argv[2]))
    print("ready", n, flush=True)
    batches = 0
    while True:
        batch = rng.randint(1, 40)
        store.append(orjson.dumps({"i": i, "pad": "x" * rng.randint(0, 300)}) for i in range(n, n + batch))
        store.sync()
        n += batch
        print(n, flush=True)  # acknowledged only now, after the sync
        batches += 1
        if batches % 25 == 0:
            store.compact(list(range(n)))
""")


def test_kill_9_at_a_random_moment_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random()
    directory = tmp_path / "data"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), str(rng.randrange(2**32))],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith(b"ready"), ready + proc.communicate()[1]
        first = proc.stdout.readline()  # it is appending now
        # Kill somewhere inside a run of batches and compactions, never at a chosen point.
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err.decode()
        # A line without its newline was cut by the kill; every complete one was acknowledged.
        acknowledged = max(int(line) for line in (first + out).split(b"\n")[:-1])

        store, data, records = Store.open(directory, NAME)
        values = list(data or []) + [orjson.loads(r)["i"] for r in records]
        store.close()
        assert values == list(range(len(values))), f"round {round_}: records out of order or duplicated"
        assert len(values) >= acknowledged, f"round {round_}: {acknowledged} acknowledged, {len(values)} found"
