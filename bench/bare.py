"""The floor under the fleet (issue 15): as many bare Thespian actors as the fleet has groups,
on the same base with the same patches, forked the same way (a few parents, each forking its
share from a frozen heap) and each doing nothing but re-arm a 10 s wakeupAfter. What they cost
is what the mandated base (SPEC §2: multiprocTCPBase, every actor its own process) costs before
the bot does any work, so the fleet's bars can be read against it in the same run.

    python -m bench.bare [--actors 1000] [--parents 2] [--window 40]

Reports: the time until every actor has started and answered (the restart's floor), the CPU of
every process of the system over the window as % of a core (the reconciliation's floor), CPU
per wakeup, and the actors' median PSS (the memory floor).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from datetime import timedelta
from typing import Any

from thespian.actors import ActorTypeDispatcher, WakeupMessage

from actors.system import group_members, quiet_log_config, start_actor_system
from bench.intake import free_port
from bench.procs import cpu_seconds, pss_kb
from config import load_config


class Idler(ActorTypeDispatcher):
    """A group with nothing to do: answers once, then wakes every `period` seconds."""

    period = 10.0

    def receiveMsg_float(self, period: float, sender: Any) -> None:
        self.period = period
        self.send(sender, os.getpid())
        self.wakeupAfter(timedelta(seconds=period))

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        self.wakeupAfter(timedelta(seconds=self.period))


class Forker(ActorTypeDispatcher):
    """A host with nothing to do: forks its share of idlers from a frozen heap, as GroupHost does."""

    def receiveMsg_tuple(self, msg: tuple[int, float], sender: Any) -> None:
        count, period = msg
        self.asker, self.want, self.pids = sender, count, []
        gc.collect()
        gc.freeze()
        for _ in range(count):
            self.send(self.createActor(Idler), period)

    def receiveMsg_int(self, pid: int, sender: Any) -> None:
        self.pids.append(pid)
        if len(self.pids) == self.want:
            self.send(self.asker, list(self.pids))


def run_bare(actors: int, parents: int, window: float, period: float = 10.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-bare-", dir=".") as tmp:
        config = load_config(env={}, overrides={"bot.data_dir": tmp, "actors.admin_port": str(free_port()),
                                                "sandbox.autostart": "false"})
        asys = start_actor_system(config, quiet_log_config())
        try:
            forkers = [asys.createActor(Forker) for _ in range(parents)]
            started = time.monotonic()
            for i, forker in enumerate(forkers):
                asys.tell(forker, (actors // parents + (1 if i < actors % parents else 0), period))
            pids: list[int] = []
            for _ in forkers:
                answer = asys.listen(timedelta(seconds=300))
                if not isinstance(answer, list):
                    raise RuntimeError(f"the bare actors did not start: {answer!r}")
                pids.extend(answer)
            start_s = time.monotonic() - started
            time.sleep(min(period, 10.0))  # every actor's first wakeup is behind it
            everyone = group_members(os.getpgid(pids[0]))
            before = {p: cpu_seconds([p]) for p in everyone}
            t0 = time.monotonic()
            time.sleep(window)
            elapsed = time.monotonic() - t0
            total = sum(cpu_seconds([p]) - before[p] for p in everyone) / elapsed
            idlers = sum(cpu_seconds([p]) - before.get(p, 0.0) for p in pids) / elapsed
            pss = sorted(pss_kb(p) for p in pids[: min(50, len(pids))])
            return {"actors": actors, "parents": parents, "start_s": round(start_s, 2),
                    "cpu_percent_of_core": round(100 * total, 2),
                    "us_per_wakeup": round(1e6 * idlers / (actors / period), 1),
                    "pss_kb_median": statistics.median(pss)}
        finally:
            asys.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=1000)
    parser.add_argument("--parents", type=int, default=os.cpu_count() or 1,
                        help="forking parents (the bot: one host per core)")
    parser.add_argument("--window", type=float, default=40.0, help="seconds of CPU measurement")
    args = parser.parse_args()
    print(json.dumps(run_bare(args.actors, args.parents, args.window)))


if __name__ == "__main__":
    main()
