"""Reconciliation on a group's desk with no actors (domain/desk.py): issues raised once and
cleared, check counts in memory and checkpointed rarely, deliveries retried — quickly at first."""

from __future__ import annotations

import logging
import random

import pytest

from domain.desk_events import About
from domain.records import ChecksRecord, OrderRecord
from tests.desk import ADMIN_PHONE, ALICE, DeskChat, desk_config


def shop(**config: str) -> DeskChat:
    return DeskChat(admins=[ADMIN_PHONE], config=desk_config(**config))


def checkpoints(desk: DeskChat) -> list[ChecksRecord]:
    return [r for d in desk.decisions for r in d.records if isinstance(r, ChecksRecord)]


def test_stuck_pending_is_raised_once_and_cleared_when_the_order_moves_on() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    desk.cycle()
    assert desk.order("A1").issues == ()
    desk.advance(31 * 60)
    raised = desk.cycle()
    assert desk.order("A1").issues == ("stuck_pending",)
    assert any(isinstance(r, OrderRecord) for r in raised.records) and raised.sync
    desk.cycle()
    notes = [a.note for a in desk.order("A1").audit]
    assert notes.count("issue raised: stuck_pending") == 1
    assert desk.command("A1", "process").status == 200 and desk.order("A1").issues == ()
    desk.advance(6 * 60)
    desk.cycle()
    assert desk.order("A1").issues == ("processing_timeout",)


def test_check_counts_live_in_memory_and_are_checkpointed_rarely(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="diamondbot.group")
    desk = shop(**{"reconciliation.checkpoint_interval": "60s"})
    desk.post(ALICE, ".10")
    first = desk.cycle()
    [checkpoint] = [r for r in first.records if isinstance(r, ChecksRecord)]
    assert checkpoint.counts == {"A1": [1, desk.clock.now(), "pending"]} and not first.sync  # rides on an fsync
    for _ in range(8):  # nothing new: no write per cycle
        desk.advance(5)
        assert desk.cycle().records == []
    desk.advance(25)  # the checkpoint interval has passed
    later = desk.cycle()
    [checkpoint] = [r for r in later.records if isinstance(r, ChecksRecord)]
    assert checkpoint.counts["A1"][0] == 10 and checkpoint.cycles[-1]["checked"] == 1
    assert checkpoint.stats["cycles"] == 10 and checkpoint.stats["checks"] == 10
    assert "order A1: check #10" in caplog.text
    assert later.cycle is not None and later.cycle.checked == 1


def test_a_failed_delivery_is_retried_within_seconds_and_shows_why() -> None:
    # Issue 10: three transient failures delayed a delivery ~4 minutes and nothing showed.
    desk = shop()
    desk.post(ALICE, ".10")
    desk.fail_sends = 2
    assert desk.command("A1", "approve").status == 200
    order = desk.order("A1")
    assert order.status.value == "approved" and order.delivery.attempts == 1
    assert order.issues == ("delivery_retrying",)
    assert order.audit[-1].note == "issue raised: delivery_retrying (503 unavailable)"
    failed = desk.decisions[-1]  # the send's outcome: written at once, and a retry asked for in 2 s
    assert failed.retry_in == 2 and failed.sync
    desk.advance(1.9)
    assert desk.retry().sends == []  # not yet
    desk.advance(0.1)
    retried = desk.retry()  # fails again: next in 5 s
    assert [s.key.about for s in retried.sends] == [About.DELIVERY] and desk.decisions[-1].retry_in == 5
    desk.advance(5)
    desk.retry()
    order = desk.order("A1")
    assert order.status.value == "completed" and order.delivery.attempts == 3 and order.issues == ()
    assert desk.last_reply.startswith("✅")


def test_after_max_attempts_the_issue_is_delivery_failed_and_retries_go_on() -> None:
    desk = shop(**{"delivery.max_attempts": "3"})
    desk.post(ALICE, ".10")
    desk.fail_sends = 10
    desk.command("A1", "approve")
    for wait in (2, 5, 15):
        desk.advance(wait)
        desk.retry()
    desk.cycle()
    assert desk.order("A1").issues == ("delivery_failed",) and desk.order("A1").delivery.attempts == 4
    desk.advance(30)
    assert [s.key.about for s in desk.cycle().sends] == [About.DELIVERY]  # at-least-once: never given up


def test_an_unconfirmed_delivery_is_sent_again_after_the_confirmation_window() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    desk.hold_sends = True  # the transport takes the message and never answers
    desk.command("A1", "approve")
    assert len(desk.held) == 1
    desk.advance(4 * 60)
    assert desk.cycle().sends == []  # still waiting inside the 5 min window
    desk.advance(61)
    assert [s.key.about for s in desk.cycle().sends] == [About.DELIVERY]  # at-least-once
    desk.hold_sends = False
    desk.confirm()
    assert desk.status("A1") == "completed"


