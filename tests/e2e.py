"""Running the real thing for end-to-end tests: the sandbox and run.py as processes, their JSON
APIs over HTTP, and checks on the processes and sockets they leave.

Every process started here carries DIAMONDBOT_TEST_RUN in its environment (forked actor
processes inherit it), so a test run can find anything it left behind.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from actors.system import group_members

REPO = Path(__file__).resolve().parents[1]
TEST_RUN = f"e2e-{os.getpid()}"
PASSWORD = "e2e-admin-password"


_GIVEN: set[int] = set()  # ports this test run handed out already


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range. A port from bind(0) is freed
    again before the server under test binds it, and in between any socket bound to port 0 —
    the bot's own actors bind dozens — can be handed the same one: the panel's start then failed
    with "address already in use" (seen twice in a suite). Ports outside the range are never
    handed out by the kernel."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    for _ in range(500 if low > 11000 else 0):
        port = random.randrange(10000, low)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket() as s:  # no such range here: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until check() returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError, ValueError, KeyError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), DIAMONDBOT_TEST_RUN=TEST_RUN, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def leftover_processes() -> list[tuple[int, str]]:
    """Processes (other than this one) started by this test run that are still alive."""
    marker = f"DIAMONDBOT_TEST_RUN={TEST_RUN}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            if marker in environ.split(b"\0"):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if stat[stat.rfind(")") + 2] == "Z":
                    continue  # a zombie is already dead; its parent reaps it
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append((int(entry), cmd))
        except OSError:
            continue
    return found


def listening_sockets(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket in LISTEN state held by these processes."""
    listeners: dict[str, tuple[str, int]] = {}
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] != "0A":  # LISTEN
                continue
            hexaddr, hexport = parts[1].split(":")
            raw = bytes.fromhex(hexaddr)
            if v6:
                words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                addr = socket.inet_ntop(socket.AF_INET6, b"".join(words))
            else:
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            listeners[parts[9]] = (addr, int(hexport, 16))
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inode = link[8:-1]
                if inode in listeners:
                    found.append((pid, *listeners[inode]))
    return found


class Http:
    """A tiny JSON client with a cookie jar (urllib: no extra dependency)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def call(self, method: str, path: str, body: Any = None, timeout: float = 15) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.csrf:
            req.add_header("X-CSRF-Token", self.csrf)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self.call("POST", path, body if body is not None else {})


class Sandbox:
    def __init__(self, data_file: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_file, self.log = data_file, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = Http(self.url)

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.sandbox", "--port", str(self.port),
                 "--data-file", str(self.data_file)],
                cwd=REPO, env=process_env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.api.call("GET", "/api/status")[0] == 200, 20, "the sandbox to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def create_group(self, name: str) -> str:
        status, body = self.api.post("/api/groups", {"name": name})
        assert status == 201, body
        return body["id"]

    def post(self, group: str, sender: str, text: str, name: str = "") -> dict[str, Any]:
        status, body = self.api.post(f"/api/groups/{group}/messages",
                                     {"sender": sender, "sender_name": name or "Reseller", "text": text})
        assert status == 201, body
        return body

    def messages(self, group: str, limit: int = 1000) -> list[dict[str, Any]]:
        return self.api.get(f"/api/groups/{group}/messages?limit={limit}")


class Bot:
    """run.py as a process in its own session, so a test can kill its process group."""

    def __init__(self, data_dir: Path, sandbox_url: str, log: Path, *extra: str) -> None:
        self.data_dir, self.log = data_dir, log
        self.port = free_port()
        self.admin_port = free_port()
        self.args = [
            sys.executable, "run.py", "--data-dir", str(data_dir), "--port", str(self.port),
            "--set", f"sandbox.url={sandbox_url}", "--set", "sandbox.autostart=false",
            "--set", f"actors.admin_port={self.admin_port}",
            "--set", "outbox.min_gap=0s", "--set", "outbox.jitter=0s", "--set", "outbox.per_group_gap=0s",
            "--set", "orders.default_rate=100",
            "--set", "reconciliation.interval=1s", "--set", "reconciliation.checkpoint_interval=2s",
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = Http(f"http://127.0.0.1:{self.port}")

    def start(self, wait: bool = True) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=process_env(DIAMONDBOT_ADMIN_PASSWORD=PASSWORD))
        if wait:
            self.wait_healthy()
            self.login()

    def wait_healthy(self, timeout: float = 60) -> None:
        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"run.py exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            return self.api.call("GET", "/healthz", timeout=3)[0] == 200
        wait_for(healthy, timeout, "the bot to be healthy")

    def login(self) -> None:
        status, body = self.api.post("/api/login", {"username": "admin", "password": PASSWORD})
        assert status == 200, body
        self.api.csrf = body["csrf_token"]

    def system_pgid(self) -> int:
        info = json.loads((self.data_dir / "actor-system.json").read_text())
        return int(info["pgid"])

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *group_members(self.system_pgid())]

    def orders(self, **params: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in {"limit": "500", **params}.items())
        return self.api.get(f"/api/orders?{query}")["orders"]

    def kill_process_group(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 10) -> float:
        """SIGTERM; returns how long the bot took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(f"run.py did not stop within {timeout} s")
        return time.monotonic() - started

    def run_to_exit(self, timeout: float = 60) -> tuple[int, str]:
        """Run until it exits by itself (a refused start); returns (code, output)."""
        before = self.log.stat().st_size if self.log.exists() else 0
        self.start(wait=False)
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        return code, self.log.read_bytes()[before:].decode(errors="replace")


@contextmanager
def sandbox_and_bot(tmp_path: Path, *bot_args: str, start: bool = True) -> Iterator[tuple[Sandbox, Bot]]:
    """A sandbox server and run.py on it (started unless `start` is false), both stopped after."""
    sandbox = Sandbox(tmp_path / "sandbox.json", tmp_path / "sandbox.log")
    sandbox.start()
    bot = Bot(tmp_path / "data", sandbox.url, tmp_path / "bot.log", *bot_args)
    try:
        if start:
            bot.start()
        yield sandbox, bot
    finally:
        try:
            if bot.proc is not None:
                bot.stop()
        finally:
            sandbox.stop()


def kill_leftovers() -> list[tuple[int, str]]:
    """Kill whatever this test run left behind; returns what was found."""
    left = leftover_processes()
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left
