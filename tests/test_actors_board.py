"""The cycle board (actors/board.py) and the live figures the panel derives from it: at most one
cycle old, with no message and no disk write per cycle (issue 10)."""

from __future__ import annotations

from actors import board
from actors.board import RING, Board
from actors.messages import GetReport
from domain.reconcile import CycleSummary, DayTally, live_check
from tests.harness import ALICE, GROUP, ChatBot


def cycle(at: float, checked: int = 1) -> CycleSummary:
    return CycleSummary(GROUP, at, checked=checked, open_issues=2, new_issues=1, cleared_issues=0, actions=3,
                        duration=0.004)


def test_a_slot_keeps_the_recent_cycles_and_the_days_tally() -> None:
    b = Board(8)
    assert b.read(3, GROUP) is None  # nothing written yet
    for n in range(RING + 5):
        b.record(3, cycle(1000.0 + n), DayTally("2026-12-07", checks=n + 1, cycles=n + 1))
    live = b.read(3, GROUP)
    assert live is not None and len(live.cycles) == RING  # the oldest five fell off the ring
    assert [c.started_at for c in live.cycles[:2]] == [1005.0, 1006.0] and live.cycles[-1].started_at == 1000.0 + RING + 4
    last = live.cycles[-1]
    assert (last.checked, last.open_issues, last.new_issues, last.actions) == (1, 2, 1, 3)
    assert live.tally == DayTally("2026-12-07", RING + 5, RING + 5)
    assert b.read(4, GROUP) is None and b.read(99, GROUP) is None  # another slot; out of range
    b.reset(3)  # a new incarnation counts from nothing
    assert b.read(3, GROUP) is None


def test_each_record_carries_its_own_day() -> None:
    """The day's number is kept from one cycle to the next (nearly always the same day), never
    carried over to another."""
    b = Board(4)
    b.record(1, cycle(1.0), DayTally("2026-12-07", 5, 5))
    b.record(1, cycle(2.0), DayTally("2026-12-08", 1, 1))  # midnight passed
    b.record(2, cycle(3.0), DayTally("2026-12-07", 9, 9))  # a slot still on the day before
    b.record(3, cycle(4.0), DayTally("", 0, 1))  # no day yet
    assert b.read(1, GROUP).tally == DayTally("2026-12-08", 1, 1)
    assert b.read(2, GROUP).tally == DayTally("2026-12-07", 9, 9)
    assert b.read(3, GROUP).tally == DayTally("", 0, 1)
    assert len(b.read(1, GROUP).cycles) == 2


def test_the_board_is_shared_with_forked_processes() -> None:
    import os
    b = Board(4)
    pid = os.fork()
    if pid == 0:  # the child writes, as a GroupActor's process does
        b.record(1, cycle(42.0), DayTally("2026-12-07", 1, 1))
        os._exit(0)
    os.waitpid(pid, 0)
    live = b.read(1, GROUP)
    assert live is not None and live.cycles[-1].started_at == 42.0


def test_live_check_counts_the_cycles_since_the_checkpoint_while_the_order_was_open() -> None:
    times = [100.0, 110.0, 120.0, 130.0]
    assert live_check([5, 110.0, "pending"], 50.0, None, "pending", times) == [7, 130.0, "pending"]
    assert live_check(None, 105.0, None, "pending", times) == [3, 130.0, "pending"]  # since it arrived
    assert live_check(None, 100.0, None, "pending", times) == [4, 130.0, "pending"]
    assert live_check([1, 100.0, "pending"], 95.0, 125.0, "approved", times) == [3, 120.0, "approved"]  # closed
    assert live_check([4, 130.0, "pending"], 95.0, None, "pending", times) == [4, 130.0, "pending"]  # up to date
    assert live_check(None, 200.0, None, "pending", times) is None  # not checked yet


def test_the_panel_sees_every_cycle_without_a_checkpoint(make_bot) -> None:
    bot: ChatBot = make_bot(**{"reconciliation.interval": "20ms", "reconciliation.checkpoint_interval": "1h"})
    bot.post(GROUP, ALICE, ".10")
    bot.pump(0.15)  # the first cycle's checkpoint has been written by now
    written = bot.report()["storage"]["records_written"]
    first = bot.order("A1")["check"][0]
    bot.pump(0.4)  # many more cycles: no write, yet the panel sees them
    count, last_at, status = bot.order("A1")["check"]
    report = bot.query(GetReport("r")).data  # read after the order: cycles go on meanwhile
    assert report["storage"]["records_written"] == written
    assert count >= first + 5 and last_at == bot.clock.now() and status == "pending"
    assert report["cycles_today"] >= count and report["checks_today"] >= count
    assert report["cycles"][GROUP][-1]["checked"] == 1 and report["buckets"]["gte10"] + report["buckets"]["lt10"] == 1
    assert board.inherited() is not None


def test_an_archived_order_stops_counting(make_bot) -> None:
    bot: ChatBot = make_bot(**{"reconciliation.interval": "20ms", "reconciliation.checkpoint_interval": "1h"})
    bot.post(GROUP, ALICE, ".10")
    bot.pump(0.2)
    assert bot.command("A1", "approve").status == 200
    bot.advance(1)  # later cycles come after the order was completed
    at_close = bot.order("A1")["check"][0]
    bot.pump(0.3)
    assert bot.order("A1")["check"][0] == at_close
