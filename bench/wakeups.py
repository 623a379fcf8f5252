"""What one wakeup of a quiet actor costs on the production base (issue 15): N bare actors
each re-arm a timer every `period` and do nothing else; the CPU of their processes over a
window, divided by the wakeups they counted, is the price of a wakeup — Thespian's loop, its
timer, its selector — before any work. Each mode is a set of the patches of actors/system.py,
run in a fresh process, the modes alternating, `--repeat` times:

* thespian: Thespian's own loop (a new selector per turn), with the loopback, idle-connection
  and lazy-description patches every mode has;
* kept: and the kept selector (keep_the_selector) and the kept message order;
* quiet: and a quiet turn's wait made short (wait_quietly).

    python -m bench.wakeups [--actors 20] [--period 0.05] [--window 20] [--repeat 3] [--modes kept,quiet]

With `--groups N`, GroupActors instead of bare actors: bench.fleet's fleet of N groups of 100
open orders, cycles every 10 s, on the production base with every patch start_actor_system
applies, those after `kept` left out as the mode says. In each group process, from `--after`
seconds after the start, over 4 wakeups: the process's CPU from one wakeup to the next (Thespian's
loop, the kernel's wakeup, the cycle) and the thread's CPU inside GroupActor.receiveMessage (the
cycle alone), each per wakeup, summed over the groups. Cold caches, as in a real fleet:

    python -m bench.wakeups --groups 100 --modes kept,quiet --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from thespian.actors import ActorSystem, ActorTypeDispatcher, WakeupMessage

from bench.procs import cpu_seconds


class Sleeper(ActorTypeDispatcher):
    """Wakes every `period` seconds and counts it."""

    def __init__(self) -> None:
        super().__init__()
        self.period = 1.0
        self.wakeups = 0

    def receiveMsg_float(self, period: float, sender: Any) -> None:
        self.period = period
        self.wakeupAfter(timedelta(seconds=period))
        self.send(sender, os.getpid())

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        self.wakeups += 1
        self.wakeupAfter(timedelta(seconds=self.period))

    def receiveMsg_str(self, msg: str, sender: Any) -> None:
        self.send(sender, self.wakeups)


MODES = ("thespian", "kept", "quiet")


def one_run(mode: str, actors: int, period: float, window: float) -> dict[str, float]:
    """In this process: a system with the project's patches that `mode` names (MODES)."""
    from actors import system
    from bench.intake import free_port

    os.environ["THESPIAN_BASE_IPADDR"] = system.LOOPBACK
    system.bind_to_advertised_address()
    system.close_idle_connections_sooner()
    system.describe_messages_lazily()
    if mode in ("kept", "quiet"):
        system.keep_the_selector()
        system.keep_message_order()
    if mode == "quiet":
        system.wait_quietly()
    asys = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()}, logDefs=system.quiet_log_config())
    try:
        sleepers = [asys.createActor(Sleeper) for _ in range(actors)]
        pids = [asys.ask(s, period, timedelta(seconds=10)) for s in sleepers]
        time.sleep(2 * period + 1)  # started, connections from the start closed (after 3 s idle)
        time.sleep(3)
        count0 = sum(asys.ask(s, "n", timedelta(seconds=10)) for s in sleepers)
        cpu0 = cpu_seconds(pids)
        time.sleep(window)
        cpu = cpu_seconds(pids) - cpu0
        count = sum(asys.ask(s, "n", timedelta(seconds=10)) for s in sleepers) - count0
        # The asks above cost a few turns each; against thousands of wakeups they are noise.
        return {"wakeups": count, "cpu_s": round(cpu, 3), "us_per_wakeup": round(1e6 * cpu / max(count, 1), 1)}
    finally:
        asys.shutdown()


WAKEUPS_TIMED = 4  # per group process: three whole spans from one wakeup to the next


