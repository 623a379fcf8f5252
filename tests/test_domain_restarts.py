"""When an actor that exited starts again (domain.restarts)."""

from __future__ import annotations

from domain.restarts import RestartPolicy, restart_delay

POLICY = RestartPolicy(period=60.0, intensity=5, backoff_min=0.1, backoff_max=30.0)


def test_the_first_exit_restarts_at_once_and_later_ones_wait_longer_each_time() -> None:
    exits: tuple[float, ...] = ()
    delays = []
    for now in (100.0, 100.1, 100.3, 100.7, 101.5, 103.1):
        exits, delay = restart_delay(exits, now, POLICY)
        delays.append(delay)
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 30.0]  # the sixth in a minute: backoff_max


def test_exits_older_than_the_period_are_forgotten() -> None:
    exits, _ = restart_delay((10.0, 20.0, 30.0), 75.0, POLICY)
    assert exits == (20.0, 30.0, 75.0)
    assert restart_delay((), 1000.0, POLICY)[1] == 0.0
    assert restart_delay((900.0,), 1000.0, POLICY) == ((1000.0,), 0.0)


def test_a_groups_actor_waits_from_its_first_exit_doubling_up_to_the_intensity() -> None:
    exits: tuple[float, ...] = ()
    delays = []
    for now in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        exits, delay = restart_delay(exits, now, POLICY, first_at_once=False)
        delays.append(delay)
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 30.0]  # the sixth exit is past the intensity of 5
