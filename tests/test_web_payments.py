"""Payments, ledgers, the daily report and the CSV exports through the JSON API, over the
in-memory bridge that runs the real payment rules (domain.payments) and queries (storage.queries)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import csv
import io
from decimal import Decimal
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from actors.messages import (
    CommandDone,
    GetDailyReport,
    GetLedger,
    ListPayments,
    QueryResult,
    RecordPayment,
)
from domain.orders import Action
from domain.records import PaymentRecord
from tests.fake_bridge import PASSWORD, FakeBridge, bridge_error, login, make_config, panel_client
from web.bridge import BridgeError, ThespianBridge
from web.routes import payments as payment_routes

NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24T16:00:00Z, 22:00 in Dhaka
ALPHA = "120363000000000001@g.us"
BETA = "120363000000000002@g.us"
BENGALI = "রহিম স্টোর"
DAY = 86400


pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_group("Alpha Resellers", rate="100", group_id=ALPHA)
    b.add_group(BENGALI, rate="2.30", group_id=BETA)
    b.add_order(ALPHA, 10, user_name="Rahim", created_at=NOW - 3600, actions=(Action.APPROVE,))  # A1: 1000.00
    b.add_order(ALPHA, 25, user_name="Karim", created_at=NOW - 1800)  # A2: pending, not billed
    b.clock.t = NOW - 2 * DAY  # B1 was posted and approved two days ago
    b.add_order(BETA, 5, user_name="সুমি", actions=(Action.APPROVE, Action.COMPLETE))  # B1: 11.50
    b.clock.t = NOW
    b.add_order(BETA, 7, user_name="Sumi", created_at=NOW - 600, actions=(Action.APPROVE,))  # B2: 16.10
    return b


@pytest.fixture
async def client(tmp_path: Any, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(tmp_path)
    bridge.add_user("admin", PASSWORD)
    async with panel_client(config, bridge) as c:
        yield c


@pytest.fixture
async def token(client: TestClient[Any, Any]) -> str:
    return await login(client)


async def pay(client: TestClient[Any, Any], token: str, body: Any, status: int = 201) -> dict[str, Any]:
    resp = await client.post("/api/payments", json=body, headers={"X-CSRF-Token": token})
    data = await resp.json()
    assert resp.status == status, data
    return data


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    resp = await client.get(path)
    data = await resp.json()
    assert resp.status == status, (path, data)
    return data


def read_csv(raw: bytes) -> list[list[str]]:
    assert raw.startswith("\ufeff".encode()), raw[:10]  # the BOM: Excel then reads UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8")[1:], newline="")))


# --- recording --------------------------------------------------------------------------------


async def test_record_a_payment_and_the_due_drops(client: TestClient[Any, Any], token: str,
                                                  bridge: FakeBridge) -> None:
    groups = (await get_json(client, "/api/groups"))["groups"]
    assert [(g["billed"], g["paid"], g["due"]) for g in groups] == [("1000.00", "0.00", "1000.00"),
                                                                   ("27.60", "0.00", "27.60")]
    body = await pay(client, token, {"group_id": ALPHA, "amount": "400", "method": "bKash",
                                     "reference": " 9XK2LM3P ", "note": "first part"})
    assert body == {"payment": {"id": "PA1", "group_id": ALPHA, "group_name": "Alpha Resellers",
                                "amount": "400.00", "method": "bkash", "reference": "9XK2LM3P",
                                "note": "first part", "at": "2025-11-24T22:00:00.000+06:00",
                                "by": "admin:admin", "imported_id": "",
                                "voided_at": None, "voided_by": "", "void_reason": ""},
                    "due": "600.00"}
    assert bridge.calls[-1] == ("record_payment", ALPHA, "400", "bKash", "9XK2LM3P", "first part", "admin:admin", "",
                                False)
    # A whole number is exact too; methods by their Bengali names; poisha kept exactly.
    assert (await pay(client, token, {"group_id": ALPHA, "amount": 100, "method": "নগদ"}))["due"] == "500.00"
    second = await pay(client, token, {"group_id": BETA, "amount": "27.59", "method": "বিকাশ", "reference": ""})
    assert second["payment"]["id"] == "PB1" and second["payment"]["method"] == "bkash"
    assert second["payment"]["group_name"] == BENGALI and second["due"] == "0.01"
    overpaid = await pay(client, token, {"group_id": BETA, "amount": "0.51", "method": "cash"})
    assert overpaid["due"] == "-0.50"  # an advance
    groups = (await get_json(client, "/api/groups"))["groups"]
    assert [(g["paid"], g["due"]) for g in groups] == [("500.00", "500.00"), ("28.10", "-0.50")]


async def test_list_payments_newest_first_with_filters(client: TestClient[Any, Any], token: str,
                                                       bridge: FakeBridge) -> None:
    bridge.add_payment(ALPHA, "100", "bkash", reference="T1", at=NOW - 3 * DAY)  # PA1, 2025-11-21
    bridge.add_payment(BETA, "5.50", "nagad", reference="T2", at=NOW - DAY)  # PB1, 2025-11-23
    bridge.add_payment(ALPHA, "200", "cash", at=NOW - 60)  # PA2, 2025-11-24 21:59

    async def ids(query: str) -> list[str]:
        return [p["id"] for p in (await get_json(client, "/api/payments" + query))["payments"]]

    body = await get_json(client, "/api/payments")
    assert body["total"] == 3 and [p["id"] for p in body["payments"]] == ["PA2", "PB1", "PA1"]
    newest = body["payments"][0]
    assert newest["at"] == "2025-11-24T21:59:00.000+06:00" and newest["amount"] == "200.00"
    assert newest["method"] == "cash" and newest["group_name"] == "Alpha Resellers"
    assert await ids(f"?group={ALPHA}") == ["PA2", "PA1"]
    assert await ids("?since=2025-11-23") == ["PA2", "PB1"]
    assert await ids("?since=2025-11-21&until=2025-11-23") == ["PB1", "PA1"]
    assert await ids("?until=2025-11-21") == ["PA1"]  # a date is the whole day in Dhaka
    assert await ids("?limit=1&offset=1") == ["PB1"]
    assert (await get_json(client, "/api/payments?limit=1"))["total"] == 3
    assert [c for c in bridge.calls if c[0] == "list_payments"][-1][1] == {
        "group": "", "since": None, "until": None, "limit": 1, "offset": 0}


BAD_PAYMENTS = [
    (b'{"group_id": "G", "amount": 23.5, "method": "bkash"}', "float"),
    (b'{"group_id": "G", "amount": 1e3, "method": "bkash"}', "float"),
    (b'{"group_id": "G", "amount": "abc", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": "-5", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": "0", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": "10.001", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": "10000001", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": "1e999999", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": "NaN", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": true, "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": ["5"], "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": "", "method": "bkash"}', "amount"),
    (b'{"group_id": "G", "amount": "5", "method": "paypal"}', "method"),
    (b'{"group_id": "G", "amount": "5", "method": 3}', "method"),
    (b'{"group_id": "G", "amount": "5"}', "method"),
    (b'{"amount": "5", "method": "bkash"}', "group_id"),
    (b'{"group_id": "", "amount": "5", "method": "bkash"}', "group_id"),
    (b'{"group_id": 7, "amount": "5", "method": "bkash"}', "group_id"),
    (b'{"group_id": "G", "amount": "5", "method": "bkash", "reference": "' + b"R" * 101 + b'"}', "reference"),
    (b'{"group_id": "G", "amount": "5", "method": "bkash", "reference": "TRX\\u0000"}', "reference"),
    (b'{"group_id": "G", "amount": "5", "method": "bkash", "reference": 12345}', "reference"),
    (b'{"group_id": "G", "amount": "5", "method": "bkash", "note": "' + b"n" * 501 + b'"}', "note"),
    (b'{"group_id": "G", "amount": "5", "method": "bkash", "note": "a\\u202eb"}', "note"),
    (b'{"group_id": "G", "amount": "5", "method": "bkash", "trxid": "X"}', "trxid"),
    (b'{"group_id": "G", "amount": "5", "method": "bkash", "by": "someone"}', "by"),
    (b'{"group_id": "G", "amount": "5"', "malformed JSON"),
    (b"[1]", "JSON object"),
    (b"", "JSON object"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_PAYMENTS)
async def test_bad_payment_is_400_naming_the_field(client: TestClient[Any, Any], token: str, bridge: FakeBridge,
                                                   body: bytes, mentions: str) -> None:
    before = bridge.snapshot()
    resp = await client.post("/api/payments", data=body.replace(b'"G"', f'"{ALPHA}"'.encode()),
                             headers={"X-CSRF-Token": token, "Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    assert resp.content_type == "application/json"
    assert mentions in (await resp.json())["error"]
    assert bridge.snapshot() == before
    assert not [c for c in bridge.calls if c[0] == "record_payment"]


async def test_float_amount_refusal_says_why(client: TestClient[Any, Any], token: str) -> None:
    body = await pay(client, token, {"group_id": ALPHA, "amount": 23.5, "method": "bkash"}, status=400)
    assert "floats lose money" in body["error"] and "decimal string" in body["error"]


async def test_what_the_group_actor_refuses_is_passed_on(client: TestClient[Any, Any], token: str,
                                                         bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GroupActor checks again; its 400 and 404 reach the client as they are."""
    before = bridge.snapshot()
    body = await pay(client, token, {"group_id": "999@g.us", "amount": "5", "method": "bkash"}, status=404)
    assert body == {"error": "no group 999@g.us"}

    async def refuse(*args: Any, **kwargs: Any) -> CommandDone:
        return CommandDone("x", 400, error="amount: over the group's limit")

    monkeypatch.setattr(bridge, "record_payment", refuse)
    body = await pay(client, token, {"group_id": ALPHA, "amount": "5", "method": "bkash"}, status=400)
    assert body == {"error": "amount: over the group's limit"}
    assert bridge.snapshot() == before


