"""The order state machine, issues, the stored form and its lenient reader (domain/orders.py)."""

from __future__ import annotations

import copy
import itertools
import math
import random
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import pytest

from domain.clock import FakeClock
from domain.money import parse_rate
from domain.orders import (
    Action,
    AuditEntry,
    Delivery,
    Issue,
    Order,
    Status,
    TransitionError,
    edit_diamonds,
    from_record,
    new_order,
    to_record,
    transition,
    validation_problems,
    with_issue,
    without_issue,
)

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z

P, PR, AP, CO, CA, DE = (Status.PENDING, Status.PROCESSING, Status.APPROVED, Status.COMPLETED,
                         Status.CANCELLED, Status.DELETED)

# The spec's table (§3.2), written out independently of domain.orders.TRANSITIONS:
# (action, from) -> to. Anything not listed is refused.
SPEC_TABLE: dict[tuple[Action, Status], Status] = {
    (Action.PROCESS, P): PR,
    (Action.APPROVE, P): AP,
    (Action.APPROVE, PR): AP,
    (Action.CANCEL, P): CA,
    (Action.CANCEL, PR): CA,
    (Action.DELETE, P): DE,
    (Action.DELETE, PR): DE,
    (Action.DELETE, AP): DE,
    (Action.DELETE, CA): DE,
    # DELETE from DELETED is refused (already deleted); from COMPLETED refused by the spec.
    (Action.COMPLETE, AP): CO,
}
STAMP_FIELD = {PR: "processing_at", AP: "approved_at", CO: "completed_at", CA: "cancelled_at", DE: "deleted_at"}
ALL_STAMPS = ("processing_at", "approved_at", "completed_at", "cancelled_at", "deleted_at")


def make_order(**changes: Any) -> Order:
    order = new_order(
        order_id="AB17",
        group_id="120363000000000001@g.us",
        group_name="Reseller Group 1",
        user_id="76210050711676@lid",
        user_alt="8801712345678@s.whatsapp.net",
        user_name="Rahim",
        message_id="3EB0C0FFEE",
        text=".10",
        diamonds=10,
        rate=parse_rate("100"),
        created_at=T0 - 5,
        now=T0,
        recovered=False,
    )
    return replace(order, **changes) if changes else order


def in_status(status: Status) -> Order:
    return make_order(status=status)


# --- new_order -----------------------------------------------------------------------------


def test_new_order_is_pending_priced_and_audited() -> None:
    o = make_order()
    assert o.status is Status.PENDING
    assert o.amount == Decimal("1000.00")
    assert o.created_at == T0 - 5  # the message's own time
    assert o.received_at == T0
    assert all(getattr(o, f) is None for f in ALL_STAMPS)
    assert o.issues == () and o.problems == ()
    assert not o.recovered and not o.archived
    assert o.receipt == Delivery() and o.delivery == Delivery()
    assert o.audit == (AuditEntry(T0, None, "pending", "whatsapp:76210050711676@lid", ""),)
    assert validation_problems(o) == ()


def test_new_order_amount_is_exact() -> None:
    o = new_order(order_id="A1", group_id="g", group_name="", user_id="u", user_alt="", user_name="",
                  message_id="m", text=".3", diamonds=3, rate=parse_rate("0.335"), created_at=T0, now=T0,
                  recovered=True)
    assert o.amount == Decimal("1.01")
    assert o.recovered
    assert o.audit[0].note == "recovered after downtime"


# --- the state machine ---------------------------------------------------------------------

PAIRS = list(itertools.product(list(Status), list(Action)))


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_every_status_action_pair(status: Status, action: Action) -> None:
    clock = FakeClock(T0)
    before = in_status(status)
    snapshot = copy.deepcopy(to_record(before))
    clock.advance(60)
    target = SPEC_TABLE.get((action, status))
    if target is None:
        with pytest.raises(TransitionError) as info:
            transition(before, action, by="admin", now=clock.now())
        message = str(info.value)
        assert before.id in message
        assert status.value in message
        allowed = [s for (a, s) in SPEC_TABLE if a is action]
        assert allowed and all(s.value in message for s in allowed)
        assert to_record(before) == snapshot  # nothing changed
        return
    after = transition(before, action, by="admin", now=clock.now(), note="why")
    assert after.status is target
    assert getattr(after, STAMP_FIELD[target]) == clock.now()
    for f in ALL_STAMPS:
        if f != STAMP_FIELD[target]:
            assert getattr(after, f) == getattr(before, f)
    assert after.audit[:-1] == before.audit
    assert after.audit[-1] == AuditEntry(clock.now(), status.value, target.value, "admin", "why")
    assert after.archived is (target in (CO, CA, DE))
    assert to_record(before) == snapshot  # the original is untouched (orders are immutable)


