"""run.py as an operator uses it: commands, and starts that must refuse with a clear message."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import orjson

from domain.records import UserRecord
from domain.users import Role, User
from storage.database import open_database
from tests.e2e import REPO, Bot, free_port, listening_sockets, process_env, wait_for
from web.auth import HASHER, INITIAL_PASSWORD_FILE


def run(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "run.py", *args], cwd=REPO, env=process_env(), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def users_in(data: Path) -> dict[str, User]:
    """The panel's users as the journal holds them (read as the bot reads it)."""
    store, db = open_database(data)
    store.close()
    return db.panel_users()


def add_user(data: Path, user: User) -> None:
    """A user written into a stopped bot's journal, as the PersistenceActor writes one."""
    store, _ = open_database(data)
    store.append([orjson.dumps(UserRecord.of(user).encode())])
    store.sync()
    store.close()


def test_set_password_from_stdin_into_the_journal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run("--data-dir", str(data), "set-password", "admin", stdin="a-long-password\n")
    assert done.returncode == 0, done.stderr
    assert "a-long-password" not in done.stdout + done.stderr
    admin = users_in(data)["admin"]
    assert admin.role is Role.OWNER and admin.by == "cli:set-password"
    assert HASHER.verify(admin.password_hash, "a-long-password")
    assert not (data / "panel-users.json").exists()
    # A staff member keeps the role; the change is in the users' audit.
    add_user(data, User("nasrin", Role.STAFF, HASHER.hash("first-long-password"), False, 1.0, "admin:admin"))
    done = run("--data-dir", str(data), "set-password", "nasrin", stdin="second-long-password\n")
    assert done.returncode == 0 and "(staff)" in done.stdout, done.stderr
    nasrin = users_in(data)["nasrin"]
    assert nasrin.role is Role.STAFF and HASHER.verify(nasrin.password_hash, "second-long-password")
    store, db = open_database(data)
    store.close()
    assert [(a["user"], a["change"], a["by"]) for a in db.user_audit] == [
        ("admin", "added", "cli:set-password"), ("nasrin", "added", "admin:admin"),
        ("nasrin", "password", "cli:set-password")]


def test_set_password_refuses_a_short_one_or_a_bad_name(tmp_path: Path) -> None:
    done = run("--data-dir", str(tmp_path / "data"), "set-password", "admin", stdin="short\n")
    assert done.returncode == 1 and "Password not set" in done.stderr and "12 characters" in done.stderr
    done = run("--data-dir", str(tmp_path / "data"), "set-password", "no spaces", stdin="a-long-password\n")
    assert done.returncode == 1 and "username" in done.stderr
    assert not (tmp_path / "data").exists()


def test_set_password_first_brings_in_the_earlier_users_file(tmp_path: Path) -> None:
    """Before the first start of this version: the users of panel-users.json come in too (as the
    start would have brought them), so none is lost; the file is left as it was."""
    data = tmp_path / "data"
    data.mkdir()
    old = {"users": {"admin": {"hash": HASHER.hash("the-old-admin-pw")}, "karim": {"hash": HASHER.hash("karims-old-pw!")}}}
    users = data / "panel-users.json"
    users.write_bytes(orjson.dumps(old))
    done = run("--data-dir", str(data), "set-password", "admin", stdin="a-long-password\n")
    assert done.returncode == 0, done.stderr
    found = users_in(data)
    assert sorted(found) == ["admin", "karim"] and {u.role for u in found.values()} == {Role.OWNER}
    assert HASHER.verify(found["admin"].password_hash, "a-long-password")
    assert HASHER.verify(found["karim"].password_hash, "karims-old-pw!")
    assert users.read_bytes() == orjson.dumps(old)


def test_set_password_never_overwrites_a_corrupt_users_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    users = data / "panel-users.json"
    users.write_text("{not json")
    done = run("--data-dir", str(data), "set-password", "admin", stdin="a-long-password\n")
    assert done.returncode == 1 and "panel-users.json" in done.stderr
    assert users.read_text() == "{not json"
    assert users_in(data) == {}


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


def test_set_password_of_admin_removes_the_first_password_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    first = "generated-first-pw"  # as a first start without DIAMONDBOT_ADMIN_PASSWORD leaves it
    (data / INITIAL_PASSWORD_FILE).write_text(first + "\n")
    add_user(data, User("admin", Role.OWNER, HASHER.hash(first), False, 1.0, "system:first-start"))
    other = run("--data-dir", str(data), "set-password", "operator", stdin="another-long-password\n")
    assert other.returncode == 0 and (data / INITIAL_PASSWORD_FILE).exists()  # another user's: still right
    done = run("--data-dir", str(data), "set-password", "admin", stdin="a-long-password\n")
    assert done.returncode == 0, done.stderr
    assert not (data / INITIAL_PASSWORD_FILE).exists()  # its password no longer works
    assert INITIAL_PASSWORD_FILE in done.stdout and "no longer works" in done.stdout
    admin = users_in(data)["admin"]
    assert HASHER.verify(admin.password_hash, "a-long-password") and admin.role is Role.OWNER
    assert users_in(data)["operator"].role is Role.OWNER


