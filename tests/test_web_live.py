"""Live updates: /api/events streams order changes as server-sent events."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient


from actors.messages import Changed, CommandDone, OrderCommand, Subscribe
from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client
from tests.harness import ALICE, GROUP, ChatBot


pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
async def client(tmp_path: Any) -> AsyncIterator[tuple[TestClient[Any, Any], FakeBridge]]:
    bridge = FakeBridge()
    group = bridge.add_group("Alpha", group_id="120363000000000001@g.us")
    bridge.add_order(group, 10)
    config = make_config(tmp_path)
    bridge.add_user("admin", PASSWORD)
    async with panel_client(config, bridge) as c:
        yield c, bridge


async def read_events(resp: Any, count: int, timeout: float = 5.0) -> list[tuple[str, Any]]:
    """Parse `count` named events from a text/event-stream response."""
    events: list[tuple[str, Any]] = []
    name = ""
    async def run() -> None:
        nonlocal name
        while len(events) < count:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                events.append((name, json.loads(line[6:])))
                name = ""
    await asyncio.wait_for(run(), timeout)
    return events


async def test_an_approval_reaches_open_pages_as_it_happens(client: tuple[TestClient[Any, Any], FakeBridge]) -> None:
    c, bridge = client
    token = await login(c)
    resp = await c.get("/api/events")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    assert (await resp.content.readline()).startswith(b"retry:")
    approved = await c.post("/api/approve/A1", headers={"X-CSRF-Token": token})
    assert approved.status == 200
    events = await read_events(resp, 2)
    assert [(name, data["id"], data["status"]) for name, data in events] == [
        ("order", "A1", "approved"), ("order", "A1", "completed")]
    assert events[0][1]["created_at"].endswith("+06:00")
    resp.close()
    await asyncio.sleep(0.05)
    assert not bridge.live.clients  # the closed stream unsubscribed


async def open_stream(c: TestClient[Any, Any], bridge: FakeBridge) -> Any:
    """GET /api/events, read up to its first line, once the panel has subscribed it."""
    resp = await c.get("/api/events")
    await resp.content.readline()
    for _ in range(50):
        await asyncio.sleep(0.01)
        if bridge.live.clients:
            break
    return resp


async def test_a_client_that_falls_behind_is_told_to_resync(client: tuple[TestClient[Any, Any], FakeBridge]) -> None:
    c, bridge = client
    await login(c)
    resp = await open_stream(c, bridge)
    [queue] = bridge.live.clients
    for i in range(queue.maxsize + 5):  # more than the client's queue holds
        bridge.live.publish(Changed(i, (), ()))
    events = await read_events(resp, 1)
    assert events == [("resync", {})]
    resp.close()


async def test_a_logout_ends_the_open_stream(client: tuple[TestClient[Any, Any], FakeBridge]) -> None:
    """Logged out in another tab: the open Orders page must not go on receiving orders."""
    c, bridge = client
    token = await login(c)
    resp = await open_stream(c, bridge)
    assert (await c.post("/api/logout", headers={"X-CSRF-Token": token})).status == 200
    bridge.live.publish(Changed(1, (), ("some-group",)))  # the next change is not sent
    rest = await asyncio.wait_for(resp.content.read(), 5)  # the stream ends
    assert b"some-group" not in rest
    await asyncio.sleep(0.05)
    assert not bridge.live.clients


async def test_the_stream_needs_a_login(client: tuple[TestClient[Any, Any], FakeBridge]) -> None:
    c, _ = client
    assert (await c.get("/api/events")).status == 401


def test_the_persistence_actor_pushes_every_durable_change_to_subscribers(bot: ChatBot) -> None:
    # The test's own handle subscribes, so answers arrive among the changes: tell, then collect.
    bot.asys.tell(bot.supervisor, Subscribe("live-1"))
    received = bot.pump()
    bot.fake.deliver([bot.message(GROUP, ALICE, ".10")])
    received += bot.pump()
    bot.asys.tell(bot.supervisor, OrderCommand("approve-1", "A1", "approve", "admin:test"))
    received += bot.pump(0.3)
    assert any(isinstance(a, CommandDone) and a.status == 200 for a in received)
    changes = [m for m in received if isinstance(m, Changed)]
    statuses = [v["record"]["status"] for c in changes for v in c.orders]
    assert statuses[0] == "pending" and statuses[-1] == "completed" and "approved" in statuses
    # Never backwards: once approved, no change shows the order pending again.
    assert "pending" not in statuses[statuses.index("approved"):]
    assert [c.seq for c in changes] == list(range(changes[0].seq, changes[0].seq + len(changes)))


async def test_shutdown_ends_open_streams_at_once(tmp_path: Any) -> None:
    bridge = FakeBridge()
    config = make_config(tmp_path)
    bridge.add_user("admin", PASSWORD)
    started = 0.0
    async with panel_client(config, bridge) as c:
        await login(c)
        resp = await c.get("/api/events")
        await resp.content.readline()
        started = asyncio.get_running_loop().time()
    # Leaving the block shut the server down; an open stream must not have held it up.
    assert asyncio.get_running_loop().time() - started < 2.0