def test_full_lifecycle_keeps_every_stamp_and_audit_entry() -> None:
    clock = FakeClock(T0)
    o = make_order()
    o = transition(o, Action.PROCESS, by="admin:karim", now=clock.advance(10))
    o = transition(o, Action.APPROVE, by="whatsapp:8801712345678", now=clock.advance(10))
    o = transition(o, Action.COMPLETE, by="system", now=clock.advance(10))
    assert o.status is CO and o.archived
    assert (o.processing_at, o.approved_at, o.completed_at) == (T0 + 10, T0 + 20, T0 + 30)
    assert [(a.from_status, a.to_status, a.by) for a in o.audit] == [
        (None, "pending", "whatsapp:76210050711676@lid"),
        ("pending", "processing", "admin:karim"),
        ("processing", "approved", "whatsapp:8801712345678"),
        ("approved", "completed", "system"),
    ]
    with pytest.raises(TransitionError):
        transition(o, Action.DELETE, by="admin", now=clock.advance(1))


def test_transition_error_reads_well() -> None:
    o = in_status(CO)
    with pytest.raises(TransitionError, match=r"order AB17 is completed; only .* can be deleted"):
        transition(o, Action.DELETE, by="admin", now=T0)
    with pytest.raises(TransitionError, match=r"order AB17 is pending; only approved orders can be completed"):
        transition(make_order(), Action.COMPLETE, by="system", now=T0)


# --- issues --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "issue", "action", "kept"),
    [
        (P, Issue.STUCK_PENDING, Action.PROCESS, False),
        (P, Issue.STUCK_PENDING, Action.APPROVE, False),
        (P, Issue.STUCK_PENDING, Action.CANCEL, False),
        (P, Issue.STUCK_PENDING, Action.DELETE, False),
        (PR, Issue.PROCESSING_TIMEOUT, Action.APPROVE, False),
        (PR, Issue.PROCESSING_TIMEOUT, Action.CANCEL, False),
        (PR, Issue.PROCESSING_TIMEOUT, Action.DELETE, False),
        (AP, Issue.DELIVERY_FAILED, Action.COMPLETE, False),
        (AP, Issue.DELIVERY_FAILED, Action.DELETE, False),
        (P, Issue.INVALID, Action.PROCESS, True),
        (PR, Issue.INVALID, Action.APPROVE, True),
        (AP, Issue.INVALID, Action.COMPLETE, True),
        (AP, Issue.INVALID, Action.DELETE, True),
    ],
)
def test_state_issues_clear_when_the_order_leaves_the_state(
    status: Status, issue: Issue, action: Action, kept: bool
) -> None:
    o = with_issue(in_status(status), issue, T0)
    assert o.issues == (issue.value,)
    after = transition(o, action, by="admin", now=T0 + 1)
    assert (issue.value in after.issues) is kept


def test_only_the_stale_issue_is_cleared() -> None:
    o = with_issue(with_issue(make_order(), Issue.INVALID, T0), Issue.STUCK_PENDING, T0)
    after = transition(o, Action.PROCESS, by="admin", now=T0 + 1)
    assert after.issues == ("invalid",)


def test_with_issue_is_idempotent_and_audited() -> None:
    o = make_order()
    once = with_issue(o, Issue.STUCK_PENDING, T0 + 1, "waiting 31m")
    assert once.issues == ("stuck_pending",)
    assert len(once.audit) == len(o.audit) + 1
    entry = once.audit[-1]
    assert (entry.at, entry.from_status, entry.to_status, entry.by) == (T0 + 1, "pending", "pending", "system")
    assert entry.note == "issue raised: stuck_pending (waiting 31m)"
    twice = with_issue(once, Issue.STUCK_PENDING, T0 + 2, "again")
    assert twice is once
    both = with_issue(once, Issue.INVALID, T0 + 3)
    assert both.issues == ("stuck_pending", "invalid")
    assert both.audit[-1].note == "issue raised: invalid"


