"""The journal keeps every synced record, drops only torn tails, and refuses to guess past damage."""

from __future__ import annotations

import errno
import os
import pickle
import zlib
from pathlib import Path

import orjson
import pytest

from storage.errors import CorruptFile, FsyncFailed, StorageError
from storage.journal import Journal, JournalScan, encode_record, read_journal, scan_journal

PAYLOADS = [
    orjson.dumps({"order": 1, "text": "৫০০ ডায়মন্ড", "note": "line\nbreak"}),
    orjson.dumps({"order": 2, "text": "100 diamonds", "amount": 95.5}),
    orjson.dumps({"order": 3, "text": "last one", "tags": ["a", "b"]}),
]


def write_journal(path: Path, payloads: list[bytes]) -> bytes:
    with Journal.open(path) as j:
        j.append(payloads)
        j.sync()
    return path.read_bytes()


def record_bounds(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each line, end exclusive of nothing: data[start:end] is the whole line."""
    bounds, start = [], 0
    while start < len(data):
        end = data.index(b"\n", start) + 1
        bounds.append((start, end))
        start = end
    return bounds


def test_round_trip_and_line_format(tmp_path: Path) -> None:
    path = tmp_path / "j"
    data = write_journal(path, PAYLOADS)
    assert data.splitlines()[1] == b"%08x %d %s" % (zlib.crc32(PAYLOADS[1]), len(PAYLOADS[1]), PAYLOADS[1])
    scan = scan_journal(path)
    assert scan == JournalScan(PAYLOADS, len(data), 0)
    with Journal.open(path) as j:
        assert j.size == len(data)
        j.append([b"{}"])
        j.sync()
    assert scan_journal(path).records == PAYLOADS + [b"{}"]


def test_missing_file_scans_empty_and_open_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "new"
    assert scan_journal(path) == JournalScan([], 0, 0)
    assert not path.exists()
    with Journal.open(path) as j:
        assert j.size == 0
    assert path.read_bytes() == b""


def test_torn_tail_at_every_cut_point_is_dropped_and_truncated(tmp_path: Path) -> None:
    full = write_journal(tmp_path / "full", PAYLOADS)
    last_start = record_bounds(full)[-1][0]
    path = tmp_path / "j"
    for cut in range(last_start + 1, len(full)):
        path.write_bytes(full[:cut])
        scan = scan_journal(path)
        assert scan.records == PAYLOADS[:2], cut
        assert (scan.valid_size, scan.torn_bytes) == (last_start, cut - last_start), cut
        assert path.read_bytes() == full[:cut], "scan must not modify the file"
        with Journal.open(path, scan) as j:
            assert j.size == last_start
        assert path.read_bytes() == full[:last_start], cut


@pytest.mark.parametrize("which", [0, 1])
def test_flipped_byte_before_the_last_record_is_corruption(tmp_path: Path, which: int) -> None:
    full = write_journal(tmp_path / "full", PAYLOADS)
    start, end = record_bounds(full)[which]
    path = tmp_path / "j"
    for offset in range(start, end):
        damaged = bytearray(full)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(CorruptFile) as info:
            scan_journal(path)
        assert info.value.path == str(path)
        assert f"byte offset {start}" in str(info.value) and f"line {which + 1}" in str(info.value)
        with pytest.raises(CorruptFile):
            Journal.open(path)
        assert path.read_bytes() == bytes(damaged), offset


def test_damage_that_swallows_the_newline_before_an_intact_record_is_corruption(tmp_path: Path) -> None:
    full = write_journal(tmp_path / "full", PAYLOADS)
    start, end = record_bounds(full)[1]
    path = tmp_path / "j"
    # The middle record zeroed, its newline included: only a search at every offset finds the last one.
    damaged = full[:start] + bytes(end - start) + full[end:]
    path.write_bytes(damaged)
    with pytest.raises(CorruptFile, match=f"intact record follows at byte offset {end}"):
        Journal.open(path)
    assert path.read_bytes() == damaged


def test_corrupt_file_message_tells_the_operator_what_to_do(tmp_path: Path) -> None:
    err = CorruptFile(tmp_path / "j", "the record on line 2 (byte offset 40) is damaged")
    text = str(err)
    assert str(tmp_path / "j") in text and "byte offset 40" in text
    assert "left untouched" in text and "backup" in text and "move it away" in text
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.reason, str(again)) == (err.path, err.reason, text)


def test_flipped_byte_in_the_complete_last_record_is_damage_not_a_torn_tail(tmp_path: Path) -> None:
    # A crash leaves a prefix of a record (no line end) or zeros; a whole line that fails its
    # checksum was written and synced, perhaps acknowledged: dropping it would lose it silently.
    full = write_journal(tmp_path / "full", PAYLOADS)
    start, end = record_bounds(full)[-1]
    payload_start = end - 1 - len(PAYLOADS[-1])
    path = tmp_path / "j"
    for offset in range(payload_start, end - 1):
        damaged = bytearray(full)
        damaged[offset] ^= 0x20
        path.write_bytes(bytes(damaged))
        with pytest.raises(CorruptFile, match=f"line 3 .byte offset {start}.*not a write cut short"):
            scan_journal(path)
        with pytest.raises(CorruptFile):
            Journal.open(path)
        assert path.read_bytes() == bytes(damaged)
        contents = read_journal(path)
        assert [r.payload for r in contents.records] == PAYLOADS[:2]
        assert [(d.offset, d.line, d.raw, d.reason) for d in contents.damaged] == [
            (start, 3, bytes(damaged[start:end]), "checksum mismatch")]
        assert contents.torn_bytes == 0


def test_every_damaged_line_is_listed_with_its_position_and_bytes(tmp_path: Path) -> None:
    full = write_journal(tmp_path / "full", PAYLOADS + [b'{"order": 4}'])
    bounds = record_bounds(full)
    damaged = bytearray(full)
    for which in (0, 2):  # two separate damaged records, intact ones between and after
        damaged[bounds[which][0] + 12] ^= 0x01
    path = tmp_path / "j"
    path.write_bytes(bytes(damaged))
    contents = read_journal(path)
    assert [(d.line, d.offset, d.raw) for d in contents.damaged] == [
        (1, bounds[0][0], bytes(damaged[slice(*bounds[0])])), (3, bounds[2][0], bytes(damaged[slice(*bounds[2])]))]
    assert [(r.line, r.offset, r.end, r.payload) for r in contents.records] == [
        (2, bounds[1][0], bounds[1][1], PAYLOADS[1]), (4, bounds[3][0], bounds[3][1], b'{"order": 4}')]
    with pytest.raises(CorruptFile, match=r"line 1 .*\(2 damaged lines in all\)"):
        scan_journal(path)


def test_a_torn_tail_is_not_damage(tmp_path: Path) -> None:
    full = write_journal(tmp_path / "full", PAYLOADS)
    path = tmp_path / "j"
    tail = b"0badc0de 999 {\"order\""
    path.write_bytes(full + tail)
    contents = read_journal(path)
    assert (contents.damaged, contents.torn_at, contents.torn_bytes) == ([], len(full), len(tail))


def test_zero_filled_tail_after_power_loss_is_torn(tmp_path: Path) -> None:
    full = write_journal(tmp_path / "full", PAYLOADS)
    path = tmp_path / "j"
    path.write_bytes(full + bytes(4096))
    scan = scan_journal(path)
    assert (scan.records, scan.valid_size, scan.torn_bytes) == (PAYLOADS, len(full), 4096)


def test_appends_after_repair(tmp_path: Path) -> None:
    full = write_journal(tmp_path / "full", PAYLOADS)
    path = tmp_path / "j"
    path.write_bytes(full[:-5])
    with Journal.open(path) as j:
        assert j.append([b'{"order":4}', b'{"order":5}']) == len(encode_record(b'{"order":4}')) * 2
        j.sync()
    scan = scan_journal(path)
    assert scan.records == PAYLOADS[:2] + [b'{"order":4}', b'{"order":5}'] and scan.torn_bytes == 0


def test_stale_scan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, PAYLOADS[:1])
    scan = scan_journal(path)
    write_journal(path, PAYLOADS[1:2])
    with pytest.raises(StorageError, match="changed after it was scanned"):
        Journal.open(path, scan)


def test_payload_with_newline_is_rejected_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path) as j:
        with pytest.raises(ValueError, match="newline"):
            j.append([b'{"ok":1}', b'{"bad":"a\nb"}'])
        with pytest.raises(TypeError):
            j.append(["text, not bytes"])  # type: ignore[list-item]
        assert j.size == 0
        j.append([b"{}"])
        j.sync()
    assert scan_journal(path).records == [b"{}"]


def test_fsync_failure_breaks_the_journal_for_good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j"
    j = Journal.open(path)
    j.append(PAYLOADS[:1])
    j.sync()

    def failing_fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing_fdatasync)
    j.append(PAYLOADS[1:2])
    with pytest.raises(FsyncFailed, match="Input/output error") as info:
        j.sync()
    assert "fsyncgate" in str(info.value) and info.value.path == str(path)
    monkeypatch.undo()  # the disk "recovers": the journal must still refuse, never retry the fsync
    with pytest.raises(FsyncFailed):
        j.sync()
    with pytest.raises(FsyncFailed):
        j.append(PAYLOADS[2:])
    j.close()
    j.close()


def test_failed_write_breaks_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j"
    j = Journal.open(path)
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes) -> int:
        monkeypatch.setattr(os, "write", failing_write)
        return real_write(fd, bytes(data)[: len(data) // 2])

    def failing_write(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(StorageError, match="No space left"):
        j.append(PAYLOADS)
    monkeypatch.undo()
    with pytest.raises(StorageError):
        j.append(PAYLOADS)  # appending after a partial record would bury it mid-file
    j.close()
    scan = scan_journal(path)
    assert scan.records == [PAYLOADS[0]] and scan.torn_bytes > 0
