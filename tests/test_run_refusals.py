"""Every data file that cannot be read stops `run.py` with one clean line: the file, what is
wrong, what to do; exit status 2, no traceback, the file left exactly as it was."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import orjson
import pytest

from storage.journal import encode_record
from tests.e2e import REPO, free_port, process_env

REFUSED = 2
G = "120363041234567890@g.us"


def start(data: Path, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """run.py on `data` (no sandbox unless asked), run until it exits by itself."""
    args = [sys.executable, "run.py", "--data-dir", str(data), "--port", str(free_port()),
            "--set", f"actors.admin_port={free_port()}", "--set", "sandbox.autostart=false",
            "--set", f"sandbox.url=http://127.0.0.1:{free_port()}", *extra]
    return subprocess.run(args, cwd=REPO, env=process_env(DIAMONDBOT_ADMIN_PASSWORD="a-long-password"),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def assert_refused(done: subprocess.CompletedProcess[str], file: Path, *remedy: str) -> str:
    """The start was refused cleanly, and its last line names the file and the remedy."""
    assert done.returncode == REFUSED, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Diamond Bot cannot start: "), done.stderr[-3000:]
    assert str(file) in last and "left untouched" in last, last
    for words in remedy:
        assert words in last, (words, last)
    return last


def journal_lines(*payloads: bytes, damage: int | None = None) -> bytes:
    """Journal lines; the one at index `damage` with a flipped payload byte (a checksum mismatch)."""
    lines = [bytearray(encode_record(p)) for p in payloads]
    if damage is not None:
        lines[damage][-3] ^= 0x01
    return b"".join(bytes(line) for line in lines)


def order(oid: str) -> bytes:
    return orjson.dumps({"t": "order", "g": G, "v": {"id": oid, "groupId": G, "diamonds": 10, "status": "pending"}})


def inbox_entry(seq: int) -> bytes:
    return orjson.dumps({"t": "in", "s": seq, "m": {
        "group_id": G, "group_name": "Shop", "message_id": f"M{seq}", "sender": "8801711111111@lid",
        "sender_alt": "", "sender_name": "Alice", "text": ".10", "timestamp": 1765000000.0, "from_me": False,
        "source": "live", "quoted_id": ""}})


# (file, its unreadable content, words the refusal must hold besides the file's name)
PANEL_AND_SYSTEM_FILES: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("panel-users.json", b"{not json", ("not valid JSON", "set-password admin")),
    ("panel-users.json", b'{"users": {"admin": {}}}', ("has no password hash",)),
    ("panel-secret.key", b"not a fernet key\n", ("not a Fernet key", "delete it")),
    ("panel-revoked-sessions.json", b"\x00\x01garbage", ("not valid JSON", "delete it")),
    ("panel-revoked-sessions.json", b'{"revoked": ["sid"]}', ("expected an object", "delete it")),
    ("actor-system.json", b'{"pgid": "x"', ("which actor processes", "delete the file")),
    ("actor-system.json", b"[1, 2]", ("which actor processes", "delete the file")),
]


@pytest.mark.parametrize(("name", "content", "remedy"), PANEL_AND_SYSTEM_FILES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(PANEL_AND_SYSTEM_FILES)])
def test_an_unreadable_panel_or_system_file_refuses_the_start(tmp_path: Path, name: str, content: bytes,
                                                               remedy: tuple[str, ...]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / name
    path.write_bytes(content)
    done = start(data)
    assert_refused(done, path, *remedy)
    assert path.read_bytes() == content
    # Refused before anything started: no actor system was recorded, no sandbox launched.
    assert not (data / "orders.journal.00000000").exists()


DAMAGED_STORES: list[tuple[str, Callable[[Path], None], tuple[str, ...]]] = [
    ("orders.journal.00000000",
     lambda p: p.write_bytes(journal_lines(order("A1"), order("A2"), order("A3"), damage=1)),
     ("line 2", "python run.py check-data", "python run.py repair-data")),
    ("orders.journal.00000000",  # a damaged last record is no crash's torn write: never dropped silently
     lambda p: p.write_bytes(journal_lines(order("A1"), order("A2"), damage=1)),
     ("line 2", "not a write cut short by a crash", "python run.py repair-data")),
    ("orders.snapshot.json", lambda p: p.write_bytes(b'{"format": 1, "journal_gen": 0, "data": {bro'),
     ("not valid JSON", "from a backup")),
    ("inbox.journal.00000000", lambda p: p.write_bytes(b"{not a journal line}\n"),
     ("line 1", "python run.py check-data")),
    ("inbox.journal.00000000",
     lambda p: p.write_bytes(journal_lines(inbox_entry(1), inbox_entry(2), damage=0)),
     ("line 1", "intact record follows", "python run.py repair-data")),
    ("inbox.snapshot.json", lambda p: p.write_bytes(b"[]"), ("not an object",)),
]


@pytest.mark.parametrize(("name", "damage", "remedy"), DAMAGED_STORES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(DAMAGED_STORES)])
def test_a_damaged_store_refuses_the_start_and_names_the_way_out(tmp_path: Path, name: str,
                                                                  damage: Callable[[Path], None],
                                                                  remedy: tuple[str, ...]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / name
    damage(path)
    if name.endswith(".snapshot.json"):
        (data / name.replace("snapshot.json", "journal.00000000")).touch()  # the snapshot's journal
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    done = start(data)
    assert_refused(done, path, *remedy)
    assert {p.name: p.read_bytes() for p in data.iterdir() if p.name in before} == before


def test_an_unreadable_config_file_refuses_the_start(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text("[panel\nport = 9090\n")
    done = start(tmp_path / "data", "--config", str(config))
    assert done.returncode == REFUSED and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert str(config) in last and "not valid TOML" in last
    assert not (tmp_path / "data").exists()


def test_an_unreadable_sandbox_file_refuses_the_start_with_the_sandboxs_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "sandbox.json"
    path.write_bytes(b"not a sandbox file\n")
    done = start(data, "--set", "sandbox.autostart=true")
    assert done.returncode == REFUSED and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    # The reason itself, not only "see the sandbox's log".
    assert last.startswith("Diamond Bot cannot start: ") and f"{path} is " in last, last
    assert path.read_bytes() == b"not a sandbox file\n"


HOLDER = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"\\x00garbage, not the owner's JSON")
    print("locked", flush=True)
    sys.stdin.read()
""")


def test_a_held_lock_with_unreadable_contents_still_refuses_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data / "bot.lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        done = start(data)
    finally:
        holder.communicate("", timeout=10)
    assert done.returncode == REFUSED and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "already running" in last and str(data / "bot.lock") in last and "pid unknown" in last, last


def test_a_bad_admin_password_in_the_environment_refuses_cleanly(tmp_path: Path) -> None:
    args = [sys.executable, "run.py", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
            "--set", f"actors.admin_port={free_port()}", "--set", "sandbox.autostart=false"]
    done = subprocess.run(args, cwd=REPO, env=process_env(DIAMONDBOT_ADMIN_PASSWORD="short"),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == REFUSED and "Traceback" not in done.stderr
    assert "DIAMONDBOT_ADMIN_PASSWORD" in done.stderr.strip().splitlines()[-1]

