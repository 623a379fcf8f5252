"""The durable inbox: what is recorded survives a restart until it is marked handled."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from pathlib import Path

import orjson
import pytest

from domain.chat import ChatMessage, Source
from storage.errors import CorruptFile, StorageError
from storage.inbox import STORE_NAME, Inbox
from storage.journal import scan_journal

G1, G2 = "120363000000000001@g.us", "120363000000000002@g.us"
FIRST_JOURNAL = f"{STORE_NAME}.journal.00000000"
SNAPSHOT = f"{STORE_NAME}.snapshot.json"


def msg(i: int, group: str = G1, ts: float | None = None, text: str | None = None, **kw: object) -> ChatMessage:
    fields: dict[str, object] = dict(
        group_id=group, group_name=f"Shop {group[-6:-5]}", message_id=f"3EB0{i:06d}",
        sender=f"{1000 + i}@lid", sender_alt=f"88017{i:08d}@s.whatsapp.net", sender_name=f"Buyer {i}",
        text=text if text is not None else f".{i} diamonds", timestamp=ts if ts is not None else 1_700_000_000.25 + i,
    )
    fields.update(kw)
    return ChatMessage(**fields)  # type: ignore[arg-type]


def as_inbox(m: ChatMessage) -> ChatMessage:
    return dataclasses.replace(m, source=Source.INBOX)


def reopen(data_dir: Path) -> Inbox:
    return Inbox.open(data_dir)


def seqs_of(inbox: Inbox, group: str | None = None) -> list[int]:
    return [s for s, _ in inbox.unhandled(group)]


# -- record / reopen ---------------------------------------------------------------------------


def test_record_returns_increasing_seqs_that_survive_reopening(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    assert len(inbox) == 0 and inbox.unhandled() == []
    m = [msg(i) for i in range(6)]
    assert inbox.record([m[0], m[1]]) == [1, 2]
    assert inbox.record([m[2]]) == [3]
    assert inbox.record([]) == []
    assert inbox.record(m[3:6]) == [4, 5, 6]
    assert len(inbox) == 6
    inbox.close()

    inbox = reopen(data_dir)
    assert len(inbox) == 6
    assert inbox.unhandled() == [(i + 1, as_inbox(x)) for i, x in enumerate(m)]
    # Sequence numbers continue after a restart: never reused.
    assert inbox.record([msg(10)]) == [7]
    inbox.close()
    inbox = reopen(data_dir)
    assert seqs_of(inbox) == [1, 2, 3, 4, 5, 6, 7]
    inbox.close()


def test_record_is_on_disk_without_close(data_dir: Path) -> None:
    """record fsyncs before it returns: a second reader sees it while the first is still open."""
    inbox = Inbox.open(data_dir)
    inbox.record([msg(1), msg(2)])
    records = [orjson.loads(r) for r in scan_journal(data_dir / FIRST_JOURNAL).records]
    assert [(r["t"], r["s"], r["m"]["message_id"]) for r in records] == [
        ("in", 1, "3EB0000001"), ("in", 2, "3EB0000002")]
    inbox.close()


def test_record_fsyncs_what_it_wrote_before_returning(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import storage.journal

    synced: list[int] = []  # file size at each fdatasync
    real = storage.journal.os.fdatasync

    def spy(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(storage.journal.os, "fdatasync", spy)
    inbox = Inbox.open(data_dir)
    journal = data_dir / FIRST_JOURNAL
    for batch in ([msg(1)], [msg(2), msg(3)]):
        synced.clear()
        inbox.record(batch)
        assert synced and synced[-1] == journal.stat().st_size
    inbox.close()


def test_mark_handled_is_forgotten_across_reopen(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    inbox.record([msg(i) for i in range(5)])
    inbox.mark_handled([2, 4])
    assert seqs_of(inbox) == [1, 3, 5]
    inbox.mark_handled([])
    inbox.mark_handled([2, 99, 3, 3])  # already handled, unknown and repeated seqs are ignored
    assert seqs_of(inbox) == [1, 5]
    assert len(inbox) == 2
    inbox.close()

    inbox = reopen(data_dir)
    assert seqs_of(inbox) == [1, 5]
    inbox.mark_handled(iter([1, 5]))  # any iterable
    assert inbox.unhandled() == []
    inbox.close()

    inbox = reopen(data_dir)
    assert inbox.unhandled() == [] and len(inbox) == 0
    # Everything handled: the next seq still does not reuse an old one.
    assert inbox.record([msg(9)]) == [6]
    inbox.close()


def test_unhandled_filters_by_group_and_round_trips_every_field(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    messages = [
        msg(1, G1),
        msg(2, G2, text="৫০০ ডায়মন্ড\nline two \"quoted\" \\ back", source=Source.OFFLINE,
            quoted_id="3EB0QUOTED", from_me=True),
        msg(3, G1, ts=1_700_000_123.456789, source=Source.HISTORY, sender_alt="", sender_name=""),
        msg(4, G2, text="", group_name="", quoted_id="x"),
        msg(5, G1, source=Source.INBOX),
    ]
    seqs = inbox.record(messages[:2]) + inbox.record(messages[2:])
    assert seqs == [1, 2, 3, 4, 5]

    def check(ib: Inbox) -> None:
        assert ib.unhandled(G1) == [(1, as_inbox(messages[0])), (3, as_inbox(messages[2])),
                                    (5, as_inbox(messages[4]))]
        assert ib.unhandled(G2) == [(2, as_inbox(messages[1])), (4, as_inbox(messages[3]))]
        assert ib.unhandled("999@g.us") == []
        everything = ib.unhandled()
        assert [s for s, _ in everything] == [1, 2, 3, 4, 5]
        for (_, got), original in zip(everything, messages):
            assert got.source is Source.INBOX
            assert got.source.recovered
            for f in dataclasses.fields(ChatMessage):
                if f.name != "source":
                    assert getattr(got, f.name) == getattr(original, f.name), f.name
            assert type(got.timestamp) is float and type(got.from_me) is bool

    check(inbox)
    inbox.close()
    inbox = reopen(data_dir)
    check(inbox)
    inbox.close()


def test_unhandled_is_oldest_first_after_handling_in_any_order(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    for i in range(12):
        inbox.record([msg(i, G1 if i % 3 else G2)])
    inbox.mark_handled([12, 1, 7])
    expected = [s for s in range(1, 13) if s not in (1, 7, 12)]
    assert seqs_of(inbox) == expected
    assert seqs_of(inbox, G2) == [s for s in expected if (s - 1) % 3 == 0]
    inbox.close()


def test_drop_older_than(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    inbox.record([msg(1, ts=100.0), msg(2, ts=200.0, group=G2), msg(3, ts=150.0), msg(4, ts=300.0)])
    assert inbox.drop_older_than(50.0) == 0
    assert inbox.drop_older_than(200.0) == 2  # strictly older: the one at 200 stays
    assert seqs_of(inbox) == [2, 4]
    assert inbox.drop_older_than(200.0) == 0
    inbox.close()
    inbox = reopen(data_dir)
    assert seqs_of(inbox) == [2, 4]
    assert inbox.drop_older_than(1e12) == 2
    assert len(inbox) == 0
    inbox.close()
    inbox = reopen(data_dir)
    assert inbox.unhandled() == []
    inbox.close()


# -- compaction --------------------------------------------------------------------------------


def test_compaction_keeps_exactly_the_unhandled_entries(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    big = "x" * 4000

    def make(i: int) -> ChatMessage:
        return msg(i, G1 if i % 2 else G2, text=f"{i} {big}")

    n = 400  # about 1.7 MB of journal: above the 1 MiB compaction floor
    seqs = []
    for i in range(n):
        seqs += inbox.record([make(i)])
    assert seqs == list(range(1, n + 1))
    assert (data_dir / FIRST_JOURNAL).stat().st_size > 1 << 20
    assert not (data_dir / SNAPSHOT).exists()

    keep = {s for s in seqs if s % 37 == 0 or s == n}
    later = {s for s in seqs if s % 5 == 0} - keep
    inbox.mark_handled([s for s in seqs if s not in keep and s not in later])  # compacts
    assert (data_dir / SNAPSHOT).exists()
    assert not (data_dir / FIRST_JOURNAL).exists()
    snapshot = orjson.loads((data_dir / SNAPSHOT).read_bytes())
    assert snapshot["data"]["next_seq"] == n + 1
    assert {int(s) for s in snapshot["data"]["entries"]} == keep | later
    for s in sorted(later):
        inbox.mark_handled([s])  # handled after the compaction: in the new journal generation
    assert seqs_of(inbox) == sorted(keep)
    inbox.close()
    total = sum(p.stat().st_size for p in data_dir.iterdir())
    assert total < 500_000  # the handled bulk (1.7 MB) is gone from disk

    inbox = reopen(data_dir)
    assert inbox.unhandled() == [(s, as_inbox(make(s - 1))) for s in sorted(keep)]
    assert inbox.record([make(n)]) == [n + 1]
    keep.add(n + 1)
    # A second round: compacting again on top of a snapshot.
    extra = [inbox.record([make(i)])[0] for i in range(n + 1, n + 501)]
    for s in extra:
        if s % 3:
            inbox.mark_handled([s])
    keep |= {s for s in extra if not s % 3}
    assert orjson.loads((data_dir / SNAPSHOT).read_bytes())["journal_gen"] == 2
    assert not (data_dir / f"{STORE_NAME}.journal.00000001").exists()
    assert seqs_of(inbox) == sorted(keep)
    inbox.close()
    inbox = reopen(data_dir)
    assert inbox.unhandled() == [(s, as_inbox(make(s - 1))) for s in sorted(keep)]
    assert inbox.record([msg(5000)]) == [n + 502]
    inbox.close()


def test_compaction_when_everything_is_handled_keeps_the_seq_counter(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    n = 300
    for i in range(n):
        inbox.record([msg(i, text="y" * 4000)])
    inbox.mark_handled(range(1, n + 1))
    assert (data_dir / SNAPSHOT).exists()
    assert len(inbox) == 0
    inbox.close()
    inbox = reopen(data_dir)
    assert inbox.unhandled() == []
    assert inbox.record([msg(1)]) == [n + 1]
    inbox.close()


# -- damage ------------------------------------------------------------------------------------


def record_separately(data_dir: Path, count: int) -> list[ChatMessage]:
    inbox = Inbox.open(data_dir)
    messages = [msg(i) for i in range(count)]
    for m in messages:
        inbox.record([m])
    inbox.close()
    return messages


@pytest.mark.parametrize("cut", [1, 10, "half", "all but the newline"])
def test_a_torn_last_record_is_dropped_on_reopen(data_dir: Path, cut: object) -> None:
    messages = record_separately(data_dir, 3)
    journal = data_dir / FIRST_JOURNAL
    raw = journal.read_bytes()
    last_start = raw.rindex(b"\n", 0, len(raw) - 1) + 1
    last_len = len(raw) - last_start
    keep = {1: 1, 10: 10, "half": last_len // 2, "all but the newline": last_len - 1}[cut]
    with open(journal, "r+b") as f:
        f.truncate(last_start + keep)

    inbox = reopen(data_dir)
    assert inbox.unhandled() == [(1, as_inbox(messages[0])), (2, as_inbox(messages[1]))]
    assert journal.read_bytes() == raw[:last_start]  # the torn bytes were cut off
    # The torn record was never acknowledged, so its seq may be given again; appends go on cleanly.
    assert inbox.record([msg(7)]) == [3]
    inbox.close()
    inbox = reopen(data_dir)
    assert inbox.unhandled() == [(1, as_inbox(messages[0])), (2, as_inbox(messages[1])), (3, as_inbox(msg(7)))]
    inbox.close()


def test_a_torn_handled_record_brings_the_entries_back(data_dir: Path) -> None:
    record_separately(data_dir, 3)
    inbox = reopen(data_dir)
    inbox.mark_handled([1, 2])
    inbox.close()
    journal = data_dir / FIRST_JOURNAL
    raw = journal.read_bytes()
    with open(journal, "r+b") as f:
        f.truncate(len(raw) - 3)
    inbox = reopen(data_dir)
    assert seqs_of(inbox) == [1, 2, 3]  # replayed, and deduplicated downstream
    inbox.close()


@pytest.mark.parametrize("where", ["payload", "header", "newline"])
def test_a_corrupt_middle_record_raises_and_leaves_the_file_untouched(data_dir: Path, where: str) -> None:
    record_separately(data_dir, 3)
    journal = data_dir / FIRST_JOURNAL
    raw = journal.read_bytes()
    second_start = raw.index(b"\n") + 1
    second_end = raw.index(b"\n", second_start)
    damaged = bytearray(raw)
    if where == "payload":
        pos = raw.index(b"diamonds", second_start)
        damaged[pos] = ord("D")
    elif where == "header":
        damaged[second_start] = ord("g")
    else:
        damaged[second_end] = ord(" ")
    journal.write_bytes(bytes(damaged))
    before = {p.name: p.read_bytes() for p in data_dir.iterdir()}

    with pytest.raises(CorruptFile) as err:
        reopen(data_dir)
    assert Path(err.value.path) == journal
    assert FIRST_JOURNAL in str(err.value)
    assert {p.name: p.read_bytes() for p in data_dir.iterdir()} == before
    assert journal.read_bytes() == bytes(damaged)
    # Still refused the second time: nothing was "repaired".
    with pytest.raises(CorruptFile):
        reopen(data_dir)
    assert journal.read_bytes() == bytes(damaged)


def test_a_corrupt_snapshot_raises_and_is_left_as_found(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    for i in range(300):
        inbox.record([msg(i, text="z" * 4000)])
    inbox.mark_handled(range(1, 290))
    inbox.close()
    snapshot = data_dir / SNAPSHOT
    assert snapshot.exists()
    raw = snapshot.read_bytes()
    snapshot.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFile) as err:
        reopen(data_dir)
    assert Path(err.value.path) == snapshot
    assert snapshot.read_bytes() == raw[: len(raw) // 2]


# -- threads -----------------------------------------------------------------------------------


def test_record_from_several_threads_loses_nothing(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    threads_n, per_thread = 8, 40
    barrier = threading.Barrier(threads_n)
    results: dict[int, list[tuple[list[int], list[ChatMessage]]]] = {t: [] for t in range(threads_n)}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for k in range(per_thread):
                batch = [msg(t * 1000 + k * 2 + j, G1 if t % 2 else G2) for j in range(1 + k % 2)]
                results[t].append((inbox.record(batch), batch))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []

    by_seq: dict[int, ChatMessage] = {}
    for t in range(threads_n):
        last = 0
        for seqs, batch in results[t]:
            assert len(seqs) == len(batch)
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # a batch is contiguous
            assert seqs[0] > last  # increasing within a thread
            last = seqs[-1]
            for s, m in zip(seqs, batch):
                assert s not in by_seq, f"seq {s} given twice"
                by_seq[s] = m
    total = threads_n * sum(1 + k % 2 for k in range(per_thread))
    assert sorted(by_seq) == list(range(1, total + 1))
    assert len(inbox) == total
    expected = [(s, as_inbox(by_seq[s])) for s in sorted(by_seq)]
    assert inbox.unhandled() == expected
    inbox.close()
    inbox = reopen(data_dir)
    assert inbox.unhandled() == expected
    inbox.close()


def test_record_while_another_thread_handles_and_drops(data_dir: Path) -> None:
    """Transports record from their threads while the gateway marks handled and drops old ones."""
    inbox = Inbox.open(data_dir)
    inbox.record([msg(i, ts=10.0 + i) for i in range(3000)])  # old ones, for drop_older_than
    stop = threading.Event()
    errors: list[BaseException] = []
    recorded: list[int] = []

    def recorder() -> None:
        try:
            i = 0
            while not stop.is_set():
                recorded.extend(inbox.record([msg(10_000 + i, ts=1e9 + i)]))
                i += 1
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def handler() -> None:
        try:
            for _ in range(60):
                inbox.drop_older_than(5.0)  # nothing that old: just walks the entries
                inbox.unhandled(G1)
                inbox.mark_handled(recorded[-3:])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a walk over the entries gets interrupted
    rec = threading.Thread(target=recorder)
    rec.start()
    try:
        hand = threading.Thread(target=handler)
        hand.start()
        hand.join()
    finally:
        stop.set()
        rec.join()
        sys.setswitchinterval(old_interval)
    assert errors == []
    assert len(set(recorded)) == len(recorded)
    assert inbox.drop_older_than(1e6) == 3000
    remaining = seqs_of(inbox)
    assert set(remaining) <= set(recorded)
    inbox.close()
    inbox = reopen(data_dir)
    assert seqs_of(inbox) == remaining
    inbox.close()


# -- close -------------------------------------------------------------------------------------


def test_close_then_reopen_works(data_dir: Path) -> None:
    inbox = Inbox.open(data_dir)
    inbox.record([msg(1), msg(2)])
    inbox.mark_handled([1])
    inbox.close()
    inbox.close()  # twice is harmless
    with pytest.raises(StorageError):
        inbox.record([msg(3)])
    # A record that raised was not acknowledged: it must not show as an unhandled entry.
    assert inbox.unhandled() == [(2, as_inbox(msg(2)))]
    assert len(inbox) == 1

    again = reopen(data_dir)
    assert again.unhandled() == [(2, as_inbox(msg(2)))]
    assert again.record([msg(3)]) == [3]
    again.close()
    third = reopen(data_dir)
    assert seqs_of(third) == [2, 3]
    third.close()


def test_an_empty_data_dir_is_created(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    inbox = Inbox.open(nested)
    assert nested.is_dir()
    assert sorted(os.listdir(nested)) == [FIRST_JOURNAL]
    inbox.close()
