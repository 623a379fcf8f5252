"""What the benchmarks read of a process from /proc: its CPU time, its PSS, its parent."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of these processes (every thread), from the scheduler's own nanosecond count:
    /proc/PID/stat's clock ticks are charged by sampling, and a quiet actor's half-millisecond
    wakeups mostly fall between ticks (100 bare actors read 0.0 % over 10 s)."""
    total = 0.0
    for pid in pids:
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                total += _ticks(pid) if tid == str(pid) else 0.0  # no schedstat here: the sampled ticks
    return total


def _ticks(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0.0
    fields = raw[raw.rfind(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def parent_of(pid: int) -> int:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0
    return int(raw[raw.rfind(b")") + 2:].split()[1])
