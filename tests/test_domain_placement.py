"""Placement of groups on shards (domain.placement)."""

import pytest

from domain.placement import PLACEMENT_STRIDE, least_loaded, next_placement_n, rehome


def test_a_new_group_goes_to_the_least_loaded_live_shard() -> None:
    placed = {"g1": "leader", "g2": "leader", "g3": "b", "g4": "c", "g5": "c"}
    assert least_loaded(placed, ["leader", "b", "c"]) == "b"
    assert least_loaded(placed, ["leader", "c"]) == "c"  # ties: by name
    assert least_loaded({}, ["b", "a"]) == "a"
    with pytest.raises(ValueError):
        least_loaded(placed, [])


def test_a_lost_shards_groups_spread_over_the_live_ones() -> None:
    placed = {"g1": "leader", "g2": "b", "g3": "b", "g4": "b", "g5": "c", "g6": "c"}
    moved = rehome(["g2", "g3", "g4"], placed, ["leader", "c"])
    assert set(moved) == {"g2", "g3", "g4"}
    assert "b" not in moved.values()
    after = {**placed, **moved}
    counts = sorted(list(after.values()).count(s) for s in ("leader", "c"))
    assert counts == [3, 3]


def test_a_new_placement_outnumbers_every_incarnation_of_the_old() -> None:
    assert next_placement_n(0) == PLACEMENT_STRIDE
    assert next_placement_n(7) == PLACEMENT_STRIDE
    assert next_placement_n(PLACEMENT_STRIDE + 3) == 2 * PLACEMENT_STRIDE
    # An orphan of the old placement restarting its group 999,998 more times stays below.
    assert 0 + PLACEMENT_STRIDE - 1 < next_placement_n(0) + 1
