"""The reconciliation cycle's decisions (domain/reconcile.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from domain.clock import FakeClock
from domain.money import parse_rate
from domain.orders import Action, Delivery, Issue, Order, Status, new_order, transition, with_issue
from domain.reconcile import CheckState, CycleOutcome, Policy, backoff, is_milestone, reconcile, send_due

T0 = 1_764_000_000.0
GROUP = "120363000000000001@g.us"
# Seconds are floats, as config.load_config gives them.
POLICY = Policy(
    pending_stuck_after=30 * 60.0,
    processing_timeout=5 * 60.0,
    delivery_confirm_after=5 * 60.0,
    max_attempts=5,
    retry_backoff=30.0,
    max_backoff=3600.0,
)
SENT = Delivery(attempts=1, last_attempt_at=T0 - 1, message_id="3EBRCPT", confirmed_at=T0 - 1)


def make_order(oid: str = "A1", *, created_at: float = T0, receipt: Delivery = SENT, **changes: Any) -> Order:
    o = new_order(order_id=oid, group_id=GROUP, group_name="Shop", user_id="76210050711676@lid", user_alt="",
                  user_name="Rahim", message_id=f"m-{oid}", text=".10", diamonds=10, rate=parse_rate("100"),
                  created_at=created_at, now=created_at, recovered=False)
    o = replace(o, receipt=receipt, **changes)
    # A status set by hand gets the timestamp the state machine would have given it.
    stamp = {Status.PROCESSING: "processing_at", Status.APPROVED: "approved_at"}.get(o.status)
    if stamp and getattr(o, stamp) is None:
        o = replace(o, **{stamp: created_at})
    return o


def approved(oid: str = "A1", *, at: float = T0, delivery: Delivery = Delivery(), **changes: Any) -> Order:
    o = transition(make_order(oid, created_at=at - 60, **changes), Action.APPROVE, by="admin", now=at)
    return replace(o, delivery=delivery)


def run(orders: list[Order], now: float, checks: dict[str, CheckState] | None = None,
        in_flight: dict[tuple[str, str], float] | None = None, policy: Policy = POLICY) -> CycleOutcome:
    return reconcile(GROUP, orders, {} if checks is None else checks, in_flight or {}, now, policy)


# --- status checks -------------------------------------------------------------------------


@pytest.mark.parametrize(("age", "stuck"), [(0, False), (60, False), (1800, False), (1800.001, True),
                                           (1801, True), (86400, True)])
def test_stuck_pending_after_30_minutes(age: float, stuck: bool) -> None:
    out = run([make_order(created_at=T0)], T0 + age)
    assert [(o.id, i) for o, i in out.raised] == ([("A1", Issue.STUCK_PENDING)] if stuck else [])
    assert len(out.changed) == int(stuck)
    if stuck:
        assert out.changed[0].issues == ("stuck_pending",)
        assert out.changed[0].audit[-1].note == "issue raised: stuck_pending"
        assert out.changed[0].audit[-1].at == T0 + age


def test_stuck_pending_is_measured_from_the_message_time_not_receipt() -> None:
    # A message posted 40 min ago, received (recovered) just now, is stuck by its own time.
    o = replace(make_order(created_at=T0 - 2400), received_at=T0)
    out = run([o], T0)
    assert [i for _, i in out.raised] == [Issue.STUCK_PENDING]


@pytest.mark.parametrize(("age", "late"), [(0, False), (300, False), (300.5, True), (3600, True)])
def test_processing_timeout(age: float, late: bool) -> None:
    o = transition(make_order(created_at=T0 - 10), Action.PROCESS, by="admin", now=T0)
    out = run([o], T0 + age)
    # processing orders are never stuck_pending, however old the message
    assert [i for _, i in out.raised] == ([Issue.PROCESSING_TIMEOUT] if late else [])


def test_issue_raised_once_then_kept_quietly() -> None:
    clock = FakeClock(T0)
    orders = [make_order(created_at=T0 - 3600)]
    checks: dict[str, CheckState] = {}
    first = run(orders, clock.now(), checks)
    assert len(first.raised) == 1 and first.summary.new_issues == 1
    orders = first.changed  # the actor stores the changed order
    for _ in range(5):
        again = run(orders, clock.advance(10), checks)
        assert again.raised == [] and again.changed == []
        assert again.summary.new_issues == 0 and again.summary.open_issues == 1
    assert checks["A1"].count == 6


def test_issue_cleared_when_the_condition_goes() -> None:
    # A processing order carrying a stale stuck_pending and a processing_timeout no longer true
    o = transition(make_order(created_at=T0 - 10), Action.PROCESS, by="admin", now=T0)
    o = replace(o, issues=("stuck_pending", "processing_timeout"))
    out = run([o], T0 + 10)
    assert out.raised == []
    assert out.summary.cleared_issues == 2 and out.summary.open_issues == 0
    (changed,) = out.changed
    assert changed.issues == ()
    assert [a.note for a in changed.audit[-2:]] == ["issue cleared: processing_timeout",
                                                   "issue cleared: stuck_pending"]


def test_delivery_failed_cleared_once_confirmed_but_not_yet_completed() -> None:
    o = approved(delivery=Delivery(attempts=6, last_attempt_at=T0, confirmed_at=T0 + 1, message_id="x"))
    o = with_issue(o, Issue.DELIVERY_FAILED, T0)
    out = run([o], T0 + 2)
    assert out.changed[0].issues == () and out.send_deliveries == []


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "stamp"), [(Status.PROCESSING, "processing_at"),
                                               (Status.APPROVED, "approved_at")])
def test_a_status_without_its_timestamp_is_invalid(status: Status, stamp: str) -> None:
    o = replace(make_order(status=status), **{stamp: None})
    out = run([o], T0 + 1)
    assert [i for _, i in out.raised] == [Issue.INVALID]
    assert f"{status.value} without {stamp}" in out.changed[0].audit[-1].note
    assert out.send_deliveries == [] and out.send_receipts == []


def test_approved_with_a_confirmed_delivery_is_completed() -> None:
    o = approved(delivery=Delivery(attempts=1, last_attempt_at=T0, confirmed_at=T0 + 1, message_id="x"))
    out = run([o], T0 + 2)
    (changed,) = out.changed
    assert changed.status is Status.COMPLETED and changed.completed_at == T0 + 2
    assert (changed.audit[-1].from_status, changed.audit[-1].by) == (Status.APPROVED, "system")
    assert out.send_deliveries == []


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING, Status.APPROVED])
def test_invalid_orders_are_flagged_and_never_sent(status: Status) -> None:
    o = make_order(user_id="", status=status, receipt=Delivery())  # receipt never sent
    out = run([o], T0 + 1)
    assert [i for _, i in out.raised] == [Issue.INVALID]
    assert out.send_receipts == [] and out.send_deliveries == []
    assert "issue raised: invalid (userId missing)" == out.changed[0].audit[-1].note
    # next cycle: still invalid, still silent, not raised again
    out2 = run(out.changed, T0 + 11)
    assert out2.raised == [] and out2.send_receipts == [] and out2.send_deliveries == []


def test_load_problems_make_an_order_invalid() -> None:
    o = make_order(problems=("rate not a positive decimal",))
    out = run([o], T0)
    assert out.raised[0][1] is Issue.INVALID
    assert out.changed[0].audit[-1].note == "issue raised: invalid (rate not a positive decimal)"


def test_invalid_cleared_when_fixed_and_then_sent() -> None:
    o = make_order(receipt=Delivery(), issues=("invalid",))
    out = run([o], T0)
    assert out.summary.cleared_issues == 1 and out.changed[0].issues == ()
    assert [r.id for r in out.send_receipts] == ["A1"]


def test_invalid_and_stuck_are_both_raised() -> None:
    o = make_order(created_at=T0 - 7200, diamonds=0)
    out = run([o], T0)
    assert sorted(i.value for _, i in out.raised) == ["invalid", "stuck_pending"]
    assert out.summary.new_issues == 2 and out.summary.open_issues == 2


# --- archived orders and the check log -----------------------------------------------------


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.CANCELLED, Status.DELETED])
def test_archived_orders_are_skipped(status: Status) -> None:
    o = make_order(created_at=T0 - 86400, user_id="", status=status, receipt=Delivery())
    checks: dict[str, CheckState] = {}
    out = run([o], T0, checks)
    assert checks == {}
    assert out.summary.checked == 0 and out.changed == [] and out.raised == []
    assert out.send_receipts == [] and out.send_deliveries == [] and out.milestones == []


def test_check_counts_are_updated_in_place() -> None:
    clock = FakeClock(T0)
    checks = {"A1": CheckState(count=41, last_at=T0 - 10, last_status="pending")}
    entry = checks["A1"]
    orders = [approved("A1", delivery=SENT), make_order("A2")]
    run(orders, clock.advance(10), checks)
    assert checks["A1"] is entry
    assert (entry.count, entry.last_at, entry.last_status) == (42, T0 + 10, "approved")
    assert (checks["A2"].count, checks["A2"].last_at, checks["A2"].last_status) == (1, T0 + 10, "pending")


def _expected_milestone(n: int) -> bool:
    digits = str(n)
    return n in (10, 20) or (n >= 100 and digits == "1" + "0" * (len(digits) - 1))


def test_is_milestone_table() -> None:
    for n in (10, 20, 100, 1000, 10_000, 100_000, 10**9):
        assert is_milestone(n), n
    for n in (1, 2, 9, 11, 19, 21, 30, 40, 50, 90, 99, 101, 110, 200, 300, 500, 1100, 2000, 10_010, 20_000):
        assert not is_milestone(n), n
    for n in range(1, 200_001):
        assert is_milestone(n) is _expected_milestone(n), n


def test_milestones_come_exactly_at_10_20_100_1000_10000() -> None:
    clock = FakeClock(T0)
    orders = [make_order("A1"), make_order("A2")]
    checks: dict[str, CheckState] = {"A2": CheckState(count=15)}  # A2 was checked before (restored)
    seen: list[tuple[str, int]] = []
    for _ in range(10_000):
        seen += run(orders, clock.advance(10), checks).milestones
    assert [c for oid, c in seen if oid == "A1"] == [10, 20, 100, 1000, 10_000]
    assert [c for oid, c in seen if oid == "A2"] == [20, 100, 1000, 10_000]
    assert checks["A1"].count == 10_000 and checks["A2"].count == 10_015


# --- sending -------------------------------------------------------------------------------


def test_backoff_is_quick_at_first_then_doubles_and_is_capped() -> None:
    # Most send failures are a dropped connection: the first three retries come within 22 s
    # (issue 10: three failures used to delay a delivery by 3.5 minutes).
    expected = {0: 30, 1: 2, 2: 5, 3: 15, 4: 30, 5: 60, 6: 120, 7: 240, 8: 480, 9: 960, 10: 1920, 11: 3600,
                50: 3600, 5000: 3600, 10**6: 3600}
    for attempts, delay in expected.items():
        assert backoff(attempts, POLICY) == delay, attempts
    # after weeks of failures (one retry an hour) the exponent passes 1024: no OverflowError
    assert backoff(2000, POLICY) == 3600.0
    small_cap = replace(POLICY, retry_backoff=1.5, max_backoff=10)
    assert [backoff(n, small_cap) for n in range(1, 9)] == [1.5, 1.5, 1.5, 1.5, 3, 6, 10, 10]


def test_long_failing_delivery_keeps_reconciling() -> None:
    d = Delivery(attempts=3000, last_attempt_at=T0, last_error="banned")
    out = run([approved(at=T0, delivery=d, issues=())], T0 + 3600)
    assert [x.id for x in out.send_deliveries] == ["A1"]


def test_approved_never_attempted_is_sent_at_once() -> None:
    out = run([approved(at=T0)], T0)
    assert [o.id for o in out.send_deliveries] == ["A1"]
    assert out.send_receipts == []
    assert out.summary.actions == 1


def test_approved_in_flight_not_resent_until_confirm_window() -> None:
    o = approved(at=T0, delivery=Delivery(attempts=1, last_attempt_at=T0))
    in_flight = {("A1", "delivery"): T0}
    for now, due in ((T0 + 1, False), (T0 + 299, False), (T0 + 300, True), (T0 + 1000, True)):
        out = run([o], now, in_flight=in_flight)
        assert bool(out.send_deliveries) is due, now
    # a receipt in flight for another order does not matter
    out = run([o], T0 + 1, in_flight={("A1", "receipt"): T0})
    assert out.send_deliveries == []  # attempted without outcome: confirm window from last attempt


def test_attempt_without_outcome_after_restart_waits_the_confirm_window() -> None:
    o = approved(at=T0, delivery=Delivery(attempts=1, last_attempt_at=T0))
    assert run([o], T0 + 299).send_deliveries == []
    assert [x.id for x in run([o], T0 + 300).send_deliveries] == ["A1"]


@pytest.mark.parametrize(("attempts", "delay"), [(1, 2), (2, 5), (3, 15), (4, 30), (7, 240), (12, 3600)])
def test_failed_delivery_retried_after_backoff(attempts: int, delay: float) -> None:
    o = approved(at=T0, delivery=Delivery(attempts=attempts, last_attempt_at=T0 + 5, last_error="timeout"))
    assert run([o], T0 + 5 + delay - 0.01).send_deliveries == []
    assert [x.id for x in run([o], T0 + 5 + delay).send_deliveries] == ["A1"]


@pytest.mark.parametrize(("attempts", "failed"), [(0, False), (1, False), (4, False), (5, True), (9, True)])
def test_delivery_failed_after_max_attempts_while_still_retrying(attempts: int, failed: bool) -> None:
    d = Delivery(attempts=attempts, last_attempt_at=T0 if attempts else None,
                 last_error="boom" if attempts else "")
    out = run([approved(at=T0, delivery=d)], T0 + 7200)
    assert ([i for _, i in out.raised] == [Issue.DELIVERY_FAILED]) is failed
    assert [x.id for x in out.send_deliveries] == ["A1"]  # at-least-once: never given up


def test_confirmed_delivery_is_not_resent() -> None:
    o = approved(at=T0, delivery=Delivery(attempts=1, last_attempt_at=T0, message_id="m", confirmed_at=T0))
    out = run([o], T0 + 86400)
    assert out.send_deliveries == [] and out.raised == []


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING])
def test_receipts_sent_when_never_attempted(status: Status) -> None:
    o = make_order(receipt=Delivery(), status=status, processing_at=T0 if status is Status.PROCESSING else None)
    out = run([o], T0)
    assert [x.id for x in out.send_receipts] == ["A1"] and out.send_deliveries == []


def test_receipts_retried_up_to_max_attempts_only() -> None:
    for attempts, due in ((1, True), (4, True), (5, False), (6, False)):
        r = Delivery(attempts=attempts, last_attempt_at=T0, last_error="boom")
        out = run([make_order(receipt=r)], T0 + 4000, policy=replace(POLICY, pending_stuck_after=10**9))
        assert bool(out.send_receipts) is due, attempts
        assert out.raised == []  # a failed receipt is no issue of its own


def test_receipt_in_flight_respects_confirm_window() -> None:
    o = make_order(receipt=Delivery(attempts=1, last_attempt_at=T0))
    assert run([o], T0 + 10, in_flight={("A1", "receipt"): T0}).send_receipts == []
    assert run([o], T0 + 300, in_flight={("A1", "receipt"): T0}).send_receipts != []


def test_approved_order_receipt_is_not_sent() -> None:
    # once approved, the delivery message replaces the receipt
    o = approved(at=T0, receipt=Delivery(), delivery=SENT)
    out = run([o], T0)
    assert out.send_receipts == [] and out.send_deliveries == []


@pytest.mark.parametrize(
    ("attempts", "last_at", "error", "sent_at", "now", "due"),
    [
        (0, None, "", None, T0, True),
        (1, None, "", None, T0, True),
        (1, T0, "", T0, T0 + 299, False),
        (1, T0, "", T0, T0 + 300, True),
        (1, T0, "x", T0 + 100, T0 + 300, False),  # in flight wins over the failure's backoff
        (1, T0, "x", None, T0 + 1.9, False),
        (1, T0, "x", None, T0 + 2, True),
        (2, T0, "x", None, T0 + 4.9, False),
        (2, T0, "x", None, T0 + 5, True),
        (5, T0, "x", None, T0 + 59, False),
        (5, T0, "x", None, T0 + 60, True),
        (1, T0, "", None, T0 + 299, False),
        (1, T0, "", None, T0 + 300, True),
    ],
)
def test_send_due_table(attempts: int, last_at: float | None, error: str, sent_at: float | None, now: float,
                        due: bool) -> None:
    assert send_due(attempts, last_at, error, sent_at, now, POLICY) is due


# --- summary -------------------------------------------------------------------------------


def test_summary_counts() -> None:
    now = T0 + 3600
    orders = [
        make_order("A1", created_at=now - 10),  # fine
        make_order("A2", created_at=now - 3600),  # new stuck_pending
        make_order("A3", created_at=now - 3600, issues=("stuck_pending",)),  # already known
        make_order("A4", created_at=now - 10, receipt=Delivery()),  # receipt to send
        approved("A5", at=now - 10),  # delivery to send
        make_order("A6", created_at=now - 10, issues=("processing_timeout",)),  # stale: cleared
        make_order("A7", status=Status.COMPLETED),  # archived
        make_order("A8", user_id=""),  # invalid (and stuck) => 2 new
    ]
    out = run(orders, now)
    s = out.summary
    assert (s.group_id, s.started_at) == (GROUP, now)
    assert s.checked == 7
    assert s.new_issues == 3
    assert s.cleared_issues == 1
    assert s.open_issues == 4  # A2, A3, A8 ×2
    assert [o.id for o in out.send_receipts] == ["A4"]
    assert [o.id for o in out.send_deliveries] == ["A5"]
    assert sorted(o.id for o in out.changed) == ["A2", "A6", "A8"]
    assert s.actions == 2 + 3


def test_empty_group() -> None:
    out = run([], T0)
    assert out.summary.checked == 0 and out.summary.actions == 0 and out.changed == []


# --- performance guard ---------------------------------------------------------------------


def test_reconciling_100k_open_orders_is_fast() -> None:
    base = make_order("A1", created_at=T0)
    orders = [replace(base, id=f"A{i}") for i in range(100_000)]
    for i in range(0, 100_000, 4):  # a quarter approved and delivered in flight, with stamps
        orders[i] = replace(orders[i], status=Status.APPROVED, approved_at=T0,
                            delivery=Delivery(attempts=1, last_attempt_at=T0))
    in_flight = {(o.id, "delivery"): T0 for o in orders if o.status is Status.APPROVED}
    checks: dict[str, CheckState] = {}
    timings = []
    for cycle in range(2):
        started = time.perf_counter()
        out = reconcile(GROUP, orders, checks, in_flight, T0 + 10 * (cycle + 1), POLICY)
        timings.append(time.perf_counter() - started)
        assert out.summary.checked == 100_000 and out.changed == [] and out.send_deliveries == []
    print(f"\nreconcile 100,000 open orders: first cycle {timings[0]:.3f}s, next {timings[1]:.3f}s")
    assert len(checks) == 100_000 and checks["A7"].count == 2
    assert max(timings) < 2.0


def test_a_receipt_interrupted_by_a_restart_is_sent_again_at_once() -> None:
    attempted = Delivery(attempts=1, last_attempt_at=T0)
    o = make_order(receipt=attempted)
    assert run([o], T0 + 10).send_receipts == []  # an earlier attempt may still be on its way
    restarted = replace(o, receipt=attempted.interrupted())
    assert run([restarted], T0 + 10).send_receipts == [restarted]
    confirmed = Delivery(attempts=1, last_attempt_at=T0, confirmed_at=T0, message_id="x")
    assert confirmed.interrupted() is confirmed and Delivery().interrupted() == Delivery()
