"""The player to top up (issue 12) through the JSON API, over the in-memory bridge: `player_id`
in the order list, the order, command answers and live events; `q` finds an order by its player;
the orders CSV has a `player_id` column right after the user columns. Old records without the
field read as "" everywhere."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client
from tests.test_web_live import open_stream, read_events
from web.routes import payments as payment_routes
from web.serialize import order_json

NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24 22:00 in Dhaka
ALPHA = "120363000000000001@g.us"
GAME_ID = "576515275"
PHONE = "+8801712345678"

pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_group("Alpha Resellers", rate="2.30", group_id=ALPHA)
    b.add_order(ALPHA, 50, user_name="Rahim", created_at=NOW - 400, player_id=GAME_ID)  # A1
    b.add_order(ALPHA, 100, user_name="Karim", created_at=NOW - 300, player_id=PHONE)  # A2
    b.add_order(ALPHA, 10, user_name="Sumi", created_at=NOW - 200)  # A3: a `.10` order, no player
    b.add_order(ALPHA, 20, user_name="Old", created_at=NOW - 100, player_id=None)  # A4: a record from before
    return b


@pytest.fixture
async def client(tmp_path: Any, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(tmp_path)
    bridge.add_user("admin", PASSWORD)
    async with panel_client(config, bridge) as c:
        yield c


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    resp = await client.get(path)
    assert resp.status == status, (path, await resp.text())
    return await resp.json()


async def test_the_list_and_the_order_name_the_player(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(client)
    bridge.record("A4").pop("playerId", None)  # a record written before orders had players
    assert "playerId" not in bridge.record("A4") and bridge.record("A3")["playerId"] == ""
    listed = (await get_json(client, "/api/orders"))["orders"]
    assert [(o["id"], o["player_id"]) for o in listed] == [("A4", ""), ("A3", ""), ("A2", PHONE), ("A1", GAME_ID)]
    # Next to the user it came from.
    keys = list(listed[0])
    assert keys.index("player_id") == keys.index("user_name") + 1
    for oid, player in (("A1", GAME_ID), ("a2", PHONE), ("A3", ""), ("A4", "")):
        detail = await get_json(client, f"/api/orders/{oid}")
        assert detail["player_id"] == player, oid
    assert (await get_json(client, "/api/orders/A1"))["text"] == f"{GAME_ID}\n50"


async def test_a_command_keeps_and_answers_the_player(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(client)
    resp = await client.post("/api/orders/A1/approve", headers={"X-CSRF-Token": token})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["order"]["player_id"] == GAME_ID
    assert bridge.record("A1")["status"] == "completed" and bridge.record("A1")["playerId"] == GAME_ID
    assert (await get_json(client, "/api/orders/A1"))["player_id"] == GAME_ID


async def test_search_finds_an_order_by_its_player(client: TestClient[Any, Any]) -> None:
    await login(client)

    async def ids(q: str) -> list[str]:
        return [o["id"] for o in (await get_json(client, f"/api/orders?q={q}"))["orders"]]

    assert await ids(GAME_ID) == ["A1"]
    assert await ids("65152") == ["A1"]  # a part of it, as typed from a screenshot
    assert await ids("%2B8801712345678") == ["A2"]  # "+" sent encoded
    assert await ids("01712") == ["A4", "A3", "A2", "A1"]  # also every sender's phone (user_alt)
    assert await ids("999999999") == []
    # Bad input is a clear 400, as for any search.
    error = (await get_json(client, "/api/orders?q=" + "5" * 201, status=400))["error"]
    assert error.startswith("q:"), error


async def test_the_orders_csv_has_the_player_after_the_user(client: TestClient[Any, Any]) -> None:
    await login(client)
    resp = await client.get("/api/export/orders.csv")
    assert resp.status == 200
    raw = (await resp.read()).decode("utf-8")
    assert raw.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(raw[1:], newline="")))
    assert rows[0][:8] == ["id", "created_at", "group_id", "group_name", "user_id", "user_name", "player_id",
                           "diamonds"]
    assert rows[0] == list(payment_routes.ORDER_COLUMNS)
    by_id = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    # A phone number starts with "'" so a spreadsheet keeps it text (and its "+"), as any cell
    # that starts like a formula.
    assert {oid: r["player_id"] for oid, r in by_id.items()} == {
        "A1": GAME_ID, "A2": "'" + PHONE, "A3": "", "A4": ""}
    assert (by_id["A1"]["user_name"], by_id["A1"]["diamonds"], by_id["A1"]["amount"]) == ("Rahim", "50", "115.00")


async def test_a_live_order_carries_its_player(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(client)
    resp = await open_stream(client, bridge)
    bridge.add_order(ALPHA, 75, user_name="Nadia", player_id="1234567890")  # A5, arriving now
    events = await read_events(resp, 1)
    assert [(name, data["id"], data["player_id"], data["diamonds"]) for name, data in events] == [
        ("order", "A5", "1234567890", 75)]
    resp.close()
    await asyncio.sleep(0.05)


def test_odd_stored_player_values_read_as_text() -> None:
    """What an import may have stored: a number, null, or nothing at all."""
    from zoneinfo import ZoneInfo
    tz = ZoneInfo("Asia/Dhaka")
    assert order_json({"record": {"id": "A1", "playerId": 576515275}}, tz)["player_id"] == GAME_ID
    assert order_json({"record": {"id": "A1", "playerId": None}}, tz)["player_id"] == ""
    assert order_json({"record": {"id": "A1"}}, tz)["player_id"] == ""
