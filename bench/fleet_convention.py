"""Fleet benchmark on several machines (issue 16), all on this one: a leader (this process's
actor system) and `--members` members (tests/cluster_node.py, each its own process and admin
port on loopback), the groups placed evenly over the shards in the stored journal, against the
same fleet on one machine.

Measures restart time (start until every group runs) and the CPU of idle reconciliation of
every process of every machine. Not measured (yet): the per-order cost of the network hop.

    python -m bench.fleet_convention [--groups 300] [--orders-per-group 100] [--window 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from actors.messages import GetStatus, Owner, StartSystem, StopSystem, SystemStarted
from actors.supervisor import Supervisor
from actors.system import group_members, quiet_log_config, start_actor_system
from bench.fleet import cpu_seconds, fleet_snapshot, run_bot
from bench.intake import free_port
from bench.load import LoadTransport
from config import load_config
from domain.placement import PLACED_ON
from storage.atomic import atomic_write_bytes
from storage.lock import process_start_time

NODE = Path(__file__).resolve().parents[1] / "tests" / "cluster_node.py"


def run_convention(groups: int, per_group: int, window: float, members: int, work: Path) -> dict[str, Any]:
    data = work / "data"
    data.mkdir(parents=True)
    secret = work / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    now = time.time()
    shards = ["leader", *(f"m{i}" for i in range(members))]
    snapshot = fleet_snapshot(groups, per_group, now)
    for i, g in enumerate(snapshot["groups"].values()):
        g[PLACED_ON] = shards[i % len(shards)]
    atomic_write_bytes(data / "orders.snapshot.json", orjson.dumps({"format": 1, "journal_gen": 0, "data": snapshot}))
    (data / "orders.journal.00000000").touch()
    port = free_port()
    common = {"cluster.secret_file": str(secret), "actors.group_hosts": "1"}
    config = load_config(env={}, overrides={
        **common, "cluster.role": "leader", "orders.default_rate": "100", "bot.data_dir": str(data),
        "actors.admin_port": str(port), "sandbox.autostart": "false",
        "reconciliation.pending_stuck_after": "24h"})
    # The leader's system first: a member that finds no leader retries only after Thespian's
    # restart period (3 min 22 s).
    asys = start_actor_system(config, quiet_log_config())
    nodes = []
    for name in shards[1:]:
        args = {**common, "cluster.role": "member", "cluster.shard": name, "actors.admin_port": str(free_port()),
                "actors.convention_address": f"127.0.0.1:{port}", "bot.data_dir": str(work / name)}
        node = subprocess.Popen([sys.executable, str(NODE), *(f"{k}={v}" for k, v in args.items())],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, "THESPLOG_FILE": str(work / f"{name}.thespian.log")})
        assert node.stdout is not None and node.stdout.readline().strip() == "ready"
        nodes.append(node)
    try:
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
    finally:
        asys.shutdown()
        for node in nodes:
            assert node.stdin is not None
            node.stdin.close()
            node.wait(30)


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
