"""What the hop to a member machine costs per order (issue 16): the same loads as bench.intake
and bench.approve, once on one machine and once with every group on a member (a leader and
`--members` members on this machine, bench.cluster), in the same run, alternating.

On a member, a group's every order crosses between machines: the gateway (leader) hands the
message to the group (member), the group writes through the PersistenceActor (leader), and the
confirmation or delivery goes back to the gateway (leader); in a convention every Thespian
message is also signed. On loopback this measures those extra process crossings and the
signing, not a real network's latency (add the round trips of yours: about three per order).

Each run is a process of its own: the signing a convention installs stays in its process.

    python -m bench.hop [--members 1] [--orders 10000] [--groups 100]
                        [--approve-orders 500] [--approve-groups 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import approve, intake


def one_run(kind: str, members: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if kind == "intake":
        r = intake.run_bot(args.orders, args.groups, args.batch, work, members)
        return {"orders_per_s": r["orders_per_s"], "p50_ms": r["latency_p50_ms"], "p99_ms": r["latency_p99_ms"]}
    lat = approve.run_bot(args.approve_orders, args.approve_groups, args.gap, work, members)["latencies_ms"]
    return {"p50_ms": approve.percentile(lat, 50), "p99_ms": approve.percentile(lat, 99)}


def in_own_process(kind: str, members: int, argv: list[str], work: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.hop", *argv, "--child", kind, "--child-members", str(members),
                          "--child-work", str(work)], stdout=subprocess.PIPE, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"{kind} run with {members} members failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--orders", type=int, default=10000, help="intake orders")
    parser.add_argument("--groups", type=int, default=100, help="intake groups")
    parser.add_argument("--batch", type=int, default=100, help="intake messages per transport delivery")
    parser.add_argument("--approve-orders", type=int, default=500)
    parser.add_argument("--approve-groups", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between two approvals")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=("intake", "approve"), help=argparse.SUPPRESS)
    parser.add_argument("--child-members", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child-work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child, args.child_members, args, Path(args.child_work))), flush=True)
        return
    argv = list(sys.argv[1:])
    setups = {"one_machine": 0, "members": args.members}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"intake": [], "approve": []} for s in setups}
    for i in range(args.repeat):
        for kind in ("intake", "approve"):
            for setup, members in setups.items():
                with tempfile.TemporaryDirectory(prefix="bench-hop-", dir=".") as tmp:
                    r = in_own_process(kind, members, argv, Path(tmp))
                runs[setup][kind].append(r)
                print(f"run {i + 1} {kind} {setup}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()), flush=True)
    median = statistics.median

    def med(setup: str, kind: str, key: str) -> float:
        return median(r[key] for r in runs[setup][kind])

    one_rate, hop_rate = med("one_machine", "intake", "orders_per_s"), med("members", "intake", "orders_per_s")
    result: dict[str, Any] = {
        "benchmark": "hop", "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "members": args.members, "repeat": args.repeat,
        "intake": {"orders": args.orders, "groups": args.groups,
                   "one_machine_orders_per_s": round(one_rate), "members_orders_per_s": round(hop_rate),
                   "runs_orders_per_s": {s: [round(r["orders_per_s"]) for r in runs[s]["intake"]] for s in setups},
                   # the capacity an order takes, one order after the other
                   "hop_ms_per_order": round(1000 / hop_rate - 1000 / one_rate, 3),
                   "one_machine_vs_members": round(one_rate / hop_rate, 2)},
        "approve": {"orders": args.approve_orders, "groups": args.approve_groups, "gap_s": args.gap},
    }
    for q in ("p50_ms", "p99_ms"):
        one, hop = med("one_machine", "approve", q), med("members", "approve", q)
        result["approve"].update({f"one_machine_{q}": round(one, 1), f"members_{q}": round(hop, 1),
                                  f"hop_{q}": round(hop - one, 1), f"members_vs_one_machine_{q[:3]}": round(hop / one, 2),
                                  f"runs_{q}": {s: [round(r[q], 1) for r in runs[s]["approve"]] for s in setups}})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