def test_set_password_while_the_bot_runs_points_to_the_panel(tmp_path: Path) -> None:
    data = tmp_path / "data"
    base = free_ports(3)
    proc = start_bot(data, tmp_path / "bot.log", "--base-port", str(base), "--set", "sandbox.autostart=false")
    try:
        bot = watch(proc, data, tmp_path / "bot.log", base)
        bot.wait_healthy()
        done = run("--data-dir", str(data), "set-password", "admin", stdin="another-long-password\n")
        assert done.returncode == 2, done.stderr
        assert "running" in done.stderr and "Users page" in done.stderr
        # The password it has still works; nothing was written.
        status, body = bot.api.post("/api/login", {"username": "admin", "password": "a-long-password"})
        assert status == 200, body
    finally:
        stop_bot(proc)
    assert HASHER.verify(users_in(data)["admin"].password_hash, "a-long-password")


def free_ports(count: int) -> int:
    """A base port with `count` free ports from it on."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        try:
            socks = []
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise AssertionError("no run of free ports found")


def start_bot(data: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "run.py", "--data-dir", str(data), *args], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=process_env(DIAMONDBOT_ADMIN_PASSWORD="a-long-password"))


def watch(proc: subprocess.Popen[bytes], data: Path, log: Path, panel: int) -> Bot:
    """The e2e helpers pointed at a run.py started here."""
    bot = Bot(data, "", log)
    bot.proc, bot.port = proc, panel
    bot.api.base = f"http://127.0.0.1:{panel}"
    return bot


def stop_bot(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0


def test_base_port_moves_the_panel_the_sandbox_and_the_actor_admin_together(tmp_path: Path) -> None:
    base = free_ports(3)
    data = tmp_path / "data"
    proc = start_bot(data, tmp_path / "bot.log", "--base-port", str(base))
    try:
        bot = watch(proc, data, tmp_path / "bot.log", base)
        bot.wait_healthy()
        sandbox = wait_for(lambda: _sandbox_pid(proc.pid), 10, "the sandbox")
        assert base in {p for _, _, p in listening_sockets([proc.pid])}  # the panel
        assert base + 1 in {p for _, _, p in listening_sockets([sandbox])}
        assert base + 2 in {p for _, _, p in listening_sockets(bot.pids()[1:])}  # the Thespian admin
    finally:
        stop_bot(proc)


def _sandbox_pid(parent: int) -> int | None:
    """The sandbox child run.py started."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(raw[raw.rfind(b")") + 2:].split()[1]) == parent and b"sandbox" in cmd:
            return int(entry)
    return None


def test_an_explicit_port_wins_over_the_base_port(tmp_path: Path) -> None:
    base, panel = free_ports(3), free_port()
    data = tmp_path / "data"
    proc = start_bot(data, tmp_path / "bot.log", "--base-port", str(base), "--port", str(panel),
                     "--set", "sandbox.autostart=false")
    try:
        bot = watch(proc, data, tmp_path / "bot.log", panel)
        bot.wait_healthy()
        assert panel in {p for _, _, p in listening_sockets([proc.pid])}
        assert base + 2 in {p for _, _, p in listening_sockets(bot.pids()[1:])}
    finally:
        stop_bot(proc)


def private(path: Path) -> bool:
    """Nobody but the owner may read, write or enter it."""
    return stat.S_IMODE(path.lstat().st_mode) & 0o077 == 0


def test_the_data_dir_and_everything_the_bot_creates_in_it_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    data.chmod(0o755)
    (data / "logs").chmod(0o755)
    old_log = data / "logs" / "bot.log"
    old_log.write_text("a line from an older version with a customer's number 8801711111111\n")
    old_log.chmod(0o644)
    base = free_ports(3)
    proc = start_bot(data, tmp_path / "bot.log", "--base-port", str(base))
    try:
        bot = watch(proc, data, tmp_path / "bot.log", base)
        bot.wait_healthy()
        wait_for(lambda: (data / "sandbox.json").exists(), 10, "the sandbox's file")
    finally:
        stop_bot(proc)
    everything = [data, *data.rglob("*")]
    names = {p.relative_to(data).as_posix() for p in everything}
    # The files the issue named, and the ones forked actors and the sandbox child create.
    assert {"logs/bot.log", "logs/sandbox.log", "sandbox.json", "panel-secret.key",
            "orders.journal.00000000", "bot.lock", "persistence.lock"} <= names
    assert [p.relative_to(data).as_posix() for p in everything if not private(p)] == []
    assert "readable by this user only" in (tmp_path / "bot.log").read_text()
