"""Approve → delivery benchmark (SPEC §9): from the panel's approve command entering the actor
system to the Bengali delivery message handed to the transport, pacing off, production actor
base — against, in the same run, the seed's approach (load the whole JSON file, mark the order
approved, rewrite it) and SQLite (WAL, synchronous=FULL, one UPDATE committed per approval).

The approvals are sent one at a time, the way admins click, by a client process like the
panel's bridge; the load transport notes when each delivery reached it (clocks of one machine).

    python -m bench.approve [--orders 500] [--groups 20] [--gap 0.02] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from actors.messages import (
    CommandDone,
    ListOrders,
    OrderCommand,
    Owner,
    QueryResult,
    StartSystem,
    StopSystem,
    SystemStarted,
)
from actors.supervisor import Supervisor
from bench.cluster import bot_system, check_groups_on_members, free_port, member_shards, placed_groups, write_snapshot
from bench.load import LoadTransport, group_id, read_result
from storage.atomic import atomic_write_bytes
from storage.lock import process_start_time

ASK = timedelta(seconds=30)


def wait_for_file(path: Path, what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish within {timeout:.0f} s")
        time.sleep(0.05)
    return json.loads(path.read_text())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def pending_orders(asys: Any, supervisor: Any, expected: int, timeout: float = 30) -> dict[str, str]:
    """Every pending order's id → its message id, once all `expected` are listed.

    The transport has seen every receipt when the intake finishes, but the listing is read from
    the PersistenceActor's query side, which may be a moment behind; so ask again until it agrees
    (a shortfall that lasts is reported with the counts by status)."""
    deadline = time.monotonic() + timeout
    while True:
        message_of: dict[str, str] = {}
        while True:
            listed = asys.ask(supervisor, ListOrders(f"l{len(message_of)}", status="pending", limit=500,
                                                     offset=len(message_of)), ASK)
            if not isinstance(listed, QueryResult):
                raise RuntimeError(f"listing the pending orders: {listed}")
            if not listed.data["orders"]:
                break
            message_of.update((o["record"]["id"], o["record"]["messageId"]) for o in listed.data["orders"])
        if len(message_of) >= expected:
            return message_of
        if time.monotonic() > deadline:
            every = asys.ask(supervisor, ListOrders("all", limit=1, offset=0), ASK)
            raise RuntimeError(f"expected {expected} pending orders, {len(message_of)} listed; all orders: {every}")
        time.sleep(0.2)


def run_bot(orders: int, groups: int, gap: float, work: Path, members: int = 0) -> dict[str, Any]:
    """Post `orders` orders, then approve every one of them (and the warm-up orders, one per
    group); returns the approve → delivery latencies in ms. With `members`, every group runs on
    a member machine (bench.cluster)."""
    if members:
        write_snapshot(work / "data", placed_groups([group_id(g) for g in range(groups)], member_shards(members)))
    overrides = {
        "orders.default_rate": "100",  # the benchmark's groups are priced from their first order
        "bot.data_dir": str(work / "data"), "actors.admin_port": str(free_port()),
        "outbox.min_gap": "0s", "outbox.jitter": "0s", "outbox.per_group_gap": "0s",
        "outbox.hourly_cap": "1000000000", "sandbox.autostart": "false", "orders.duplicate_window": "0s",
    }
    deliveries = work / "deliveries.json"
    with bot_system(overrides, work, members) as (asys, config):
        supervisor = asys.createActor(Supervisor)
        owner = Owner(os.getpid(), process_start_time(os.getpid()) or 0, os.getsid(0))
        load = LoadTransport(count=orders, groups=groups, batch=groups, result_file=str(work / "intake.json"),
                             deliveries=orders + groups, deliveries_file=str(deliveries))
        started = asys.ask(supervisor, StartSystem(config, owner, transport=load), ASK)
        if not isinstance(started, SystemStarted):
            raise RuntimeError(f"the system did not start: {started}")
        wait_for_file(work / "intake.json", "intake")
        read_result(work / "intake.json")
        message_of = pending_orders(asys, supervisor, orders + groups)
        approved_at: dict[str, float] = {}
        for n, order_id in enumerate(message_of):
            approved_at[order_id] = time.time()
            done = asys.ask(supervisor, OrderCommand(f"a{n}", order_id, "approve", "admin:bench"), ASK)
            if not isinstance(done, CommandDone) or done.status != 200:
                raise RuntimeError(f"approve {order_id}: {done}")
            time.sleep(gap)  # an admin's next click; leaves the delivery to finish on its own
        delivered = wait_for_file(deliveries, "deliveries", timeout=60)
        if members:
            check_groups_on_members(asys, supervisor)
        asys.ask(supervisor, StopSystem(), timedelta(seconds=10))
        return {"latencies_ms": [1000 * (delivered[message_of[o]] - t) for o, t in approved_at.items()]}


def seed_baseline(orders: int, groups: int, work: Path) -> list[float]:
    """The seed's way: each approval loads database.json, marks the entry, rewrites it (fsynced)."""
    path = work / "database.json"
    db: dict[str, Any] = {"groups": {f"g{i}": {"groupName": f"G{i}", "rate": 100, "entries": []}
                                     for i in range(groups)}, "payments": []}
    for n in range(orders):
        db["groups"][f"g{n % groups}"]["entries"].append(
            {"id": n, "userId": f"{n}@lid", "diamonds": 10, "status": "pending", "date": time.time()})
    atomic_write_bytes(path, json.dumps(db).encode())
    out = []
    for n in range(orders):
        t = time.perf_counter()
        db = json.loads(path.read_bytes())
        for entry in db["groups"][f"g{n % groups}"]["entries"]:
            if entry["id"] == n:
                entry["status"] = "approved"
        atomic_write_bytes(path, json.dumps(db).encode())
        out.append(1000 * (time.perf_counter() - t))
    return out


