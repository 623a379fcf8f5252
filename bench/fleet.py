"""Fleet benchmark (SPEC §9): 100,000 open orders over 1,000 groups on the production actor base.

Measures, in one run:
* restart: time from start until every group actor has loaded its orders and runs (bar: < 10 s
  until every group reconciles; the first cycle of each lands within one interval by design);
* reconciliation: CPU of every process of the system over a window of idle reconciliation,
  as % of one core (bar: < 5 %), against the seed's cycle (load the whole JSON, check every
  order, rewrite it) and SQLite (select the open orders, update their check counts) doing the
  same work every 10 s, measured in the same run;
* memory: PSS of each group actor (bar: < 5 MB per extra group).

    python -m bench.fleet [--groups 1000] [--orders-per-group 100] [--window 60]
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

import orjson

from actors.messages import GetStatus, Owner, StartSystem, StopSystem, SystemStarted
from actors.supervisor import Supervisor
from actors.system import group_members, quiet_log_config, start_actor_system
from bench.intake import free_port
from bench.load import LoadTransport
from config import load_config
from domain.clock import to_iso
from domain.group import group_code
from storage.atomic import atomic_write_bytes
from storage.lock import process_start_time

TICKS = os.sysconf("SC_CLK_TCK")


def fleet_snapshot(groups: int, per_group: int, now: float) -> dict[str, Any]:
    """A database in the seed's shape: every group with `per_group` pending orders."""
    data: dict[str, Any] = {"format": 1, "meta": {"boot": 0, "installedAt": now - 86400}, "payments": [], "groups": {}}
    for g in range(groups):
        gid, code = f"1203638{g:011d}@g.us", group_code(g + 1)
        entries = []
        for n in range(1, per_group + 1):
            created = to_iso(now - 60 - n)
            entries.append({
                "id": f"{code}{n}", "groupId": gid, "groupName": f"Fleet {g}", "userId": f"8801{g:04d}{n:05d}@lid",
                "userAlt": "", "userName": "Reseller", "messageId": f"3EB0{g:08d}{n:010d}", "text": ".10",
                "diamonds": 10, "rate": "100.00", "amount": "1000.00", "status": "pending", "date": created,
                "receivedAt": created, "recovered": False,
                "receipt": {"attempts": 1, "lastAttemptAt": created, "lastError": "", "messageId": "x",
                            "confirmedAt": created},
                "delivery": {"attempts": 0, "lastAttemptAt": None, "lastError": "", "messageId": "", "confirmedAt": None},
                "issues": [], "audit": [{"at": created, "from": None, "to": "pending", "by": "whatsapp:x", "note": ""}],
            })
        data["groups"][gid] = {"groupName": f"Fleet {g}", "code": code, "rate": "100.00", "enabled": True,
                               "autoApprove": False, "autoApproveMax": 0, "dueLimit": None,
                               "nextSeq": per_group + 1, "watermark": now - 60, "entries": entries}
    return data


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_bot(groups: int, per_group: int, window: float, work: Path, interval: str = "10s") -> dict[str, Any]:
    data = work / "data"
    data.mkdir(parents=True)
    now = time.time()
    atomic_write_bytes(data / "orders.snapshot.json",
                       orjson.dumps({"format": 1, "journal_gen": 0, "data": fleet_snapshot(groups, per_group, now)}))
    (data / "orders.journal.00000000").touch()  # the snapshot says records continue there
    config = load_config(env={}, overrides={
        "orders.default_rate": "100",  # the benchmark's groups are priced from their first order
        "bot.data_dir": str(data), "actors.admin_port": str(free_port()), "sandbox.autostart": "false",
        "reconciliation.pending_stuck_after": "24h",  # fresh orders: no issues, no writes
        "reconciliation.interval": interval,
    })
    asys = start_actor_system(config, quiet_log_config())
    try:
        supervisor = asys.createActor(Supervisor)
        owner = Owner(os.getpid(), process_start_time(os.getpid()) or 0, os.getsid(0))
        # An idle transport: no inbound messages, every send confirmed.
        idle = LoadTransport(count=0, groups=1, batch=1, result_file=str(work / "unused.json"))
        started_at = time.monotonic()
        reply = asys.ask(supervisor, StartSystem(config, owner, transport=idle), timedelta(seconds=300))
        if not isinstance(reply, SystemStarted):
            raise RuntimeError(f"the system did not start: {reply}")
        system_started = time.monotonic() - started_at
        status: dict[str, Any] = {}
        while True:
            status = asys.ask(supervisor, GetStatus("s"), timedelta(seconds=30)).data
            if status["groups"]["ready"] >= groups:
                break
            if time.monotonic() - started_at > 600:
                raise RuntimeError(f"only {status['groups']['ready']} of {groups} groups ready after 600 s")
            time.sleep(0.2)
        all_ready = time.monotonic() - started_at
        time.sleep(min(max(config.reconciliation.interval * 1.5, 5), 20))  # every group has run cycles
        pids = group_members(status["pgid"])
        if os.environ.get("FLEET_PROFILE"):
            Path(os.environ["FLEET_PROFILE"]).write_text(json.dumps(status["pids"]))
        per0 = {p: cpu_seconds([p]) for p in pids}
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        cpu = (cpu_seconds(pids) - cpu0) / elapsed
        names = {v: k for k, v in status["pids"].items()}
        group_set = {a["pid"] for a in status["groups"]["actors"]}
        by_role: dict[str, float] = {}
        for p in pids:
            role = names.get(p) or ("group" if p in group_set else "thespian")
            by_role[role] = by_role.get(role, 0.0) + 100 * (cpu_seconds([p]) - per0[p]) / elapsed
        group_pids = [a["pid"] for a in status["groups"]["actors"]]
        pss = sorted(pss_kb(p) for p in group_pids[: min(50, len(group_pids))])
        asys.ask(supervisor, StopSystem(), timedelta(seconds=30))
        return {"start_s": system_started, "all_groups_ready_s": all_ready, "cpu_percent_of_core": 100 * cpu,
                "processes": len(pids), "group_pss_kb_median": statistics.median(pss) if pss else 0,
                "cpu_by_role": {k: round(v, 2) for k, v in sorted(by_role.items())}}
    finally:
        asys.shutdown()


