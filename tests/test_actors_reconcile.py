"""Reconciliation and restarts through the real actors (simpleSystemBase, short timers, fake clock)."""

from __future__ import annotations

import logging

import pytest
from thespian.actors import ActorExitRequest

from actors.messages import Locate, StopSystem, SystemStopped
from tests.harness import ALICE, GROUP, GROUP2, T, ChatBot

FAST = {"reconciliation.interval": "20ms", "reconciliation.checkpoint_interval": "1s"}


def cycles(bot: ChatBot, seconds: float = 0.3) -> None:
    """Let the group actors' timers fire for a while (the clock stays where the test put it)."""
    bot.pump(seconds)


def test_stuck_pending_is_raised_once_and_cleared_when_the_order_moves_on(make_bot) -> None:
    bot = make_bot(**FAST)
    bot.post(GROUP, ALICE, ".10")
    cycles(bot)
    assert bot.report()["issues"] == []
    bot.advance(31 * 60)
    cycles(bot)
    [issue] = bot.report()["issues"]
    assert (issue["order_id"], issue["issues"]) == ("A1", ["stuck_pending"])
    cycles(bot)
    audit = bot.order("A1")["record"]["audit"]
    assert [a["note"] for a in audit].count("issue raised: stuck_pending") == 1
    assert bot.command("A1", "process").status == 200
    assert bot.report()["issues"] == []
    bot.advance(6 * 60)
    cycles(bot)
    [issue] = bot.report()["issues"]
    assert issue["issues"] == ["processing_timeout"]


def test_check_counts_are_kept_in_memory_and_checkpointed(make_bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="diamondbot.group")
    bot = make_bot(**FAST)
    bot.post(GROUP, ALICE, ".10")
    cycles(bot, 1.3)  # the first cycle's checkpoint, written lazily: within a second, on a shared fsync
    first, _, _ = bot.order("A1")["check"]
    assert first >= 1 and bot.report()["buckets"]["never"] == 0  # the panel is not left at "never"
    cycles(bot, 0.6)  # more cycles, nothing new: no write per cycle
    assert bot.order("A1")["check"][0] == first
    bot.advance(2)
    cycles(bot, 1.3)  # the checkpoint interval has passed
    report = bot.report()
    count, last_at, status = bot.order("A1")["check"]
    assert count >= 10 and last_at == bot.clock.now() and status == "pending"
    assert "order A1: check #10" in caplog.text
    assert report["cycles"][GROUP] and report["cycles"][GROUP][-1]["checked"] == 1


def test_a_failed_delivery_is_retried_after_the_backoff(make_bot) -> None:
    bot = make_bot(**FAST)
    bot.post(GROUP, ALICE, ".10")
    bot.fake.fail_next = 1
    assert bot.command("A1", "approve").status == 200
    cycles(bot)
    record = bot.order("A1")["record"]
    assert record["status"] == "approved"
    assert record["delivery"]["attempts"] == 1 and "503" in record["delivery"]["lastError"]
    bot.advance(31)  # delivery.retry_backoff is 30 s
    cycles(bot)
    record = bot.order("A1")["record"]
    assert record["status"] == "completed" and record["delivery"]["attempts"] == 2
    assert bot.replies(GROUP)[-1].startswith("✅")


def test_an_unconfirmed_delivery_is_sent_again_after_the_confirmation_window(make_bot) -> None:
    bot = make_bot(**FAST)
    bot.post(GROUP, ALICE, ".10")
    bot.fake.hold = True  # the transport takes the message and never answers
    assert bot.command("A1", "approve").status == 200
    cycles(bot)
    assert len(bot.fake._held) == 1
    bot.advance(4 * 60)
    cycles(bot)
    assert len(bot.fake._held) == 1  # still waiting inside the 5 min window
    bot.advance(61)
    cycles(bot)
    assert len(bot.fake._held) == 2  # sent again (at-least-once)
    bot.fake.hold = False
    bot.fake.release()
    cycles(bot)
    assert bot.order("A1")["record"]["status"] == "completed"


