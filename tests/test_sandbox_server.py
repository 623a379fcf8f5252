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

from gateway.sandbox.server import CLOSE_DISCONNECTED, CLOSE_REPLACED, SANDBOX_KEY, make_app
from gateway.sandbox.state import BOT_LID, BOT_NAME, BOT_PHONE, DataFile, encode_line

REPO = Path(__file__).resolve().parents[1]
GROUP_ID = re.compile(r"120363\d{12}@g\.us")
MESSAGE_ID = re.compile(r"3EB0[0-9A-F]{18}")
RAHIM = {"sender": "76210050711676@lid", "sender_alt": "8801712345678@s.whatsapp.net", "sender_name": "Rahim"}


class SandboxProcess:
    """A real `python -m gateway.sandbox`, for restarts, SIGTERM and kill -9."""

    def __init__(self, data_file: Path, log_file: Path) -> None:
        self.data_file = data_file
        self.log_file = log_file
        self.port = 0  # the first start picks a free port; restarts reuse it
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "gateway.sandbox", "--port", str(self.port),
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


async def connect_bot(client: Any) -> tuple[aiohttp.ClientWebSocketResponse, list[dict[str, Any]]]:
    """Connect as the bot and read hello, the offline queue and offline_done."""
    ws = await client.ws_connect("/api/bot/connect")
    assert await receive(ws) == {"type": "hello", "bot": {"phone": BOT_PHONE, "lid": BOT_LID, "name": BOT_NAME}}
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
    assert groups == [{"id": first, "name": "Rahim Store"}, {"id": second, "name": "নুসরাত টপআপ"}]


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
    app_js = (REPO / "gateway/sandbox/static/app.js").read_text()
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


def test_a_public_host_needs_allow_remote(sandbox_process: SandboxProcess) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.sandbox", "--host", "0.0.0.0", "--data-file", str(sandbox_process.data_file)],
        cwd=REPO, capture_output=True, text=True, timeout=15,
    )
    assert result.returncode == 2 and "--allow-remote" in result.stderr
    assert not sandbox_process.data_file.exists()


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