async def test_payments_list_bad_input(client: TestClient[Any, Any], token: str) -> None:
    for query, mentions in [("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"),
                            ("offset=-1", "offset"), ("since=yesterday", "since"), ("until=2025-13-01", "until"),
                            ("since=2025-11-24&until=2025-11-01", "since"), ("grup=x", "grup"),
                            ("group=a&group=b", "group")]:
        body = await get_json(client, f"/api/payments?{query}", status=400)
        assert mentions in body["error"], query
    assert await get_json(client, "/api/payments?group=nope@g.us", status=404) == {"error": "no group nope@g.us"}


# --- ledger -----------------------------------------------------------------------------------


async def test_ledger_lines_with_the_running_due(client: TestClient[Any, Any], token: str,
                                                 bridge: FakeBridge) -> None:
    bridge.add_payment(ALPHA, "300", "bkash", reference="TRX1", at=NOW - 1200)
    bridge.clock.advance(60)
    await client.post("/api/orders/A2/approve", headers={"X-CSRF-Token": token})  # 2500.00 at 22:01
    ledger = await get_json(client, f"/api/groups/{ALPHA}/ledger")
    assert ledger["group_id"] == ALPHA and ledger["group_name"] == "Alpha Resellers"
    assert ledger["opening"] == "0.00"
    assert [(x["kind"], x["ref"], x["debit"], x["credit"], x["balance"]) for x in ledger["lines"]] == [
        ("payment", "PA1", "0.00", "300.00", "-300.00"),  # paid in advance
        ("order", "A1", "1000.00", "0.00", "700.00"),
        ("order", "A2", "2500.00", "0.00", "3200.00"),
    ]
    assert ledger["lines"][0]["description"] == "bKash TRX1"
    assert ledger["lines"][1]["description"] == "A1 .10 × 100.00"
    assert [x["at"] for x in ledger["lines"]] == ["2025-11-24T21:40:00.000+06:00", "2025-11-24T22:00:00.000+06:00",
                                                  "2025-11-24T22:01:00.000+06:00"]
    assert (ledger["billed"], ledger["paid"], ledger["due"]) == ("3500.00", "300.00", "3200.00")
    # A range: what came before is the opening balance.
    ranged = await get_json(client, f"/api/groups/{ALPHA}/ledger?since=2025-11-24T22:00:30")
    assert ranged["opening"] == "700.00"
    assert [(x["ref"], x["balance"]) for x in ranged["lines"]] == [("A2", "3200.00")]
    assert ranged["due"] == "3200.00"  # the group's due is always all of it
    early = await get_json(client, f"/api/groups/{ALPHA}/ledger?until=2025-11-24T21:50")
    assert [x["ref"] for x in early["lines"]] == ["PA1"] and early["lines"][0]["balance"] == "-300.00"
    # The range's own sums add up: opening + billed − paid = closing.
    assert ranged["period"] == {"billed": "2500.00", "paid": "0.00", "closing": "3200.00"}
    assert early["period"] == {"billed": "0.00", "paid": "300.00", "closing": "-300.00"}
    assert ledger["period"] == {"billed": "3500.00", "paid": "300.00", "closing": "3200.00"}