def test_without_issue() -> None:
    o = with_issue(make_order(), Issue.STUCK_PENDING, T0)
    cleared = without_issue(o, Issue.STUCK_PENDING, T0 + 5)
    assert cleared.issues == ()
    assert cleared.audit[-1].note == "issue cleared: stuck_pending"
    assert cleared.audit[-1].at == T0 + 5
    assert without_issue(cleared, Issue.STUCK_PENDING, T0 + 6) is cleared
    assert without_issue(cleared, Issue.INVALID, T0 + 6) is cleared


# --- edits and deletes of the order message in WhatsApp ------------------------------------

EDITOR = "whatsapp:76210050711676@lid"


def test_edit_diamonds_reprices_at_the_orders_own_rate_and_audits() -> None:
    o = make_order(rate=parse_rate("2.30"), amount=Decimal("23.00"))
    edited = edit_diamonds(o, 100, text=".100", by=EDITOR, now=T0 + 30)
    assert (edited.diamonds, edited.text, edited.amount, edited.rate) == (100, ".100", Decimal("230.00"),
                                                                         Decimal("2.30"))
    assert edited.status is Status.PENDING
    assert edited.audit[:-1] == o.audit
    assert edited.audit[-1] == AuditEntry(T0 + 30, P, P, EDITOR, "edited in WhatsApp: .10 → .100")
    assert (edited.id, edited.message_id, edited.created_at) == (o.id, o.message_id, o.created_at)
    # 7 × 2.30 exactly
    assert edit_diamonds(o, 7, text=".৭", by=EDITOR, now=T0 + 31).amount == Decimal("16.10")


def test_edit_diamonds_keeps_the_rate_at_order_time() -> None:
    o = make_order(rate=parse_rate("0.335"))
    assert edit_diamonds(o, 3, text=".3", by=EDITOR, now=T0).amount == Decimal("1.01")  # 1.005 half up


def test_a_replayed_edit_changes_nothing() -> None:
    o = edit_diamonds(make_order(), 100, text=".100", by=EDITOR, now=T0 + 30)
    assert edit_diamonds(o, 100, text=".100", by=EDITOR, now=T0 + 40) is o
    again = edit_diamonds(o, 100, text=".১০০", by=EDITOR, now=T0 + 50)  # same number, other digits
    assert again.text == ".১০০" and again.amount == o.amount and len(again.audit) == len(o.audit) + 1


@pytest.mark.parametrize("status", [PR, AP, CO, CA, DE])
def test_only_pending_orders_can_be_edited(status: Status) -> None:
    o = in_status(status)
    with pytest.raises(TransitionError, match=rf"order AB17 is {status.value}; only pending orders can be edited"):
        edit_diamonds(o, 100, text=".100", by=EDITOR, now=T0)


@pytest.mark.parametrize("diamonds", [0, -5, True])
def test_edit_diamonds_refuses_non_positive(diamonds: int) -> None:
    with pytest.raises(ValueError):
        edit_diamonds(make_order(), diamonds, text=".0", by=EDITOR, now=T0)


def test_a_deleted_message_cancels_a_pending_order() -> None:
    note = "message deleted in WhatsApp"
    cancelled = transition(make_order(), Action.CANCEL, by=EDITOR, now=T0 + 9, note=note)
    assert cancelled.status is CA and cancelled.cancelled_at == T0 + 9
    assert cancelled.audit[-1] == AuditEntry(T0 + 9, P, CA, EDITOR, note)
    # an order already approved stays as it is: the delete comes too late
    with pytest.raises(TransitionError):
        transition(in_status(AP), Action.CANCEL, by=EDITOR, now=T0 + 9, note=note)


# --- Delivery ------------------------------------------------------------------------------


def test_delivery_tracking() -> None:
    d = Delivery()
    assert not d.confirmed and d.attempts == 0
    d = d.attempted(T0)
    assert (d.attempts, d.last_attempt_at) == (1, T0)
    d = d.failed("timeout " * 200)
    assert len(d.last_error) == 500 and d.last_error.startswith("timeout")
    d = d.attempted(T0 + 30)
    d = d.succeeded("3EBREPLY", T0 + 31)
    assert d.confirmed
    assert (d.attempts, d.last_attempt_at, d.message_id, d.confirmed_at, d.last_error) == (
        2, T0 + 30, "3EBREPLY", T0 + 31, "")


# --- stored form ---------------------------------------------------------------------------