def test_a_stopped_group_actor_is_restarted_with_its_orders(make_bot) -> None:
    bot = make_bot(**FAST)
    bot.post(GROUP, ALICE, ".10")
    before = bot.locate(GROUP)
    bot.asys.tell(before, ActorExitRequest())
    bot.pump(0.5)  # restart_backoff_min is 100 ms
    after = bot.locate(GROUP)
    assert after is not None and after != before
    actors = bot.status()["groups"]["actors"]
    assert [(a["group_id"], a["incarnation"], a["ready"]) for a in actors] == [(GROUP, 2, True)]
    assert bot.status()["restarts"] == 1
    assert bot.command("A1", "approve").status == 200
    bot.post(GROUP, ALICE, ".20")
    assert {o["id"] for o in bot.orders()} == {"A1", "A2"}


def test_the_dashboard_numbers_come_from_the_checkpoints_and_the_orders(make_bot) -> None:
    bot = make_bot(**FAST)
    bot.post(GROUP, ALICE, ".10")
    bot.post(GROUP, ALICE, ".5")
    assert bot.command("A1", "approve").status == 200
    cycles(bot, 0.6)
    bot.advance(2)
    cycles(bot, 1.3)
    report = bot.report()
    assert report["cycles_today"] >= 10
    assert report["checks_today"] >= report["cycles_today"]  # one open order (A2) per cycle
    assert report["open_orders"] == 1 and report["cycle_time_ms"] is not None
    assert report["cycles_per_hour"] > 0
    hours = report["charts"]["orders_per_hour"]
    assert len(hours) == 24 and hours[-1]["orders"] == 2 and sum(h["orders"] for h in hours) == 2
    assert hours[-1]["hour"].endswith("+06:00")  # bot.timezone
    days = report["charts"]["revenue_per_day"]
    assert len(days) == 14 and days[-1]["amount"] == "1000.00"
    assert report["storage"]["journal_bytes"] > 0 and report["storage"]["orders"] == 2


def test_a_group_restarted_while_its_write_waits_for_the_commit_never_reuses_an_id(make_bot) -> None:
    # Writes wait for a group commit that no timer brings during the test (60 s); the group
    # actor dies and is restarted meanwhile: its successor must still see A1 and A2, or it
    # hands their ids to the next messages and overwrites them.
    bot = make_bot(**{"persistence.commit_delay": "60s"})
    bot.post(GROUP, ALICE, ".5")
    first = bot.message(GROUP, ALICE, ".10")
    bot.fake.deliver([first])
    bot.pump(0.05)  # A1 and A2 taken in, their writes appended, the commit waiting
    bot.asys.tell(bot.locate(GROUP), ActorExitRequest())
    bot.pump(0.02)  # the actor is gone; its restart waits 100 ms
    second = bot.message(GROUP, ALICE, ".20")
    bot.fake.deliver([second])  # held by the Supervisor, handed to the successor first
    bot.pump(0.5)
    clock = bot.clock
    bot.stop()  # the final flush
    again = make_bot(clock=clock)
    orders = {o["id"]: o for o in again.orders()}
    assert set(orders) == {"A1", "A2", "A3"}
    assert orders["A2"]["messageId"] == first.message_id and orders["A2"]["diamonds"] == 10
    assert orders["A3"]["messageId"] == second.message_id


def test_a_receipt_the_last_incarnation_never_sent_goes_out_after_a_restart(make_bot) -> None:
    bot = make_bot(**FAST)
    bot.fake.hold = True  # the receipt is handed over but never sent
    bot.post(GROUP, ALICE, ".10")
    assert bot.fake.sent == [] and bot.order("A1")["record"]["receipt"]["attempts"] == 1
    clock = bot.clock
    bot.stop()
    again = make_bot(clock=clock, **FAST)
    again.pump(0.3)  # the first reconciliation cycles
    assert [t.startswith("📥") for t in again.replies(GROUP)] == [True]
    again.pump(1.2)  # a receipt's confirmation is written lazily, within a second
    assert again.order("A1")["record"]["receipt"]["confirmedAt"]


def test_a_stop_closes_the_journal_once_every_group_confirmed_its_last_checkpoint(
        make_bot, caplog: pytest.LogCaptureFixture) -> None:
    """The confirmations come back batched by the PersistenceActor after its fsync; the
    Supervisor must read them, not wait out its patience and close under late writes."""
    bot = make_bot(**FAST, **{"persistence.commit_delay": "100ms"})  # both checkpoints in one commit
    for group in (GROUP, GROUP2):
        bot.post(group, ALICE, ".10")
    bot.pump(0.2)
    caplog.set_level(logging.WARNING)
    reply = bot.asys.ask(bot.supervisor, StopSystem(), T)
    assert isinstance(reply, SystemStopped)
    assert "did not confirm their last checkpoint" not in caplog.text