def seed_cycle(groups: int, per_group: int, work: Path) -> float:
    """Seconds of one seed reconciliation cycle: load database.json, check every order, rewrite."""
    path = work / "database.json"
    snap = fleet_snapshot(groups, per_group, time.time())
    atomic_write_bytes(path, json.dumps(snap).encode())
    started = time.perf_counter()
    db = json.loads(path.read_bytes())
    now = time.time()
    for group in db["groups"].values():
        for e in group["entries"]:
            if e.get("id") and e.get("userId") and e.get("diamonds") and e.get("date"):
                e["checkCount"] = e.get("checkCount", 0) + 1
                e["lastChecked"] = now
    atomic_write_bytes(path, json.dumps(db).encode())
    return time.perf_counter() - started


def sqlite_cycle(groups: int, per_group: int, work: Path) -> float:
    """Seconds of one cycle in SQLite (WAL, synchronous=FULL): select open orders, update counts."""
    con = sqlite3.connect(work / "fleet.sqlite3", isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, grp TEXT, status TEXT, created REAL,"
                    " checks INT DEFAULT 0, last_checked REAL)")
        con.execute("BEGIN")
        con.executemany("INSERT INTO orders (id, grp, status, created) VALUES (?, ?, 'pending', ?)",
                        ((f"{g}-{n}", f"g{g}", time.time()) for g in range(groups) for n in range(per_group)))
        con.execute("COMMIT")
        started = time.perf_counter()
        con.execute("BEGIN")
        rows = con.execute("SELECT id, status, created FROM orders WHERE status IN ('pending','processing','approved')").fetchall()
        now = time.time()
        con.executemany("UPDATE orders SET checks = checks + 1, last_checked = ? WHERE id = ?", ((now, r[0]) for r in rows))
        con.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--orders-per-group", type=int, default=100)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of CPU measurement")
    parser.add_argument("--interval", default="10s", help="reconciliation.interval (1h: the idle cost alone)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir=".") as tmp:
        work = Path(tmp)
        bot = run_bot(args.groups, args.orders_per_group, args.window, work / "bot", args.interval)
        (work / "seed").mkdir()
        seed = statistics.median(seed_cycle(args.groups, args.orders_per_group, work / "seed") for _ in range(3))
        (work / "sqlite").mkdir()
        lite = statistics.median(sqlite_cycle(args.groups, args.orders_per_group, work / "sqlite" ) for _ in range(1))
    interval = 10.0
    print(json.dumps({
        "benchmark": "fleet", "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "groups": args.groups, "open_orders": args.groups * args.orders_per_group, "window_s": args.window,
        "restart_all_groups_ready_s": round(bot["all_groups_ready_s"], 1),
        "bot_reconcile_cpu_percent_of_core": round(bot["cpu_percent_of_core"], 2),
        "seed_reconcile_cpu_percent_of_core": round(100 * seed / interval, 2),
        "sqlite_reconcile_cpu_percent_of_core": round(100 * lite / interval, 2),
        "group_actor_pss_mb_median": round(bot["group_pss_kb_median"] / 1024, 2),
        "processes": bot["processes"],
        "bot_cpu_by_role_percent": bot["cpu_by_role"],
    }, indent=2))


if __name__ == "__main__":
    main()
