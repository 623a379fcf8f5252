"""The reconciliation cycle's decisions: which open orders have issues, which messages to
(re)send, which check counts deserve a log line.

A cycle runs every 10 s in every group, and 1,000 groups with 100,000 open orders must cost a
few percent of a core: so a cycle looks only at the orders that can have something to do (those
changed since the last cycle and those whose next deadline has come, see Watch), and an open
order's check count is derived from the cycle counter instead of being written every cycle.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from domain.orders import (
    SYSTEM,
    Action,
    Issue,
    Order,
    Status,
    is_valid,
    transition,
    validation_problems,
    with_issue,
    without_issue,
)


@dataclass(frozen=True, slots=True)
class Policy:
    pending_stuck_after: float
    processing_timeout: float
    delivery_confirm_after: float
    max_attempts: int
    retry_backoff: float
    max_backoff: float = 3600.0


@dataclass(slots=True)
class CheckEntry:
    """An order's check log entry as of the Watch's cycle `since`: every cycle after it checks
    the order once while it is open, so its count now is `count` plus the cycles since."""

    count: int = 0
    last_at: float | None = None
    last_status: str = ""
    since: int = 0
    status: str = ""  # the order's status at its last check: what the cycles since recorded
    open: bool = True


@dataclass(slots=True)
class CycleSummary:
    group_id: str
    started_at: float
    checked: int = 0
    open_issues: int = 0
    new_issues: int = 0
    cleared_issues: int = 0
    actions: int = 0
    duration: float = 0.0


@dataclass(slots=True)
class DayTally:
    """Checks and cycles of one local day, for the dashboard ("checks today")."""

    day: str = ""  # YYYY-MM-DD in bot.timezone
    checks: int = 0
    cycles: int = 0

    def count(self, day: str, checked: int) -> None:
        if day != self.day:
            self.day, self.checks, self.cycles = day, 0, 0
        self.checks += checked
        self.cycles += 1


@dataclass(slots=True)
class CycleOutcome:
    changed: list[Order] = field(default_factory=list)  # issues raised or cleared: persist these
    raised: list[tuple[Order, Issue]] = field(default_factory=list)  # for alerts
    send_receipts: list[Order] = field(default_factory=list)
    send_deliveries: list[Order] = field(default_factory=list)
    summary: CycleSummary = field(default_factory=lambda: CycleSummary("", 0.0))


def is_milestone(count: int) -> bool:
    """Checks #10, #20, #100, #1000, #10000 … are worth a log line."""
    if count in (10, 20):
        return True
    if count < 100:
        return False
    while count % 10 == 0:
        count //= 10
    return count == 1


def next_milestone(count: int) -> int:
    """The first milestone after `count` checks."""
    if count < 10:
        return 10
    if count < 20:
        return 20
    m = 100
    while m <= count:
        m *= 10
    return m


# The first retries come quickly: most send failures are a dropped connection, and a reseller
# waiting for a delivery message should not wait minutes for it.
QUICK_RETRIES = (2.0, 5.0, 15.0)


def backoff(attempts: int, policy: Policy) -> float:
    """Delay before retry number `attempts` (1 = the first retry): quick at first, then doubling, capped."""
    if 1 <= attempts <= len(QUICK_RETRIES):
        return min(QUICK_RETRIES[attempts - 1], policy.retry_backoff)
    later = attempts - len(QUICK_RETRIES)
    # The exponent is capped: deliveries retry forever, and 2 ** 1024 overflows a float.
    return min(policy.retry_backoff * (2 ** min(max(later - 1, 0), 60)), policy.max_backoff)


def send_time(attempts: int, last_attempt_at: float | None, last_error: str, sent_at: float | None,
              policy: Policy) -> float:
    """When a not-yet-confirmed message is to be (re)sent (-inf: now).

    `sent_at` is when this process handed it to the gateway and is still waiting for the
    outcome (None if nothing is in flight, e.g. after a restart)."""
    if sent_at is not None:
        # In flight: the transport never answered; send again after the confirmation window.
        return sent_at + policy.delivery_confirm_after
    if attempts == 0 or last_attempt_at is None:
        return float("-inf")
    if last_error:
        return last_attempt_at + backoff(attempts, policy)
    # Attempted but neither confirmed nor failed: the process died while it was in flight.
    return last_attempt_at + policy.delivery_confirm_after


