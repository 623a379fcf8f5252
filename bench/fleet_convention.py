"""Fleet benchmark on several machines (issue 16), all on this one: a leader (this process's
actor system) and `--members` members (bench.cluster: each its own process and admin port on
loopback), the groups placed evenly over the shards in the stored journal, against the
same fleet on one machine.

Measures restart time (start until every group runs) and the CPU of idle reconciliation of
every process of every machine. The per-order cost of the hop: bench.hop.

    python -m bench.fleet_convention [--groups 300] [--orders-per-group 100] [--window 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from actors.messages import GetStatus, Owner, StartSystem, StopSystem, SystemStarted
from actors.supervisor import Supervisor
from actors.system import group_members
from bench.cluster import bot_system, member_shards, write_snapshot
from bench.fleet import cpu_seconds, fleet_snapshot, run_bot
from bench.load import LoadTransport
from domain.placement import PLACED_ON
from storage.lock import process_start_time


def run_convention(groups: int, per_group: int, window: float, members: int, work: Path) -> dict[str, Any]:
    data = work / "data"
    shards = ["leader", *member_shards(members)]
    snapshot = fleet_snapshot(groups, per_group, time.time())
    for i, g in enumerate(snapshot["groups"].values()):
        g[PLACED_ON] = shards[i % len(shards)]
    write_snapshot(data, snapshot)
    overrides = {"orders.default_rate": "100", "bot.data_dir": str(data), "sandbox.autostart": "false",
                 "reconciliation.pending_stuck_after": "24h"}
    with bot_system(overrides, work, members, common={"actors.group_hosts": "1"}) as (asys, config):
        supervisor = asys.createActor(Supervisor)
        owner = Owner(os.getpid(), process_start_time(os.getpid()) or 0, os.getsid(0))
        idle = LoadTransport(count=0, groups=1, batch=1, result_file=str(work / "unused.json"))
        started_at = time.monotonic()
        reply = asys.ask(supervisor, StartSystem(config, owner, transport=idle), timedelta(seconds=300))
        if not isinstance(reply, SystemStarted):
            raise RuntimeError(f"the system did not start: {reply}")
        while True:
            status = asys.ask(supervisor, GetStatus("s"), timedelta(seconds=30)).data
            if status["groups"]["ready"] >= groups:
                break
            if time.monotonic() - started_at > 600:
                raise RuntimeError(f"only {status['groups']['ready']} of {groups} groups ready after 600 s")
            time.sleep(0.2)
        all_ready = time.monotonic() - started_at
        spread = {s["name"]: s["ready"] for s in status["cluster"]["shards"]}
        time.sleep(15)  # every group has run cycles
        pids = [*group_members(status["pgid"]), *(p for name in shards[1:] for p in _member_pids(work / name))]
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        time.sleep(window)
        cpu = (cpu_seconds(pids) - cpu0) / (time.monotonic() - t0)
        asys.ask(supervisor, StopSystem(), timedelta(seconds=30))
        return {"all_groups_ready_s": all_ready, "cpu_percent_of_core": 100 * cpu, "processes": len(pids),
                "ready_by_shard": spread}


def _member_pids(member_dir: Path) -> list[int]:
    """Every process of a member node (the node, Thespian's admin and logger, its actors: forked,
    they keep the node's command line, which names its data directory)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if f"bot.data_dir={member_dir}\0" in Path(f"/proc/{entry}/cmdline").read_text(errors="replace"):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--orders-per-group", type=int, default=100)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--members", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-conv-", dir=".") as tmp:
        work = Path(tmp)
        one = run_bot(args.groups, args.orders_per_group, args.window, work / "one")
        conv = run_convention(args.groups, args.orders_per_group, args.window, args.members, work / "conv")
    print(json.dumps({
        "benchmark": "fleet_convention", "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "groups": args.groups, "members": args.members, "window_s": args.window,
        "one_machine": {"restart_all_groups_ready_s": round(one["all_groups_ready_s"], 1),
                        "reconcile_cpu_percent_of_core": round(one["cpu_percent_of_core"], 2)},
        "convention": {"restart_all_groups_ready_s": round(conv["all_groups_ready_s"], 1),
                       "reconcile_cpu_percent_of_core": round(conv["cpu_percent_of_core"], 2),
                       "processes": conv["processes"], "ready_by_shard": conv["ready_by_shard"]},
    }, indent=2))


if __name__ == "__main__":
    main()
