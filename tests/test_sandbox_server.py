"""The sandbox chat server: its API, the bot's socket protocol, and the durability of its data file."""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sandbox.launcher import host_port, listening, start_sandbox, stop_process
from sandbox.server import CLOSE_DISCONNECTED, CLOSE_REPLACED, SANDBOX_KEY, make_app
from sandbox.state import BOT_LID, BOT_NAME, BOT_PHONE, DataFile, encode_line
from tests.browser import browser, open_page, screenshot  # noqa: F401  (fixture)
from tests.e2e import free_port

REPO = Path(__file__).resolve().parents[1]
GROUP_ID = re.compile(r"120363\d{12}@g\.us")
MESSAGE_ID = re.compile(r"3EB0[0-9A-F]{18}")
RAHIM = {"sender": "76210050711676@lid", "sender_alt": "8801712345678@s.whatsapp.net", "sender_name": "Rahim"}


class SandboxProcess:
    """A real `python -m sandbox`, for restarts, SIGTERM and kill -9."""

    def __init__(self, data_file: Path, log_file: Path) -> None:
        self.data_file = data_file
        self.log_file = log_file
        self.port = 0  # the first start picks a free port; restarts reuse it
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "sandbox", "--port", str(self.port),
                "--data-file", str(self.data_file), *extra]

    def start(self) -> None:
        """Start it and wait for its "listening" line."""
        self.close()
        with open(self.log_file, "a") as log:
            self.proc = subprocess.Popen(self.command(), cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        match = re.fullmatch(r"sandbox listening on http://127\.0\.0\.1:(\d+)\n", line)
        if not match:
            self.kill()
            raise AssertionError(f"sandbox did not start: {line!r}\n{self.log_file.read_text()}")
        self.port = int(match[1])

    def stop(self) -> int:
        """SIGTERM; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(10)
        self.close()
        return status

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        """Kill it if it still runs and release its pipe."""
        self.kill()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def run_to_exit(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """Run a start that is expected to fail."""
        return subprocess.run(self.command(*extra), cwd=REPO, capture_output=True, text=True, timeout=15)


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[SandboxProcess]:
    process = SandboxProcess(tmp_path / "sandbox.json", tmp_path / "sandbox.log")
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    client = await open_client(tmp_path / "sandbox.json")
    try:
        yield client
    finally:
        await client.close()


async def open_client(path: Path) -> TestClient:
    data_file = DataFile(path)
    client = TestClient(TestServer(make_app(data_file, data_file.open())))
    await client.start_server()
    return client


async def call(client: Any, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    """One request to a TestClient or ClientSession; the status and the JSON answer."""
    data = kw.pop("data", None if body is None else orjson.dumps(body))
    async with client.request(method, path, data=data, **kw) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        return resp.status, orjson.loads(await resp.read())


async def new_group(client: Any, name: str = "Rahim Store") -> str:
    status, body = await call(client, "POST", "/api/groups", {"name": name})
    assert status == 201
    return body["id"]


async def post(client: Any, group_id: str, text: str, **fields: Any) -> dict[str, Any]:
    status, body = await call(client, "POST", f"/api/groups/{group_id}/messages", {**RAHIM, "text": text, **fields})
    assert status == 201, body
    return body


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def connect_bot(client: Any, groups: list[dict[str, Any]] | None = None
                      ) -> tuple[aiohttp.ClientWebSocketResponse, list[dict[str, Any]]]:
    """Connect as the bot and read hello, the offline queue and offline_done; hello lists the
    groups the bot is in (`groups`, when given, else every group)."""
    if groups is None:
        groups = [{"id": g["id"], "name": g["name"]} for g in (await call(client, "GET", "/api/groups"))[1]]
    ws = await client.ws_connect("/api/bot/connect")
    assert await receive(ws) == {"type": "hello", "bot": {"phone": BOT_PHONE, "lid": BOT_LID, "name": BOT_NAME},
                                 "groups": groups}
    offline = []
    while (frame := await receive(ws))["type"] == "message":
        offline.append(frame)
    assert frame == {"type": "offline_done", "count": len(offline)}
    return ws, offline


# -- public API ------------------------------------------------------------------------------


async def test_groups_are_created_and_listed(client: TestClient) -> None:
    first = await new_group(client, "  Rahim Store  ")
    second = await new_group(client, "নুসরাত টপআপ")
    assert GROUP_ID.fullmatch(first) and GROUP_ID.fullmatch(second) and first != second
    status, groups = await call(client, "GET", "/api/groups")
    assert status == 200
    assert groups == [{"id": first, "name": "Rahim Store", "bot_member": True},
                      {"id": second, "name": "নুসরাত টপআপ", "bot_member": True}]


async def test_messages_are_stored_and_listed_oldest_first(client: TestClient) -> None:
    group = await new_group(client)
    before = int(time.time())
    first = await post(client, group, ".10")
    assert MESSAGE_ID.fullmatch(first["id"]) and isinstance(first["timestamp"], int)
    assert before <= first["timestamp"] <= time.time()
    karim = {"sender": "8801812345678@s.whatsapp.net", "sender_alt": ""}
    second = await post(client, group, "done", quoted_id=first["id"], **karim)
    status, messages = await call(client, "GET", f"/api/groups/{group}/messages")
    assert status == 200
    assert messages == [
        {**RAHIM, "id": first["id"], "text": ".10", "timestamp": first["timestamp"], "from_bot": False,
         "quoted_id": "", "seq": 1},
        {
            "id": second["id"], "sender": "8801812345678@s.whatsapp.net", "sender_alt": "", "sender_name": "Rahim",
            "text": "done", "timestamp": second["timestamp"], "from_bot": False, "quoted_id": first["id"], "seq": 2,
        },
    ]


async def test_limit_returns_the_last_messages(client: TestClient) -> None:
    group = await new_group(client)
    other = await new_group(client, "Other")
    for n in range(55):
        await post(client, group, f".{n + 1}")
    await post(client, other, ".999")
    _, default = await call(client, "GET", f"/api/groups/{group}/messages")
    assert [m["text"] for m in default] == [f".{n}" for n in range(6, 56)]
    _, three = await call(client, "GET", f"/api/groups/{group}/messages?limit=3")
    assert [m["text"] for m in three] == [".53", ".54", ".55"]
    assert [m["seq"] for m in three] == sorted(m["seq"] for m in three)
    _, all_of_them = await call(client, "GET", f"/api/groups/{group}/messages?limit=1000")
    assert len(all_of_them) == 55


async def test_status_counts(client: TestClient) -> None:
    empty = {"bot_connected": False, "groups": 0, "messages": 0, "pending_for_bot": 0}
    assert await call(client, "GET", "/api/status") == (200, empty)
    group = await new_group(client)
    await post(client, group, ".10")
    await call(client, "POST", "/api/bot/send", {"group_id": group, "text": "ok"})
    assert (await call(client, "GET", "/api/status"))[1] == {**empty, "groups": 1, "messages": 2, "pending_for_bot": 1}


TOO_LONG = "x" * 4097
BAD_REQUESTS = [
    # method, path, raw body, status
    ("POST", "/api/groups", b"", 400),
    ("POST", "/api/groups", b"{not json", 400),
    ("POST", "/api/groups", b"[1, 2]", 400),
    ("POST", "/api/groups", b'"name"', 400),
    ("POST", "/api/groups", b"{}", 400),
    ("POST", "/api/groups", b'{"name": 5}', 400),
    ("POST", "/api/groups", b'{"name": "   "}', 400),
    ("POST", "/api/groups", orjson.dumps({"name": "x" * 101}), 400),
    ("POST", "/api/groups", b"\xff\xfe", 400),
    ("POST", "/api/groups/{g}/messages", b"null", 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({"sender_name": "R", "text": ".10"}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "sender": "rahim", "text": ".10"}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "sender": ["x"], "text": ".10"}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({"sender": RAHIM["sender"], "text": ".10"}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "text": ""}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "text": 10}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "text": TOO_LONG}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "text": ".10", "sender_alt": "76210050711676@lid"}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "text": ".10", "quoted_id": 7}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "sender": BOT_LID, "sender_alt": BOT_PHONE, "text": "hi"}), 400),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "text": ".10", "quoted_id": "3EB0000000000000000000"}), 404),
    ("POST", "/api/groups/{g}/messages", orjson.dumps({**RAHIM, "text": ".10", "quoted_id": "{m_other}"}), 404),
    ("POST", "/api/groups/120363000000000000@g.us/messages", orjson.dumps({**RAHIM, "text": ".10"}), 404),
    ("GET", "/api/groups/nope/messages", b"", 404),
    ("GET", "/api/groups/{g}/messages?limit=abc", b"", 400),
    ("GET", "/api/groups/{g}/messages?limit=0", b"", 400),
    ("GET", "/api/groups/{g}/messages?limit=-1", b"", 400),
    ("GET", "/api/groups/{g}/messages?limit=1001", b"", 400),
    ("GET", "/api/groups/{g}/messages?limit=%C2%B2", b"", 400),
    ("POST", "/api/bot/send", b"{}", 400),
    ("POST", "/api/bot/send", orjson.dumps({"group_id": "{g}"}), 400),
    ("POST", "/api/bot/send", orjson.dumps({"group_id": "{g}", "text": TOO_LONG}), 400),
    ("POST", "/api/bot/send", orjson.dumps({"group_id": 1, "text": "hi"}), 400),
    ("POST", "/api/bot/send", orjson.dumps({"group_id": "120363000000000000@g.us", "text": "hi"}), 404),
    ("POST", "/api/bot/send", orjson.dumps({"group_id": "{g}", "text": "hi", "quoted_id": "{m_other}"}), 404),
    ("POST", "/api/control/faults", orjson.dumps({"fail_sends": -1}), 400),
    ("POST", "/api/control/faults", orjson.dumps({"fail_sends": True}), 400),
    ("POST", "/api/control/faults", orjson.dumps({"rate_limit_sends": "3"}), 400),
    ("GET", "/api/bot/connect", b"", 400),  # not a WebSocket upgrade
    ("GET", "/api/nothing-here", b"", 404),
    ("DELETE", "/api/groups", b"", 405),
    ("POST", "/api/groups", b"{" + b" " * 300_000 + b"}", 413),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS)
async def test_bad_input_is_a_json_client_error(
    client: TestClient, method: str, path: str, body: bytes, status: int
) -> None:
    group = await new_group(client)
    other = await new_group(client, "Other")
    in_other = await post(client, other, ".10")
    before = (await call(client, "GET", "/api/status"))[1]
    fill = {"{g}": group, "{m_other}": in_other["id"]}
    for key, value in fill.items():
        path = path.replace(key, value)
        body = body.replace(key.encode(), value.encode())
    got, answer = await call(client, method, path, data=body)
    assert got == status
    assert isinstance(answer, dict) and set(answer) == {"error"} and answer["error"]
    assert (await call(client, "GET", "/api/status"))[1] == before  # nothing was stored


async def test_cross_site_requests_are_refused(client: TestClient) -> None:
    # No auth: a page elsewhere must not post orders or take over the bot's socket.
    evil = {"Origin": "http://evil.example"}
    assert (await call(client, "POST", "/api/groups", {"name": "x"}, headers=evil))[0] == 403
    assert (await call(client, "GET", "/api/groups", headers={"Host": "evil.example:8090"}))[0] == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/bot/connect", headers=evil)
    assert refused.value.status == 403
    same_origin = f"http://127.0.0.1:{client.port}"
    assert (await call(client, "POST", "/api/groups", {"name": "x"}, headers={"Origin": same_origin}))[0] == 201


async def test_chat_page_is_served_under_a_strict_csp(client: TestClient) -> None:
    async with client.get("/") as resp:
        assert resp.status == 200
        html = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "inline script"
    assert "<style" not in html and " style=" not in html, "inline style"
    assert 'charset="utf-8"' in html and "viewport" in html and "Test controls" in html
    for asset in ("app.js", "app.css"):
        async with client.get(f"/static/{asset}") as resp:
            assert resp.status == 200
            source = await resp.text()
            assert "http://" not in source and "https://" not in source, "no CDN: it must work offline"
    app_js = (REPO / "sandbox/static/app.js").read_text()
    assert re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write|\beval\(", app_js) is None


# -- the bot's socket ------------------------------------------------------------------------


async def test_offline_queue_then_offline_done_then_live(client: TestClient) -> None:
    group = await new_group(client, "নুসরাত টপআপ")
    first = await post(client, group, ".10")
    await call(client, "POST", "/api/bot/send", {"group_id": group, "text": "received", "quoted_id": first["id"]})
    second = await post(client, group, ".20")
    ws, offline = await connect_bot(client)
    # The bot's own message is not in its queue, as on WhatsApp.
    assert [(m["id"], m["text"], m["offline"], m["seq"]) for m in offline] == [
        (first["id"], ".10", True, 1), (second["id"], ".20", True, 3),
    ]
    assert offline[0] == {
        "type": "message", "offline": True, "group_id": group, "group_name": "নুসরাত টপআপ", **RAHIM,
        "id": first["id"], "text": ".10", "timestamp": first["timestamp"], "from_bot": False, "quoted_id": "", "seq": 1,
    }
    assert (await call(client, "GET", "/api/status"))[1]["bot_connected"] is True
    third = await post(client, group, ".30", quoted_id=second["id"])
    live = await receive(ws)
    assert (live["id"], live["offline"], live["quoted_id"], live["seq"]) == (third["id"], False, second["id"], 4)
    await call(client, "POST", "/api/bot/send", {"group_id": group, "text": "ok"})
    fourth = await post(client, group, ".40")
    assert (await receive(ws))["id"] == fourth["id"]  # the bot's send in between was not echoed
    await ws.close()


async def test_ack_is_cumulative_clamped_and_survives_restart(tmp_path: Path) -> None:
    client = await open_client(tmp_path / "sandbox.json")
    try:
        group = await new_group(client)
        ids = [(await post(client, group, f".{n}"))["id"] for n in (1, 2, 3)]
        ws, offline = await connect_bot(client)
        assert [m["id"] for m in offline] == ids
        await ws.send_str(orjson.dumps({"type": "ack", "seq": offline[1]["seq"]}).decode())
        # Acking past what it was sent must not swallow a message it never saw.
        later = await post(client, group, ".4")
        await ws.send_str(orjson.dumps({"type": "ack", "seq": 10_000}).decode())
        assert (await receive(ws))["id"] == later["id"]
        await asyncio.sleep(0.2)
        await ws.close()
        status = (await call(client, "GET", "/api/status"))[1]
        assert status["pending_for_bot"] == 0, status
    finally:
        await client.close()
    client = await open_client(tmp_path / "sandbox.json")
    try:
        await post(client, group, ".5")
        ws, offline = await connect_bot(client)
        assert [m["text"] for m in offline] == [".5"]
        await ws.close()
    finally:
        await client.close()


async def test_unacknowledged_messages_come_again(client: TestClient) -> None:
    group = await new_group(client)
    await post(client, group, ".10")
    await post(client, group, ".20")
    ws, offline = await connect_bot(client)
    await ws.send_str(orjson.dumps({"type": "ack", "seq": offline[0]["seq"]}).decode())
    await asyncio.sleep(0.1)
    await ws.close()
    ws, offline = await connect_bot(client)
    assert [m["text"] for m in offline] == [".20"]
    await ws.close()


async def test_bad_frames_from_the_bot_are_answered_not_fatal(client: TestClient) -> None:
    group = await new_group(client)
    ws, _ = await connect_bot(client)
    bad = ("nonsense", "[]", '{"type": "ack"}', '{"type": "ack", "seq": -1}', '{"type": "ack", "seq": true}', '{"type": "hug"}')
    for frame in bad:
        await ws.send_str(frame)
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["error"]
    await ws.send_bytes(b"\x00")
    assert (await receive(ws))["type"] == "error"
    sent = await post(client, group, ".10")
    assert (await receive(ws))["id"] == sent["id"]
    await ws.close()


async def test_second_connection_replaces_the_first(client: TestClient) -> None:
    group = await new_group(client)
    await post(client, group, ".10")
    first, offline = await connect_bot(client)
    assert len(offline) == 1
    second, offline = await connect_bot(client)
    assert len(offline) == 1  # never acknowledged, so the new device gets it too
    closing = await first.receive(timeout=5)
    assert (closing.type, closing.data, closing.extra) == (aiohttp.WSMsgType.CLOSE, CLOSE_REPLACED, "replaced")
    live = await post(client, group, ".20")
    assert (await receive(second))["id"] == live["id"]
    assert (await call(client, "GET", "/api/status"))[1]["bot_connected"] is True
    await second.close()
    await asyncio.sleep(0.05)
    assert (await call(client, "GET", "/api/status"))[1]["bot_connected"] is False


# -- the bot's sends and the test controls ---------------------------------------------------


async def test_bot_send_appends_a_bot_message(client: TestClient) -> None:
    group = await new_group(client)
    order = await post(client, group, ".10")
    text = "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000"
    status, sent = await call(client, "POST", "/api/bot/send", {
        "group_id": group, "text": text, "quoted_id": order["id"],
    })
    assert status == 201 and MESSAGE_ID.fullmatch(sent["id"])
    _, messages = await call(client, "GET", f"/api/groups/{group}/messages?limit=1")
    assert messages == [
        {"id": sent["id"], "sender": BOT_LID, "sender_alt": BOT_PHONE, "sender_name": BOT_NAME, "text": text,
         "timestamp": sent["timestamp"], "from_bot": True, "quoted_id": order["id"], "seq": 2},
    ]


async def test_faults_fail_the_next_sends(client: TestClient) -> None:
    group = await new_group(client)
    assert await call(client, "POST", "/api/control/faults", {"fail_sends": 1, "rate_limit_sends": 2}) == (
        200, {"fail_sends": 1, "rate_limit_sends": 2},
    )
    statuses = []
    for n in range(4):
        async with client.post("/api/bot/send", data=orjson.dumps({"group_id": group, "text": f"t{n}"})) as resp:
            statuses.append(resp.status)
            if resp.status == 429:
                assert resp.headers["Retry-After"] == "1"
    assert statuses == [429, 429, 503, 201]
    _, messages = await call(client, "GET", f"/api/groups/{group}/messages")
    assert [m["text"] for m in messages] == ["t3"]  # failed sends stored nothing
    assert await call(client, "GET", "/api/control/faults") == (200, {"fail_sends": 0, "rate_limit_sends": 0})


async def test_disconnect_control_closes_the_bot_socket(client: TestClient) -> None:
    assert await call(client, "POST", "/api/control/disconnect") == (200, {"disconnected": False})
    ws, _ = await connect_bot(client)
    assert await call(client, "POST", "/api/control/disconnect") == (200, {"disconnected": True})
    closing = await ws.receive(timeout=5)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, CLOSE_DISCONNECTED)
    assert (await call(client, "GET", "/api/status"))[1]["bot_connected"] is False


async def test_concurrent_writes_share_fsyncs(client: TestClient) -> None:
    group = await new_group(client)
    data_file = client.app[SANDBOX_KEY].data_file
    before = data_file.fsyncs
    answers = await asyncio.gather(*(post(client, group, f".{n}") for n in range(1, 201)))
    assert len({a["id"] for a in answers}) == 200
    assert data_file.fsyncs - before < 100, "one fsync per write: no group commit"
    _, messages = await call(client, "GET", f"/api/groups/{group}/messages?limit=1000")
    assert [m["seq"] for m in messages] == list(range(1, 201))


# -- the real process: restarts, crashes, damaged files --------------------------------------


async def test_acks_survive_a_restart_of_the_process(sandbox_process: SandboxProcess) -> None:
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        group = await new_group(http)
        for n in (1, 2, 3):
            await post(http, group, f".{n}")
        ws, offline = await connect_bot(http)
        await ws.send_str(orjson.dumps({"type": "ack", "seq": offline[1]["seq"]}).decode())
        await asyncio.sleep(0.2)
        await ws.close()
    assert sandbox_process.stop() == 0
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        ws, offline = await connect_bot(http)
        assert [m["text"] for m in offline] == [".3"]
        await ws.close()


async def test_kill_9_keeps_every_answered_message(sandbox_process: SandboxProcess) -> None:
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        group = await new_group(http)
        answered = await asyncio.gather(*(post(http, group, f".{n}") for n in range(1, 51)))
        sandbox_process.kill()
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        _, messages = await call(http, "GET", f"/api/groups/{group}/messages?limit=100")
    assert {m["id"] for m in messages} == {a["id"] for a in answered}


def write_log(path: Path, records: list[dict[str, Any]]) -> bytes:
    data = encode_line({"type": "sandbox", "version": 1}) + b"".join(encode_line(r) for r in records)
    path.write_bytes(data)
    return data


GROUP = {"type": "group", "id": "120363123456789012@g.us", "name": "Rahim Store"}


def message(seq: int, text: str) -> dict[str, Any]:
    return {"type": "message", "group_id": GROUP["id"], "seq": seq, "id": f"3EB0{seq:018X}",
            "timestamp": 1_700_000_000 + seq, **RAHIM, "text": text, "from_bot": False, "quoted_id": ""}


async def test_a_torn_last_line_is_dropped_and_kept_aside(sandbox_process: SandboxProcess) -> None:
    whole = write_log(sandbox_process.data_file, [GROUP, message(1, ".10")])
    torn = encode_line(message(2, ".20"))[:-9]
    sandbox_process.data_file.write_bytes(whole + torn)
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        _, messages = await call(http, "GET", f"/api/groups/{GROUP['id']}/messages")
        assert [m["text"] for m in messages] == [".10"]
        await post(http, GROUP["id"], ".30")
    assert sandbox_process.stop() == 0
    assert [p.read_bytes() for p in sandbox_process.data_file.parent.glob("sandbox.json.torn-*")] == [torn]
    sandbox_process.start()  # and the repaired file loads again
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        _, messages = await call(http, "GET", f"/api/groups/{GROUP['id']}/messages")
    assert [m["text"] for m in messages] == [".10", ".30"]


def reopen(path: Path) -> DataFile:
    """Open the data file as a sandbox start does, and close it as a stop does."""
    data_file = DataFile(path)
    data_file.open()
    data_file.close()
    return data_file


@pytest.mark.parametrize("before", [None, b""], ids=["no-file", "empty-file"])
def test_an_empty_sandbox_restarts_without_a_torn_line(tmp_path: Path, before: bytes | None) -> None:
    path = tmp_path / "sandbox.json"
    if before is not None:
        path.write_bytes(before)
    for _ in range(3):
        assert reopen(path).torn_tail is None
    assert path.read_bytes() == encode_line({"type": "sandbox", "version": 1})
    assert list(tmp_path.glob("*.torn-*")) == []


def test_a_torn_header_is_kept_aside_once(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    header = encode_line({"type": "sandbox", "version": 1})
    path.write_bytes(header[:-5])  # killed while writing the header of a new file
    first = reopen(path)
    assert first.torn_tail is not None and first.torn_tail[0] == len(header) - 5
    assert [p.read_bytes() for p in tmp_path.glob("sandbox.json.torn-*")] == [header[:-5]]
    assert reopen(path).torn_tail is None
    assert path.read_bytes() == header
    assert len(list(tmp_path.glob("*.torn-*"))) == 1


def test_a_sandbox_without_messages_restarts_without_a_warning(sandbox_process: SandboxProcess) -> None:
    for _ in range(2):
        sandbox_process.start()
        assert sandbox_process.stop() == 0
    assert "torn" not in sandbox_process.log_file.read_text()
    assert list(sandbox_process.data_file.parent.glob("*.torn-*")) == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda lines: lines[:2] + [b"garbage\n"] + lines[2:], id="garbage-line"),
        pytest.param(lambda lines: lines[:2] + [lines[2].replace(b".10", b".99")] + lines[3:], id="checksum"),
        pytest.param(lambda lines: lines[:2] + [lines[3], lines[2]], id="seq-out-of-order"),
        pytest.param(lambda lines: [b'{"orders": []}\n'] + lines[1:], id="not-a-sandbox-file"),
        pytest.param(lambda lines: [b'{"orders": []}'], id="foreign-file-without-newline"),
    ],
)
def test_a_corrupt_file_refuses_to_start_and_is_left_untouched(sandbox_process: SandboxProcess, damage: Any) -> None:
    good = write_log(sandbox_process.data_file, [GROUP, message(1, ".10"), message(2, ".20")])
    bad = b"".join(damage(good.splitlines(keepends=True)))
    sandbox_process.data_file.write_bytes(bad)
    result = sandbox_process.run_to_exit()
    assert result.returncode == 2
    assert str(sandbox_process.data_file) in result.stderr and "untouched" in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox_process.data_file.read_bytes() == bad
    assert list(sandbox_process.data_file.parent.glob("*.torn-*")) == []


def test_a_second_sandbox_on_the_same_file_is_refused(sandbox_process: SandboxProcess) -> None:
    sandbox_process.start()
    other = SandboxProcess(sandbox_process.data_file, sandbox_process.log_file)
    result = other.run_to_exit()
    assert result.returncode == 2 and "in use" in result.stderr


@pytest.mark.parametrize("module", ["sandbox", "gateway.sandbox"])  # the second is SPEC §8's command
def test_a_public_host_needs_allow_remote(sandbox_process: SandboxProcess, module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--host", "0.0.0.0", "--data-file", str(sandbox_process.data_file)],
        cwd=REPO, capture_output=True, text=True, timeout=15,
    )
    assert result.returncode == 2 and "--allow-remote" in result.stderr
    assert result.stderr.startswith(f"usage: python -m {module} ")
    assert not sandbox_process.data_file.exists()


def test_the_launcher_starts_the_server_from_anywhere_and_stops_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # run.py's autostart: the child runs `python -m sandbox` from the repository, whatever our cwd.
    monkeypatch.chdir(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    proc = start_sandbox(url, tmp_path / "data" / "sandbox.json", log_file=tmp_path / "sandbox.log")
    try:
        assert listening(*host_port(url))
        assert (tmp_path / "data" / "sandbox.json").exists()
    finally:
        stop_process(proc)
    assert proc.returncode == 0
    assert "sandbox listening on" in (tmp_path / "sandbox.log").read_text()


def test_sigint_exits_cleanly(sandbox_process: SandboxProcess) -> None:
    sandbox_process.start()
    assert sandbox_process.proc is not None
    os.kill(sandbox_process.proc.pid, signal.SIGINT)
    assert sandbox_process.proc.wait(10) == 0


def test_append_is_fsynced_before_it_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # kill -9 cannot tell a missing fsync (the page cache survives it); power loss would.
    data_file = DataFile(tmp_path / "sandbox.json")
    data_file.open()
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_size), real_fsync(fd)))
    line = encode_line(GROUP)
    size = data_file.path.stat().st_size
    data_file.append(line)
    data_file.close()
    assert synced == [size + len(line)]


# -- edits and deletes -----------------------------------------------------------------------

EDIT_WINDOW = 15 * 60
DELETE_WINDOW = 60 * 60 * 60  # "about 2 days": 2 days and 12 hours


def message_path(group_id: str, message_id: str) -> str:
    return f"/api/groups/{group_id}/messages/{message_id}"


async def edit_message(client: Any, group_id: str, message_id: str, text: str,
                       sender: str = RAHIM["sender"]) -> tuple[int, Any]:
    return await call(client, "PATCH", message_path(group_id, message_id), {"sender": sender, "text": text})


async def delete_message(client: Any, group_id: str, message_id: str, sender: str = RAHIM["sender"]) -> tuple[int, Any]:
    return await call(client, "DELETE", message_path(group_id, message_id), params={"sender": sender})


async def history(client: Any, group_id: str) -> list[dict[str, Any]]:
    status, messages = await call(client, "GET", f"/api/groups/{group_id}/messages")
    assert status == 200
    return messages


def set_clock(client: TestClient, at: float) -> None:
    client.app[SANDBOX_KEY].clock = lambda: at


async def test_an_edit_and_a_delete_change_the_message_in_history(client: TestClient) -> None:
    group = await new_group(client)
    order = await post(client, group, ".10")
    other = await post(client, group, ".30")
    status, edited = await edit_message(client, group, order["id"], ".20")
    assert status == 200
    assert MESSAGE_ID.fullmatch(edited["id"]) and edited["id"] not in (order["id"], other["id"])
    assert order["timestamp"] <= edited["timestamp"] <= time.time()
    original = {**RAHIM, "id": order["id"], "timestamp": order["timestamp"], "from_bot": False, "quoted_id": "", "seq": 1}
    assert edited["message"] == {**original, "text": ".20", "edited": True}
    # Edited again, in the other form of the sender's id: still the sender.
    status, again = await edit_message(client, group, order["id"], ".25", sender=RAHIM["sender_alt"])
    assert status == 200 and again["message"]["text"] == ".25"
    assert (await history(client, group))[0] == {**original, "text": ".25", "edited": True}

    status, deleted = await delete_message(client, group, order["id"])
    assert status == 200 and MESSAGE_ID.fullmatch(deleted["id"])
    # Deleted for everyone: nothing of its text is left, and "edited" no longer applies.
    assert deleted["message"] == {**original, "text": "", "deleted": True}
    messages = await history(client, group)
    assert messages == [{**original, "text": "", "deleted": True}, {**original, **other, "text": ".30", "seq": 2}]
    # Changes are events for the bot, not messages of the group.
    assert (await call(client, "GET", "/api/status"))[1] == {
        "bot_connected": False, "groups": 1, "messages": 2, "pending_for_bot": 5,
    }


async def test_the_bot_deletes_its_own_message_and_does_not_get_it_back(client: TestClient) -> None:
    group = await new_group(client)
    order = await post(client, group, ".10")
    _, sent = await call(client, "POST", "/api/bot/send", {"group_id": group, "text": "received", "quoted_id": order["id"]})
    status, deleted = await delete_message(client, group, sent["id"], sender=BOT_PHONE)
    assert status == 200 and deleted["message"]["deleted"] is True and deleted["message"]["from_bot"] is True
    assert [(m["text"], m.get("deleted", False)) for m in await history(client, group)] == [(".10", False), ("", True)]
    ws, offline = await connect_bot(client)
    assert [m["id"] for m in offline] == [order["id"]]  # its own delete is not echoed, like its sends
    await ws.close()


async def test_the_edit_window_is_15_minutes_and_the_delete_window_about_2_days(client: TestClient) -> None:
    group = await new_group(client)
    set_clock(client, 1_800_000_000)
    first, second, third = [await post(client, group, f".{n}") for n in (1, 2, 3)]
    assert first["timestamp"] == 1_800_000_000
    set_clock(client, 1_800_000_000 + EDIT_WINDOW)
    assert (await edit_message(client, group, first["id"], ".10"))[0] == 200
    set_clock(client, 1_800_000_000 + EDIT_WINDOW + 1)
    status, answer = await edit_message(client, group, second["id"], ".20")
    assert status == 409 and "15 minutes" in answer["error"]
    set_clock(client, 1_800_000_000 + DELETE_WINDOW)
    assert (await delete_message(client, group, second["id"]))[0] == 200
    set_clock(client, 1_800_000_000 + DELETE_WINDOW + 1)
    status, answer = await delete_message(client, group, third["id"])
    assert status == 409 and "2 days" in answer["error"]
    assert [m["text"] for m in await history(client, group)] == [".10", "", ".3"]


CHANGE_REFUSALS = [
    # method, message, body or ?sender, status
    ("PATCH", "{m}", b"{not json", 400),
    ("PATCH", "{m}", orjson.dumps({"text": ".20"}), 400),
    ("PATCH", "{m}", orjson.dumps({"sender": "rahim", "text": ".20"}), 400),
    ("PATCH", "{m}", orjson.dumps({"sender": RAHIM["sender"]}), 400),
    ("PATCH", "{m}", orjson.dumps({"sender": RAHIM["sender"], "text": "  "}), 400),
    ("PATCH", "{m}", orjson.dumps({"sender": RAHIM["sender"], "text": 20}), 400),
    ("PATCH", "{m}", orjson.dumps({"sender": RAHIM["sender"], "text": TOO_LONG}), 400),
    ("PATCH", "3EB0000000000000000000", orjson.dumps({"sender": RAHIM["sender"], "text": ".20"}), 404),
    ("PATCH", "{m_other}", orjson.dumps({"sender": RAHIM["sender"], "text": ".20"}), 404),  # another group's
    ("PATCH", "{m}", orjson.dumps({"sender": "8801812345678@s.whatsapp.net", "text": ".20"}), 403),  # not the sender
    ("PATCH", "{m_bot}", orjson.dumps({"sender": BOT_LID, "text": "changed"}), 403),  # the bot's own
    ("PATCH", "{m_bot}", orjson.dumps({"sender": RAHIM["sender"], "text": "changed"}), 403),
    ("PATCH", "{m_deleted}", orjson.dumps({"sender": RAHIM["sender"], "text": ".20"}), 409),
    ("PATCH", "{m_old}", orjson.dumps({"sender": RAHIM["sender"], "text": ".20"}), 409),  # after 15 minutes
    ("DELETE", "{m}", "", 400),
    ("DELETE", "{m}", "rahim", 400),
    ("DELETE", "3EB0000000000000000000", RAHIM["sender"], 404),
    ("DELETE", "{m_other}", RAHIM["sender"], 404),
    ("DELETE", "{m}", "8801812345678@s.whatsapp.net", 403),
    ("DELETE", "{m}", BOT_LID, 403),  # the bot deletes only its own
    ("DELETE", "{m_bot}", RAHIM["sender"], 403),
    ("DELETE", "{m_deleted}", RAHIM["sender"], 409),
    ("DELETE", "{m_ancient}", RAHIM["sender"], 409),  # after about 2 days
]


@pytest.mark.parametrize(("method", "target", "payload", "status"), CHANGE_REFUSALS)
async def test_refused_edits_and_deletes_store_nothing(
    client: TestClient, method: str, target: str, payload: Any, status: int
) -> None:
    group = await new_group(client)
    other = await new_group(client, "Other")
    now = time.time()
    set_clock(client, now - DELETE_WINDOW - 10)
    ancient = await post(client, group, ".1")
    set_clock(client, now - EDIT_WINDOW - 10)
    old = await post(client, group, ".2")
    set_clock(client, now)
    fill = {
        "{m}": (await post(client, group, ".10"))["id"],
        "{m_other}": (await post(client, other, ".10"))["id"],
        "{m_bot}": (await call(client, "POST", "/api/bot/send", {"group_id": group, "text": "ok"}))[1]["id"],
        "{m_deleted}": (await post(client, group, ".30"))["id"],
        "{m_old}": old["id"],
        "{m_ancient}": ancient["id"],
    }
    assert (await delete_message(client, group, fill["{m_deleted}"]))[0] == 200
    before = ((await call(client, "GET", "/api/status"))[1], await history(client, group))
    size = client.app[SANDBOX_KEY].data_file.path.stat().st_size
    path = message_path(group, fill.get(target, target))
    if method == "PATCH":
        got, answer = await call(client, method, path, data=payload)
    else:
        got, answer = await call(client, method, path, params={"sender": payload} if payload else {})
    assert got == status, answer
    assert isinstance(answer, dict) and set(answer) == {"error"} and answer["error"]
    assert ((await call(client, "GET", "/api/status"))[1], await history(client, group)) == before
    assert client.app[SANDBOX_KEY].data_file.path.stat().st_size == size


async def test_edits_and_deletes_refuse_cross_site_requests(client: TestClient) -> None:
    group = await new_group(client)
    order = await post(client, group, ".10")
    evil = {"Origin": "http://evil.example"}
    assert (await call(client, "PATCH", message_path(group, order["id"]), {"sender": RAHIM["sender"], "text": ".99"},
                       headers=evil))[0] == 403
    assert (await call(client, "DELETE", message_path(group, order["id"]), params={"sender": RAHIM["sender"]},
                       headers=evil))[0] == 403
    assert (await history(client, group))[0]["text"] == ".10"


def change_frame(group: str, change: dict[str, Any], *, offline: bool, seq: int, text: str,
                 edits: str = "", revokes: str = "", group_name: str = "Rahim Store") -> dict[str, Any]:
    """The frame the bot gets for an edit or delete (the change's own id, time and seq)."""
    frame = {"type": "message", "offline": offline, "group_id": group, "group_name": group_name, **RAHIM,
             "id": change["id"], "text": text, "timestamp": change["timestamp"], "from_bot": False, "quoted_id": "",
             "seq": seq}
    return {**frame, "edits": edits} if edits else {**frame, "revokes": revokes}


async def test_edits_and_deletes_reach_the_connected_bot(client: TestClient) -> None:
    group = await new_group(client)
    ws, _ = await connect_bot(client)
    order = await post(client, group, ".10")
    assert (await receive(ws))["id"] == order["id"]
    _, edited = await edit_message(client, group, order["id"], ".20")
    assert await receive(ws) == change_frame(group, edited, offline=False, seq=2, text=".20", edits=order["id"])
    _, deleted = await delete_message(client, group, order["id"], sender=RAHIM["sender_alt"])
    assert await receive(ws) == change_frame(group, deleted, offline=False, seq=3, text="", revokes=order["id"])
    await ws.send_str(orjson.dumps({"type": "ack", "seq": 3}).decode())
    await asyncio.sleep(0.2)
    assert (await call(client, "GET", "/api/status"))[1]["pending_for_bot"] == 0
    await ws.close()


async def test_edits_and_deletes_wait_in_the_offline_queue_after_the_original(client: TestClient) -> None:
    group = await new_group(client)
    order = await post(client, group, ".10")
    later = await post(client, group, ".40")
    _, edited = await edit_message(client, group, order["id"], ".20")
    _, deleted = await delete_message(client, group, later["id"])
    ws, offline = await connect_bot(client)
    # As on WhatsApp: the message as it was first posted, then its edit, each in seq order.
    assert [(m["id"], m["text"], m["seq"]) for m in offline[:2]] == [(order["id"], ".10", 1), (later["id"], ".40", 2)]
    assert offline[2:] == [
        change_frame(group, edited, offline=True, seq=3, text=".20", edits=order["id"]),
        change_frame(group, deleted, offline=True, seq=4, text="", revokes=later["id"]),
    ]
    await ws.send_str(orjson.dumps({"type": "ack", "seq": 2}).decode())
    await asyncio.sleep(0.1)
    await ws.close()
    ws, offline = await connect_bot(client)
    assert [m["id"] for m in offline] == [edited["id"], deleted["id"]]  # unacknowledged: sent again
    await ws.close()


async def test_edits_and_deletes_are_in_the_data_file_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    client = await open_client(path)
    try:
        group = await new_group(client)
        order = await post(client, group, ".10")
        kept = await post(client, group, ".30")
        fsyncs = client.app[SANDBOX_KEY].data_file.fsyncs
        _, edited = await edit_message(client, group, order["id"], ".20")
        assert client.app[SANDBOX_KEY].data_file.fsyncs == fsyncs + 1  # on disk before the answer
        _, deleted = await delete_message(client, group, kept["id"])
        before = await history(client, group)
    finally:
        await client.close()
    records = [orjson.loads(line)["r"] for line in path.read_bytes().splitlines()]
    assert [r["type"] for r in records] == ["sandbox", "group", "message", "message", "edit", "revoke"]
    assert records[4] == {"type": "edit", "group_id": group, "seq": 3, "id": edited["id"], "target": order["id"],
                          "timestamp": edited["timestamp"], **RAHIM, "text": ".20", "from_bot": False}
    client = await open_client(path)
    try:
        assert await history(client, group) == before
        assert [(m["text"], m.get("edited"), m.get("deleted")) for m in before] == [(".20", True, None), ("", None, True)]
        ws, offline = await connect_bot(client)
        assert [(m["id"], m.get("edits"), m.get("revokes")) for m in offline] == [
            (order["id"], None, None), (kept["id"], None, None),
            (edited["id"], order["id"], None), (deleted["id"], None, kept["id"]),
        ]
        await ws.close()
        # Still the same message: a deleted one stays deleted, and new ids do not collide.
        assert (await edit_message(client, group, kept["id"], ".40"))[0] == 409
        assert (await edit_message(client, group, order["id"], ".25"))[0] == 200
    finally:
        await client.close()


async def test_kill_9_keeps_every_answered_edit_and_delete(sandbox_process: SandboxProcess) -> None:
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        group = await new_group(http)
        orders = [await post(http, group, f".{n}") for n in range(1, 21)]
        answers = await asyncio.gather(
            *(edit_message(http, group, o["id"], f".{n}0") for n, o in enumerate(orders[:10], 1)),
            *(delete_message(http, group, o["id"]) for o in orders[10:]),
        )
        assert {status for status, _ in answers} == {200}
        sandbox_process.kill()
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        messages = await history(http, group)
    assert [m["text"] for m in messages] == [f".{n}0" for n in range(1, 11)] + [""] * 10
    assert all(m.get("edited") for m in messages[:10]) and all(m.get("deleted") for m in messages[10:])


async def test_an_edit_racing_a_delete_never_breaks_the_data_file(client: TestClient, tmp_path: Path) -> None:
    group = await new_group(client)
    orders = [await post(client, group, f".{n}") for n in range(1, 11)]
    results = await asyncio.gather(*(
        coro for o in orders
        for coro in (edit_message(client, group, o["id"], ".99"), delete_message(client, group, o["id"]),
                     edit_message(client, group, o["id"], ".98"))
    ))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 409} and 503 not in statuses
    assert all(m.get("deleted") and m["text"] == "" for m in await history(client, group))
    assert (await post(client, group, ".11"))["id"]  # the sandbox still takes writes
    data_file = client.app[SANDBOX_KEY].data_file
    copy = tmp_path / "copy.json"
    copy.write_bytes(data_file.path.read_bytes())
    replayed = DataFile(copy)
    try:
        state = replayed.open()  # every change it holds fits the state it is applied to
    finally:
        replayed.close()
    assert state.message_count == 11


async def test_a_failed_write_changes_nothing(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    group = await new_group(client)
    order = await post(client, group, ".10")
    data_file = client.app[SANDBOX_KEY].data_file

    def broken(lines: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data_file, "append", broken)
    status, answer = await edit_message(client, group, order["id"], ".20")
    assert status == 503 and "restart" in answer["error"]
    assert (await delete_message(client, group, order["id"]))[0] == 503
    assert (await history(client, group))[0]["text"] == ".10"


def change_record(kind: str, seq: int, target: int, text: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "group_id": GROUP["id"], "seq": seq, "id": f"3EB0{seq:018X}", "target": f"3EB0{target:018X}",
            "timestamp": 1_700_000_100 + seq, **RAHIM, "text": text, "from_bot": False, **fields}


async def test_a_data_file_with_edits_and_deletes_loads(sandbox_process: SandboxProcess) -> None:
    write_log(sandbox_process.data_file, [
        GROUP, message(1, ".10"), message(2, ".20"), change_record("edit", 3, 1, ".15"), change_record("revoke", 4, 2, ""),
    ])
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        messages = await history(http, GROUP["id"])
        ws, offline = await connect_bot(http)
        await ws.close()
    assert [(m["text"], m.get("edited", False), m.get("deleted", False)) for m in messages] == [
        (".15", True, False), ("", False, True)]
    assert [(m["seq"], m["text"], m.get("edits"), m.get("revokes")) for m in offline] == [
        (1, ".10", None, None), (2, ".20", None, None), (3, ".15", message(1, "")["id"], None),
        (4, "", None, message(2, "")["id"]),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param([change_record("edit", 3, 9, ".15")], id="edit-of-an-unknown-message"),
        pytest.param([change_record("revoke", 3, 1, ".15")], id="delete-with-text"),
        pytest.param([change_record("edit", 3, 1, "")], id="edit-without-text"),
        pytest.param([change_record("edit", 3, 1, ".15", sender="8801812345678@s.whatsapp.net")], id="edit-by-another"),
        pytest.param([change_record("revoke", 3, 2, ""), change_record("edit", 4, 2, ".15")],
                     id="edit-of-a-deleted-message"),
        pytest.param([change_record("edit", 2, 1, ".15")], id="seq-not-increasing"),
        pytest.param([change_record("edit", 3, 1, ".15", id=f"3EB0{1:018X}")], id="id-of-a-message"),
        pytest.param([change_record("pin", 3, 1, "")], id="unknown-kind"),
    ],
)
def test_a_change_that_does_not_fit_is_corruption(sandbox_process: SandboxProcess, changes: list[dict[str, Any]]) -> None:
    data = write_log(sandbox_process.data_file, [GROUP, message(1, ".10"), message(2, ".20"), *changes])
    result = sandbox_process.run_to_exit()
    assert result.returncode == 2 and "corrupt" in result.stderr and "Traceback" not in result.stderr
    assert sandbox_process.data_file.read_bytes() == data


async def test_the_chat_page_edits_and_deletes_your_own_messages(sandbox_process: SandboxProcess, browser: Any) -> None:
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        group = await new_group(http)
        mine = await post(http, group, ".10")  # Rahim: the page's first user
        theirs = await post(http, group, ".20", sender="81234567890123@lid", sender_alt="8801812345678@s.whatsapp.net",
                            sender_name="Karim")
        async with open_page(browser, locale="en-US") as (page, watch):
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(sandbox_process.url)
            own = page.locator(f'li.msg[data-id="{mine["id"]}"]')
            other = page.locator(f'li.msg[data-id="{theirs["id"]}"]')
            await own.get_by_role("button", name="Edit").wait_for()
            assert await other.get_by_role("button", name="Edit").count() == 0
            assert await other.get_by_role("button", name="Delete").count() == 0

            await own.get_by_role("button", name="Edit").click()
            assert await page.locator("#text").input_value() == ".10"
            assert await page.locator("#edit-bar").is_visible()
            await page.locator("#text").fill(".30")
            await page.locator("#send").click()
            await own.locator(".edited").wait_for()
            assert await own.locator(".text").text_content() == ".30"
            assert not await page.locator("#edit-bar").is_visible()
            await screenshot(page, "sandbox-edited")
            stored = (await history(http, group))[0]
            assert (stored["id"], stored["text"], stored.get("edited")) == (mine["id"], ".30", True)

            await own.get_by_role("button", name="Delete").click()
            await own.locator(".text", has_text="This message was deleted").wait_for()
            assert await own.get_by_role("button").count() == 0  # nothing left to reply to, edit or delete
            await screenshot(page, "sandbox-edit-delete")
            assert watch.errors == []
        messages = await history(http, group)
    assert [(m["text"], m.get("deleted", False)) for m in messages] == [("", True), (".20", False)]


# -- the groups the bot is in ----------------------------------------------------------------


async def rename(client: Any, group_id: str, name: str) -> dict[str, Any]:
    status, body = await call(client, "PATCH", f"/api/groups/{group_id}", {"name": name})
    assert status == 200, body
    return body


async def bot_member(client: Any, group_id: str, member: bool) -> dict[str, Any]:
    status, body = await call(client, "POST", f"/api/groups/{group_id}/bot", {"member": member})
    assert status == 200, body
    return body


async def bot_history(client: Any, group_id: str) -> list[str]:
    status, messages = await call(client, "GET", f"/api/bot/groups/{group_id}/messages?limit=100")
    assert status == 200, messages
    return [m["text"] for m in messages]


async def test_hello_lists_the_bots_groups_and_each_change_is_pushed(client: TestClient) -> None:
    shop = await new_group(client, "Rahim Store")
    other = await new_group(client, "Karim Telecom")
    assert await bot_member(client, other, False) == {"id": other, "name": "Karim Telecom", "bot_member": False}
    ws, _ = await connect_bot(client, groups=[{"id": shop, "name": "Rahim Store"}])
    assert (await call(client, "GET", "/api/bot/groups"))[1] == [{"id": shop, "name": "Rahim Store"}]

    new = await new_group(client, "নুসরাত টপআপ")  # its creator adds the bot: it is in every group it creates
    assert await receive(ws) == {"type": "group", "event": "joined", "group": {"id": new, "name": "নুসরাত টপআপ"}}
    assert await rename(client, shop, "  Rahim Store 2 ") == {"id": shop, "name": "Rahim Store 2", "bot_member": True}
    assert await receive(ws) == {"type": "group", "event": "renamed", "group": {"id": shop, "name": "Rahim Store 2"}}
    await rename(client, other, "Karim 2")  # the bot is not in it: it hears nothing
    await rename(client, shop, "Rahim Store 2")  # no change: nothing is stored or pushed
    await bot_member(client, new, False)
    assert await receive(ws) == {"type": "group", "event": "left", "group": {"id": new, "name": "নুসরাত টপআপ"}}
    await bot_member(client, new, False)  # already out: nothing happens
    await bot_member(client, other, True)
    assert await receive(ws) == {"type": "group", "event": "joined", "group": {"id": other, "name": "Karim 2"}}
    assert (await call(client, "GET", "/api/groups"))[1] == [
        {"id": shop, "name": "Rahim Store 2", "bot_member": True},
        {"id": other, "name": "Karim 2", "bot_member": True},
        {"id": new, "name": "নুসরাত টপআপ", "bot_member": False},
    ]
    await ws.close()
    ws, _ = await connect_bot(client, groups=[{"id": shop, "name": "Rahim Store 2"}, {"id": other, "name": "Karim 2"}])
    await ws.close()


async def test_messages_of_a_group_without_the_bot_never_reach_it(client: TestClient) -> None:
    group = await new_group(client)
    await post(client, group, ".10")
    await bot_member(client, group, False)
    await post(client, group, ".20")  # written while the bot is out: never its message
    status, refused = await call(client, "POST", "/api/bot/send", {"group_id": group, "text": "hi"})
    assert status == 403 and "not in group" in refused["error"]
    await bot_member(client, group, True)
    await post(client, group, ".30")
    assert (await call(client, "GET", "/api/status"))[1]["pending_for_bot"] == 2
    ws, offline = await connect_bot(client)
    assert [m["text"] for m in offline] == [".10", ".30"]  # the offline queue skips .20

    await bot_member(client, group, False)
    assert (await receive(ws))["event"] == "left"
    await post(client, group, ".40")  # not delivered live either
    await bot_member(client, group, True)
    assert (await receive(ws))["event"] == "joined"
    fifty = await post(client, group, ".50")
    assert (await receive(ws))["id"] == fifty["id"]  # the next frame: nothing of .40 came before it
    await ws.close()

    # The bot's own history holds what its device got; the people in the group see everything.
    assert await bot_history(client, group) == [".10", ".30", ".50"]
    people = await history(client, group)
    assert [(m["text"], m.get("to_bot", True)) for m in people] == [
        (".10", True), (".20", False), (".30", True), (".40", False), (".50", True)]
    status, _ = await call(client, "GET", "/api/bot/groups/120363000000000000@g.us/messages")
    assert status == 404


async def test_renames_and_memberships_are_in_the_data_file_and_survive_a_restart(tmp_path: Path) -> None:
    client = await open_client(tmp_path / "sandbox.json")
    try:
        shop = await new_group(client, "Rahim Store")
        gone = await new_group(client, "Karim Telecom")
        await rename(client, shop, "Rahim Store 2")
        await post(client, gone, ".10")
        await bot_member(client, gone, False)
        await post(client, gone, ".20")
    finally:
        await client.close()
    records = [orjson.loads(line)["r"] for line in (tmp_path / "sandbox.json").read_bytes().splitlines()]
    assert {"type": "rename", "id": shop, "name": "Rahim Store 2"} in records
    assert {"type": "membership", "id": gone, "member": False} in records
    client = await open_client(tmp_path / "sandbox.json")
    try:
        assert (await call(client, "GET", "/api/groups"))[1] == [
            {"id": shop, "name": "Rahim Store 2", "bot_member": True},
            {"id": gone, "name": "Karim Telecom", "bot_member": False},
        ]
        assert await bot_history(client, gone) == [".10"]
        ws, offline = await connect_bot(client, groups=[{"id": shop, "name": "Rahim Store 2"}])
        assert [m["text"] for m in offline] == [".10"]
        await ws.close()
    finally:
        await client.close()


async def test_concurrent_membership_changes_store_one_event(client: TestClient) -> None:
    group = await new_group(client)
    answers = await asyncio.gather(*(call(client, "POST", f"/api/groups/{group}/bot", {"member": False})
                                     for _ in range(5)))
    assert {status for status, _ in answers} == {200}
    sandbox = client.app[SANDBOX_KEY]
    assert sandbox.committer is not None and sandbox.committer.failure == ""
    await post(client, group, ".10")  # the data file still takes writes


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("PATCH", "/api/groups/{g}", b"{}", 400),
    ("PATCH", "/api/groups/{g}", orjson.dumps({"name": "   "}), 400),
    ("PATCH", "/api/groups/{g}", orjson.dumps({"name": 7}), 400),
    ("PATCH", "/api/groups/{g}", orjson.dumps({"name": "x" * 101}), 400),
    ("PATCH", "/api/groups/120363000000000000@g.us", orjson.dumps({"name": "x"}), 404),
    ("POST", "/api/groups/{g}/bot", b"{}", 400),
    ("POST", "/api/groups/{g}/bot", orjson.dumps({"member": "no"}), 400),
    ("POST", "/api/groups/{g}/bot", orjson.dumps({"member": 0}), 400),
    ("POST", "/api/groups/120363000000000000@g.us/bot", orjson.dumps({"member": False}), 404),
    ("GET", "/api/bot/groups/{g}/messages?limit=0", b"", 400),
])
async def test_bad_group_changes_are_json_client_errors(
    client: TestClient, method: str, path: str, body: bytes, status: int
) -> None:
    group = await new_group(client)
    before = (await call(client, "GET", "/api/groups"))[1]
    got, answer = await call(client, method, path.replace("{g}", group), data=body)
    assert got == status and set(answer) == {"error"} and answer["error"]
    assert (await call(client, "GET", "/api/groups"))[1] == before


