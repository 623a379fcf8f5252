"""`run.py backup` while the real system takes a burst of orders, and `run.py restore` of it:
every order acknowledged before the backup began is in it, nothing is damaged, and a bot starts
from the restored data directory."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from storage.check import check_data
from tests.e2e import REPO, Bot, Http, Sandbox, process_env, sandbox_and_bot, wait_for

pytestmark = pytest.mark.e2e

def run(*args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "run.py", *args], cwd=REPO, env=process_env(), capture_output=True,
                          text=True, timeout=timeout, input=stdin)


def receipts(sandbox: Sandbox, groups: list[str]) -> set[str]:
    """The order messages the bot has confirmed (its receipts quote them)."""
    return {m["quoted_id"] for g in groups for m in sandbox.messages(g)
            if m["from_bot"] and m["text"].startswith("📥")}


def test_a_backup_taken_mid_burst_holds_every_acknowledged_order(tmp_path: Path) -> None:
    backup = tmp_path / "backups" / "now"
    backup.parent.mkdir()
    posted: list[str] = []
    # Compaction after every journal that outgrows its snapshot: the backup races it too.
    with sandbox_and_bot(tmp_path, "--set", "persistence.compact_after_bytes=1",
                         "--set", "outbox.hourly_cap=100000", start=False) as (sandbox, bot):
        bot.start()
        groups = [sandbox.create_group(f"Shop {n}") for n in range(3)]
        stop = threading.Event()

        def burst() -> None:
            api, n = Http(sandbox.url), 0
            while not stop.is_set():
                # A reseller of its own for each: the same order twice from one would be held as a duplicate.
                status, body = api.post(f"/api/groups/{groups[n % 3]}/messages",
                                        {"sender": f"7621{n:010d}@lid", "sender_name": f"R{n}", "text": f".{10 + n % 90}"})
                assert status == 201, body
                posted.append(body["id"])
                n += 1

        thread = threading.Thread(target=burst)
        thread.start()
        try:
            wait_for(lambda: len(receipts(sandbox, groups)) >= 30, 30, "the first receipts")
            acknowledged = receipts(sandbox, groups)  # confirmed to the reseller before the backup began
            began = len(posted)
            done = run("--data-dir", str(bot.data_dir), "backup", str(backup))
            during = len(posted) - began
        finally:
            stop.set()
            thread.join()
        assert done.returncode == 0, done.stderr
        assert during > 0, "no order was posted while the backup ran"
        # Intake never stopped: every order posted, also during the backup, is confirmed.
        wait_for(lambda: set(posted) <= receipts(sandbox, groups), 60, "a receipt for every order")

    restored = tmp_path / "restored"
    done = run("--data-dir", str(restored), "restore", str(backup))
    assert done.returncode == 0, done.stderr
    checked = run("--data-dir", str(restored), "check-data")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    db = check_data(restored).database
    assert db is not None
    orders = [entry for _, entry in db.all_entries()]
    messages = [o["messageId"] for o in orders]
    assert len(messages) == len(set(messages)), "an order twice"
    assert acknowledged <= set(messages), f"acknowledged orders missing: {acknowledged - set(messages)}"
    assert set(messages) <= set(posted)

    # A bot starts from the restored data directory with those orders, and, as after a crash, makes
    # orders of the messages the inbox copy still held unhandled (an empty sandbox replays nothing).
    empty = Sandbox(tmp_path / "sandbox2.json", tmp_path / "sandbox2.log")
    empty.start()
    again = Bot(restored, empty.url, tmp_path / "bot2.log")
    try:
        again.start()
        shown = [o["message_id"] for o in again.orders()]
        assert len(shown) == len(set(shown)) and set(messages) <= set(shown) <= set(posted)
    finally:
        try:
            again.stop()
        finally:
            empty.stop()


HOLDER = textwrap.dedent("""
    import sys
    from storage.lock import FileLock
    FileLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()
""")


def users_of(data_dir: Path) -> dict[str, Any]:
    from storage.database import open_database

    store, db = open_database(data_dir)
    store.close()
    return db.users


def set_password(data_dir: Path, password: str) -> None:
    """A panel user written into the data dir's journal, as an operator does with the bot stopped."""
    done = run("--data-dir", str(data_dir), "set-password", "admin", stdin=password + "\n")
    assert done.returncode == 0, done.stderr


def test_restore_over_data_needs_force_and_never_runs_beside_the_bot(tmp_path: Path) -> None:
    source, data = tmp_path / "source", tmp_path / "data"
    set_password(source, "first-long-password")
    with closing(sqlite3.connect(source / "whatsapp-session.sqlite3")) as session:
        session.execute("CREATE TABLE whatsmeow_device (jid TEXT)")
        session.execute("INSERT INTO whatsmeow_device VALUES ('8801900000001@s.whatsapp.net')")
        session.commit()
    (source / "damaged-20250101-000000.jsonl").write_text('{"kept": "verbatim"}\n')
    (source / "sandbox.json").write_bytes(b'{"whole": "line"}\n{"cut sho')
    made = run("--data-dir", str(source), "backup", str(tmp_path / "backup"))
    assert made.returncode == 0, made.stderr
    set_password(data, "other-long-password")
    journal = max(data.glob("orders.journal.*"))
    users = journal.read_bytes()

    refused = run("--data-dir", str(data), "restore", str(tmp_path / "backup"))
    assert refused.returncode == 1 and "--force" in refused.stderr and journal.name in refused.stderr
    assert journal.read_bytes() == users

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data / "bot.lock")], cwd=REPO, env=process_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        running = run("--data-dir", str(data), "restore", "--force", str(tmp_path / "backup"))
    finally:
        holder.communicate("", timeout=10)
    assert running.returncode == 2 and "is running" in running.stderr and str(holder.pid) in running.stderr
    assert journal.read_bytes() == users

    forced = run("--data-dir", str(data), "restore", "--force", str(tmp_path / "backup"))
    assert forced.returncode == 0, forced.stderr
    [aside] = data.glob("before-restore-*")
    assert (aside / journal.name).read_bytes() == users  # kept, not deleted
    assert users_of(data) == users_of(source) and users_of(data)["admin"]["passwordHash"]
    assert str(aside) in forced.stdout
    # The WhatsApp session, what repair-data set aside and the sandbox's chat (its whole lines) came too.
    with closing(sqlite3.connect(data / "whatsapp-session.sqlite3")) as session:
        assert session.execute("SELECT jid FROM whatsmeow_device").fetchall() == [("8801900000001@s.whatsapp.net",)]
    assert (data / "damaged-20250101-000000.jsonl").read_text() == '{"kept": "verbatim"}\n'
    assert (data / "sandbox.json").read_bytes() == b'{"whole": "line"}\n'