def full_order() -> Order:
    """An order with every field set to something other than its default."""
    clock = FakeClock(T0)
    o = new_order(order_id="ZZ123", group_id="120363999@g.us", group_name="দোকান ১", user_id="76210050711676@lid",
                  user_alt="8801712345678@s.whatsapp.net", user_name="রহিম", message_id="3EB0ABC",
                  text=".৩", diamonds=3, rate=parse_rate("0.335"), created_at=T0 - 0.5, now=clock.now(),
                  recovered=True)
    o = with_issue(o, Issue.INVALID, clock.advance(0.125), "just for the test")
    o = replace(o, receipt=Delivery().attempted(clock.advance(1)).succeeded("3EBRCPT", clock.advance(0.25)))
    o = transition(o, Action.PROCESS, by="admin:karim", now=clock.advance(60))
    o = transition(o, Action.APPROVE, by="whatsapp:8801700000000@s.whatsapp.net", now=clock.advance(60),
                   note="done")
    o = replace(o, delivery=Delivery().attempted(clock.advance(1)).failed("network down").attempted(
        clock.advance(30)))
    o = with_issue(o, Issue.DELIVERY_FAILED, clock.advance(1))
    o = transition(o, Action.DELETE, by="admin:karim", now=clock.advance(5))
    # stamps a real order would not have together, to cover every field
    return replace(o, completed_at=clock.advance(1), cancelled_at=clock.advance(1))


def test_round_trip_keeps_every_field() -> None:
    o = full_order()
    record = to_record(o)
    back = from_record(orjson.loads(orjson.dumps(record)))
    assert back.problems == ()
    assert back == o  # every field, including audit, deliveries, issues and times
    for f in ("rate", "amount"):
        assert isinstance(getattr(back, f), Decimal)
    assert str(back.rate) == "0.335" and str(back.amount) == "1.01"
    assert to_record(back) == record


def test_record_shape() -> None:
    o = full_order()
    r = to_record(o)
    assert r["id"] == "ZZ123" and r["userId"] == "76210050711676@lid"
    assert r["rate"] == "0.335" and r["amount"] == "1.01"
    assert r["status"] == "deleted"
    assert r["date"] == "2025-11-24T15:59:59.500+00:00"
    assert r["receivedAt"] == "2025-11-24T16:00:00.000+00:00"
    assert r["issues"] == ["invalid"]  # delivery_failed left with the approved state
    assert r["audit"][0] == {"at": "2025-11-24T16:00:00.000+00:00", "from": None, "to": "pending",
                             "by": "whatsapp:76210050711676@lid", "note": "recovered after downtime"}
    assert r["delivery"]["attempts"] == 2 and r["delivery"]["lastError"] == "network down"
    assert r["delivery"]["confirmedAt"] is None
    assert isinstance(orjson.dumps(r), bytes)


def test_fresh_order_round_trips_without_problems() -> None:
    """Empty optional fields (no alt id, no error yet) are what to_record writes: not problems."""
    o = make_order(user_alt="", user_name="", text="")
    back = from_record(to_record(o))
    assert back.problems == ()
    assert validation_problems(back) == ()
    assert back == o


