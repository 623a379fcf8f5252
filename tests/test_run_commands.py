"""run.py as an operator uses it: commands, and starts that must refuse with a clear message."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

from tests.e2e import REPO, free_port, process_env
from web.auth import UserStore


def run(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "run.py", *args], cwd=REPO, env=process_env(), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_set_password_from_stdin_then_login_works(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run("--data-dir", str(data), "set-password", "admin", stdin="a-long-password\n")
    assert done.returncode == 0, done.stderr
    assert "a-long-password" not in done.stdout + done.stderr
    store = UserStore(data)
    assert asyncio.run(store.verify("admin", "a-long-password"))
    assert not asyncio.run(store.verify("admin", "wrong-password"))
    assert (data / "panel-users.json").stat().st_mode & 0o777 == 0o600


def test_set_password_refuses_a_short_one(tmp_path: Path) -> None:
    done = run("--data-dir", str(tmp_path / "data"), "set-password", "admin", stdin="short\n")
    assert done.returncode == 1 and "Password not set" in done.stderr


def test_set_password_never_overwrites_a_corrupt_users_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    users = data / "panel-users.json"
    users.write_text("{not json")
    done = run("--data-dir", str(data), "set-password", "admin", stdin="a-long-password\n")
    assert done.returncode == 1 and "panel-users.json" in done.stderr
    assert users.read_text() == "{not json"


def test_a_bad_setting_stops_the_start_naming_the_key(tmp_path: Path) -> None:
    done = run("--data-dir", str(tmp_path / "data"), "--set", "reconciliation.interval=ten")
    assert done.returncode == 2
    assert "reconciliation.interval" in done.stderr and "--set" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was started or written


def test_a_busy_panel_port_stops_the_start_clearly(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run("--data-dir", str(tmp_path / "data"), "--port", str(port),
                   "--set", f"actors.admin_port={free_port()}", "--set", "sandbox.autostart=false")
    assert done.returncode == 2
    assert f"panel.port {port}" in done.stderr and "in use" in done.stderr
    assert not (tmp_path / "data" / "actor-system.json").exists()
