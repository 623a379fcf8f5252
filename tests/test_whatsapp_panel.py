"""The panel's WhatsApp API (GET /api/whatsapp, GET /api/whatsapp/qr.svg, POST /api/whatsapp/repair)
over the in-memory bridge."""

from __future__ import annotations

import io
from typing import Any, AsyncIterator

import pytest
import segno
from aiohttp.test_utils import TestClient

from domain.chat import ConnectionDetail
from tests.fake_bridge import PASSWORD, FakeBridge, bridge_error, login, make_config, panel_client

NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24T16:00:00Z, 22:00 in Dhaka
QR = "2@Xq9tFv3QbC2pL0,hJkL8mNoPqRsTuVwXyZ0123456789abcdefghi=,K1l2M3n4O5p6Q7r8S9t0U=,aBcDeFgHiJkLmNoP="


pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    return FakeBridge()


@pytest.fixture
async def client(tmp_path: Any, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(tmp_path, **{"gateway.kind": "whatsapp"})
    bridge.add_user("admin", PASSWORD)
    async with panel_client(config, bridge) as c:
        yield c


@pytest.fixture
async def token(client: TestClient[Any, Any]) -> str:
    return await login(client)


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    resp = await client.get(path)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_connected(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    bridge.queued = 3
    assert await get_json(client, "/api/whatsapp") == {
        "kind": "whatsapp", "state": "connected", "detail": "", "qr_available": False, "pair_code": None,
        "expires_at": None, "paused_until": None, "queued": 3,
    }


async def test_pairing_by_qr_shows_the_code_as_svg(client: TestClient[Any, Any], token: str,
                                                   bridge: FakeBridge) -> None:
    bridge.gateway_state = "pairing"
    bridge.gateway_detail = ConnectionDetail(qr=QR, expires_at=NOW + 60)
    data = await get_json(client, "/api/whatsapp")
    assert data["state"] == "pairing" and data["qr_available"] is True and data["pair_code"] is None
    assert data["expires_at"] == "2025-11-24T22:01:00.000+06:00"
    assert QR not in data["detail"] and "Linked devices" in data["detail"]
    resp = await client.get("/api/whatsapp/qr.svg")
    assert resp.status == 200 and resp.content_type == "image/svg+xml"
    svg = await resp.read()
    assert svg.startswith(b"<?xml") and b"<svg" in svg
    assert svg == _svg_of(QR)  # the payload itself, rendered with segno


def _svg_of(payload: str) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(payload).save(buffer, kind="svg", scale=5, border=2, xmldecl=True)
    return buffer.getvalue()


async def test_pairing_by_phone_code(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    bridge.gateway_state = "pairing"
    bridge.gateway_detail = ConnectionDetail(qr=QR, expires_at=NOW + 160, pair_code="ABCD-EFGH")
    data = await get_json(client, "/api/whatsapp")
    assert (data["pair_code"], data["qr_available"]) == ("ABCD-EFGH", True)
    assert data["expires_at"] == "2025-11-24T22:02:40.000+06:00" and "pairing code" in data["detail"]


async def test_no_qr_code_is_a_json_404(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    assert await get_json(client, "/api/whatsapp/qr.svg", 404) == {"error": "no QR code to show now"}
    bridge.gateway_state = "pairing"
    bridge.gateway_detail = ConnectionDetail("nobody scanned the QR code in 5 attempts", expired=True)
    data = await get_json(client, "/api/whatsapp")
    assert data["qr_available"] is False and "nobody scanned" in data["detail"]
    await get_json(client, "/api/whatsapp/qr.svg", 404)


async def test_banned_shows_the_pause(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    bridge.gateway_state = "banned"
    bridge.gateway_detail = ConnectionDetail(expires_at=NOW + 3600, reason="sent too many same message")
    bridge.paused_until, bridge.queued = NOW + 3600, 12
    data = await get_json(client, "/api/whatsapp")
    assert data["state"] == "banned" and "sent too many same message" in data["detail"]
    assert data["expires_at"] == data["paused_until"] == "2025-11-24T23:00:00.000+06:00"
    assert data["queued"] == 12


async def test_plain_details_are_passed_on(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    bridge.gateway_state, bridge.gateway_detail = "stopped", ConnectionDetail("replaced: another instance connected")
    data = await get_json(client, "/api/whatsapp")
    assert data["detail"] == "replaced: another instance connected" and data["expires_at"] is None


async def test_what_to_do_by_hand_shows_beside_the_code(client: TestClient[Any, Any], token: str,
                                                       bridge: FakeBridge) -> None:
    bridge.gateway_state = "pairing"
    bridge.gateway_detail = ConnectionDetail("remove the old device under Linked devices", qr=QR, expires_at=NOW + 60)
    data = await get_json(client, "/api/whatsapp")
    assert data["detail"].startswith("scan the QR code") and data["detail"].endswith("remove the old device under "
                                                                                    "Linked devices")
    assert data["qr_available"] is True and QR not in data["detail"]


async def test_repair(client: TestClient[Any, Any], token: str, bridge: FakeBridge) -> None:
    resp = await client.post("/api/whatsapp/repair", headers={"X-CSRF-Token": token})
    assert resp.status == 200 and await resp.json() == {"ok": True}
    assert ("repair",) in bridge.calls


async def test_repair_needs_the_csrf_token_and_a_login(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    assert (await client.post("/api/whatsapp/repair")).status == 401
    assert (await client.get("/api/whatsapp")).status == 401
    assert (await client.get("/api/whatsapp/qr.svg")).status == 401
    await login(client)
    assert (await client.post("/api/whatsapp/repair")).status == 403
    assert ("repair",) not in bridge.calls


async def test_repair_when_the_bot_does_not_answer(client: TestClient[Any, Any], token: str,
                                                  bridge: FakeBridge) -> None:
    bridge.fail = bridge_error()
    resp = await client.post("/api/whatsapp/repair", headers={"X-CSRF-Token": token})
    assert resp.status == 503 and "error" in await resp.json()
    assert (await client.get("/api/whatsapp")).status == 503


async def test_repair_refused_by_a_transport_without_pairing(client: TestClient[Any, Any], token: str,
                                                            bridge: FakeBridge) -> None:
    bridge.repair_status = 409
    resp = await client.post("/api/whatsapp/repair", headers={"X-CSRF-Token": token})
    assert resp.status == 409 and "nothing to pair" in (await resp.json())["error"]


async def test_staff_see_the_connection_but_not_the_qr_code_or_re_pairing(client: TestClient[Any, Any],
                                                                          bridge: FakeBridge) -> None:
    """Scanning the code or pairing again decides whose WhatsApp the bot is: owners only."""
    bridge.add_user("nasrin", "nasrins-long-password", "staff")
    bridge.gateway_state = "pairing"
    bridge.gateway_detail = ConnectionDetail(qr=QR, expires_at=NOW + 60)
    await login(client)
    owner_page = await (await client.get("/whatsapp")).text()
    assert 'data-qr="/api/whatsapp/qr.svg"' in owner_page
    token = await login(client, "nasrin", "nasrins-long-password")
    page = await (await client.get("/whatsapp")).text()
    assert 'data-qr=""' in page
    assert (await get_json(client, "/api/whatsapp"))["state"] == "pairing"
    assert (await client.get("/api/whatsapp/qr.svg")).status == 403
    assert (await client.post("/api/whatsapp/repair", headers={"X-CSRF-Token": token})).status == 403
    assert "repair" not in [c[0] for c in bridge.calls]