async def test_ledger_of_an_imported_payment_without_a_time(client: TestClient[Any, Any], token: str,
                                                            bridge: FakeBridge) -> None:
    bridge.db.apply(PaymentRecord(BETA, {"id": "P9", "importedId": "old-7", "groupId": BETA,
                                         "amount": "10.00", "method": "bkash", "reference": "",
                                         "note": "", "at": None, "by": "system:import"}))
    ledger = await get_json(client, f"/api/groups/{BETA}/ledger")
    first = ledger["lines"][0]
    assert (first["ref"], first["at"], first["balance"]) == ("P9", None, "-10.00")
    assert ledger["due"] == "17.60"
    listed = (await get_json(client, "/api/payments"))["payments"]
    assert listed[-1]["id"] == "P9" and listed[-1]["at"] is None and listed[-1]["imported_id"] == "old-7"


async def test_ledger_errors(client: TestClient[Any, Any], token: str) -> None:
    assert (await get_json(client, "/api/groups/nope@g.us/ledger", status=404))["error"] == "no group nope@g.us"
    for query, mentions in [("since=soon", "since"), ("since=2025-11-24&until=2025-11-23", "since"),
                            ("day=2025-11-24", "day")]:
        assert mentions in (await get_json(client, f"/api/groups/{ALPHA}/ledger?{query}", status=400))["error"]


