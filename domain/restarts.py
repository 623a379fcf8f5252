"""How soon an actor that exited starts again (OTP's restart intensity): after a delay that
doubles with each exit in the period (a host: at once the first time), so one that cannot start
at all (a member machine shutting down refuses every new actor) is not tried again in a tight
loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class RestartPolicy:
    period: float  # s: exits older than this are forgotten
    intensity: int  # exits within the period before the delay jumps to backoff_max
    backoff_min: float  # s: the delay after the second exit in the period
    backoff_max: float  # s


def restart_delay(earlier: Sequence[float], now: float, policy: RestartPolicy, *,
                  first_at_once: bool = True) -> tuple[tuple[float, ...], float]:
    """The exits to remember (those within the period, and this one at `now`) and the delay in
    seconds before starting the actor again. With `first_at_once` false the doubling starts at
    the first exit (a group's actor: backoff_min, then twice that, ...)."""
    recent = tuple(t for t in earlier if t >= now - policy.period) + (now,)
    n = len(recent)
    if first_at_once and n == 1:
        return recent, 0.0
    if n > policy.intensity:
        return recent, policy.backoff_max
    doublings = n - 2 if first_at_once else n - 1
    return recent, min(policy.backoff_min * 2 ** doublings, policy.backoff_max)


def policy_of(actors: Any) -> RestartPolicy:
    """The policy config.actors sets (restart_period, _intensity, _backoff_min, _backoff_max)."""
    return RestartPolicy(actors.restart_period, actors.restart_intensity, actors.restart_backoff_min,
                         actors.restart_backoff_max)
