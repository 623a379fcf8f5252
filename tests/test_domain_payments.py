"""Payments, dues and the ledger (domain/payments.py)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import pytest

from domain.clock import to_iso
from domain.money import parse_rate
from domain.orders import Action, Order, Status, new_order, transition
from domain.orders import to_record as order_record
from domain.payments import (
    METHODS,
    LedgerLine,
    Payment,
    PaymentError,
    billed,
    billed_records,
    check_amount,
    due,
    from_record,
    ledger,
    new_payment,
    paid,
    paid_records,
    parse_method,
    to_record,
)

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z
GID = "120363000000000001@g.us"
D = Decimal


def pay(amount: Any = "500", method: str = "bkash", *, pid: str = "P1", at: float = T0, **kw: Any) -> Payment:
    return new_payment(payment_id=pid, group_id=GID, amount=amount, method=method, at=at, by="admin", **kw)


def order(oid: str, diamonds: int, rate: str = "2.30", *, status: Status = Status.APPROVED,
          at: float = T0) -> Order:
    o = new_order(order_id=oid, group_id=GID, group_name="Shop", user_id="1@lid", user_alt="", user_name="R",
                  message_id=f"m-{oid}", text=f".{diamonds}", diamonds=diamonds, rate=parse_rate(rate),
                  created_at=at - 60, now=at - 60, recovered=False)
    path = {
        Status.PENDING: (),
        Status.PROCESSING: (Action.PROCESS,),
        Status.APPROVED: (Action.APPROVE,),
        Status.COMPLETED: (Action.APPROVE, Action.COMPLETE),
        Status.CANCELLED: (Action.CANCEL,),
        Status.DELETED: (Action.APPROVE, Action.DELETE),
    }[status]
    for i, action in enumerate(path):
        o = transition(o, action, by="admin", now=at + i)
    return o


# --- methods -------------------------------------------------------------------------------


def test_methods_are_the_importers() -> None:
    assert METHODS == ("bkash", "nagad", "rocket", "bank", "cash", "other")


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("bkash", "bkash"), ("bKash", "bkash"), ("BKASH", "bkash"), (" b-kash ", "bkash"), ("b kash", "bkash"),
        ("বিকাশ", "bkash"),
        ("nagad", "nagad"), ("Nagad", "nagad"), ("নগদ", "nagad"),
        ("rocket", "rocket"), ("Rocket", "rocket"), ("রকেট", "rocket"),
        ("bank", "bank"), ("Bank Transfer", "bank"), ("ব্যাংক", "bank"),
        ("cash", "cash"), ("CASH", "cash"), ("ক্যাশ", "cash"), ("নগদ টাকা", "cash"), ("নগদটাকা", "cash"),
        ("other", "other"), ("Other", "other"),
    ],
)
def test_parse_method(text: str, method: str) -> None:
    assert parse_method(text) == method


@pytest.mark.parametrize("text", ["", " ", "upay", "bkash2", "visa", "TRX123", "500", "নগদনগদ", "ক্যাশ টাকা x"])
def test_parse_method_refuses_and_lists_the_methods(text: str) -> None:
    with pytest.raises(PaymentError) as err:
        parse_method(text)
    assert isinstance(err.value, ValueError)
    assert "bkash, nagad, rocket, bank, cash, other" in str(err.value)


# --- validation ----------------------------------------------------------------------------


def test_new_payment() -> None:
    p = pay("500", "bKash", reference="  TRX123 ", note=" first\npayment ")
    assert p == Payment(id="P1", group_id=GID, amount=D("500.00"), method="bkash", reference="TRX123",
                        note="first\npayment", at=T0, by="admin")
    assert p.imported_id == ""
    assert pay(D("0.10")).amount == D("0.10")
    assert pay(7).amount == D("7.00")
    assert pay("10000000").amount == D("10000000.00")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 500.0}, "amount"),  # floats lose money
        ({"amount": 0.1}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "10000000.01"}, "amount"),
        ({"amount": "1e30"}, "amount"),
        ({"amount": "10.005"}, "amount"),  # more than poisha: not exact
        ({"amount": "abc"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "Infinity"}, "amount"),
        ({"amount": ""}, "amount"),
        ({"method": "visa"}, "method"),
        ({"reference": "x" * 101}, "reference"),
        ({"reference": "TRX\n123"}, "reference"),
        ({"reference": "TRX\u200b123"}, "reference"),
        ({"note": "n" * 501}, "note"),
        ({"note": "bad\x00note"}, "note"),
        ({"payment_id": ""}, "id"),
        ({"group_id": " "}, "group_id"),
        ({"by": ""}, "by"),
        ({"at": float("nan")}, "at"),
        ({"at": "2025-11-24"}, "at"),
    ],
)
def test_new_payment_validation_names_the_field(changes: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = dict(payment_id="P1", group_id=GID, amount="500", method="cash", reference="",
                                note="", at=T0, by="admin")
    args.update(changes)
    with pytest.raises(PaymentError, match=rf"^{field}:"):
        new_payment(**args)


def test_limits_are_inclusive() -> None:
    assert pay(reference="r" * 100).reference == "r" * 100
    assert pay(note="n" * 500).note == "n" * 500
    assert pay("0.01").amount == D("0.01")


# --- stored shape --------------------------------------------------------------------------


def test_record_round_trip() -> None:
    p = pay("23.5", "nagad", reference="TX9", note="partial", at=T0 + 0.25)
    record = to_record(p)
    assert record == {"id": "P1", "importedId": "", "groupId": GID, "amount": "23.50", "method": "nagad",
                      "reference": "TX9", "note": "partial", "at": "2025-11-24T16:00:00.250+00:00", "by": "admin"}
    assert from_record(orjson.loads(orjson.dumps(record))) == p


def test_record_matches_the_importers_shape() -> None:
    """What storage/importer.py writes as {"t": "payment", "g": gid, "v": ...}, key for key."""
    imported = {"id": "P7", "importedId": "seed:42", "groupId": GID, "amount": "1500.00", "method": "bkash",
                "reference": "8N7A6B5C", "note": "recorded by Karim in the seed", "at": to_iso(T0),
                "by": "system:import"}
    p = from_record(imported)
    assert p == Payment(id="P7", group_id=GID, amount=D("1500.00"), method="bkash", reference="8N7A6B5C",
                        note="recorded by Karim in the seed", at=T0, by="system:import", imported_id="seed:42")
    assert to_record(p) == imported
    assert list(to_record(p)) == list(imported)  # same keys, same order


def test_imported_payment_without_a_date_round_trips() -> None:
    imported = {"id": "P8", "importedId": "seed:noid-ab12", "groupId": GID, "amount": "10.00", "method": "other",
                "reference": "", "note": "method: upay", "at": None, "by": "system:import"}
    p = from_record(imported)
    assert p.at == 0.0
    assert to_record(p) == imported


def test_from_record_is_lenient_but_needs_id_and_amount() -> None:
    p = from_record({"id": "P1", "amount": "5", "method": "VISA", "at": 1_764_000_000_000})  # epoch ms
    assert (p.amount, p.method, p.at, p.reference, p.group_id) == (D("5.00"), "other", T0, "", "")
    for bad in ({"amount": "5"}, {"id": "P1"}, {"id": "P1", "amount": "x"}, {"id": "P1", "amount": 5.5},
                {"id": "P1", "amount": "0"}, {"id": "P1", "amount": "-3"}, {"id": "P1", "amount": [1]}):
        with pytest.raises(PaymentError):
            from_record(bad)


# --- dues ----------------------------------------------------------------------------------


def test_billed_counts_approved_and_completed_only() -> None:
    orders = [order("A1", 7), order("A2", 10, status=Status.COMPLETED), order("A3", 100, status=Status.PENDING),
              order("A4", 100, status=Status.PROCESSING), order("A5", 100, status=Status.CANCELLED),
              order("A6", 100, status=Status.DELETED)]
    assert billed(orders) == D("39.10")  # 7 × 2.30 + 10 × 2.30
    assert billed_records(order_record(o) for o in orders) == D("39.10")
    assert billed([]) == D("0.00") and billed_records([]) == D("0.00")


def test_billed_records_skips_what_it_cannot_read() -> None:
    good = order_record(order("A1", 7))
    records: list[Any] = [
        good,
        {**good, "amount": "garbage"},
        {**good, "amount": 16.1},  # a float: not money
        {"status": "approved"},  # no amount
        {**good, "status": "COMPLETED", "amount": "0.90"},  # the seed wrote upper case
        "not a record",
        None,
    ]
    assert billed_records(records) == D("17.00")


def test_payments_of_ten_poisha_sum_exactly() -> None:
    payments = [pay("0.10", pid=f"P{i}") for i in range(1, 1001)]
    assert paid(payments) == D("100.00")
    assert paid_records(to_record(p) for p in payments) == D("100.00")
    assert due(D("100.00"), paid(payments)) == 0


def test_paid_records_skips_unreadable() -> None:
    assert paid_records([to_record(pay("5")), {"id": "P9"}, {"amount": "3"}, "x"]) == D("5.00")  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("billed_", "paid_", "expected"),
    [("16.10", "0", "16.10"), ("16.10", "16.10", "0.00"), ("16.10", "20", "-3.90"), ("0", "500", "-500")],
)
def test_due_may_be_negative_credit(billed_: str, paid_: str, expected: str) -> None:
    assert due(D(billed_), D(paid_)) == D(expected)


# --- ledger --------------------------------------------------------------------------------

H = 3600.0


def test_ledger_running_balance_exact() -> None:
    orders = [order("A1", 7, at=T0 + 1 * H), order("A2", 10, "2.35", at=T0 + 3 * H),
              order("A3", 3, "0.335", status=Status.COMPLETED, at=T0 + 5 * H),
              order("A4", 50, status=Status.PENDING, at=T0 + 2 * H),
              order("A5", 50, status=Status.CANCELLED, at=T0 + 2 * H)]
    payments = [pay("10.00", pid="P1", at=T0 + 2 * H), pay("0.10", "nagad", pid="P2", at=T0 + 4 * H, reference="T2"),
                pay("0.10", "cash", pid="P3", at=T0 + 4.5 * H)]
    opening, lines = ledger([order_record(o) for o in orders], [to_record(p) for p in payments])
    assert opening == 0
    assert [(ln.kind, ln.ref, ln.debit, ln.credit, ln.balance) for ln in lines] == [
        ("order", "A1", D("16.10"), D("0"), D("16.10")),  # 7 × 2.30
        ("payment", "P1", D("0"), D("10.00"), D("6.10")),
        ("order", "A2", D("23.50"), D("0"), D("29.60")),  # 10 × 2.35
        ("payment", "P2", D("0"), D("0.10"), D("29.50")),
        ("payment", "P3", D("0"), D("0.10"), D("29.40")),
        ("order", "A3", D("1.01"), D("0"), D("30.41")),  # 3 × 0.335 = 1.005 → 1.01
    ]
    assert lines[0].at == T0 + 1 * H  # approvedAt
    assert lines[0].description == "A1 .7 × 2.30"
    assert lines[3].description == "Nagad T2" and lines[4].description == "Cash"
    total_billed = billed_records(order_record(o) for o in orders)
    assert lines[-1].balance == due(total_billed, paid(payments)) == D("30.41")
    assert all(isinstance(ln, LedgerLine) for ln in lines)


def test_ledger_window_and_opening_balance() -> None:
    orders = [order(f"A{i}", 7, at=T0 + i * H) for i in range(1, 6)]  # 16.10 each, at 1h … 5h
    payments = [pay("20", pid="P1", at=T0 + 2.5 * H), pay("100", pid="P2", at=T0 + 6 * H)]
    records = [order_record(o) for o in orders], [to_record(p) for p in payments]
    opening, lines = ledger(*records, since=T0 + 3 * H, until=T0 + 5 * H)
    assert opening == D("12.20")  # 2 × 16.10 − 20
    assert [(ln.ref, ln.balance) for ln in lines] == [("A3", D("28.30")), ("A4", D("44.40"))]  # 5h excluded
    opening, lines = ledger(*records, since=T0 + 10 * H)
    assert opening == D("-39.50") and lines == []  # 5 × 16.10 − 120: credit
    opening, lines = ledger(*records)
    assert lines[-1].balance == D("-39.50") and lines[-1].kind == "payment"


def test_ledger_counts_an_order_when_it_was_approved_not_posted() -> None:
    o = order("A1", 10, "100", at=T0)
    late = transition(replace(o, status=Status.PENDING, approved_at=None), Action.APPROVE, by="a", now=T0 + 9 * H)
    opening, lines = ledger([order_record(late)], [], since=T0 + H)
    assert opening == 0 and [(ln.at, ln.debit) for ln in lines] == [(T0 + 9 * H, D("1000.00"))]


def test_ledger_skips_unreadable_records_and_puts_undated_payments_first() -> None:
    good = order_record(order("A1", 7))
    undated = {**to_record(pay("5", pid="P9")), "at": None}
    opening, lines = ledger([good, {**good, "id": "A2", "amount": "x"}, {"status": "approved"}],
                            [undated, {"id": "P8"}], since=T0 - H)
    assert opening == D("-5.00")
    assert [(ln.ref, ln.balance) for ln in lines] == [("A1", D("11.10"))]


def test_ledger_same_time_orders_before_payments() -> None:
    opening, lines = ledger([order_record(order("A1", 7, at=T0))], [to_record(pay("16.10", pid="P1", at=T0))])
    assert [(ln.kind, ln.balance) for ln in lines] == [("order", D("16.10")), ("payment", D("0.00"))]


def test_a_voided_payment_is_kept_but_counts_nothing() -> None:
    from domain.payments import from_record, new_payment, paid, paid_records, to_record, void

    p = new_payment(payment_id="PA1", group_id="g", amount="4000", method="cash", at=1_764_000_000.0,
                    by="admin:rana", client_key="form-1")
    with pytest.raises(PaymentError, match="reason"):
        void(p, by="admin:rana", reason="  ", at=1_764_000_100.0)
    v = void(p, by="admin:rana", reason="typed 4000 for 400", at=1_764_000_100.0)
    with pytest.raises(PaymentError, match="already void"):
        void(v, by="admin:rana", reason="again", at=1_764_000_200.0)
    record = to_record(v)
    assert (record["voidedBy"], record["voidReason"], record["clientKey"]) == ("admin:rana", "typed 4000 for 400", "form-1")
    assert from_record(record) == v
    assert paid([p, v]) == Decimal("4000.00") and paid([v]) == Decimal("0.00")
    assert paid_records([record, to_record(p)]) == Decimal("4000.00")
    assert "voidedAt" not in to_record(p) and "clientKey" not in to_record(replace(p, client_key=""))


@pytest.mark.parametrize(("value", "said"), [
    ("-5", "amount: must be more than 0"),
    ("0", "amount: must be more than 0"),
    ("1e2", "amount: not a number: '1e2'"),
    ("१००", "amount: not a number: '१००'"),
    ("12.345", "amount: at most two decimal places (poisha)"),
    ("20000000", "amount: at most 1,00,00,000"),
])
def test_a_payment_amount_is_refused_in_one_clear_sentence(value: str, said: str) -> None:
    with pytest.raises(PaymentError) as info:
        check_amount(value)
    assert str(info.value) == said


def test_a_payment_amount_may_be_typed_in_bengali_digits() -> None:
    assert check_amount("৫০০.৫০") == Decimal("500.50")
