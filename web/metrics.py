"""What the bot's processes cost: memory (the sum of PSS) and CPU of every process in the actors'
process group plus the panel's own, read from /proc.

PSS (proportional set size, `/proc/<pid>/smaps_rollup`) splits pages shared between forked
actor processes among them, so the sum is what the bot really occupies — RSS would count the
shared pages once per process. CPU is the share of one core used since the previous sample
(like `top`); the first sample has no previous one and reports each process's average since it
started.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Samples closer together than this are answered from the last one: several open dashboards
# cost one read of /proc, and a tiny interval would make the CPU figure noise.
MIN_INTERVAL = 2.0


@dataclass(frozen=True, kw_only=True)
class Usage:
    """One sample: memory in bytes (None when no process could be read), CPU in % of one core."""

    memory_bytes: int | None
    cpu_percent: float | None
    processes: int


@dataclass(frozen=True)
class _Stat:
    pgid: int
    ticks: int  # user + system CPU time, in clock ticks
    start: int  # start time after boot, in clock ticks (tells a reused pid apart)


def _read_stat(proc: Path, pid: int) -> _Stat | None:
    try:
        raw = (proc / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = raw[raw.rfind(b")") + 2:].split()
    if len(fields) < 20 or fields[0] == b"Z":
        return None
    try:
        return _Stat(pgid=int(fields[2]), ticks=int(fields[11]) + int(fields[12]), start=int(fields[19]))
    except ValueError:
        return None


def pss_bytes(pid: int, proc: Path = Path("/proc")) -> int | None:
    """A process's proportional set size in bytes, or None if it cannot be read."""
    try:
        text = (proc / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            parts = line.split()
            try:
                return int(parts[1]) * 1024  # kB
            except (IndexError, ValueError):
                return None
    return None


def _uptime_ticks(proc: Path) -> float | None:
    try:
        return float((proc / "uptime").read_text().split()[0]) * CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


class ProcessSampler:
    """Samples the processes of one process group plus given pids; keeps the previous sample."""

    def __init__(self, proc: Path = Path("/proc"), clock: Callable[[], float] = time.monotonic,
                 min_interval: float = MIN_INTERVAL) -> None:
        self.proc = proc
        self.clock = clock
        self.min_interval = min_interval
        self._previous: dict[int, _Stat] = {}
        self._previous_at: float | None = None
        self._last: tuple[tuple[int, frozenset[int]], Usage] | None = None
        self._lock = threading.Lock()  # samples run in worker threads

    def members(self, pgid: int | None, extra: Iterable[int]) -> dict[int, _Stat]:
        """Every live process of group `pgid` (when given and > 1), and the `extra` pids."""
        wanted = set(extra)
        found: dict[int, _Stat] = {}
        if pgid is not None and pgid > 1:
            try:
                entries = os.listdir(self.proc)
            except OSError:
                entries = []
            for entry in entries:
                if entry.isdigit():
                    stat = _read_stat(self.proc, int(entry))
                    if stat is not None and (stat.pgid == pgid or int(entry) in wanted):
                        found[int(entry)] = stat
        for pid in wanted - found.keys():
            stat = _read_stat(self.proc, pid)
            if stat is not None:
                found[pid] = stat
        return found

    def sample(self, pgid: int | None, extra: Iterable[int] = ()) -> Usage:
        """Memory and CPU of the group's processes and `extra` now (blocking: reads /proc)."""
        with self._lock:
            return self._sample(pgid, extra)

    def _sample(self, pgid: int | None, extra: Iterable[int]) -> Usage:
        key = (pgid or 0, frozenset(extra))
        now = self.clock()
        if (self._last is not None and self._last[0] == key and self._previous_at is not None
                and now - self._previous_at < self.min_interval):
            return self._last[1]
        stats = self.members(pgid, key[1])
        pss = [pss_bytes(pid, self.proc) for pid in stats]
        known = [p for p in pss if p is not None]
        cpu: float | None = None
        if stats:
            if self._previous_at is not None and now > self._previous_at:
                used = 0
                for pid, stat in stats.items():
                    before = self._previous.get(pid)
                    # A process new since the last sample counts all it used so far.
                    used += stat.ticks - before.ticks if before and before.start == stat.start else stat.ticks
                cpu = 100.0 * used / CLOCK_TICKS / (now - self._previous_at)
            else:
                uptime = _uptime_ticks(self.proc)
                if uptime is not None:
                    cpu = sum(100.0 * s.ticks / max(uptime - s.start, 1.0) for s in stats.values())
        usage = Usage(memory_bytes=sum(known) if known else None,
                      cpu_percent=None if cpu is None else round(max(cpu, 0.0), 1),
                      processes=len(stats))
        self._previous, self._previous_at = stats, now
        self._last = (key, usage)
        return usage

    async def sample_async(self, pgid: int | None, extra: Iterable[int] = ()) -> Usage:
        """`sample` in a worker thread: a group of hundreds of actors takes a while to read."""
        extra = tuple(extra)
        return await asyncio.get_running_loop().run_in_executor(None, self.sample, pgid, extra)