@pytest.mark.parametrize(
    "records",
    [
        pytest.param([{"type": "rename", "id": "120363000000000000@g.us", "name": "x"}], id="rename-of-an-unknown-group"),
        pytest.param([{"type": "rename", "id": GROUP["id"], "name": " "}], id="blank-name"),
        pytest.param([{"type": "membership", "id": GROUP["id"], "member": True}], id="added-while-in"),
        pytest.param([{"type": "membership", "id": GROUP["id"], "member": "no"}], id="member-not-a-flag"),
    ],
)
def test_a_group_change_that_does_not_fit_is_corruption(sandbox_process: SandboxProcess,
                                                        records: list[dict[str, Any]]) -> None:
    data = write_log(sandbox_process.data_file, [GROUP, message(1, ".10"), *records])
    result = sandbox_process.run_to_exit()
    assert result.returncode == 2 and "corrupt" in result.stderr and "Traceback" not in result.stderr
    assert sandbox_process.data_file.read_bytes() == data


async def test_the_chat_page_renames_the_group_and_removes_and_adds_the_bot(
        sandbox_process: SandboxProcess, browser: Any) -> None:
    sandbox_process.start()
    async with aiohttp.ClientSession(sandbox_process.url) as http:
        group = await new_group(http)
        await post(http, group, ".10")
        async with open_page(browser, locale="en-US") as (page, watch):
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.goto(sandbox_process.url)
            await page.get_by_text("The bot is in this group.").wait_for()
            await page.get_by_label("Name of this group").fill("Rahim Telecom")
            await page.get_by_role("button", name="Rename").click()
            await page.locator("#chat-title", has_text="Rahim Telecom").wait_for()
            assert (await call(http, "GET", "/api/groups"))[1][0]["name"] == "Rahim Telecom"

            await page.get_by_role("button", name="Remove the bot from this group").click()
            await page.get_by_text("The bot is not in this group", exact=False).wait_for()
            assert (await call(http, "GET", "/api/groups"))[1][0]["bot_member"] is False
            assert await page.locator(".groups button", has_text="without the bot").count() == 1
            await post(http, group, ".20")
            await page.locator(".msg", has_text=".20").locator(".unseen").wait_for()
            assert await page.locator(".msg", has_text=".10").locator(".unseen").count() == 0
            await screenshot(page, "sandbox-without-the-bot")

            await page.get_by_role("button", name="Add the bot to this group").click()
            await page.get_by_text("The bot is in this group.").wait_for()
            assert (await call(http, "GET", "/api/groups"))[1][0]["bot_member"] is True
            assert watch.errors == []
