"""Every group the bot knows, through the JSON API (issue 12), over the in-memory bridge: groups
with no order yet, with no rate (`rate: null`), that the bot left; a rate set before the first
order; bad patches refused with nothing changed; and every other endpoint (dashboard,
reconciliation, ledger, reports, payments, exports) still answering with such groups about."""

from __future__ import annotations

import csv
import io
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from domain.orders import Action
from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client

NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24T16:00:00Z, 22:00 in Dhaka
HOUR = 3600
ALPHA = "120363000000000001@g.us"  # rate 2.30, orders
FRESH = "120363000000000002@g.us"  # no rate yet, no order: learned before anyone wrote
GONE = "120363000000000003@g.us"  # had orders, the bot left it
OLD = "120363000000000004@g.us"  # a record from before joinedAt, no order

pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_group("Alpha Resellers", rate="2.30", group_id=ALPHA, joined_at=NOW - 48 * HOUR)
    b.add_group("নতুন গ্রুপ", rate=None, group_id=FRESH, joined_at=NOW - HOUR)
    b.add_group("Gone Shop", rate="3", group_id=GONE, joined_at=NOW - 72 * HOUR)
    b.add_group("Old Shop", rate="2.50", group_id=OLD, old_record=True)
    b.add_order(ALPHA, 50, created_at=NOW - 2 * HOUR, actions=(Action.APPROVE, Action.COMPLETE),
                player_id="576515275")  # A1: ৳115 billed
    b.add_order(GONE, 10, created_at=NOW - 50 * HOUR, actions=(Action.APPROVE, Action.COMPLETE))  # C1: ৳30
    b.leave_group(GONE, at=NOW - 30 * HOUR)
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


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    resp = await client.get(path)
    assert resp.status == status, (path, await resp.text())
    return await resp.json()


async def groups_by_id(client: TestClient[Any, Any]) -> dict[str, dict[str, Any]]:
    return {g["id"]: g for g in (await get_json(client, "/api/groups"))["groups"]}


async def patch(client: TestClient[Any, Any], token: str, group_id: str, body: Any) -> Any:
    return await client.patch(f"/api/groups/{group_id}", json=body, headers={"X-CSRF-Token": token})


