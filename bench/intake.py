"""Intake benchmark (SPEC §9): chat message in → durable order → confirmation handed to the
transport, 100 groups, production actor base — against, in the same run, the seed's approach
(load the whole JSON file, change it, rewrite it) and SQLite (WAL, synchronous=FULL), each
making every order durable before confirming it.

    python -m bench.intake [--orders 20000] [--groups 100] [--batch 100] [--repeat 3]
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

from actors.messages import Owner, StartSystem, StopSystem, SystemStarted
from actors.supervisor import Supervisor
from bench.cluster import bot_system, check_groups_on_members, free_port, member_shards, placed_groups, write_snapshot
from bench.load import LoadTransport, group_id, read_result
from storage.atomic import atomic_write_bytes
from storage.lock import process_start_time


def run_bot(orders: int, groups: int, batch: int, workdir: Path, members: int = 0) -> dict[str, Any]:
    """One run of the real system; returns the load transport's result. With `members`, every
    group runs on a member machine (bench.cluster), the rest on this process's (the leader)."""
    data = workdir / "data"
    result_file = workdir / "result.json"
    if members:
        write_snapshot(data, placed_groups([group_id(g) for g in range(groups)], member_shards(members)))
    overrides = {
        "orders.default_rate": "100",  # the benchmark's groups are priced from their first order
        "bot.data_dir": str(data), "actors.admin_port": str(free_port()),
        "outbox.min_gap": "0s", "outbox.jitter": "0s", "outbox.per_group_gap": "0s",
        "outbox.hourly_cap": "1000000000", "sandbox.autostart": "false",
    }
    with bot_system(overrides, workdir, members) as (asys, config):
        supervisor = asys.createActor(Supervisor)
        owner = Owner(os.getpid(), process_start_time(os.getpid()) or 0, os.getsid(0))
        load = LoadTransport(count=orders, groups=groups, batch=batch, result_file=str(result_file))
        started = asys.ask(supervisor, StartSystem(config, owner, transport=load), timedelta(seconds=60))
        if not isinstance(started, SystemStarted):
            raise RuntimeError(f"the system did not start: {started}")
        deadline = time.monotonic() + 300
        while not result_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("intake did not finish within 300 s")
            time.sleep(0.1)
        result = read_result(result_file)
        if members:
            check_groups_on_members(asys, supervisor)
        asys.ask(supervisor, StopSystem(), timedelta(seconds=10))
        return result


def seed_baseline(orders: int, groups: int, workdir: Path) -> float:
    """The seed's way: every order loads database.json, appends, and rewrites it (fsynced)."""
    path = workdir / "database.json"
    db: dict[str, Any] = {"groups": {f"g{i}": {"groupName": f"G{i}", "rate": 100, "entries": []}
                                     for i in range(groups)}, "payments": []}
    atomic_write_bytes(path, json.dumps(db).encode())
    started = time.perf_counter()
    for n in range(orders):
        db = json.loads(path.read_bytes())
        db["groups"][f"g{n % groups}"]["entries"].append(
            {"id": n, "userId": f"{n}@lid", "diamonds": 10, "status": "pending", "date": time.time()})
        atomic_write_bytes(path, json.dumps(db).encode())
    return orders / (time.perf_counter() - started)


def sqlite_baseline(orders: int, workdir: Path) -> float:
    """What a user would pick instead: SQLite, WAL, synchronous=FULL, one commit per order."""
    con = sqlite3.connect(workdir / "orders.sqlite3", isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, grp TEXT, user TEXT, diamonds INT,"
                    " status TEXT, created REAL, message_id TEXT UNIQUE)")
        started = time.perf_counter()
        for n in range(orders):
            con.execute("BEGIN")
            con.execute("INSERT INTO orders (grp, user, diamonds, status, created, message_id)"
                        " VALUES (?, ?, ?, 'pending', ?, ?)", (f"g{n % 100}", f"{n}@lid", 10, time.time(), f"m{n}"))
            con.execute("COMMIT")
        return orders / (time.perf_counter() - started)
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100, help="messages per transport delivery")
    parser.add_argument("--baseline-orders", type=int, default=2000,
                        help="orders for the baselines (the seed's rewrite is quadratic)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bot, seed, lite = [], [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-intake-", dir=".") as tmp:
            work = Path(tmp)
            r = run_bot(args.orders, args.groups, args.batch, work / "bot")
            bot.append(r)
            (work / "seed").mkdir()
            seed.append(seed_baseline(args.baseline_orders, args.groups, work / "seed"))
            (work / "sqlite").mkdir()
            lite.append(sqlite_baseline(args.baseline_orders, work / "sqlite"))
        print(f"run {i + 1}: bot {r['orders_per_s']:.0f}/s (p50 {r['latency_p50_ms']:.0f} ms, "
              f"p99 {r['latency_p99_ms']:.0f} ms); seed {seed[-1]:.0f}/s; sqlite {lite[-1]:.0f}/s", flush=True)
    median = statistics.median
    bot_rate = median(r["orders_per_s"] for r in bot)
    print(json.dumps({
        "benchmark": "intake", "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "orders": args.orders, "groups": args.groups, "batch": args.batch, "repeat": args.repeat,
        "bot_orders_per_s": round(bot_rate),
        "bot_latency_p50_ms": round(median(r["latency_p50_ms"] for r in bot), 1),
        "bot_latency_p99_ms": round(median(r["latency_p99_ms"] for r in bot), 1),
        "seed_orders_per_s": round(median(seed)), "sqlite_orders_per_s": round(median(lite)),
        "bot_vs_seed": round(bot_rate / median(seed), 1), "bot_vs_sqlite": round(bot_rate / median(lite), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
