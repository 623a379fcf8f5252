"""Fleet benchmark (SPEC §9): 100 open orders per group over 100 to 1,000 groups on the
production actor base.

Measures, in one run per fleet size:
* restart: from start until every group actor has run its first reconciliation cycle (bar: < 10 s;
  also reported: until every group is loaded and ready — its first cycle lands at a random moment
  within reconciliation.first_cycle_within (1 s) after that, so groups loaded together spread out);
* reconciliation: CPU of every process of the system over a window of idle reconciliation, as %
  of one core (bar: < 5 %), by role (groups, hosts, persistence, ...), against the seed's cycle
  (load the whole JSON, check every order, rewrite it) and SQLite (select the open orders, update
  their check counts) doing the same work every 10 s, measured in the same run;
* memory: PSS of each group actor (bar: < 5 MB per extra group);
* the stop: how long it took and how many groups' last checkpoints the journal confirmed (bar: all);
* the floor: as many bare Thespian actors, forked and timed the same way and doing nothing but
  wake every 10 s (bench/bare.py): what the mandated base costs before the bot does any work.

    python -m bench.fleet [--groups 100,300,1000] [--repeat 3] [--window 40] [--out results.json]

`--stop-load N` keeps N busy processes running during the stop (a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from actors.messages import GetReport, GetStatus, Owner, StartSystem, StopSystem, SystemStarted, SystemStopped
from actors.supervisor import Supervisor
from actors.system import group_members, quiet_log_config, start_actor_system
from bench.bare import run_bare
from bench.intake import free_port
from bench.load import LoadTransport
from bench.procs import cpu_seconds, parent_of, pss_kb
from config import load_config
from domain.clock import to_iso
from domain.group import group_code
from storage.atomic import atomic_write_bytes
from storage.lock import process_start_time

FLEET_PREFIX = "1203638"  # the fleet's group ids (the idle transport has a group of its own)
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


def first_cycles(asys: Any, supervisor: Any, groups: int, since: float, timeout: float) -> float:
    """Wall-clock time at which the last of the fleet's groups ran its first cycle after `since`
    (read from the cycles the groups themselves recorded, so the polling's pace does not count)."""
    deadline = time.monotonic() + timeout
    while True:
        report = asys.ask(supervisor, GetReport("r"), timedelta(seconds=60)).data
        firsts = [min(c["started_at"] for c in cycles if c.get("started_at", 0) >= since)
                  for gid, cycles in report["cycles"].items()
                  if gid.startswith(FLEET_PREFIX) and any(c.get("started_at", 0) >= since for c in cycles)]
        if len(firsts) >= groups:
            return max(firsts)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(firsts)} of {groups} groups ran a cycle within {timeout} s")
        time.sleep(1.0)


