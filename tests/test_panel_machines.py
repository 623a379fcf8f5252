"""The Machines page (issue 16): the shards with their health and where each group runs; an
owner moves a group to another connected shard (with the form's CSRF token), staff only look."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fake_bridge import FakeBridge, login, make_config, panel_client
from tests.test_panel_pages import get_page

pytestmark = pytest.mark.usefixtures("cheap_hashes")

ALPHA, BETA = "120363000000000001@g.us", "120363000000000002@g.us"


def fleet() -> FakeBridge:
    b = FakeBridge()
    b.add_group("Alpha", group_id=ALPHA)
    b.add_group("Beta", group_id=BETA)
    b.placed[BETA] = "b"
    b.cluster = {"role": "leader", "waiting": 0, "shards": [
        {"name": "leader", "live": True, "member": "", "hosts": 2, "since": 1.0, "lost_at": 0.0, "groups": 1, "ready": 1},
        {"name": "b", "live": True, "member": "ActorAddr-(T|10.8.0.2:19500)", "hosts": 2, "since": 2.0, "lost_at": 0.0,
         "groups": 1, "ready": 1},
        {"name": "c", "live": False, "member": "ActorAddr-(T|10.8.0.3:19500)", "hosts": 1, "since": 2.0,
         "lost_at": 9.0, "groups": 0, "ready": 0}]}
    b.add_user("admin", "admin-password-123")
    b.add_user("sam", "staff-password-123", role="staff")
    return b


async def _client(tmp_path: Path, bridge: FakeBridge) -> Any:
    return panel_client(make_config(tmp_path / "data", **{"bot.language": "en"}), bridge)


async def test_the_page_lists_shards_their_health_and_groups(tmp_path: Path) -> None:
    bridge = fleet()
    async with await _client(tmp_path, bridge) as client:
        await login(client, "admin", "admin-password-123")
        html, page = await get_page(client, "/machines")
    rows = {r["data-shard"] for r in page.all("tr") if "data-shard" in r}
    assert rows == {"leader", "b", "c"}
    assert "Connected" in html and "Lost" in html and "10.8.0.2" in html
    assert {r["data-id"] for r in page.all("tr") if "data-id" in r} == {ALPHA, BETA}
    # Only connected shards are offered, never a group's own.
    def offered(group: str) -> list[str]:
        form = html.split(f'data-id="{group}"')[1].split("</form>")[0]
        return [o.split("</option>")[0] for o in form.split("<option>")[1:]]

    assert offered(ALPHA) == ["b"] and offered(BETA) == ["leader"]


async def test_an_owner_moves_a_group_with_the_forms_token(tmp_path: Path) -> None:
    bridge = fleet()
    async with await _client(tmp_path, bridge) as client:
        await login(client, "admin", "admin-password-123")
        html, _ = await get_page(client, "/machines")
        token = html.split('name="csrf_token" value="')[1].split('"')[0]
        resp = await client.post(f"/machines/{ALPHA}", data={"shard": "b"}, allow_redirects=False)
        assert resp.status == 403  # no token: refused before the bot hears of it
        assert not [c for c in bridge.calls if c[0] == "move_group"]
        resp = await client.post(f"/machines/{ALPHA}", data={"shard": "b", "csrf_token": token},
                                 allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert bridge.placed[ALPHA] == "b"
        resp = await client.post(f"/machines/{ALPHA}", data={"shard": "c", "csrf_token": token},
                                 allow_redirects=False)
        assert resp.status == 409  # a lost shard takes nothing
        assert bridge.placed[ALPHA] == "b"


async def test_staff_see_the_machines_but_move_nothing(tmp_path: Path) -> None:
    bridge = fleet()
    async with await _client(tmp_path, bridge) as client:
        token = await login(client, "sam", "staff-password-123")
        html, page = await get_page(client, "/machines")
        assert "Connected" in html and not [f for f in page.all("form", method="post") if f.get("action", "").startswith("/machines/")]
        resp = await client.post(f"/machines/{ALPHA}", data={"shard": "b", "csrf_token": token},
                                 allow_redirects=False)
        assert resp.status == 403
        resp = await client.post(f"/api/groups/{ALPHA}/move", json={"shard": "b"},
                                 headers={"X-CSRF-Token": token})
        assert resp.status == 403
    assert not [c for c in bridge.calls if c[0] == "move_group"]


async def test_one_machine_says_so(tmp_path: Path) -> None:
    bridge = FakeBridge()
    bridge.add_user("admin", "admin-password-123")
    async with await _client(tmp_path, bridge) as client:
        await login(client, "admin", "admin-password-123")
        html, page = await get_page(client, "/machines")
    assert "One machine: every group runs here." in html and not [f for f in page.all("form", method="post") if f.get("action", "").startswith("/machines/")]