@pytest.mark.parametrize(
    "rate", ["100", "2.30", "0.0001", "999999.9999", "0.335", "1.2345"]
)
def test_round_trip_decimal_exactness(rate: str) -> None:
    o = make_order(rate=parse_rate(rate), diamonds=99_999)
    o = replace(o, amount=Decimal(99_999) * Decimal(rate))  # deliberately unrounded in memory
    back = from_record(to_record(o))
    assert back.rate == Decimal(rate)
    assert back.amount == (Decimal(99_999) * Decimal(rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_round_trip_times_seeded() -> None:
    rng = random.Random(5)
    for _ in range(500):
        ms = rng.randint(0, 4_000_000_000_000)
        t = ms / 1000
        o = make_order(created_at=t, received_at=t + 1, approved_at=t + 2)
        back = from_record(to_record(o))
        assert back.problems == ()
        assert back.created_at == pytest.approx(t, abs=5e-4)
        assert back.approved_at == pytest.approx(t + 2, abs=5e-4)


def test_sub_millisecond_times_are_truncated_not_shifted() -> None:
    back = from_record(to_record(make_order(created_at=T0 + 0.1239)))
    assert back.created_at is not None
    assert 0 <= (T0 + 0.1239) - back.created_at < 0.001


def test_group_id_comes_from_the_caller_when_missing() -> None:
    r = to_record(make_order())
    del r["groupId"], r["groupName"]
    o = from_record(r, group_id="g@g.us", group_name="Shop")
    assert (o.group_id, o.group_name) == ("g@g.us", "Shop")
    assert o.problems == ()


# --- lenient reading of broken records -----------------------------------------------------

GOOD = to_record(make_order())

# (change to the good record: key -> value, or key -> DELETE) -> expected problems (exactly)
DELETE = object()
BROKEN: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("no id", {"id": DELETE}, ("id missing",)),
    ("empty id", {"id": ""}, ("id missing",)),
    ("null id", {"id": None}, ("id missing",)),
    ("bool id", {"id": True}, ("id not text",)),
    ("list id", {"id": [1]}, ("id not text",)),
    ("no user", {"userId": DELETE}, ("userId missing",)),
    ("empty user", {"userId": ""}, ("userId missing",)),
    ("dict user", {"userId": {"a": 1}}, ("userId not text",)),
    ("no diamonds", {"diamonds": DELETE}, ("diamonds not a positive integer",)),
    ("zero diamonds", {"diamonds": 0}, ("diamonds not a positive integer",)),
    ("negative diamonds", {"diamonds": -5}, ("diamonds not a positive integer",)),
    ("string diamonds", {"diamonds": "10"}, ("diamonds not a positive integer",)),
    ("float diamonds", {"diamonds": 10.0}, ("diamonds not a positive integer",)),
    ("bool diamonds", {"diamonds": True}, ("diamonds not a positive integer",)),
    ("no date", {"date": DELETE}, ("date missing",)),
    ("null date", {"date": None}, ("date missing",)),
    ("garbage date", {"date": "yesterday"}, ("date not a time",)),
    ("naive date", {"date": "2025-11-24T16:00:00"}, ("date not a time",)),
    ("bool date", {"date": True}, ("date not a time",)),
    ("huge date", {"date": 1e300}, ("date not a time",)),
    ("nan date", {"date": math.nan}, ("date not a time",)),
    ("inf date", {"date": math.inf}, ("date not a time",)),
    ("year 10000 ms", {"date": 253_402_300_800_000}, ("date not a time",)),
    ("unknown status", {"status": "shipped"}, ("unknown status 'shipped'",)),
    ("no status", {"status": DELETE}, ("unknown status None",)),
    ("no rate", {"rate": DELETE}, ("rate not a positive decimal",)),
    ("float rate", {"rate": 2.3}, ("rate not a positive decimal",)),
    ("zero rate", {"rate": "0"}, ("rate not a positive decimal",)),
    ("garbage amount", {"amount": "lots"}, ("amount not a decimal",)),
    ("float amount", {"amount": 1000.0}, ("amount not a decimal",)),
    ("null amount", {"amount": None}, ("amount not a decimal",)),
    ("huge amount", {"amount": "1e30"}, ("amount not a decimal",)),
    ("bad approvedAt", {"approvedAt": "soon"}, ("approvedAt not a time",)),
    ("bad receipt time", {"receipt": {"attempts": 1, "lastAttemptAt": "x"}}, ("receipt.lastAttemptAt not a time",)),
    ("bad delivery error", {"delivery": {"lastError": ["x"]}}, ("delivery.lastError not text",)),
    ("bad alt", {"userAlt": 5.5}, ("userAlt not text",)),
]


def _apply(record: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(record)
    for key, value in change.items():
        if value is DELETE:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(("name", "change", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_from_record_notes_problems_instead_of_raising(name: str, change: dict[str, Any],
                                                      expected: tuple[str, ...]) -> None:
    o = from_record(_apply(GOOD, change))
    assert o.problems == expected
    assert validation_problems(o)[: len(expected)] == expected
    to_record(o)  # whatever was read can be written back


def test_from_record_fallback_values() -> None:
    o = from_record(_apply(GOOD, {"status": "SHIPPED", "diamonds": "10", "rate": 2.5, "amount": "x"}))
    assert o.status is Status.PENDING
    assert o.diamonds == 0
    assert o.rate == 0
    assert o.amount == Decimal("0.00")
    o = from_record(_apply(GOOD, {"amount": "lots"}))
    assert o.amount == Decimal("1000.00")  # recomputed from diamonds × rate


def test_from_record_reads_the_seed_node_bot_entry() -> None:
    seed = {"id": 1765040834207, "userId": "76210050711676@lid", "diamonds": 10, "status": "APPROVED",
            "rate": "100", "date": 1765040834207, "approvedAt": 1765041134207}
    o = from_record(seed, group_id="120363@g.us", group_name="Shop")
    assert o.problems == ()
    assert o.id == "1765040834207"
    assert o.status is Status.APPROVED
    assert o.created_at == pytest.approx(1765040834.207)  # epoch milliseconds
    assert o.approved_at == pytest.approx(1765041134.207)
    assert o.amount == Decimal("1000.00")
    assert o.received_at == o.created_at
    assert validation_problems(o) == ()


def test_from_record_epoch_seconds_and_iso_z() -> None:
    o = from_record(_apply(GOOD, {"date": 1765040834, "approvedAt": "2025-12-06T17:07:14.207Z"}))
    assert o.problems == ()
    assert o.created_at == 1765040834.0
    assert o.approved_at == pytest.approx(1765040834.207)


def test_from_record_lower_cases_status() -> None:
    for text, status in (("PENDING", P), ("Approved", AP), ("deleted", DE)):
        assert from_record(_apply(GOOD, {"status": text})).status is status


def test_from_record_issues_and_audit_are_filtered() -> None:
    o = from_record(_apply(GOOD, {
        "issues": ["stuck_pending", "made_up", 5, {"x": 1}, ["invalid"], None],
        "audit": [{"at": "2025-11-24T16:00:00+00:00", "to": "pending", "by": "x"}, "junk", 7,
                  {"at": "never", "to": "approved"}],
    }))
    assert o.issues == ("stuck_pending",)
    assert [a.to_status for a in o.audit] == ["pending", "approved"]
    assert o.audit[0].at == T0 and o.audit[1].at == 0.0
    for junk in (5, "text", {"a": 1}, None, True):
        o = from_record(_apply(GOOD, {"issues": junk, "audit": junk}))
        assert o.issues == () and o.audit == ()


def test_from_record_delivery_attempts_lenient() -> None:
    for attempts, expected in ((3, 3), (-1, 0), ("3", 0), (True, 0), (None, 0), (2.5, 0)):
        o = from_record(_apply(GOOD, {"delivery": {"attempts": attempts}}))
        assert o.delivery.attempts == expected
    assert from_record(_apply(GOOD, {"receipt": "sent"})).receipt == Delivery()


def test_from_record_huge_diamonds_does_not_raise() -> None:
    record = _apply(GOOD, {"diamonds": 10**40})
    del record["amount"]
    o = from_record(record)
    assert "amount not a decimal" in o.problems
    to_record(o)


def test_from_record_empty_and_fuzzed_records_never_raise() -> None:
    o = from_record({})
    assert set(validation_problems(o)) >= {"id missing", "userId missing", "diamonds not a positive integer",
                                          "date missing"}
    junk = [None, "", "x", 0, -1, 1, 10**30, 1e300, math.nan, math.inf, True, False, [], [1, None], {},
            {"attempts": "x"}, "2025-11-24T16:00:00+00:00", 1765040834207, "NaN", "-1", "1e30"]
    keys = list(GOOD) + ["extra"]
    rng = random.Random(3)
    for _ in range(3000):
        record = copy.deepcopy(GOOD)
        for _ in range(rng.randint(1, 6)):
            key = rng.choice(keys)
            if rng.random() < 0.2:
                record.pop(key, None)
            else:
                record[key] = rng.choice(junk)
        o = from_record(record)
        assert isinstance(o, Order)
        to_record(o)
        if o.problems:
            assert validation_problems(o)


# --- validation_problems -------------------------------------------------------------------


def test_validation_problems_of_an_in_memory_order() -> None:
    o = make_order(id="", user_id="", diamonds=0, created_at=None)
    assert validation_problems(o) == ("id missing", "userId missing", "diamonds not a positive integer",
                                      "date missing")
    assert validation_problems(make_order(diamonds=-3)) == ("diamonds not a positive integer",)
    assert validation_problems(make_order()) == ()


def test_validation_problems_include_load_problems_once() -> None:
    o = make_order(problems=("id missing", "rate not a positive decimal"), id="")
    assert validation_problems(o) == ("id missing", "rate not a positive decimal")


def test_an_imported_orders_seed_id_survives_every_rewrite() -> None:
    from domain.orders import from_record, to_record

    record = {"id": "D1", "userId": "1@lid", "diamonds": 10, "rate": "100", "status": "pending",
              "date": "2026-01-01T00:00:00.000+00:00", "importedId": "seed:1765040834207"}
    order = from_record(record)
    assert order.imported_id == "seed:1765040834207"
    approved = transition(order, Action.APPROVE, by="admin:x", now=1_767_225_700.0)
    assert to_record(approved)["importedId"] == "seed:1765040834207"
    assert "importedId" not in to_record(replace(approved, imported_id=""))
