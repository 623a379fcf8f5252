"""A stop keeps every group's last check counts (issue 15), on the production actor base with
a small fleet: the hosts collect their groups' last checkpoints and write them in batches."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from actors.messages import GetStatus, Owner, StartSystem, StopSystem, SystemStarted, SystemStopped
from actors.supervisor import Supervisor
from actors.system import group_members, quiet_log_config, start_actor_system
from bench.fleet import fleet_snapshot
from bench.load import LoadTransport
from config import load_config
from storage.atomic import atomic_write_bytes
from storage.database import open_database
from storage.lock import process_start_time
from tests.e2e import free_port, wait_for

pytestmark = pytest.mark.e2e

GROUPS, ORDERS = 150, 3


def test_a_stop_keeps_every_groups_last_check_counts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    snapshot = fleet_snapshot(GROUPS, ORDERS, time.time())
    atomic_write_bytes(data / "orders.snapshot.json", orjson.dumps({"format": 1, "journal_gen": 0, "data": snapshot}))
    (data / "orders.journal.00000000").touch()
    config = load_config(env={}, overrides={
        "bot.data_dir": str(data), "actors.admin_port": str(free_port()), "sandbox.autostart": "false",
        "orders.default_rate": "100", "reconciliation.pending_stuck_after": "24h",
        # Cycles every second, no periodic checkpoint after the first cycle's: the counts of the
        # later cycles reach the disk only through the stop.
        "reconciliation.interval": "1s", "reconciliation.checkpoint_interval": "1h",
        # One host: its groups' last checkpoints go in more than one batch (STOP_BATCH is 100).
        "actors.group_hosts": "1",
    })
    asys = start_actor_system(config, quiet_log_config())
    pgid = 0
    try:
        supervisor = asys.createActor(Supervisor)
        owner = Owner(os.getpid(), process_start_time(os.getpid()) or 0, os.getsid(0))
        idle = LoadTransport(count=0, groups=1, batch=1, result_file=str(tmp_path / "unused.json"))
        assert isinstance(asys.ask(supervisor, StartSystem(config, owner, transport=idle), timedelta(seconds=120)),
                          SystemStarted)

        def status() -> dict | None:
            s = asys.ask(supervisor, GetStatus("s"), timedelta(seconds=10)).data
            return s if s["groups"]["ready"] >= GROUPS else None

        ready = wait_for(status, 120, "every group ready")
        pgid, total = ready["pgid"], ready["groups"]["total"]  # the fleet's and the idle transport's own
        time.sleep(4)  # three cycles or more for every group, counted only in memory
        stopped = asys.ask(supervisor, StopSystem(), timedelta(seconds=15))
        assert isinstance(stopped, SystemStopped)
        assert (stopped.checkpoints_saved, stopped.checkpoints_missing) == (total, 0)
    finally:
        asys.shutdown()
    if pgid:
        wait_for(lambda: not group_members(pgid), 10, "the actor processes to exit")

    store, db = open_database(data)
    try:
        counts = [db.check_of(gid, entry["id"]) for gid, entry in db.all_entries() if gid in snapshot["groups"]]
    finally:
        store.close()
    assert len(counts) == GROUPS * ORDERS
    # The first cycle's checkpoint says 1; only the last checkpoints can say more.
    assert min(c[0] if c else 0 for c in counts) >= 2
