"""The PersistenceActor, message by message (simpleSystemBase)."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from thespian.actors import ActorSystem

from actors.messages import (
    Batch,
    DatabaseFailed,
    DatabaseOpened,
    Epoch,
    GetOrder,
    GroupsLoaded,
    ListOrders,
    LoadGroups,
    OpenDatabase,
    Persist,
    PersistRefused,
    Persisted,
    StopSystem,
    SystemStopped,
)
from actors import persistence
from actors.persistence import PersistenceActor
from actors.system import quiet_log_config
from domain.clock import FakeClock
from domain.records import GroupRecord, OrderRecord
from tests.harness import GROUP, actor_config


def load(db: "Db", group: str, epoch: Epoch) -> Any:
    """LoadGroups of one group; its LoadedGroup (stored None when refused)."""
    answer = db.ask(LoadGroups(((group, epoch),), horizon=0))
    assert isinstance(answer, GroupsLoaded)
    [loaded] = answer.groups
    return loaded

T = timedelta(seconds=5)


def order(oid: str, status: str = "pending") -> dict[str, Any]:
    return {"id": oid, "groupId": GROUP, "userId": "1@lid", "diamonds": 10, "rate": "100",
            "amount": "1000.00", "status": status, "date": "2026-01-01T00:00:00.000+00:00"}


def rec(oid: str, status: str = "pending") -> OrderRecord:
    return OrderRecord(GROUP, order(oid, status))


class Db:
    def __init__(self, data_dir: Path, **overrides: str) -> None:
        self.asys = ActorSystem("simpleSystemBase", logDefs=quiet_log_config())
        self.actor = self.asys.createActor(PersistenceActor)
        self.config = actor_config(data_dir, **overrides)
        self.clock = FakeClock()

    def open(self) -> Any:
        return self.asys.ask(self.actor, OpenDatabase(self.config, clock=self.clock), T)

    def ask(self, msg: Any) -> Any:
        return self.asys.ask(self.actor, msg, T)

    def close(self) -> None:
        try:
            self.asys.ask(self.actor, StopSystem(), T)
        finally:
            self.asys.shutdown()


@pytest.fixture
def db(data_dir: Path) -> Iterator[Db]:
    d = Db(data_dir)
    yield d
    d.close()


def test_boots_are_counted_and_install_time_kept(data_dir: Path) -> None:
    first = Db(data_dir)
    opened = first.open()
    assert isinstance(opened, DatabaseOpened) and opened.boot == 1 and opened.groups == ()
    installed = opened.installed_at
    first.close()
    second = Db(data_dir)
    try:
        second.clock.advance(3600)
        again = second.open()
        assert again.boot == 2 and again.installed_at == installed
    finally:
        second.close()


def test_writes_are_acknowledged_then_visible_and_survive_reopen(data_dir: Path) -> None:
    db = Db(data_dir)
    try:
        db.open()
        epoch = Epoch(1, 1)
        loaded = load(db, GROUP, epoch)
        assert loaded.stored is not None and loaded.stored.open().settings is None
        settings = GroupRecord(GROUP, {"groupName": "S", "code": "A", "rate": "100"})
        assert db.ask(Persist(GROUP, epoch, 1, (rec("A1"), settings))) == Persisted(GROUP, 1)
        found = db.ask(GetOrder(uuid.uuid4().hex, "a1"))
        assert found.status == 200 and found.data["record"]["status"] == "pending"
    finally:
        db.close()
    again = Db(data_dir)
    try:
        opened = again.open()
        assert opened.groups == ((GROUP, "A", "S"),)
        loaded = load(again, GROUP, Epoch(2, 1))
        stored = loaded.stored.open()
        assert [e["id"] for e in stored.entries] == ["A1"] and stored.settings["rate"] == "100"
    finally:
        again.close()


def test_a_stale_incarnation_is_fenced_off(db: Db) -> None:
    db.open()
    old, new = Epoch(1, 1), Epoch(1, 2)
    load(db, GROUP, old)
    assert isinstance(db.ask(Persist(GROUP, old, 1, (rec("A1"),))), Persisted)
    load(db, GROUP, new)  # the group was restarted
    refused = db.ask(Persist(GROUP, old, 2, (rec("A1", "cancelled"),)))
    assert isinstance(refused, PersistRefused) and "stale" in refused.reason
    assert db.ask(GetOrder("q", "A1")).data["record"]["status"] == "pending"
    # An older incarnation cannot even load again.
    refused = load(db, GROUP, old)
    assert refused.stored is None and "newer incarnation" in refused.refused
    assert isinstance(db.ask(Persist(GROUP, new, 1, (rec("A1", "approved"),))), Persisted)
    # A write for a group nobody loaded is refused too.
    assert isinstance(db.ask(Persist("other@g.us", new, 4, (rec("B1"),))), PersistRefused)


def test_a_groups_writes_are_appended_in_its_order_whatever_order_they_arrive_in(data_dir: Path) -> None:
    """Thespian may deliver a writer's messages out of order: an approval that overtook the
    write it follows must not be overwritten by it in the journal (the next start would find
    the order pending again)."""
    db = Db(data_dir)
    db.open()
    epoch = Epoch(1, 1)
    load(db, GROUP, epoch)
    db.asys.tell(db.actor, Persist(GROUP, epoch, 2, (rec("A1", "approved"),)))
    db.asys.tell(db.actor, Persist(GROUP, epoch, 3, (rec("A1", "completed"),)))
    assert db.ask(Persist(GROUP, epoch, 1, (rec("A1", "processing"),))) == Persisted(GROUP, 1)
    acks = [db.asys.listen(T), db.asys.listen(T)]
    got = [a for x in acks for a in (x.items if isinstance(x, Batch) else [x])]
    assert sorted(a.batch_id for a in got) == [2, 3]
    assert db.ask(GetOrder("q", "A1")).data["record"]["status"] == "completed"
    db.close()
    again = Db(data_dir)
    try:
        again.open()
        assert [e["status"] for e in load(again, GROUP, Epoch(2, 1)).stored.open().entries] == ["completed"]
    finally:
        again.close()


def test_a_write_that_never_comes_holds_the_later_ones_only_a_moment(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persistence, "EARLY_WAIT", 0.05)
    db.open()
    epoch = Epoch(1, 1)
    load(db, GROUP, epoch)
    assert db.ask(Persist(GROUP, epoch, 1, (rec("A1"),))) == Persisted(GROUP, 1)
    # Batch 2 was lost on the way; 3 and 4 wait for it, then go in their order.
    db.asys.tell(db.actor, Persist(GROUP, epoch, 4, (rec("A1", "completed"),)))
    db.asys.tell(db.actor, Persist(GROUP, epoch, 3, (rec("A1", "approved"),)))
    got: list[Any] = []
    while len(got) < 2:
        reply = db.asys.listen(T)
        assert reply is not None, f"acknowledged: {got}"
        got.extend(reply.items if isinstance(reply, Batch) else [reply])
    assert sorted(a.batch_id for a in got) == [3, 4]
    assert db.ask(GetOrder("q", "A1")).data["record"]["status"] == "completed"


def test_writes_arriving_together_share_one_fsync(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Db(data_dir, **{"persistence.commit_delay": "20ms"})
    try:
        db.open()
        epoch = Epoch(1, 1)
        load(db, GROUP, epoch)
        syncs = []
        real = os.fdatasync
        monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real(fd))[1])
        for i in range(50):
            db.asys.tell(db.actor, Persist(GROUP, epoch, i, (rec(f"A{i + 1}"),)))
        acks, messages = [], 0
        while len(acks) < 50:
            reply = db.asys.listen(T)
            assert reply is not None, f"only {len(acks)} of 50 writes acknowledged"
            messages += 1
            acks.extend(reply.items if isinstance(reply, Batch) else [reply])
        assert sorted(a.batch_id for a in acks) == list(range(50))
        assert 1 <= len(syncs) <= 3, f"{len(syncs)} fsyncs for 50 writes"
        assert messages == len(syncs)  # one message per commit to each writer, not one per write
        listed = db.ask(ListOrders("q", limit=500))
        assert listed.data["total"] == 50
    finally:
        db.close()


def test_an_unreadable_journal_stops_the_open_and_is_left_untouched(data_dir: Path) -> None:
    db = Db(data_dir)
    db.open()
    epoch = Epoch(1, 1)
    load(db, GROUP, epoch)
    for i in range(3):
        db.ask(Persist(GROUP, epoch, i, (rec(f"A{i + 1}"),)))
    db.close()
    [journal] = sorted(data_dir.glob("orders.journal.*"))
    raw = bytearray(journal.read_bytes())
    middle = raw.index(b'"A2"')
    raw[middle + 1] = ord("X")  # damage a record in the middle: acknowledged data
    journal.write_bytes(bytes(raw))
    again = Db(data_dir)
    try:
        failed = again.open()
        assert isinstance(failed, DatabaseFailed)
        assert journal.name in failed.error and "untouched" in failed.error
        assert journal.read_bytes() == bytes(raw)
    finally:
        again.close()


def test_after_stop_every_write_is_refused(db: Db) -> None:
    db.open()
    epoch = Epoch(1, 1)
    load(db, GROUP, epoch)
    assert isinstance(db.ask(StopSystem()), SystemStopped)
    assert isinstance(db.ask(Persist(GROUP, epoch, 1, (rec("A1"),))), PersistRefused)


def test_compaction_writes_a_snapshot_in_the_seeds_shape(data_dir: Path) -> None:
    db = Db(data_dir, **{"persistence.compact_after_bytes": "2000"})
    try:
        db.open()
        epoch = Epoch(1, 1)
        load(db, GROUP, epoch)
        db.ask(Persist(GROUP, epoch, 0, (GroupRecord(GROUP, {"groupName": "Rahim Store", "code": "A",
                                                             "rate": "100"}),)))
        for i in range(30):
            db.ask(Persist(GROUP, epoch, i + 1, (rec(f"A{i + 1}"),)))
    finally:
        db.close()
    snapshot = json.loads((data_dir / "orders.snapshot.json").read_text())
    data = snapshot["data"]
    group = data["groups"][GROUP]
    assert (group["groupName"], group["rate"]) == ("Rahim Store", "100")
    assert isinstance(group["entries"], list) and isinstance(data["payments"], list)
    journals = sorted(data_dir.glob("orders.journal.*"))
    assert len(journals) == 1 and journals[0].name != "orders.journal.00000000"  # compacted
    # The journal grows at most to the snapshot's size before the next compaction, so
    # rewriting costs in proportion to what was written.
    snapshot_size = (data_dir / "orders.snapshot.json").stat().st_size
    assert journals[0].stat().st_size <= max(2000, snapshot_size) + 500
    again = Db(data_dir)
    try:
        again.open()
        assert again.ask(ListOrders("q", limit=500)).data["total"] == 30
    finally:
        again.close()
