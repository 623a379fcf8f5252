"""The panel's JSON API over an in-memory bridge that runs the real order rules (SPEC §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, AsyncIterator

import pytest
from prometheus_client import REGISTRY
from aiohttp.test_utils import TestClient

from domain.orders import Action, Issue
from tests.fake_bridge import PASSWORD, FakeBridge, bridge_error, login, make_config, panel_client
from web.routes import status as status_routes

DHAKA = "+06:00"
NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24T16:00:00Z, 22:00 in Dhaka


pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    alpha = b.add_group("Alpha Resellers", rate="100", group_id="120363000000000001@g.us")
    beta = b.add_group("Beta Shop", rate="2.30", group_id="120363000000000002@g.us")
    b.add_order(alpha, 10, user_name="Rahim", created_at=NOW - 3600)  # A1
    b.add_order(alpha, 25, user_name="Karim", created_at=NOW - 1800, actions=(Action.PROCESS,))  # A2
    b.add_order(beta, 5, user_name="Sumi", created_at=NOW - 86400 * 2)  # B1
    b.add_order(beta, 7, user_name="Sumi", created_at=NOW - 600, recovered=True)  # B2
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


def in_dhaka(value: str | None) -> bool:
    return value is not None and value.endswith(DHAKA) and datetime.fromisoformat(value).tzinfo is not None


ORDER_FIELDS = {
    "id", "group_id", "group_name", "user_id", "user_alt", "user_name", "message_id", "diamonds", "rate",
    "amount", "status", "created_at", "processing_at", "approved_at", "completed_at", "cancelled_at",
    "deleted_at", "check_count", "last_checked_at", "issues", "recovered", "delivery",
}


# --- happy paths ----------------------------------------------------------------------------


async def test_login_list_approve_completed(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    resp = await client.post("/api/login", json={"username": "admin", "password": PASSWORD})
    assert resp.status == 200
    body = await resp.json()
    assert body["user"] == "admin" and len(body["csrf_token"]) >= 32
    headers = {"X-CSRF-Token": body["csrf_token"]}

    listed = await (await client.get("/api/orders")).json()
    assert listed["total"] == 4
    assert [o["id"] for o in listed["orders"]] == ["B2", "A2", "A1", "B1"]  # newest first
    a1 = next(o for o in listed["orders"] if o["id"] == "A1")
    assert ORDER_FIELDS <= a1.keys()
    assert a1["status"] == "pending" and a1["diamonds"] == 10
    assert a1["rate"] == "100.00" and a1["amount"] == "1000.00"
    assert a1["created_at"] == "2025-11-24T21:00:00.000+06:00"
    assert a1["approved_at"] is None and a1["check_count"] == 0
    assert a1["group_name"] == "Alpha Resellers" and a1["user_name"] == "Rahim"
    b1 = next(o for o in listed["orders"] if o["id"] == "B1")
    assert b1["rate"] == "2.30" and b1["amount"] == "11.50"
    assert next(o for o in listed["orders"] if o["id"] == "B2")["recovered"] is True

    resp = await client.post("/api/orders/A1/approve", headers=headers)
    assert resp.status == 200
    approved = (await resp.json())["order"]
    assert approved["status"] == "approved" and in_dhaka(approved["approved_at"])
    assert bridge.calls[-1] == ("command", "A1", "approve", "admin:admin")

    detail = await (await client.get("/api/orders/A1")).json()
    assert detail["status"] == "completed"
    assert in_dhaka(detail["completed_at"]) and in_dhaka(detail["delivery"]["confirmed_at"])
    assert detail["delivery"]["attempts"] == 1 and detail["delivery"]["message_id"] == "BOTMSGA1"
    assert [(a["from"], a["to"], a["by"]) for a in detail["audit"]] == [
        (None, "pending", "whatsapp:76210050711676@lid"),
        ("pending", "approved", "admin:admin"),
        ("approved", "completed", "system"),
    ]
    assert all(in_dhaka(a["at"]) for a in detail["audit"])
    assert detail["text"] == ".10" and detail["receipt"]["attempts"] == 0


async def test_every_time_field_uses_the_shop_offset(client: TestClient[Any, Any], token: str,
                                                     bridge: FakeBridge) -> None:
    bridge.set_check("A2", 12, NOW - 5, "processing")
    order = await (await client.get("/api/orders/a2")).json()  # ids are case-insensitive
    assert order["id"] == "A2" and order["check_count"] == 12
    assert order["last_checked_at"] == "2025-11-24T21:59:55.000+06:00"
    for key in ("created_at", "received_at", "processing_at"):
        assert in_dhaka(order[key]), key
    assert order["cancelled_at"] is None and order["deleted_at"] is None


async def test_lifecycle_commands_and_seed_endpoints(client: TestClient[Any, Any], token: str,
                                                     bridge: FakeBridge) -> None:
    h = {"X-CSRF-Token": token}
    resp = await client.post("/api/orders/A1/process", headers=h)
    assert (await resp.json())["order"]["status"] == "processing"
    resp = await client.post("/api/orders/A1/cancel", headers=h)
    assert (await resp.json())["order"]["status"] == "cancelled"
    resp = await client.post("/api/delete/A1", headers=h)
    body = await resp.json()
    assert body["order"]["status"] == "deleted" and in_dhaka(body["order"]["deleted_at"])
    resp = await client.post("/api/approve/B1", headers=h)
    assert resp.status == 200 and (await resp.json())["order"]["status"] == "approved"
    assert bridge.record("B1")["status"] == "completed"
    resp = await client.post("/api/orders/A2/delete", headers=h)
    assert (await resp.json())["order"]["status"] == "deleted"


async def test_filters(client: TestClient[Any, Any], token: str) -> None:
    async def ids(query: str) -> list[str]:
        resp = await client.get("/api/orders" + query)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return [o["id"] for o in body["orders"]]

    assert await ids("?status=pending") == ["B2", "A1", "B1"]
    assert await ids("?status=PENDING,processing") == ["B2", "A2", "A1", "B1"]
    assert await ids("?group=120363000000000001@g.us") == ["A2", "A1"]
    assert await ids("?q=karim") == ["A2"]
    # A date is a whole day in Asia/Dhaka: B1 was at 22:00 on the 22nd there.
    assert await ids("?since=2025-11-22&until=2025-11-22") == ["B1"]
    assert await ids("?since=2025-11-23") == ["B2", "A2", "A1"]
    assert await ids("?until=2025-11-24T21:15:00") == ["A1", "B1"]  # no offset: shop time
    assert await ids("?since=2025-11-24T15:20:00Z") == ["B2", "A2"]
    assert await ids("?limit=2") == ["B2", "A2"]
    assert await ids("?limit=2&offset=2") == ["A1", "B1"]
    body = await (await client.get("/api/orders?limit=1&offset=3")).json()
    assert body["total"] == 4 and len(body["orders"]) == 1
    assert await ids("?limit=500") == ["B2", "A2", "A1", "B1"]


async def test_groups_list_and_patch(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    groups = (await (await client.get("/api/groups")).json())["groups"]
    assert [g["id"] for g in groups] == ["120363000000000001@g.us", "120363000000000002@g.us"]
    alpha = groups[0]
    assert alpha == {
        "id": "120363000000000001@g.us", "name": "Alpha Resellers", "code": "A", "rate": "100.00",
        "rate_set": True, "enabled": True, "auto_approve": False, "auto_approve_max": 0, "due_limit": None,
        "left": False, "left_at": None, "joined_at": "2025-11-24T22:00:00.000+06:00",
        "counts": {"pending": 1, "processing": 1, "approved": 0, "completed": 0, "cancelled": 0, "deleted": 0},
        "orders": 2, "billed": "0.00", "paid": "0.00", "due": "0.00",
    }
    patch = {"rate": "2.50", "enabled": False, "auto_approve": True, "auto_approve_max": 50,
             "due_limit": "5000", "name": "Alpha Prime"}
    resp = await client.patch("/api/groups/120363000000000001@g.us", json=patch, headers={"X-CSRF-Token": token})
    assert resp.status == 200, await resp.text()
    group = (await resp.json())["group"]
    assert group["rate"] == "2.50" and group["enabled"] is False and group["auto_approve"] is True
    assert group["auto_approve_max"] == 50 and group["due_limit"] == "5000.00" and group["name"] == "Alpha Prime"
    assert bridge.calls[-1] == ("update_group", "120363000000000001@g.us", patch, "admin:admin")
    resp = await client.patch("/api/groups/120363000000000002@g.us", json={"rate": 3},
                              headers={"X-CSRF-Token": token})
    assert (await resp.json())["group"]["rate"] == "3.00"
    groups = (await (await client.get("/api/groups")).json())["groups"]
    assert groups[0]["rate"] == "2.50" and groups[1]["rate"] == "3.00"


async def test_reconciliation_report(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    gid = "120363000000000001@g.us"
    stuck = bridge.add_order(gid, 3, created_at=NOW - 7200, issues=(Issue.STUCK_PENDING,))
    bridge.set_check("A1", 3, NOW - 10, "pending")
    bridge.set_check("A2", 12, NOW - 5, "processing")
    bridge.add_cycle(gid, started_at=NOW - 20, checked=3, duration=0.0021)
    bridge.add_cycle(gid, started_at=NOW - 10, checked=4, open_issues=1, new_issues=1, actions=2,
                     duration=0.0042)
    report = await (await client.get("/api/reconciliation")).json()
    assert report["counts"]["pending"] == 4 and report["total"] == 5
    assert report["buckets"] == {"never": 3, "lt5": 1, "lt10": 0, "gte10": 1}
    assert report["issues_found"] == 1
    assert report["issues"] == [{"order_id": stuck, "group_id": gid, "group_name": "Alpha Resellers",
                                 "status": "pending", "issues": ["stuck_pending"],
                                 "created_at": "2025-11-24T20:00:00.000+06:00"}]
    assert report["last_check"] == "2025-11-24T21:59:55.000+06:00"
    newest, oldest = report["cycles"][gid]
    assert newest == {"started_at": "2025-11-24T21:59:50.000+06:00", "checked": 4, "open_issues": 1,
                      "new_issues": 1, "cleared_issues": 0, "actions": 2, "duration_ms": 4.2}
    assert oldest["checked"] == 3


async def test_status(client: TestClient[Any, Any], token: str) -> None:
    body = await (await client.get("/api/status")).json()
    assert body["gateway"]["state"] == "connected" and body["gateway"]["queued"] == 0
    assert {k: body["groups"][k] for k in ("total", "ready", "failed")} == {"total": 2, "ready": 2, "failed": {}}
    assert {a["shard"] for a in body["groups"]["actors"]} == {"leader"}
    assert body["cluster"]["role"] == "" and [s["health"] for s in body["cluster"]["shards"]] == ["connected"]
    assert body["uptime_s"] == 125.5 and body["boot"] == 3 and body["restarts"] == 1
    assert in_dhaka(body["panel"]["started_at"])


async def test_healthz(client: TestClient[Any, Any], bridge: FakeBridge, monkeypatch: pytest.MonkeyPatch) -> None:
    resp = await client.get("/healthz")  # no login needed
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    bridge.started = False
    resp = await client.get("/healthz")
    assert resp.status == 503 and (await resp.json())["status"] == "starting"
    bridge.started, bridge.fail = True, bridge_error()
    resp = await client.get("/healthz")
    assert resp.status == 503 and (await resp.json())["status"] == "down"
    bridge.fail, bridge.delay = None, 1.0
    monkeypatch.setattr(status_routes, "HEALTH_TIMEOUT", 0.1)
    resp = await client.get("/healthz")
    assert resp.status == 503 and (await resp.json())["status"] == "down"
    bridge.delay, bridge.closed = 0.0, True
    resp = await client.get("/healthz")
    assert resp.status == 503


async def test_metrics(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    bridge.queued = 4
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = (await resp.text()).splitlines()
    samples = {name: value for name, _, value in (line.rpartition(" ") for line in lines if not line.startswith("#"))}
    for name, value in (('diamondbot_orders{status="pending"}', 3), ('diamondbot_orders{status="processing"}', 1),
                        ('diamondbot_orders{status="completed"}', 0), ("diamondbot_open_issues", 0),
                        ("diamondbot_gateway_connected", 1), ("diamondbot_outbox_queued", 4),
                        ("diamondbot_groups", 2), ("diamondbot_uptime_seconds", 125.5)):
        assert float(samples[name]) == value, (name, samples.get(name))
    for name in ("diamondbot_orders", "diamondbot_open_issues", "diamondbot_gateway_connected",
                 "diamondbot_outbox_queued", "diamondbot_groups", "diamondbot_uptime_seconds"):
        assert f"# TYPE {name} gauge" in lines and any(x.startswith(f"# HELP {name} ") for x in lines)
    bridge.gateway_state = "reconnecting"
    assert "diamondbot_gateway_connected 0.0" in (await (await client.get("/metrics")).text()).splitlines()
    # The panel's own registry, not prometheus_client's process-wide one (two panels in one
    # process, as in these tests, must not clash).
    assert "diamondbot_orders" not in {m.name for m in REGISTRY.collect()}


# --- errors -----------------------------------------------------------------------------------

GROUP = "/api/groups/120363000000000001@g.us"

BAD_INPUT = [
    ("GET", "/api/orders?limit=abc", None, "limit"),
    ("GET", "/api/orders?limit=100000", None, "limit"),
    ("GET", "/api/orders?limit=501", None, "limit"),
    ("GET", "/api/orders?limit=0", None, "limit"),
    ("GET", "/api/orders?limit=%2B5", None, "limit"),
    ("GET", "/api/orders?limit=99999999999999999999999", None, "limit"),
    ("GET", "/api/orders?offset=-1", None, "offset"),
    ("GET", "/api/orders?offset=1.5", None, "offset"),
    ("GET", "/api/orders?status=shipped", None, "status"),
    ("GET", "/api/orders?status=pending&status=approved", None, "status"),
    ("GET", "/api/orders?since=yesterday", None, "since"),
    ("GET", "/api/orders?until=2025-13-01", None, "until"),
    ("GET", "/api/orders?since=9999-12-31", None, "since"),
    ("GET", "/api/orders?since=2025-11-24&until=2025-11-01", None, "since"),
    ("GET", "/api/orders?stauts=pending", None, "stauts"),
    ("GET", "/api/orders?q=" + "x" * 201, None, "q"),
    ("PATCH", GROUP, b'{"rate": "2.50"', "malformed JSON"),
    ("PATCH", GROUP, b"", "JSON object"),
    ("PATCH", GROUP, b"[1, 2]", "JSON object"),
    ("PATCH", GROUP, b'{"rate": NaN}', "malformed JSON"),
    ("PATCH", GROUP, b'{"rate": 2.3}', "rate"),
    ("PATCH", GROUP, b'{"rate": "abc"}', "rate"),
    ("PATCH", GROUP, b'{"rate": "-1"}', "rate"),
    ("PATCH", GROUP, b'{"rate": true}', "rate"),
    ("PATCH", GROUP, b'{"rate": 123456789012345678901234567890}', "rate"),
    ("PATCH", GROUP, b'{"enabled": "yes"}', "enabled"),
    ("PATCH", GROUP, b'{"auto_approve": 1}', "auto_approve"),
    ("PATCH", GROUP, b'{"auto_approve_max": -1}', "auto_approve_max"),
    ("PATCH", GROUP, b'{"auto_approve_max": "5"}', "auto_approve_max"),
    ("PATCH", GROUP, b'{"due_limit": 1.5}', "due_limit"),
    ("PATCH", GROUP, b'{"name": ""}', "name"),
    ("PATCH", GROUP, b'{"name": 5}', "name"),
    ("PATCH", GROUP, b'{"name": "evil\\u0000name"}', "name"),
    ("PATCH", GROUP, b'{"rate": "1e999999"}', "rate"),
    ("PATCH", GROUP, b'{"due_limit": "-Infinity"}', "due_limit"),
    ("PATCH", GROUP, b'{"colour": "red"}', "colour"),
    ("PATCH", GROUP, b"{}", "nothing to change"),
    ("POST", "/api/login", b'{"username": "admin"}', "strings"),
    ("POST", "/api/login", b'{"username": 1, "password": 2}', "strings"),
    ("POST", "/api/login", b"not json", "malformed JSON"),
]


@pytest.mark.parametrize(("method", "path", "body", "mentions"), BAD_INPUT)
async def test_bad_input_is_400(client: TestClient[Any, Any], token: str, bridge: FakeBridge, method: str,
                                path: str, body: bytes | None, mentions: str) -> None:
    before = bridge.snapshot()
    headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
    resp = await client.request(method, path, data=body, headers=headers)
    assert resp.status == 400, await resp.text()
    assert resp.content_type == "application/json"
    error = (await resp.json())["error"]
    assert mentions in error
    assert bridge.snapshot() == before
    assert not any(c[0] == "update_group" for c in bridge.calls)


async def test_float_rate_refusal_says_why(client: TestClient[Any, Any], token: str) -> None:
    resp = await client.patch(GROUP, data=b'{"rate": 2.3}', headers={"X-CSRF-Token": token})
    assert "float" in (await resp.json())["error"]


async def test_huge_body_is_413(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    before = bridge.snapshot()
    body = b'{"name": "' + b"x" * 200_000 + b'"}'
    resp = await client.patch(GROUP, data=body, headers={"X-CSRF-Token": token})
    assert resp.status == 413 and "error" in await resp.json()
    assert bridge.snapshot() == before


async def test_unknown_ids_are_404(client: TestClient[Any, Any], token: str) -> None:
    h = {"X-CSRF-Token": token}
    for method, path in [("GET", "/api/orders/Z99"), ("GET", "/api/orders/not-an-id"),
                         ("GET", "/api/orders/" + "A" * 100), ("POST", "/api/orders/Z99/approve"),
                         ("POST", "/api/approve/Q7"), ("POST", "/api/delete/nope"),
                         ("PATCH", "/api/groups/999@g.us"), ("GET", "/api/nothing-here"),
                         ("POST", "/api/orders/A1/complete")]:
        resp = await client.request(method, path, json={"rate": "1"}, headers=h)
        assert resp.status == 404, (method, path, await resp.text())
        assert "error" in await resp.json()


async def test_wrong_method_is_405_json(client: TestClient[Any, Any], token: str) -> None:
    resp = await client.get("/api/orders/A1/approve")
    assert resp.status == 405 and "POST" in resp.headers["Allow"]
    assert (await resp.json())["error"] == "method not allowed"


async def test_illegal_transition_is_409_and_changes_nothing(client: TestClient[Any, Any], token: str,
                                                             bridge: FakeBridge) -> None:
    h = {"X-CSRF-Token": token}
    assert (await client.post("/api/orders/A1/approve", headers=h)).status == 200
    before = bridge.snapshot()
    for path in ("/api/orders/A1/approve", "/api/orders/A1/delete", "/api/orders/A1/cancel",
                 "/api/orders/A1/process", "/api/approve/A1"):
        resp = await client.post(path, headers=h)
        assert resp.status == 409, path
        assert "order A1 is completed" in (await resp.json())["error"]
    assert bridge.snapshot() == before


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/orders"), ("GET", "/api/orders/A1"), ("POST", "/api/orders/A1/approve"),
    ("POST", "/api/approve/A1"), ("GET", "/api/groups"), ("PATCH", GROUP), ("GET", "/api/reconciliation"),
    ("GET", "/api/status"), ("GET", "/metrics"),
])
async def test_silent_actor_system_is_503(client: TestClient[Any, Any], token: str, bridge: FakeBridge,
                                          method: str, path: str) -> None:
    bridge.fail = bridge_error()
    resp = await client.request(method, path, json={"rate": "5"}, headers={"X-CSRF-Token": token})
    assert resp.status == 503
    assert "not answering" in (await resp.json())["error"]


async def test_unexpected_error_is_generic_500(client: TestClient[Any, Any], token: str, bridge: FakeBridge,
                                               caplog: pytest.LogCaptureFixture) -> None:
    bridge.fail = KeyError("internal secret detail")
    resp = await client.get("/api/orders")
    assert resp.status == 500
    body = await resp.json()
    assert "secret" not in body["error"] and body["error"].startswith("internal error")
    assert "Traceback" not in await resp.text()
    assert "internal secret detail" in caplog.text  # the traceback is in the log instead