def send_due(attempts: int, last_attempt_at: float | None, last_error: str, sent_at: float | None,
             now: float, policy: Policy) -> bool:
    """Whether a not-yet-confirmed message should be (re)sent now."""
    return now >= send_time(attempts, last_attempt_at, last_error, sent_at, policy)


_NONE: frozenset[Issue] = frozenset()


def _wanted_issues(order: Order, now: float, policy: Policy) -> frozenset[Issue]:
    """The issues an order should have now; the shared empty set in the common case."""
    wanted: set[Issue] = set()
    if not is_valid(order):
        wanted.add(Issue.INVALID)
    status = order.status
    if status is Status.PENDING:
        if order.created_at is not None and now > order.created_at + policy.pending_stuck_after:
            wanted.add(Issue.STUCK_PENDING)
    elif status is Status.PROCESSING:
        if order.processing_at is not None and now > order.processing_at + policy.processing_timeout:
            wanted.add(Issue.PROCESSING_TIMEOUT)
    elif status is Status.APPROVED and not order.delivery.confirmed:
        if order.delivery.attempts >= policy.max_attempts:
            wanted.add(Issue.DELIVERY_FAILED)
        elif order.delivery.last_error:
            wanted.add(Issue.DELIVERY_RETRYING)
    return frozenset(wanted) if wanted else _NONE


def _receipt_due(order: Order, policy: Policy) -> bool:
    """Whether reconciliation chases this order's receipt at all."""
    return (order.status in (Status.PENDING, Status.PROCESSING) and not order.receipt.confirmed
            and order.receipt.attempts < policy.max_attempts)


def next_due(order: Order, in_flight: Mapping[tuple[str, str], float], now: float, policy: Policy) -> float | None:
    """The first moment after `now` at which a check of this order could decide something new
    if nothing else happened to it (None: only a change to the order can). Mirrors
    _wanted_issues and check_order: every condition there that turns with time has its moment here."""
    if order.status.archived:
        return None
    times: list[float] = []
    status = order.status
    if status is Status.PENDING and order.created_at is not None:
        times.append(order.created_at + policy.pending_stuck_after)
    elif status is Status.PROCESSING and order.processing_at is not None:
        times.append(order.processing_at + policy.processing_timeout)
    if is_valid(order):
        if status is Status.APPROVED:
            d = order.delivery
            times.append(now if d.confirmed else send_time(
                d.attempts, d.last_attempt_at, d.last_error, in_flight.get((order.id, "delivery")), policy))
        elif _receipt_due(order, policy):
            r = order.receipt
            times.append(send_time(r.attempts, r.last_attempt_at, r.last_error,
                                   in_flight.get((order.id, "receipt")), policy))
    # A moment already passed was decided by the check at `now`; one equal to `now` may not
    # have been (the conditions are strict), so it stays.
    future = [t for t in times if t >= now]
    return min(future) if future else None


def _detail(order: Order, issue: Issue) -> str:
    """What an issue's audit note says about why."""
    if issue is Issue.INVALID:
        return ", ".join(validation_problems(order))
    if issue in (Issue.DELIVERY_RETRYING, Issue.DELIVERY_FAILED):
        return order.delivery.last_error[:200]
    return ""


