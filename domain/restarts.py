"""How soon an actor that exited starts again: at once the first time, then after a delay that
doubles with each exit in the period, so one that cannot start at all (a member machine shutting
down refuses every new actor) is not tried again in a tight loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class RestartPolicy:
    period: float  # s: exits older than this are forgotten
    intensity: int  # exits within the period before the delay jumps to backoff_max
    backoff_min: float  # s: the delay after the second exit in the period
    backoff_max: float  # s


def restart_delay(earlier: Sequence[float], now: float, policy: RestartPolicy) -> tuple[tuple[float, ...], float]:
    """The exits to remember (those within the period, and this one at `now`) and the delay in
    seconds before starting the actor again."""
    recent = tuple(t for t in earlier if t >= now - policy.period) + (now,)
    n = len(recent)
    if n == 1:
        return recent, 0.0
    if n > policy.intensity:
        return recent, policy.backoff_max
    return recent, min(policy.backoff_min * 2 ** (n - 2), policy.backoff_max)