def read_csv(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8").removeprefix("\ufeff"), newline="")))


# --- the list ----------------------------------------------------------------------------------


async def test_every_known_group_is_listed_with_its_state(client: TestClient[Any, Any], token: str) -> None:
    groups = await groups_by_id(client)
    assert list(groups) == [ALPHA, FRESH, GONE, OLD]  # by code, also those without orders
    fresh = groups[FRESH]
    assert {k: fresh[k] for k in ("name", "code", "rate", "rate_set", "enabled", "left", "left_at", "joined_at",
                                  "orders", "billed", "paid", "due")} == {
        "name": "নতুন গ্রুপ", "code": "B", "rate": None, "rate_set": False, "enabled": True, "left": False,
        "left_at": None, "joined_at": "2025-11-24T21:00:00.000+06:00", "orders": 0, "billed": "0.00",
        "paid": "0.00", "due": "0.00"}
    assert set(fresh["counts"].values()) == {0}
    alpha = groups[ALPHA]
    assert (alpha["rate"], alpha["rate_set"], alpha["left"], alpha["joined_at"]) == (
        "2.30", True, False, "2025-11-22T22:00:00.000+06:00")
    gone = groups[GONE]
    assert (gone["left"], gone["left_at"], gone["rate"], gone["orders"], gone["due"]) == (
        True, "2025-11-23T16:00:00.000+06:00", "3.00", 1, "30.00")  # its account stays
    old = groups[OLD]
    assert (old["joined_at"], old["left"], old["left_at"], old["rate_set"]) == (None, False, None, True)


# --- setting the rate of a group that never had an order --------------------------------------


async def test_the_rate_is_set_before_the_first_order(client: TestClient[Any, Any], token: str,
                                                      bridge: FakeBridge) -> None:
    with pytest.raises(ValueError, match="rate not set"):  # the bot takes no order there yet
        bridge.add_order(FRESH, 10)
    resp = await patch(client, token, FRESH, {"rate": "2.30"})
    assert resp.status == 200, await resp.text()
    group = (await resp.json())["group"]
    assert (group["id"], group["rate"], group["rate_set"], group["joined_at"], group["left"]) == (
        FRESH, "2.30", True, "2025-11-24T21:00:00.000+06:00", False)
    assert bridge.calls[-1] == ("update_group", FRESH, {"rate": "2.30"}, "admin:admin")
    assert (await groups_by_id(client))[FRESH]["rate"] == "2.30"
    # The first order is billed at that rate.
    oid = bridge.add_order(FRESH, 100)
    assert (await get_json(client, f"/api/orders/{oid}"))["amount"] == "230.00"


async def test_other_settings_of_a_group_without_a_rate_leave_it_unset(client: TestClient[Any, Any], token: str,
                                                                       bridge: FakeBridge) -> None:
    resp = await patch(client, token, FRESH, {"enabled": False, "due_limit": "5000", "name": "Fresh"})
    assert resp.status == 200, await resp.text()
    group = (await resp.json())["group"]
    assert (group["rate"], group["rate_set"], group["enabled"], group["due_limit"], group["name"]) == (
        None, False, False, "5000.00", "Fresh")
    assert bridge.db.groups[FRESH].settings["rate"] is None
    assert (await groups_by_id(client))[FRESH]["rate"] is None


async def test_a_left_group_can_still_be_edited(client: TestClient[Any, Any], token: str) -> None:
    resp = await patch(client, token, GONE, {"rate": "3.25"})
    assert resp.status == 200, await resp.text()
    group = (await resp.json())["group"]
    assert (group["rate"], group["left"], group["left_at"]) == ("3.25", True, "2025-11-23T16:00:00.000+06:00")


@pytest.mark.parametrize("body, says", [
    ({"rate": None}, "rate: required"),
    ({"rate": ""}, "rate: required"),
    ({"rate": "0"}, "rate: rate must be a positive number"),
    ({"rate": "-2"}, "rate: rate must be a positive number"),
    ({"rate": "abc"}, "rate: not a number"),
    ({"rate": 2.3}, "rate: send a decimal string"),
    ({"rate": True}, "rate: rate must be written as a decimal string"),
    ({"rate": "2.30", "player": "1"}, "player: not a group setting"),
    ({}, "nothing to change"),
    (["rate", "2.30"], "must be a JSON object"),
])
async def test_a_bad_patch_of_a_group_without_a_rate_changes_nothing(client: TestClient[Any, Any], token: str,
                                                                     bridge: FakeBridge, body: Any,
                                                                     says: str) -> None:
    before, asked = bridge.snapshot(), len(bridge.calls)
    resp = await patch(client, token, FRESH, body)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert says in error, error
    assert bridge.snapshot() == before and len(bridge.calls) == asked  # refused before the actors
    assert (await groups_by_id(client))[FRESH]["rate"] is None


async def test_an_unknown_group_is_404(client: TestClient[Any, Any], token: str) -> None:
    resp = await patch(client, token, "120363999999999999@g.us", {"rate": "2.30"})
    assert resp.status == 404 and "no group" in (await resp.json())["error"]


# --- everything else with such groups about --------------------------------------------------


async def test_the_dashboard_and_reconciliation_answer(client: TestClient[Any, Any], token: str) -> None:
    dash = await get_json(client, "/api/dashboard")
    assert dash["orders"]["total"] == 2 and dash["orders"]["completed"] == 2
    report = await get_json(client, "/api/reconciliation")
    assert report["total"] == 2 and report["open_orders"] == 0


@pytest.mark.parametrize("group_id", [FRESH, OLD])
async def test_the_ledger_of_a_group_without_orders(client: TestClient[Any, Any], token: str,
                                                    group_id: str) -> None:
    ledger = await get_json(client, f"/api/groups/{group_id}/ledger")
    assert (ledger["group_id"], ledger["opening"], ledger["lines"], ledger["due"]) == (group_id, "0.00", [], "0.00")
    ledger = await get_json(client, f"/api/groups/{group_id}/ledger?since=2025-11-01&until=2025-11-30")
    assert ledger["period"] == {"billed": "0.00", "paid": "0.00", "closing": "0.00"}


async def test_a_payment_before_any_order_is_an_advance(client: TestClient[Any, Any], token: str) -> None:
    resp = await client.post("/api/payments", json={"group_id": FRESH, "amount": "500", "method": "bkash"},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["due"] == "-500.00"
    ledger = await get_json(client, f"/api/groups/{FRESH}/ledger")
    assert [(line["kind"], line["credit"], line["balance"]) for line in ledger["lines"]] == [
        ("payment", "500.00", "-500.00")]
    assert (await groups_by_id(client))[FRESH]["due"] == "-500.00"
    payments = await get_json(client, f"/api/payments?group={FRESH}")
    assert [p["group_name"] for p in payments["payments"]] == ["নতুন গ্রুপ"]


async def test_the_daily_report_lists_every_group(client: TestClient[Any, Any], token: str) -> None:
    report = await get_json(client, "/api/reports/daily?day=2025-11-24")
    rows = {g["group_id"]: g for g in report["groups"]}
    assert list(rows) == [ALPHA, FRESH, GONE, OLD]
    assert (rows[FRESH]["orders"], rows[FRESH]["revenue"], rows[FRESH]["due"]) == (0, "0.00", "0.00")
    assert (rows[ALPHA]["orders"], rows[ALPHA]["revenue"]) == (1, "115.00")
    assert (rows[GONE]["orders"], rows[GONE]["revenue"], rows[GONE]["due"]) == (0, "30.00", "30.00")  # approved today
    assert report["totals"]["revenue"] == "145.00"


async def test_exports_of_a_group_without_orders(client: TestClient[Any, Any], token: str) -> None:
    for kind in ("orders", "payments"):
        resp = await client.get(f"/api/export/{kind}.csv?group={FRESH}")
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Disposition"] == f'attachment; filename="{kind}-B.csv"'
        rows = read_csv(await resp.read())
        assert len(rows) == 1 and rows[0][0] == "id"  # the header only
    rows = read_csv(await (await client.get("/api/export/orders.csv")).read())
    assert [r[0] for r in rows[1:]] == ["C1", "A1"]  # the left group's orders stay in the books