def check_order(order: Order, in_flight: Mapping[tuple[str, str], float], now: float, policy: Policy,
                out: CycleOutcome) -> None:
    """One open order's check: the issues it should carry now, and the message it is owed."""
    summary = out.summary
    summary.checked += 1
    wanted = _wanted_issues(order, now, policy)
    updated = order
    if wanted or order.issues:
        have = {Issue(i) for i in order.issues}
        for issue in sorted(wanted - have):
            detail = _detail(order, issue)
            updated = with_issue(updated, issue, now, detail)
            out.raised.append((updated, issue))
            summary.new_issues += 1
        for issue in sorted(have - wanted):
            updated = without_issue(updated, issue, now)
            summary.cleared_issues += 1
        summary.open_issues += len(updated.issues)

    if Issue.INVALID in wanted:
        if updated is not order:
            out.changed.append(updated)
        return  # never message a user about an order we cannot read
    if order.status is Status.APPROVED and order.delivery.confirmed:
        # The delivery was confirmed but the process died before the order completed.
        updated = transition(updated, Action.COMPLETE, by=SYSTEM, now=now,
                             note="delivery was confirmed earlier")
    if updated is not order:
        out.changed.append(updated)
    if order.status is Status.APPROVED and not order.delivery.confirmed:
        d = order.delivery
        if send_due(d.attempts, d.last_attempt_at, d.last_error,
                    in_flight.get((order.id, "delivery")), now, policy):
            out.send_deliveries.append(updated)
    elif _receipt_due(order, policy):
        r = order.receipt
        if send_due(r.attempts, r.last_attempt_at, r.last_error, in_flight.get((order.id, "receipt")), now, policy):
            out.send_receipts.append(updated)


def reconcile(
    group_id: str,
    orders: Iterable[Order],
    in_flight: Mapping[tuple[str, str], float],
    now: float,
    policy: Policy,
) -> CycleOutcome:
    """A cycle's decisions over `orders` (archived ones are passed over).

    `in_flight` maps (order id, "receipt" | "delivery") to when the send was handed over."""
    out = CycleOutcome(summary=CycleSummary(group_id, now))
    for order in orders:
        if not order.status.archived:
            check_order(order, in_flight, now, policy, out)
    out.summary.actions = len(out.send_receipts) + len(out.send_deliveries) + len(out.changed)
    return out


