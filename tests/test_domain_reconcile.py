"""The reconciliation cycle's decisions (domain/reconcile.py)."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Any

import pytest

from domain.clock import FakeClock
from domain.money import parse_rate
from domain.orders import Action, Delivery, Issue, Order, Status, new_order, transition, with_issue
from domain.reconcile import (
    CycleOutcome,
    Policy,
    Watch,
    backoff,
    check_order,
    is_milestone,
    next_due,
    next_milestone,
    reconcile,
    send_due,
)

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


def run(orders: list[Order], now: float, in_flight: dict[tuple[str, str], float] | None = None,
        policy: Policy = POLICY) -> CycleOutcome:
    return reconcile(GROUP, orders, in_flight or {}, now, policy)


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
    first = run(orders, clock.now())
    assert len(first.raised) == 1 and first.summary.new_issues == 1
    orders = first.changed  # the actor stores the changed order
    for _ in range(5):
        again = run(orders, clock.advance(10))
        assert again.raised == [] and again.changed == []
        assert again.summary.new_issues == 0 and again.summary.open_issues == 1


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
    out = run([o], T0)
    assert out.summary.checked == 0 and out.changed == [] and out.raised == []
    assert out.send_receipts == [] and out.send_deliveries == []
    assert next_due(o, {}, T0, POLICY) is None


class Book:
    """The three things a Watch reads of a GroupBook."""

    def __init__(self, orders: list[Order]) -> None:
        self.orders = {o.id: o for o in orders}
        self.changed = set(self.orders)
        self.open_ids = {o.id for o in orders if not o.status.archived}

    def put(self, order: Order) -> None:
        self.orders[order.id] = order
        self.changed.add(order.id)
        if order.status.archived:
            self.open_ids.discard(order.id)
        else:
            self.open_ids.add(order.id)

    def cycle(self, watch: Watch, now: float, in_flight: dict | None = None) -> tuple[list[str], list]:
        due, milestones = watch.begin(self.orders, self.changed, self.open_ids, now)
        watch.end(due, self.orders, in_flight or {}, now)
        return [o.id for o in due], milestones


def test_check_counts_come_from_the_cycle_counter() -> None:
    watch = Watch(POLICY)
    watch.restore("A1", 41, T0 - 10, "pending")
    book = Book([approved("A1", delivery=SENT), make_order("A2")])
    assert watch.check("A1") == [41, T0 - 10, "pending"] and watch.check("A2") is None
    book.cycle(watch, T0 + 10)
    assert watch.check("A1") == [42, T0 + 10, "approved"]
    assert watch.check("A2") == [1, T0 + 10, "pending"]
    for n in range(1, 4):
        book.cycle(watch, T0 + 10 + 10 * n)
    assert watch.check("A1") == [45, T0 + 40, "approved"]
    # A2 is completed between cycles: its count stops, with the status its last check saw.
    book.put(transition(transition(book.orders["A2"], Action.APPROVE, by="admin", now=T0 + 41),
                        Action.COMPLETE, by="system", now=T0 + 42))
    assert watch.check("A2") == [4, T0 + 40, "pending"]
    for n in range(5):
        book.cycle(watch, T0 + 50 + 10 * n)
    assert watch.check("A2") == [4, T0 + 40, "pending"]
    assert watch.check("A1") == [50, T0 + 90, "approved"]
    assert watch.checks() == {"A1": [50, T0 + 90, "approved"], "A2": [4, T0 + 40, "pending"]}


def test_a_cycle_looks_only_at_changed_orders_and_those_whose_moment_came() -> None:
    orders = [make_order(f"A{i}", created_at=T0 + i) for i in range(1, 1001)]
    watch = Watch(POLICY, sweep=1e9)
    book = Book(orders)
    due, _ = book.cycle(watch, T0 + 1000)
    assert len(due) == 1000  # the first cycle: everything (they were all put)
    due, _ = book.cycle(watch, T0 + 1010)
    assert due == []  # nothing changed, nothing is due for half an hour
    book.put(transition(book.orders["A7"], Action.PROCESS, by="admin", now=T0 + 1015))
    assert book.cycle(watch, T0 + 1020)[0] == ["A7"]
    # A7 times out 5 minutes after it was taken (looked at on the dot, when it is not yet late,
    # and again after); A1…A3 become stuck 30 minutes after they came.
    assert book.cycle(watch, T0 + 1015 + 299)[0] == []
    assert book.cycle(watch, T0 + 1015 + 300)[0] == ["A7"]
    assert book.cycle(watch, T0 + 1015 + 300.5)[0] == ["A7"]
    assert book.cycle(watch, T0 + 1015 + 310)[0] == []
    assert book.cycle(watch, T0 + 1803.5)[0] == ["A1", "A2", "A3"]
    assert watch.check("A500") == [8, T0 + 1803.5, "pending"]  # every cycle counted it


def test_a_sweep_looks_at_every_open_order_now_and_then() -> None:
    watch = Watch(POLICY, sweep=600)
    book = Book([make_order(f"A{i}") for i in range(1, 4)])
    looked = [len(book.cycle(watch, T0 + 10 * n)[0]) for n in range(0, 121)]
    assert looked.count(3) == 3 and looked[0] == looked[60] == looked[120] == 3
    assert sum(looked) == 9


def test_next_due_never_skips_a_decision() -> None:
    """Whatever an order's state, a check anywhere between now and its next moment decides
    what a check now decides: the Watch may leave it alone until then."""
    rng = random.Random(15)
    statuses = [Status.PENDING, Status.PROCESSING, Status.APPROVED]
    for _ in range(3000):
        now = T0 + rng.uniform(0, 7200)
        created = now - rng.choice([0, 5, 600, 1799, 1800, 1801, 4000]) - rng.random()
        sends = [Delivery(), Delivery(attempts=1, last_attempt_at=created + 1),
                 Delivery(attempts=rng.randint(1, 8), last_attempt_at=now - rng.uniform(0, 900), last_error="x"),
                 Delivery(attempts=1, last_attempt_at=now - 1, confirmed_at=now - 1, message_id="m")]
        o = make_order(created_at=created, status=rng.choice(statuses), receipt=rng.choice(sends),
                       user_id=rng.choice(["7621@lid", "7621@lid", ""]))
        if o.status is Status.PROCESSING:
            o = replace(o, processing_at=now - rng.uniform(0, 600))
        if o.status is Status.APPROVED:
            o = replace(o, delivery=rng.choice(sends))
        in_flight = {(o.id, k): now - rng.uniform(0, 400) for k in ("receipt", "delivery") if rng.random() < 0.3}
        due = next_due(o, in_flight, now, POLICY)
        assert due is None or due >= now

        def decides(at: float) -> tuple:
            out = CycleOutcome()
            check_order(o, in_flight, at, POLICY, out)
            return (sorted(i.value for _, i in out.raised), [x.issues for x in out.changed],
                    len(out.send_receipts), len(out.send_deliveries))

        first = decides(now)
        horizon = due if due is not None else now + 10 * 86400
        for at in [now + (horizon - now) * f for f in (0.001, 0.3, 0.7, 0.999)]:
            if at < horizon:
                assert decides(at) == first, (o, in_flight, now, due, at)


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
    watch = Watch(POLICY, sweep=1e9)
    watch.restore("A2", 15, T0 - 10, "pending")  # A2 was checked before (restored)
    book = Book([make_order("A1"), make_order("A2")])
    seen: list[tuple[str, int]] = []
    for n in range(10_000):
        seen += book.cycle(watch, T0 + 10 * n)[1]
        if n == 500:  # a change folds A1's count: its milestones stay where they were
            book.put(replace(book.orders["A1"], user_name="Karim"))
    assert [c for oid, c in seen if oid == "A1"] == [10, 20, 100, 1000, 10_000]
    assert [c for oid, c in seen if oid == "A2"] == [20, 100, 1000, 10_000]
    assert watch.check("A1")[0] == 10_000 and watch.check("A2")[0] == 10_015
    assert [next_milestone(n) for n in (0, 9, 10, 19, 20, 99, 100, 999, 1000)] == [10, 10, 20, 20, 100, 100, 1000,
                                                                                 1000, 10_000]


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
    started = time.perf_counter()
    out = reconcile(GROUP, orders, in_flight, T0 + 10, POLICY)
    full = time.perf_counter() - started
    assert out.summary.checked == 100_000 and out.changed == [] and out.send_deliveries == []
    watch, book = Watch(POLICY), Book(orders)
    book.cycle(watch, T0 + 10, in_flight)
    started = time.perf_counter()
    due, _ = book.cycle(watch, T0 + 20, in_flight)
    quiet = time.perf_counter() - started
    print(f"\nreconcile 100,000 open orders: all {full:.3f}s, a quiet cycle {quiet * 1000:.2f} ms")
    assert due == [] and watch.check("A7") == [2, T0 + 20, "pending"]
    assert full < 2.0 and quiet < 0.05


def test_a_receipt_interrupted_by_a_restart_is_sent_again_at_once() -> None:
    attempted = Delivery(attempts=1, last_attempt_at=T0)
    o = make_order(receipt=attempted)
    assert run([o], T0 + 10).send_receipts == []  # an earlier attempt may still be on its way
    restarted = replace(o, receipt=attempted.interrupted())
    assert run([restarted], T0 + 10).send_receipts == [restarted]
    confirmed = Delivery(attempts=1, last_attempt_at=T0, confirmed_at=T0, message_id="x")
    assert confirmed.interrupted() is confirmed and Delivery().interrupted() == Delivery()
