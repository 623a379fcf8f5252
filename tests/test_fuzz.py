"""SPEC §9 reliability: 10,000 fuzzed chat messages and fuzzed API requests cause no crash and
no 500. Seeded, so a failure is reproducible; every message and request is checked, not sampled.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any, Callable, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp.web_urldispatcher import StaticResource

from actors.messages import GetStatus
from domain.parsing import OrderText, parse_order
from domain.chat import ChatMessage, Source
from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client
from tests.harness import ALICE, BOB, GROUP, GROUP2, T, ChatBot

pytestmark = pytest.mark.usefixtures("cheap_hashes")

ADMIN_PHONE = "8801711111111"
KARIM = "76210050711678@lid"
SENDERS = [ALICE, BOB, KARIM, "8801999999999@s.whatsapp.net"]
PIECES = [".", ".10", ".১০", ".0", ".-5", ".99999999999", ".1e3", ". 25", ".25 pls", "done", "ok", "cancel",
          ".rate 2.30", ".rate x", ".paid 500 bkash TRX1", ".paid -1 cash", ".pending", ".due", ".help", "yes",
          "হ্যাঁ", "💎" * 50, "x" * 3000, "\u200b.10", ".٣", ".१०", "\x00", "", " ", ".10\n.20", "DONE!", "ok।"]


def fuzzed_text(rng: random.Random) -> str:
    text = rng.choice(PIECES)
    roll = rng.random()
    if roll < 0.2:
        text = "".join(rng.choice(".0123456789০১২৩ aAdoneক\n") for _ in range(rng.randint(0, 12)))
    elif roll < 0.3:
        text = text + rng.choice(PIECES)
    elif roll < 0.35:
        text = "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 40)))
    return text


@pytest.fixture
def shop(make_bot: Callable[..., ChatBot]) -> Iterator[ChatBot]:
    # Pacing off: the thousands of answers go out at once (paced, the hourly cap holds them).
    yield make_bot(**{"whatsapp.admins": ADMIN_PHONE, "reconciliation.interval": "50ms", "outbox.min_gap": "0s",
                      "outbox.jitter": "0s", "outbox.per_group_gap": "0s", "outbox.hourly_cap": "1000000"})


def test_ten_thousand_fuzzed_chat_messages_crash_nothing_and_lose_no_order(shop: ChatBot) -> None:
    rng = random.Random(20261125)
    sent: list[ChatMessage] = []
    for batch in range(100):
        messages = []
        for _ in range(100):
            group = rng.choice((GROUP, GROUP2))
            earlier = [m for m in sent[-200:] if m.group_id == group]
            target = rng.choice(earlier).message_id if earlier and rng.random() < 0.3 else ""
            kind = rng.random()
            sender = rng.choice(SENDERS)
            alt = f"{ADMIN_PHONE}@s.whatsapp.net" if rng.random() < 0.1 else ""
            text = fuzzed_text(rng)
            if kind < 0.05 and target:
                m = shop.message(group, sender, text, edits=target, sender_alt=alt)
            elif kind < 0.08 and target:
                m = shop.message(group, sender, "", revokes=target, sender_alt=alt)
            else:
                m = shop.message(group, sender, text, quoted_id=target, sender_alt=alt,
                                 source=rng.choice((Source.LIVE, Source.LIVE, Source.OFFLINE)))
            messages.append(m)
        if batch % 10 == 0:
            messages.append(messages[rng.randrange(len(messages))])  # a duplicate delivery
        shop.fake.deliver(messages)
        shop.pump(0.01)
        sent.extend(messages)
    shop.pump(0.5)

    # Nothing crashed: every group actor is in its first incarnation and ready.
    status = shop.asys.ask(shop.supervisor, GetStatus("s"), T).data
    actors = status["groups"]["actors"]
    assert {a["group_id"] for a in actors} == {GROUP, GROUP2}
    assert all(a["ready"] and a["incarnation"] == 1 for a in actors), actors
    assert status["groups"]["failed"] == {}
    # No order lost or doubled: each order-looking message became at most one order, and every
    # order comes from one of those messages.
    orders = [o for offset in range(0, 10_000, 500) for o in shop.orders(offset=offset)]
    by_message: dict[str, int] = {}
    for o in orders:
        by_message[o["messageId"]] = by_message.get(o["messageId"], 0) + 1
    assert all(n == 1 for n in by_message.values())
    valid = {m.message_id for m in sent if not m.edits and not m.revokes
             and isinstance(parse_order(m.text, 1, 100_000), OrderText)}
    assert set(by_message) <= valid | {m.edits for m in sent if m.edits}
    assert len(orders) > 300  # the fuzz did reach the order path (repeats wait for a "yes")
    # And it still answers.
    shop.say(GROUP, BOB, ".due")
    assert shop.last_reply(GROUP).startswith("💳")


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Any) -> Any:
    bridge = FakeBridge()
    gid = bridge.add_group("Alpha", group_id=GROUP)
    for n in (5, 10, 20):
        bridge.add_order(gid, n)
    bridge.add_payment(gid, "100", "bkash")
    config = make_config(tmp_path / "data")
    bridge.add_user("admin", PASSWORD)
    async with panel_client(config, bridge) as c:
        yield c


JUNK: list[Any] = [None, True, 0, -1, 1.5, 10**30, "", " ", "x" * 5000, "1e3", "-5", "NaN", "১০", "٣",
                   "<script>", "../../etc/passwd", "A1", "PA1", GROUP, [], [1, "a"], {}, {"a": {"b": [None]}}]
FIELDS = ["group_id", "amount", "method", "reference", "note", "reason", "rate", "enabled", "auto_approve",
          "auto_approve_max", "due_limit", "name", "username", "password", "status", "action", "x"]
QUERY = ["status", "group", "q", "since", "until", "limit", "offset", "day", "skip", "next"]


async def test_fuzzed_api_and_page_requests_never_get_a_500(client: TestClient[Any, Any]) -> None:
    rng = random.Random(7)
    token = await login(client)
    app: web.Application = client.server.app  # type: ignore[assignment]
    routes = [(r.method, r.resource.canonical) for r in app.router.routes()  # type: ignore[union-attr]
              if not isinstance(r.resource, StaticResource) and r.method != "HEAD"]
    assert len(routes) > 30
    ids = ["A1", "a2", "Z9", "PA1", "P1", GROUP, "nope@g.us", "", "%00", "x" * 300, "১", "../x"]
    statuses: dict[int, int] = {}
    for i in range(2000):
        method, canonical = rng.choice(routes)
        if canonical in ("/logout", "/api/logout") or canonical.endswith("/stream") or canonical == "/api/events":
            continue  # would end the session or hold the stream open
        path = re.sub(r"\{[^}]+\}", lambda _: rng.choice(ids), canonical)
        query = {k: str(rng.choice(JUNK)) for k in rng.sample(QUERY, rng.randint(0, 3))}
        kw: dict[str, Any] = {"params": query, "allow_redirects": False,
                              "headers": {"X-CSRF-Token": token}}
        if method in ("POST", "PATCH", "PUT", "DELETE"):
            roll = rng.random()
            body = {k: rng.choice(JUNK) for k in rng.sample(FIELDS, rng.randint(0, 5))}
            if roll < 0.4:
                kw["data"] = json.dumps(body if rng.random() < 0.8 else rng.choice(JUNK)).encode()
                kw["headers"]["Content-Type"] = "application/json"
            elif roll < 0.8:
                kw["data"] = {k: str(v)[:2000] for k, v in body.items()} | {"csrf_token": token}
            else:
                kw["data"] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
                kw["headers"]["Content-Type"] = rng.choice(["application/json", "text/plain",
                                                            "application/x-www-form-urlencoded"])
        resp = await client.request(method, path, **kw)
        await resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert resp.status < 500, (method, path, query, kw.get("data"), resp.status)
    assert sum(statuses.values()) > 1500 and 200 in statuses and 400 in statuses, statuses