def hogs(n: int) -> list[subprocess.Popen[bytes]]:
    """n busy processes (a machine loaded by something else)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run_bot(groups: int, per_group: int, window: float, work: Path, interval: str = "10s",
            stop_load: int = 0, hosts: int = 0) -> dict[str, Any]:
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
        "actors.group_hosts": str(hosts),  # 0: one per core
    })
    asys = start_actor_system(config, quiet_log_config())
    try:
        supervisor = asys.createActor(Supervisor)
        owner = Owner(os.getpid(), process_start_time(os.getpid()) or 0, os.getsid(0))
        # An idle transport: no inbound messages, every send confirmed.
        idle = LoadTransport(count=0, groups=1, batch=1, result_file=str(work / "unused.json"))
        started_wall, started_at = time.time(), time.monotonic()
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
        first_cycle = first_cycles(asys, supervisor, groups, started_wall,
                                   timeout=max(3 * config.reconciliation.interval, 60)) - started_wall
        time.sleep(min(max(config.reconciliation.interval * 1.5, 5), 20))  # every group has run cycles
        pids = group_members(status["pgid"])
        names = {v: k for k, v in status["pids"].items()}
        group_pids = [a["pid"] for a in status["groups"]["actors"]]
        group_set = set(group_pids)
        host_set = {parent_of(p) for p in group_pids}

        def role(p: int) -> str:
            if p in names:
                return names[p]
            return "groups" if p in group_set else "hosts" if p in host_set else "thespian"

        def cpu_by_role(before: dict[int, float], seconds: float) -> dict[str, float]:
            by: dict[str, float] = {}
            for p in pids:
                by[role(p)] = by.get(role(p), 0.0) + 100 * (cpu_seconds([p]) - before[p]) / seconds
            return {k: round(v, 2) for k, v in sorted(by.items())}

        per0 = {p: cpu_seconds([p]) for p in pids}
        t0 = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        by_role = cpu_by_role(per0, elapsed)
        pss = sorted(pss_kb(p) for p in group_pids[: min(50, len(group_pids))])

        load = hogs(stop_load)
        try:
            stop0 = {p: cpu_seconds([p]) for p in pids}
            t_stop = time.monotonic()
            stopped = asys.ask(supervisor, StopSystem(), timedelta(seconds=30))
            stop_s = time.monotonic() - t_stop
            stop_cpu = cpu_by_role(stop0, 100.0)  # CPU seconds, not a share
        finally:
            for h in load:
                h.kill()
                h.wait()
        if not isinstance(stopped, SystemStopped):
            raise RuntimeError(f"the stop was not confirmed: {stopped}")
        return {"start_s": round(system_started, 2), "all_groups_ready_s": round(all_ready, 2),
                "all_groups_first_cycle_s": round(first_cycle, 2),
                "cpu_percent_of_core": round(sum(by_role.values()), 2), "cpu_by_role_percent": by_role,
                "processes": len(pids), "group_pss_kb_median": statistics.median(pss) if pss else 0,
                "stop_s": round(stop_s, 2), "stop_cpu_s_by_role": stop_cpu,
                "final_checkpoints_confirmed": stopped.checkpoints_saved,
                "final_checkpoints_missing": stopped.checkpoints_missing,
                "groups_total": status["groups"]["total"]}
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


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def measure(groups: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One run of the bot at this fleet size, and the seed's and SQLite's cycle beside it."""
    load_before = os.getloadavg()[0]
    bot = run_bot(groups, args.orders_per_group, args.window, work / "bot", args.interval, args.stop_load, args.hosts)
    (work / "seed").mkdir()
    seed = statistics.median(seed_cycle(groups, args.orders_per_group, work / "seed") for _ in range(3))
    (work / "sqlite").mkdir()
    lite = sqlite_cycle(groups, args.orders_per_group, work / "sqlite")
    floor = {}
    if args.bare:  # the base's own cost, same size, same run (bench/bare.py)
        bare = run_bare(groups, args.hosts or os.cpu_count() or 1, min(args.window, 20.0))
        floor = {"bare_start_s": bare["start_s"], "bare_cpu_percent_of_core": bare["cpu_percent_of_core"],
                 "bare_us_per_wakeup": bare["us_per_wakeup"], "bare_pss_kb_median": bare["pss_kb_median"]}
    return {**bot, "groups": groups, "load_average_before": round(load_before, 2),
            "seed_cpu_percent_of_core": round(100 * seed / 10.0, 2),  # one cycle every 10 s
            "sqlite_cpu_percent_of_core": round(100 * lite / 10.0, 2), **floor}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats of one fleet size."""
    groups_cpu = [r["cpu_by_role_percent"].get("groups", 0.0) for r in runs]
    persistence_cpu = [r["cpu_by_role_percent"].get("persistence", 0.0) for r in runs]
    return {
        "groups": runs[0]["groups"], "runs": len(runs),
        "restart_all_groups_first_cycle_s": median_of(runs, "all_groups_first_cycle_s"),
        "restart_all_groups_ready_s": median_of(runs, "all_groups_ready_s"),
        "bot_cpu_percent_of_core": median_of(runs, "cpu_percent_of_core"),
        "bot_cpu_groups_percent": round(statistics.median(groups_cpu), 2),
        "bot_cpu_persistence_percent": round(statistics.median(persistence_cpu), 2),
        "seed_cpu_percent_of_core": median_of(runs, "seed_cpu_percent_of_core"),
        "sqlite_cpu_percent_of_core": median_of(runs, "sqlite_cpu_percent_of_core"),
        "group_pss_mb_median": round(statistics.median(r["group_pss_kb_median"] for r in runs) / 1024, 2),
        **({"bare_start_s": median_of(runs, "bare_start_s"),
            "bare_cpu_percent_of_core": median_of(runs, "bare_cpu_percent_of_core"),
            "bare_pss_mb_median": round(statistics.median(r["bare_pss_kb_median"] for r in runs) / 1024, 2)}
           if "bare_start_s" in runs[0] else {}),
        "final_checkpoints_confirmed": min(r["final_checkpoints_confirmed"] for r in runs),
        "groups_to_confirm": runs[0]["groups_total"],
        "stop_s": median_of(runs, "stop_s"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", default="1000", help="fleet sizes, comma-separated (100,300,1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per fleet size (medians reported)")
    parser.add_argument("--orders-per-group", type=int, default=100)
    parser.add_argument("--window", type=float, default=40.0, help="seconds of CPU measurement")
    parser.add_argument("--interval", default="10s", help="reconciliation.interval (1h: the idle cost alone)")
    parser.add_argument("--stop-load", type=int, default=0, help="busy processes running during the stop")
    parser.add_argument("--hosts", type=int, default=0, help="actors.group_hosts (0: one per core)")
    parser.add_argument("--out", default="", help="write every run and the medians to this JSON file")
    parser.add_argument("--no-bare", dest="bare", action="store_false",
                        help="skip the floor: as many bare Thespian actors, measured in the same run (bench/bare.py)")
    args = parser.parse_args()
    sizes = [int(g) for g in args.groups.split(",") if g.strip()]
    result: dict[str, Any] = {
        "benchmark": "fleet", "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join(["python -m bench.fleet", *sys.argv[1:]]),
        "orders_per_group": args.orders_per_group, "window_s": args.window, "stop_load": args.stop_load,
        "runs": [], "summary": [],
    }
    for groups in sizes:
        runs = []
        for n in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir=".") as tmp:
                run = measure(groups, args, Path(tmp))
            print(json.dumps(run), file=sys.stderr, flush=True)
            runs.append(run)
        result["runs"].extend(runs)
        result["summary"].append(summary(runs))
        if args.out:  # after each size: a long sweep that fails late keeps what it measured
            Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