def sqlite_baseline(orders: int, work: Path) -> list[float]:
    """SQLite, WAL, synchronous=FULL: one UPDATE committed per approval."""
    con = sqlite3.connect(work / "orders.sqlite3", isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, approved REAL)")
        con.executemany("INSERT INTO orders (id, status) VALUES (?, 'pending')", [(n,) for n in range(orders)])
        out = []
        for n in range(orders):
            t = time.perf_counter()
            con.execute("BEGIN")
            con.execute("UPDATE orders SET status = 'approved', approved = ? WHERE id = ?", (time.time(), n))
            con.execute("COMMIT")
            out.append(1000 * (time.perf_counter() - t))
        return out
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between two approvals")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bot, seed, lite = [], [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-approve-", dir=".") as tmp:
            work = Path(tmp)
            for name in ("bot", "seed", "sqlite"):
                (work / name).mkdir()
            lat = run_bot(args.orders, args.groups, args.gap, work / "bot")["latencies_ms"]
            bot.append((percentile(lat, 50), percentile(lat, 99)))
            s = seed_baseline(args.orders, args.groups, work / "seed")
            seed.append((percentile(s, 50), percentile(s, 99)))
            q = sqlite_baseline(args.orders, work / "sqlite")
            lite.append((percentile(q, 50), percentile(q, 99)))
        print(f"run {i + 1}: bot p50 {bot[-1][0]:.1f} ms p99 {bot[-1][1]:.1f} ms; seed write p50 {seed[-1][0]:.1f} "
              f"p99 {seed[-1][1]:.1f} ms; sqlite commit p50 {lite[-1][0]:.1f} p99 {lite[-1][1]:.1f} ms", flush=True)
    median = statistics.median
    bot_p99 = median(b[1] for b in bot)
    print(json.dumps({
        "benchmark": "approve", "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "orders": args.orders, "groups": args.groups, "gap_s": args.gap, "repeat": args.repeat,
        "bot_p50_ms": round(median(b[0] for b in bot), 1), "bot_p99_ms": round(bot_p99, 1),
        "seed_p50_ms": round(median(s[0] for s in seed), 1), "seed_p99_ms": round(median(s[1] for s in seed), 1),
        "sqlite_p50_ms": round(median(q[0] for q in lite), 1), "sqlite_p99_ms": round(median(q[1] for q in lite), 1),
        "bot_p99_vs_seed_p99": round(bot_p99 / median(s[1] for s in seed), 2),
        "bot_p99_vs_sqlite_p99": round(bot_p99 / median(q[1] for q in lite), 2),
    }, indent=2))


if __name__ == "__main__":
    main()