class Watch:
    """What reconciliation keeps about a group's open orders between cycles, so that a cycle
    costs what can change rather than what is open.

    * Check counts: a cycle checks every open order once, so an order's count is its entry's
      count plus the cycles since the entry was last brought up to date. An entry is brought up
      to date (folded) only when its order changed; milestones (#10, #20, #100 …) are found by
      the cycle at which each order reaches its next one.
    * Deadlines: each open order's next moment at which a check could decide something
      (next_due), in a heap. A cycle checks the orders changed since the last cycle (the book
      names them) and those whose moment has come, and every open order once per `sweep`
      seconds besides — a cheap guard (1/60 of the cost of checking everything every cycle)
      should a condition ever lack its moment.
    """

    def __init__(self, policy: Policy, sweep: float = 600.0) -> None:
        self.policy = policy
        self.sweep = sweep
        self.cycle = 0  # cycles run in this incarnation
        self.cycle_at: float | None = None  # when the last one ran
        self.last_sweep: float | None = None
        self.entries: dict[str, CheckEntry] = {}
        self._heap: list[tuple[float, str]] = []
        self._when: dict[str, float] = {}  # order id -> its moment in the heap (older entries are stale)
        self._milestones: dict[int, set[str]] = {}  # cycle -> orders reaching a milestone in it

    # -- check counts ----------------------------------------------------------------------------

    def restore(self, order_id: str, count: int, last_at: float | None, last_status: str) -> None:
        """A checkpointed entry (its order is folded in at the first cycle, like any change)."""
        self.entries[order_id] = CheckEntry(count, last_at, last_status, self.cycle, last_status, open=False)

    def check(self, order_id: str) -> list | None:
        """[count, last_at, last_status] as of the last cycle (None: never checked)."""
        e = self.entries.get(order_id)
        if e is None:
            return None
        if e.open and self.cycle > e.since:
            return [e.count + self.cycle - e.since, self.cycle_at, e.status]
        if not e.count and e.last_at is None:
            return None
        return [e.count, e.last_at, e.last_status]

    def checks(self) -> dict[str, list]:
        """Every order's entry as check() gives it: what a checkpoint writes."""
        return {oid: c for oid in self.entries if (c := self.check(oid)) is not None}

    def _fold(self, order: Order) -> None:
        """Bring an order's entry up to the last cycle, then follow it from its current status."""
        e = self.entries.get(order.id)
        if e is None:
            e = self.entries[order.id] = CheckEntry(since=self.cycle, status=order.status.value, open=False)
        current = self.check(order.id)
        if current is not None:
            e.count, e.last_at, e.last_status = current
        e.since, e.status, e.open = self.cycle, order.status.value, not order.status.archived
        if e.open:
            self._milestones.setdefault(self.cycle + next_milestone(e.count) - e.count, set()).add(order.id)

    def forget(self, order_id: str) -> None:
        self.entries.pop(order_id, None)
        self._when.pop(order_id, None)

    # -- a cycle ---------------------------------------------------------------------------------

    def begin(self, orders: Mapping[str, Order], changed: set[str], open_ids: set[str],
              now: float) -> tuple[list[Order], list[tuple[str, int]]]:
        """Start a cycle: the orders to check in it (oldest first) and the check milestones it
        reaches. `changed` (the orders changed since the last cycle) is read and emptied."""
        if (not changed and self.cycle + 1 not in self._milestones and self.last_sweep is not None
                and now - self.last_sweep < self.sweep and not (self._heap and self._heap[0][0] <= now)):
            # Most cycles: nothing changed, no milestone, no sweep, no deadline: only counted.
            self.cycle += 1
            self.cycle_at = now
            return [], []
        for oid in changed:
            order = orders.get(oid)
            if order is None:
                self.forget(oid)
            else:
                self._fold(order)
        self.cycle += 1
        self.cycle_at = now
        milestones = []
        for oid in self._milestones.pop(self.cycle, ()):
            e = self.entries.get(oid)
            if e is not None and e.open:
                count = e.count + self.cycle - e.since
                if is_milestone(count):
                    milestones.append((oid, count))
                    self._milestones.setdefault(self.cycle + next_milestone(count) - count, set()).add(oid)
        if self.last_sweep is None or now - self.last_sweep >= self.sweep:
            self.last_sweep = now
            due = set(open_ids)
        else:
            due = changed & open_ids
            heap, when = self._heap, self._when
            while heap and heap[0][0] <= now:
                t, oid = heapq.heappop(heap)
                if when.get(oid) == t:
                    del when[oid]
                    if oid in open_ids:
                        due.add(oid)
        changed.clear()
        picked = sorted((orders[oid] for oid in due), key=lambda o: (o.created_at or 0.0, o.id))
        return picked, milestones

    def end(self, checked: Iterable[Order], orders: Mapping[str, Order],
            in_flight: Mapping[tuple[str, str], float], now: float) -> None:
        """After a cycle's decisions are in the book: each checked order's next moment."""
        for old in checked:
            order = orders.get(old.id)
            t = None if order is None else next_due(order, in_flight, now, self.policy)
            if t is None:
                self._when.pop(old.id, None)
            elif self._when.get(old.id) != t:
                self._when[old.id] = t
                heapq.heappush(self._heap, (t, old.id))
        if len(self._heap) > 4 * len(self._when) + 64:  # mostly stale entries: rebuild
            self._heap = [(t, oid) for oid, t in self._when.items()]
            heapq.heapify(self._heap)


# ---------------------------------------------------------------------------------------------
# Live figures: what the panel shows between checkpoints. Every cycle checks every open order
# once, so an order's check count is its count at the last checkpoint plus the cycles since
# then while it was open: derived from the group's recent cycles, never written per order.


@dataclass(frozen=True, slots=True)
class LiveCycles:
    """A group's recent cycles (oldest first, since its incarnation started) and today's tally."""

    cycles: tuple[CycleSummary, ...]
    tally: DayTally


def live_check(check: list | None, received_at: float | None, closed_at: float | None, status: str,
               cycle_times: list[float]) -> list | None:
    """[count, last_at, last_status] with the cycles after the checkpoint counted in.

    `check` is the checkpointed entry (None: never checkpointed); `cycle_times` the recent
    cycles' start times, sorted; cycles count from the order's arrival (or its last checkpointed
    check) and stop at `closed_at`, when it was archived (None: still open)."""
    count, last_at, last_status = check if check else (0, None, "")
    if last_at is not None:
        lo = bisect_right(cycle_times, last_at)
    elif received_at is not None:
        lo = bisect_left(cycle_times, received_at)
    else:
        return check
    hi = bisect_left(cycle_times, closed_at) if closed_at is not None else len(cycle_times)
    if hi <= lo:
        return check
    return [int(count) + hi - lo, cycle_times[hi - 1], status]
