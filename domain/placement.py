"""Which shard (machine) runs which group, when group hosts run on several machines.

Pure decisions; the Supervisor applies them. A group stays where it was placed (recorded in
the journal as its group setting PLACED_ON) until its shard is lost or an operator moves it:
a member that comes back gets no groups back by itself, so nothing moves twice on a flap.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping

PLACED_ON = "placedOn"  # the group setting that records its shard

# Each placement of a group starts its incarnations at a new multiple of this. A host counts a
# group's restarts up from what it was given, so the incarnations of an old placement (a host on
# a member that was cut off but still runs: an orphan) stay below every one of the new placement,
# and the PersistenceActor, which only lets the newest epoch write, refuses them.
PLACEMENT_STRIDE = 1_000_000


def least_loaded(placed: Mapping[str, str], live: Iterable[str]) -> str:
    """The live shard with the fewest groups (ties: by name). ValueError when none is live."""
    shards = sorted(set(live))
    if not shards:
        raise ValueError("no shard is live")
    load = Counter(shard for shard in placed.values() if shard in shards)
    return min(shards, key=lambda shard: (load[shard], shard))


def rehome(groups: Iterable[str], placed: Mapping[str, str], live: Iterable[str]) -> dict[str, str]:
    """A new shard for each of `groups` (those of a lost shard), spread one at a time onto the
    least loaded live shard: the load counts the ones already rehomed."""
    shards = sorted(set(live))
    now = dict(placed)
    moved: dict[str, str] = {}
    for group in sorted(groups):
        now.pop(group, None)
        shard = least_loaded(now, shards)
        now[group] = moved[group] = shard
    return moved


def next_placement_n(n: int) -> int:
    """The incarnation count a group's new placement starts from (its first epoch is this + 1)."""
    return (n // PLACEMENT_STRIDE + 1) * PLACEMENT_STRIDE