def groups_run(mode: str, groups: int, after: float) -> dict[str, Any]:
    """In this process: bench.fleet's fleet, each GroupActor's cycle wakeups timed in its process."""
    import glob
    import tempfile

    from thespian.actors import WakeupMessage as Wakeup

    from actors import system
    from actors.group import GroupActor
    from bench.fleet import run_bot

    if mode in ("thespian", "kept"):
        system.wait_quietly = lambda: None  # type: ignore[assignment]
    if mode == "thespian":
        system.keep_the_selector = lambda: None  # type: ignore[assignment]
    out = tempfile.mkdtemp(prefix="bench-wakeups-")
    start_timing = time.time() + after
    handle = GroupActor.receiveMessage

    def timed(self: Any, msg: Any, sender: Any) -> None:  # forked into every group process
        if type(msg) is not Wakeup or time.time() < start_timing:
            return handle(self, msg, sender)
        process = time.process_time_ns()
        t = self.__dict__.setdefault("_bench_wakeups", [0, 0, process, process])
        if t[0] >= WAKEUPS_TIMED:
            return handle(self, msg, sender)
        thread = time.thread_time_ns()
        handle(self, msg, sender)
        t[1] += time.thread_time_ns() - thread
        t[0] += 1
        t[3] = process
        if t[0] == WAKEUPS_TIMED:
            Path(out, f"{os.getpid()}.json").write_text(json.dumps(t))
        return None

    GroupActor.receiveMessage = timed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="bench-wakeups-", dir=".") as work:
        fleet = run_bot(groups, 100, after + 10 * WAKEUPS_TIMED - 15, Path(work))
    timed_groups = wakeups = in_cycle_ns = spans = span_ns = 0
    for name in glob.glob(os.path.join(out, "*.json")):
        n, cycle_ns, first, last = json.loads(Path(name).read_text())
        timed_groups, wakeups, in_cycle_ns = timed_groups + 1, wakeups + n, in_cycle_ns + cycle_ns
        spans, span_ns = spans + n - 1, span_ns + last - first
        os.unlink(name)
    os.rmdir(out)
    return {"groups_timed": timed_groups, "wakeups": wakeups,
            "us_per_wakeup": round(span_ns / 1000 / max(spans, 1), 1),
            "us_in_cycle_per_wakeup": round(in_cycle_ns / 1000 / max(wakeups, 1), 1),
            "fleet_cpu_by_role_percent": fleet["cpu_by_role_percent"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=20)
    parser.add_argument("--period", type=float, default=0.05, help="seconds between an actor's wakeups")
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="thespian,kept,quiet",
                        help="comma-separated, of: " + ", ".join(MODES) + "; ratios are against the first")
    parser.add_argument("--groups", type=int, default=0, help="GroupActors of bench.fleet instead of bare actors")
    parser.add_argument("--after", type=float, default=22.0, help="with --groups: seconds before the timing starts")
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run = (groups_run(args.one, args.groups, args.after) if args.groups
               else one_run(args.one, args.actors, args.period, args.window))
        print(json.dumps(run))
        return
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes: choose among {', '.join(MODES)}")
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode in modes:
            out = subprocess.run([sys.executable, "-m", "bench.wakeups", "--one", mode, "--actors", str(args.actors),
                                  "--period", str(args.period), "--window", str(args.window),
                                  "--groups", str(args.groups), "--after", str(args.after)],
                                 check=True, capture_output=True, text=True).stdout
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    med = {m: statistics.median(r["us_per_wakeup"] for r in runs) for m, runs in results.items()}
    print(json.dumps({
        "benchmark": "wakeups", "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": round(os.getloadavg()[0], 2),
        **({"groups": args.groups, "after_s": args.after} if args.groups else
           {"actors": args.actors, "period_s": args.period, "window_s": args.window}),
        "runs": results,
        "median_us_per_wakeup": med,
        f"vs_{modes[0]}": {m: round(med[m] / med[modes[0]], 3) if med[modes[0]] else None for m in modes[1:]},
    }, indent=2))


if __name__ == "__main__":
    main()