# --- daily report -----------------------------------------------------------------------------


async def test_daily_report(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    bridge.add_payment(ALPHA, "250.25", "bkash")
    bridge.add_payment(BETA, "11.50", "nagad", at=NOW - 2 * DAY)
    today = await get_json(client, "/api/reports/daily")
    assert today["day"] == "2025-11-24"
    assert today["groups"] == [
        {"group_id": ALPHA, "name": "Alpha Resellers", "code": "A", "orders": 2, "diamonds": 10,
         "revenue": "1000.00", "payments": "250.25", "due": "749.75"},
        {"group_id": BETA, "name": BENGALI, "code": "B", "orders": 1, "diamonds": 7, "revenue": "16.10",
         "payments": "0.00", "due": "16.10"},
    ]
    assert today["totals"] == {"orders": 3, "diamonds": 17, "revenue": "1016.10", "payments": "250.25"}
    assert bridge.calls[-1] == ("daily_report", "")
    before = await get_json(client, "/api/reports/daily?day=2025-11-22")
    assert before["day"] == "2025-11-22"
    assert before["totals"] == {"orders": 1, "diamonds": 5, "revenue": "11.50", "payments": "11.50"}
    assert bridge.calls[-1] == ("daily_report", "2025-11-22")
    for query in ("day=yesterday", "day=2025-13-01", "day=2025-1-1", "day=2025-11-24T00:00", "days=1",
                  "day=1&day=2"):
        assert "day" in (await get_json(client, f"/api/reports/daily?{query}", status=400))["error"], query
    # A day far outside the ledger's years (it once hung 10 s and overflowed in the actors):
    # refused at once, the actors never asked.
    asked = len(bridge.calls)
    for far in ("9999-12-31", "0001-01-01", "1969-12-31", "2200-01-01"):
        error = (await get_json(client, f"/api/reports/daily?day={far}", status=400))["error"]
        assert error == f"day: {far!r} is outside 1970–2199", error
    assert len(bridge.calls) == asked
    assert (await get_json(client, "/api/reports/daily?day=2199-12-31"))["day"] == "2199-12-31"


# --- CSV exports ------------------------------------------------------------------------------


async def test_orders_csv(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    resp = await client.get("/api/export/orders.csv")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="orders.csv"'
    assert resp.headers["Cache-Control"] == "no-store"
    raw = await resp.read()
    assert "সুমি".encode() in raw and BENGALI.encode() in raw  # UTF-8, not escaped
    rows = read_csv(raw)
    assert rows[0] == list(payment_routes.ORDER_COLUMNS)
    by_id = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert [r[0] for r in rows[1:]] == ["B1", "A1", "A2", "B2"]  # oldest first
    b1 = by_id["B1"]
    assert (b1["created_at"], b1["group_name"], b1["user_name"], b1["diamonds"], b1["rate"], b1["amount"],
            b1["status"], b1["recovered"]) == ("2025-11-22 22:00:00", BENGALI, "সুমি", "5", "2.30", "11.50",
                                               "completed", "false")
    assert by_id["A1"]["approved_at"] == "2025-11-24 22:00:00" and by_id["A2"]["approved_at"] == ""
    assert sum(Decimal(r["amount"]) for r in by_id.values()) == Decimal("3527.60")

    resp = await client.get(f"/api/export/orders.csv?group={BETA}&since=2025-11-23&until=2025-11-24")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="orders-B-2025-11-23-2025-11-24.csv"'
    assert [r[0] for r in read_csv(await resp.read())[1:]] == ["B2"]


async def test_payments_csv_exact_money_and_defused_text(client: TestClient[Any, Any], token: str,
                                                         bridge: FakeBridge) -> None:
    bridge.add_payment(BETA, "27.60", "bkash", reference="8N7A6S5D", note="পুরো বাকি", at=NOW - DAY)
    bridge.add_payment(ALPHA, "0.01", "cash", note='=HYPERLINK("http://evil.example")', at=NOW - 30)
    bridge.add_payment(ALPHA, "999999.99", "bank", reference="+8801700000000", note="a,b \"quoted\"\nline")
    resp = await client.get("/api/export/payments.csv")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="payments.csv"'
    rows = read_csv(await resp.read())
    assert rows[0] == list(payment_routes.PAYMENT_COLUMNS)
    assert rows[1] == ["PB1", "2025-11-23 22:00:00", BETA, BENGALI, "27.60", "27.60", "bkash", "8N7A6S5D",
                       "পুরো বাকি", "admin:setup", "", "", "", ""]
    assert rows[2][:9] == ["PA1", "2025-11-24 21:59:30", ALPHA, "Alpha Resellers", "0.01", "0.01", "cash", "",
                           "'=HYPERLINK(\"http://evil.example\")"]
    assert rows[3][4:9] == ["999999.99", "999999.99", "bank", "'+8801700000000", "a,b \"quoted\"\nline"]
    assert len(rows) == 4
    # A voided payment stays listed, says so, and counts 0: the `counted` column sums right.
    assert (await bridge.void_payment("PA2", "typed 999999.99 for 99.99", "admin:rana")).status == 200
    rows = read_csv(await (await client.get("/api/export/payments.csv")).read())
    voided = dict(zip(rows[0], rows[3]))
    assert (voided["id"], voided["amount"], voided["counted"], voided["voided_by"], voided["void_reason"]) == \
        ("PA2", "999999.99", "0.00", "admin:rana", "typed 999999.99 for 99.99")
    assert voided["voided_at"] == "2025-11-24 22:00:00"
    assert sum(Decimal(dict(zip(rows[0], r))["counted"]) for r in rows[1:]) == Decimal("27.61")
    resp = await client.get(f"/api/export/payments.csv?group={ALPHA}&since=2025-11-24")
    assert [r[0] for r in read_csv(await resp.read())[1:]] == ["PA1", "PA2"]


async def test_exports_page_through_everything(client: TestClient[Any, Any], token: str,
                                               bridge: FakeBridge) -> None:
    for i in range(1203):
        bridge.add_order(ALPHA, 1 + i % 50, created_at=NOW - 7 * DAY + i)
    for i in range(501):
        bridge.add_payment(BETA, f"{i + 1}.{i % 100:02d}", "nagad", at=NOW - 5 * DAY + i)
    bridge.calls.clear()
    rows = read_csv(await (await client.get("/api/export/orders.csv")).read())[1:]
    assert len(rows) == 1203 + 4 and len({r[0] for r in rows}) == len(rows)
    pages = [c[1] for c in bridge.calls if c[0] == "list_orders"]
    assert [(p["limit"], p["offset"]) for p in pages] == [(500, 0), (500, 500), (500, 1000)]
    rows = read_csv(await (await client.get("/api/export/payments.csv")).read())[1:]
    assert len(rows) == 501
    assert sum(Decimal(r[4]) for r in rows) == sum(Decimal(f"{i + 1}.{i % 100:02d}") for i in range(501))
    assert [r[0] for r in rows[:2]] == ["PB1", "PB2"]


async def test_an_order_arriving_while_exporting_is_listed_once(client: TestClient[Any, Any], token: str,
                                                                bridge: FakeBridge,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(600):
        bridge.add_order(ALPHA, 3, created_at=NOW - 7 * DAY + i)
    real = bridge.list_orders

    async def with_an_arrival(**filters: Any) -> QueryResult:
        if filters["offset"] == 500:  # a new order shifts everything one place down
            bridge.add_order(BETA, 9, created_at=NOW)
        return await real(**filters)

    monkeypatch.setattr(bridge, "list_orders", with_an_arrival)
    rows = read_csv(await (await client.get("/api/export/orders.csv")).read())[1:]
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == 604


async def test_export_errors(client: TestClient[Any, Any], token: str) -> None:
    for kind in ("orders", "payments"):
        for query, status, mentions in [("since=never", 400, "since"), ("status=pending", 400, "status"),
                                        ("since=2025-11-24&until=2025-11-20", 400, "since"),
                                        ("group=nope@g.us", 404, "nope@g.us")]:
            resp = await client.get(f"/api/export/{kind}.csv?{query}")
            assert resp.status == status and resp.content_type == "application/json", (kind, query)
            assert mentions in (await resp.json())["error"]


# --- no login, silent actors ------------------------------------------------------------------

ROUTES = [("GET", "/api/payments"), ("POST", "/api/payments"), ("GET", f"/api/groups/{ALPHA}/ledger"),
          ("GET", "/api/reports/daily"), ("GET", "/api/export/orders.csv"), ("GET", "/api/export/payments.csv")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_anonymous_is_401(client: TestClient[Any, Any], bridge: FakeBridge, method: str, path: str) -> None:
    resp = await client.request(method, path, json={"group_id": ALPHA, "amount": "5", "method": "bkash"})
    assert resp.status == 401 and "error" in await resp.json()
    assert not bridge.db.payments


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_silent_actor_system_is_503(client: TestClient[Any, Any], token: str, bridge: FakeBridge,
                                          method: str, path: str) -> None:
    bridge.fail = bridge_error()
    resp = await client.request(method, path, json={"group_id": ALPHA, "amount": "5", "method": "bkash"},
                                headers={"X-CSRF-Token": token})
    assert resp.status == 503 and "not answering" in (await resp.json())["error"]


# --- the bridge to the actors -----------------------------------------------------------------


class _Handle:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, Any]] = []

    def ask(self, target: Any, msg: Any, timeout: Any) -> Any:
        self.sent.append((target, msg))
        if isinstance(msg, RecordPayment):
            return CommandDone(msg.request_id, 200, result={"payment": {}, "due": "0.00"})
        return QueryResult(msg.request_id, 200, {})


class _System:
    def __init__(self) -> None:
        self.handle = _Handle()

    def private(self) -> Any:
        return contextlib.nullcontext(self.handle)


async def test_thespian_bridge_asks_the_supervisor() -> None:
    system = _System()
    bridge = ThespianBridge(system, "SUPERVISOR", workers=1, timeout=1)
    try:
        done = await bridge.record_payment(ALPHA, "500", "bkash", "TRX", "note", "admin:nasrin")
        assert done.status == 200
        await bridge.list_payments(group=ALPHA, since=1.0, until=None, limit=500, offset=500)
        await bridge.ledger(ALPHA, 2.0, 3.0)
        await bridge.daily_report("2025-11-24")
    finally:
        await asyncio.to_thread(bridge.close)
    targets = {target for target, _ in system.handle.sent}
    assert targets == {"SUPERVISOR"}
    record, listing, ledger, report = (msg for _, msg in system.handle.sent)
    assert isinstance(record, RecordPayment)
    assert (record.group_id, record.amount, record.method, record.reference, record.note, record.by) == \
        (ALPHA, "500", "bkash", "TRX", "note", "admin:nasrin")
    assert isinstance(listing, ListPayments)
    assert (listing.group, listing.since, listing.until, listing.limit, listing.offset) == (ALPHA, 1.0, None, 500, 500)
    assert isinstance(ledger, GetLedger) and (ledger.group_id, ledger.since, ledger.until) == (ALPHA, 2.0, 3.0)
    assert isinstance(report, GetDailyReport) and report.day == "2025-11-24"
    assert len({m.request_id for _, m in system.handle.sent}) == 4


class _StalledHandle(_Handle):
    """An actor system that answers nothing (stopped, overloaded)."""

    def ask(self, target: Any, msg: Any, timeout: Any) -> Any:
        self.sent.append((target, msg))
        time.sleep(timeout.total_seconds())
        return None


async def test_requests_queued_behind_a_stalled_system_give_up_on_their_own_deadline() -> None:
    """Each request has its timeout from when it was made: ten pages asked of a stalled system
    all answer within the timeout, not one timeout after another."""
    system = _System()
    system.handle = _StalledHandle()
    bridge = ThespianBridge(system, "SUPERVISOR", workers=1, timeout=0.3)
    try:
        results = await asyncio.gather(*(bridge.ledger(ALPHA) for _ in range(4)), return_exceptions=True)
    finally:
        await asyncio.to_thread(bridge.close)
    assert all(isinstance(r, BridgeError) for r in results), results
    assert len(system.handle.sent) <= 2  # the rest were past their deadline before a worker was free


async def test_a_retried_api_payment_is_recorded_once(client: Any, token: str) -> None:
    c = client
    body = {"group_id": ALPHA, "amount": "500", "method": "bkash", "reference": "TRX1"}
    headers = {"X-CSRF-Token": token, "Idempotency-Key": "order-77-payment"}
    first = await c.post("/api/payments", json=body, headers=headers)
    again = await c.post("/api/payments", json=body, headers=headers)
    assert first.status == again.status == 201
    assert (await first.json())["payment"]["id"] == (await again.json())["payment"]["id"]
    listed = await (await c.get("/api/payments")).json()
    assert [p["reference"] for p in listed["payments"]].count("TRX1") == 1


async def test_the_same_reference_twice_is_refused_until_confirmed(client: Any, token: str,
                                                                   bridge: FakeBridge) -> None:
    first = await pay(client, token, {"group_id": ALPHA, "amount": "500", "method": "bkash", "reference": "9XK2LM3P"})
    again = {"group_id": ALPHA, "amount": "300", "method": "nagad", "reference": " 9xk2lm3p "}
    refused = await pay(client, token, again, status=409)
    assert "9xk2lm3p" in refused["error"] and "PA1" in refused["error"]
    assert refused["duplicate_of"] == first["payment"]  # the earlier payment, as the API shows payments
    assert len(bridge.db.payments) == 1 and bridge.due(ALPHA) == 500
    # Another group's payment may carry the same reference; an empty reference is never a duplicate.
    assert (await pay(client, token, {**again, "group_id": BETA}))["payment"]["id"] == "PB1"
    for _ in range(2):
        await pay(client, token, {"group_id": ALPHA, "amount": "1", "method": "cash", "reference": ""})
    # Confirmed: recorded all the same.
    confirmed = await pay(client, token, {**again, "confirm_duplicate": True})
    assert confirmed["payment"]["reference"] == "9xk2lm3p" and bridge.due(ALPHA) == 198
    assert bridge.calls[-1][-1] is True
    # A voided payment no longer counts as the earlier one.
    for pid in ("PA1", "PA4"):
        resp = await client.post(f"/api/payments/{pid}/void", json={"reason": "typo"}, headers={"X-CSRF-Token": token})
        assert resp.status == 200
    assert (await pay(client, token, again))["payment"]["id"] == "PA5"
    for bad in ("yes", 1, None):
        error = (await pay(client, token, {**again, "confirm_duplicate": bad}, status=400))["error"]
        assert error.startswith("confirm_duplicate:"), bad


async def test_a_mistaken_payment_is_voided_not_erased(client: Any, token: str) -> None:
    c = client
    headers = {"X-CSRF-Token": token}
    made = await (await c.post("/api/payments", json={"group_id": ALPHA, "amount": "4000", "method": "cash"},
                               headers=headers)).json()
    pid = made["payment"]["id"]
    assert (await c.post(f"/api/payments/{pid}/void", json={"reason": " "}, headers=headers)).status == 400
    assert (await c.post(f"/api/payments/{pid}/void", json={"reason": "x"})).status == 403  # no CSRF
    voided = await c.post(f"/api/payments/{pid}/void", json={"reason": "typed 4000 for 400"}, headers=headers)
    assert voided.status == 200
    data = await voided.json()
    assert data["payment"]["void_reason"] == "typed 4000 for 400" and data["payment"]["voided_at"].endswith("+06:00")
    assert Decimal(data["due"]) == Decimal(made["due"]) + Decimal("4000")
    assert (await c.post(f"/api/payments/{pid}/void", json={"reason": "again"}, headers=headers)).status == 409
    assert (await c.post("/api/payments/PZ99/void", json={"reason": "x"}, headers=headers)).status == 404
    listed = await (await c.get("/api/payments")).json()
    assert any(p["id"] == pid and p["voided_at"] for p in listed["payments"])