def test_a_stop_writes_every_groups_last_checkpoint_through_its_host(make_bot) -> None:
    """Issue 15: the hosts collect their groups' last check counts and write them in one go."""
    bot = make_bot(**FAST)
    for group in (GROUP, GROUP2):
        bot.post(group, ALICE, ".10")
    bot.pump(0.3)  # cycles ran; their counts since the last checkpoint are only in memory
    clock = bot.clock
    stopped = bot.asys.ask(bot.supervisor, StopSystem(), T)
    assert isinstance(stopped, SystemStopped) and stopped.checkpoints_missing == 0
    bot.asys.shutdown()
    again = make_bot(clock=clock, **{"reconciliation.interval": "1h"})
    counts = {o["id"]: again.order(o["id"])["check"][0] for o in again.orders()}
    assert counts["A1"] >= 5 and counts["B1"] >= 5  # more than the first cycle's checkpoint had


def test_a_stop_writes_the_last_checkpoints_a_batch_at_a_time(make_bot, monkeypatch) -> None:
    """A host writes what its groups hand in as it comes (here one group a batch), and says
    how many are on disk."""
    from actors import host

    monkeypatch.setattr(host, "STOP_BATCH", 1)
    bot = make_bot(**FAST, **{"actors.group_hosts": "1"})
    for group in (GROUP, GROUP2):
        bot.post(group, ALICE, ".10")
    bot.pump(0.3)
    clock = bot.clock
    stopped = bot.asys.ask(bot.supervisor, StopSystem(), T)
    assert isinstance(stopped, SystemStopped)
    assert (stopped.checkpoints_saved, stopped.checkpoints_missing) == (2, 0)
    bot.asys.shutdown()
    again = make_bot(clock=clock, **{"reconciliation.interval": "1h"})
    counts = {o["id"]: again.order(o["id"])["check"][0] for o in again.orders()}
    assert counts["A1"] >= 5 and counts["B1"] >= 5


def test_a_group_that_does_not_hand_in_its_checkpoint_does_not_hold_the_stop(make_bot, monkeypatch) -> None:
    """At the host's deadline what came in is written and the silent group is counted missing."""
    from actors import host
    from actors.group import GroupActor

    monkeypatch.setattr(host, "STOP_WAIT", 0.3)
    answer = GroupActor.receiveMsg_StopSystem

    def silent_for_group2(self, msg, sender):  # type: ignore[no-untyped-def]
        if self.group_id != GROUP2:
            answer(self, msg, sender)

    monkeypatch.setattr(GroupActor, "receiveMsg_StopSystem", silent_for_group2)
    bot = make_bot(**FAST, **{"actors.group_hosts": "1"})
    for group in (GROUP, GROUP2):
        bot.post(group, ALICE, ".10")
    bot.pump(0.3)
    stopped = bot.asys.ask(bot.supervisor, StopSystem(), T)
    assert isinstance(stopped, SystemStopped)
    assert (stopped.checkpoints_saved, stopped.checkpoints_missing) == (1, 1)


def test_a_group_host_that_dies_is_started_again_with_its_groups(make_bot) -> None:
    bot = make_bot(**FAST, **{"actors.group_hosts": "2"})
    bot.post(GROUP, ALICE, ".10")
    bot.post(GROUP2, ALICE, ".20")
    status = bot.status()
    assert status["groups"]["hosts"] == 2
    hosts = {a["group_id"]: a["host"] for a in status["groups"]["actors"]}
    assert hosts[GROUP] != hosts[GROUP2]  # spread over the hosts
    host = bot.asys.ask(bot.supervisor, Locate("h", host=hosts[GROUP]), T).data
    before = bot.locate(GROUP)
    bot.asys.tell(host, ActorExitRequest())
    bot.pump(0.5)
    after = bot.locate(GROUP)
    assert after is not None and after != before
    actors = {a["group_id"]: a for a in bot.status()["groups"]["actors"]}
    assert actors[GROUP]["ready"] and actors[GROUP]["incarnation"] == 2  # a new epoch
    assert bot.command("A1", "approve").status == 200  # the new incarnation owns its orders
    bot.post(GROUP, ALICE, ".30")
    assert {o["id"] for o in bot.orders()} == {"A1", "A2", "B1"}