def test_a_receipt_the_last_incarnation_never_sent_goes_out_after_a_restart() -> None:
    desk = shop()
    desk.hold_sends = True
    desk.post(ALICE, ".10")
    assert desk.stored("A1")["receipt"]["attempts"] == 1 and desk.replies == []
    desk.held.clear()  # died with the process
    desk.hold_sends = False
    desk.restarted()
    desk.cycle()
    assert [r.startswith("📥") for r in desk.replies] == [True]
    assert desk.order("A1").receipt.confirmed


def test_stopping_writes_the_last_checkpoint_then_nothing_more() -> None:
    desk = shop()
    desk.post(ALICE, ".10")
    desk.cycle()
    last = desk.stop()
    assert [type(r) for r in last.records] == [ChecksRecord]
    assert desk.post(ALICE, ".20") and desk.decisions[-1].empty
    refused = desk.command("A1", "approve")
    assert refused.status == 503 and desk.status("A1") == "pending"


def test_a_desk_that_checks_only_what_can_change_decides_as_one_that_checks_everything() -> None:
    """Issue 15: cycles look at changed orders and at those whose moment came. Two desks fed the
    same random day — one checking every open order every cycle, one trusting its Watch alone —
    say the same things, write the same orders and count the same checks."""
    rng = random.Random(1500)
    everything, indexed = shop(), shop()
    everything.desk.watch.sweep = 0.0
    indexed.desk.watch.sweep = 1e12
    posted = 0
    for step in range(600):
        roll = rng.random()
        for chat in (everything, indexed):
            chat.fail_sends = fail if (fail := step % 7 == 0) else 0
            chat.hold_sends = step % 11 < 3
        if roll < 0.25:
            posted += 1
            text = f".{rng.randint(1, 99)}"
            for chat in (everything, indexed):
                chat.post(ALICE, text, message_id=f"m{posted}")
        elif roll < 0.40 and posted:
            order_id, action = f"A{rng.randint(1, posted)}", rng.choice(["approve", "process", "cancel", "done"])
            assert everything.command(order_id, action).status == indexed.command(order_id, action).status
        elif roll < 0.50:
            for chat in (everything, indexed):
                chat.confirm()
        elif roll < 0.55:
            for chat in (everything, indexed):
                chat.retry()
        else:
            seconds = rng.choice([1, 5, 10, 10, 10, 60, 300, 900])
            for chat in (everything, indexed):
                chat.advance(seconds)
                chat.cycle()
        assert [s.text for s in everything.sent] == [s.text for s in indexed.sent], step
        assert everything.desk.book.orders == indexed.desk.book.orders, step
        assert everything.desk.watch.checks() == indexed.desk.watch.checks(), step
    statuses = {o.status.value for o in indexed.desk.book.orders.values()}
    issues = {i for o in indexed.desk.book.orders.values() for i in o.issues}
    assert len(statuses) >= 4 and issues  # the day went through most of what a cycle decides


@pytest.mark.parametrize("zone", ["Asia/Dhaka", "UTC", "America/Sao_Paulo", "America/Santiago", "Europe/London",
                                  "Asia/Kolkata"])
def test_the_cycles_local_day_changes_exactly_at_local_midnight(zone: str) -> None:
    """The day a cycle counts in is worked out once a day (kept with its bounds), and is the day
    the clock on the wall says, across midnights and DST changes (São Paulo's clocks jumped at
    midnight on 2018-11-04; Santiago's fell back at midnight on 2019-04-07)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    desk = shop(**{"bot.timezone": zone}).desk
    tz = ZoneInfo(zone)
    rng = random.Random(7)
    for start in (datetime(2018, 11, 2, tzinfo=tz), datetime(2019, 4, 5, tzinfo=tz), datetime(2026, 3, 27, tzinfo=tz),
                  datetime(2026, 10, 23, tzinfo=tz)):
        now = start.timestamp()
        for _ in range(600):  # four days in steps of 0 to 20 minutes, cycle by cycle
            now += rng.uniform(0, 1200)
            assert desk._local_day(now) == datetime.fromtimestamp(now, tz).date().isoformat(), (zone, now)
        begin, end, day = desk._day_span
        assert day == datetime.fromtimestamp(begin, tz).date().isoformat()
        assert datetime.fromtimestamp(begin - 0.001, tz).date().isoformat() < day
        assert datetime.fromtimestamp(end - 0.001, tz).date().isoformat() == day
        assert datetime.fromtimestamp(end, tz).date().isoformat() > day


def test_the_day_tally_starts_again_at_local_midnight() -> None:
    desk = shop(**{"bot.timezone": "Asia/Dhaka"})  # UTC+6
    desk.post(ALICE, ".10")
    from datetime import datetime
    from zoneinfo import ZoneInfo

    midnight = datetime(2026, 12, 8, tzinfo=ZoneInfo("Asia/Dhaka")).timestamp()
    desk.advance(midnight - 25 - desk.clock.now())
    for _ in range(3):
        desk.cycle()
        desk.advance(10)
    assert (desk.desk.today.day, desk.desk.today.cycles) == ("2026-12-07", 3)  # 23:59:35 … 23:59:55
    desk.cycle()  # 00:00:05
    assert (desk.desk.today.day, desk.desk.today.cycles, desk.desk.today.checks) == ("2026-12-08", 1, 1)
