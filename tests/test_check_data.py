"""`run.py check-data` finds every damaged journal record and says what it held and what losing
it means; `run.py repair-data` moves them into a side file, verbatim, and the bot starts from the
rest. Nothing is ever deleted, and nothing changes while a bot runs."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from storage.inbox import Inbox
from storage.check import check_data, repair_data
from storage.database import open_database
from storage.journal import encode_record
from storage.store import Store
from tests.e2e import Bot, leftover_processes, process_env, REPO, Sandbox, sandbox_and_bot, wait_for

G = "120363041234567890@g.us"
NOW = 1_765_300_000.0
JOURNAL = "orders.journal.00000000"


def order(oid: str, status: str = "pending", diamonds: int = 10) -> dict[str, Any]:
    return {"t": "order", "g": G, "v": {"id": oid, "groupId": G, "diamonds": diamonds, "rate": "100.00",
                                        "amount": f"{diamonds * 100}.00", "status": status, "userId": "1@lid",
                                        "messageId": f"M-{oid}"}}


RECORDS = [
    {"t": "group", "g": G, "v": {"groupName": "Karim Telecom", "code": "A", "rate": "100.00", "nextSeq": 4}},
    order("A1"),                                   # line 2
    order("A2"),                                   # line 3
    {"t": "payment", "g": G, "v": {"id": "PA1", "groupId": G, "amount": "500.00", "method": "bkash",
                                   "reference": "TRX1"}},  # line 4: damaged, only record of PA1
    order("A1", "approved"),                       # line 5: damaged, A1's last change
    order("A2", "approved"),                       # line 6: damaged, but a later record of A2 follows
    order("A2", "completed"),                      # line 7
    order("A3", diamonds=30),                      # line 8: damaged, the only record of A3
    {"t": "checks", "g": G, "v": {}, "cycles": [], "stats": {}},  # line 9
]
DAMAGED_LINES = (4, 5, 6, 8)


def flip(raw: bytes, at: int = -3) -> bytes:
    """A one-bit flip at `at` (by default a closing brace of the payload: the record fails its
    checksum and is no longer JSON, but its fields still read)."""
    at %= len(raw)
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:]


def write_store(data: Path, records: list[dict[str, Any]] = RECORDS, damaged: tuple[int, ...] = DAMAGED_LINES
                ) -> list[bytes]:
    """The orders journal with these records, those on the `damaged` lines (from 1) each with a flipped bit.
    Returns the lines as written."""
    store, _, _ = Store.open(data, "orders")
    store.close()
    lines = []
    for n, record in enumerate(records, 1):
        line = encode_record(orjson.dumps(record))
        if n in damaged:
            line = flip(line)
        lines.append(line)
    (data / JOURNAL).write_bytes(b"".join(lines))
    return lines


def snapshot_of_files(data: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(data.iterdir()) if p.is_file()}


def test_check_lists_every_damaged_record_with_its_place_what_it_held_and_what_is_lost(data_dir: Path) -> None:
    lines = write_store(data_dir)
    before = snapshot_of_files(data_dir)
    check = check_data(data_dir)
    assert snapshot_of_files(data_dir) == before  # read only

    offsets = [sum(len(line) for line in lines[:n - 1]) for n in DAMAGED_LINES]
    found = check.damaged
    assert [(d.path.name, d.damage.line, d.damage.offset, d.damage.raw) for d in found] == [
        (JOURNAL, n, offset, lines[n - 1]) for n, offset in zip(DAMAGED_LINES, offsets)]
    assert {d.damage.reason for d in found} == {"checksum mismatch"}
    assert found[0].fields["id"] == "PA1" and found[0].fields["amount"] == "500.00"
    effects = [" ".join(d.effects) for d in found]
    assert "payment PA1 of group A Karim Telecom" in effects[0] and "is in no intact record" in effects[0]
    assert "no longer counts in the group's due" in effects[0]
    assert "order A1: kept as its last intact record has it (pending, 10 diamonds, ৳1000)" in effects[1]
    assert "(it read approved) is lost" in effects[1]
    assert "order A2: a later intact record holds its whole state, so nothing of it is lost" in effects[2]
    assert "order A3 of group A Karim Telecom" in effects[3] and "it is lost" in effects[3]
    assert found[3].fields["diamonds"] == 30  # what it held, as far as it reads
    # The database the bot would start from: every intact record, nothing of the damaged ones.
    db = check.database
    assert db is not None and db.find("A1")[1]["status"] == "pending"
    assert db.find("A2")[1]["status"] == "completed" and db.find("A3") is None and db.payments == []


def test_a_damaged_user_record_names_the_user(data_dir: Path) -> None:
    user = {"t": "user", "v": {"username": "nasrin", "role": "staff", "passwordHash": "$argon2id$x", "removed": False,
                               "at": "2025-12-09T10:00:00.000+00:00", "by": "admin:admin"}}
    write_store(data_dir, [*RECORDS[:3], user, order("A4")], damaged=(4,))
    [bad] = check_data(data_dir).damaged
    assert bad.fields["username"] == "nasrin" and bad.fields["role"] == "staff"
    assert "a change to panel user nasrin" in " ".join(bad.effects) and "Users page" in " ".join(bad.effects)
    assert "argon2" not in orjson.dumps(bad.fields).decode()  # no password hash in a report


def test_a_record_whose_bytes_are_gone_is_still_placed_and_its_ids_named(data_dir: Path) -> None:
    lines = write_store(data_dir, damaged=())
    raw = lines[4]
    garbled = b"\x00\xff" + raw[2:raw.index(b'"v"')] + b"\xfe" * 10 + raw[raw.index(b'"id"'):]
    (data_dir / JOURNAL).write_bytes(b"".join(lines[:4]) + garbled + b"".join(lines[5:]))
    [bad] = check_data(data_dir).damaged
    assert (bad.damage.line, bad.damage.offset, bad.damage.raw) == (5, sum(map(len, lines[:4])), garbled)
    assert bad.damage.reason == "unreadable or incomplete header" and not bad.decoded
    assert bad.fields["id"] == "A1" and bad.fields["status"] == "approved" and bad.fields["t"] == "order"


def test_an_intact_record_the_bot_cannot_apply_is_damage_too(data_dir: Path) -> None:
    write_store(data_dir, damaged=())
    with open(data_dir / JOURNAL, "ab") as f:
        f.write(encode_record(b'{"t":"order","g":"' + G.encode() + b'","v":{"id":"A9"'))  # intact, not JSON
        f.write(encode_record(orjson.dumps(order("A4"))))
    [bad] = check_data(data_dir).damaged
    assert bad.damage.line == len(RECORDS) + 1 and bad.damage.reason.startswith("intact, but it cannot be applied")
    assert bad.fields["id"] == "A9"


def test_repair_moves_damaged_records_verbatim_into_a_side_file_and_the_bot_starts_from_the_rest(
        data_dir: Path) -> None:
    lines = write_store(data_dir)
    original = (data_dir / JOURNAL).read_bytes()
    check = check_data(data_dir)
    repair = repair_data(check, NOW)

    assert repair.side_file == data_dir / "damaged-20251209-170640.jsonl"
    side = [orjson.loads(line) for line in repair.side_file.read_bytes().splitlines()]
    assert [base64.b64decode(s["raw_base64"]) for s in side] == [lines[n - 1] for n in DAMAGED_LINES]
    assert [(s["file"], s["record"], s["reason"]) for s in side] == [
        (JOURNAL, n, "checksum mismatch") for n in DAMAGED_LINES]
    assert side[1]["readable"]["id"] == "A1" and "(it read approved) is lost" in side[1]["effects"][0]
    # The original kept beside the journal, byte for byte; the journal holds exactly the intact lines.
    [(journal, backup)] = repair.rewritten
    assert backup == data_dir / f"{JOURNAL}.before-repair-20251209-170640" and backup.read_bytes() == original
    kept = [line for n, line in enumerate(lines, 1) if n not in DAMAGED_LINES]
    assert journal.read_bytes() == b"".join(kept)
    assert oct(journal.stat().st_mode & 0o777) == "0o600" and oct(repair.side_file.stat().st_mode & 0o777) == "0o600"

    store, db = open_database(data_dir)  # what the bot does at start
    store.close()
    assert {oid: db.find(oid)[1]["status"] for oid in db.order_group} == {"A1": "pending", "A2": "completed"}
    assert check_data(data_dir).ok
    assert repair_data(check_data(data_dir), NOW + 1).side_file is None  # nothing left to do


def test_repair_refuses_and_changes_nothing_when_a_snapshot_cannot_be_read(data_dir: Path) -> None:
    write_store(data_dir)
    (data_dir / "orders.snapshot.json").write_bytes(b'{"format": 1, "journal_gen": 0, "data": {br')
    before = snapshot_of_files(data_dir)
    check = check_data(data_dir)
    assert check.problems and "orders.snapshot.json" in str(check.problems[0])
    with pytest.raises(Exception, match="orders.snapshot.json"):
        repair_data(check, NOW)
    assert snapshot_of_files(data_dir) == before


def test_a_torn_tail_of_the_newest_generation_is_no_damage_but_is_kept_by_a_repair(data_dir: Path) -> None:
    lines = write_store(data_dir, damaged=(5,))
    torn = encode_record(orjson.dumps(order("A7")))[:-20]
    with open(data_dir / JOURNAL, "ab") as f:
        f.write(torn)
    check = check_data(data_dir)
    assert [d.damage.line for d in check.damaged] == [5] and check.stores[0].journals[0].torn
    repair = repair_data(check, NOW)
    side = [orjson.loads(line) for line in repair.side_file.read_bytes().splitlines()]
    assert [base64.b64decode(s["raw_base64"]) for s in side] == [lines[4], torn]
    assert side[1]["reason"] == "a write cut short by a crash"


def test_a_damaged_inbox_record_says_whether_its_message_became_an_order(data_dir: Path) -> None:
    write_store(data_dir, damaged=())
    store, _, _ = Store.open(data_dir, "inbox")
    store.close()
    entries = [{"t": "in", "s": s, "m": {"group_id": G, "message_id": mid, "sender": "1@lid", "text": ".10",
                                         "timestamp": NOW}} for s, mid in ((1, "M-A1"), (2, "M-LOST"), (3, "M-X"))]
    raw = [encode_record(orjson.dumps(e)) for e in entries]
    (data_dir / "inbox.journal.00000000").write_bytes(flip(raw[0]) + flip(raw[1]) + raw[2])
    check = check_data(data_dir)
    effects = [" ".join(d.effects) for d in check.damaged]
    assert "inbound message M-A1: it is order A1 already, nothing is lost" in effects[0]
    assert "inbound message M-LOST" in effects[1] and "is in no order" in effects[1]
    # Repaired like the orders' journal: the gateway opens the inbox again with the intact entry.
    repair = repair_data(check, NOW)
    assert [journal.name for journal, _ in repair.rewritten] == ["inbox.journal.00000000"]
    inbox = Inbox.open(data_dir)
    try:
        assert [m.message_id for _, m in inbox.unhandled()] == ["M-X"]
    finally:
        inbox.close()


# -- the commands ---------------------------------------------------------------------------------


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "run.py", "--data-dir", str(data), *args], cwd=REPO, env=process_env(),
                          capture_output=True, text=True, timeout=60)


def test_check_data_reports_and_exits_1_then_repair_data_fixes_and_check_data_exits_0(data_dir: Path) -> None:
    write_store(data_dir)
    (data_dir / "panel-users.json").write_text('{"users": {}}')
    before = snapshot_of_files(data_dir)
    found = run(data_dir, "check-data")
    assert found.returncode == 1, found.stderr
    assert f"{JOURNAL}: DAMAGED: 4 of 9 records" in found.stdout
    assert f"{JOURNAL}, record 5 at byte offset " in found.stdout and "held: an order in group" in found.stdout
    assert "python run.py repair-data" in found.stdout
    assert "panel-users.json: ok (0 users of an earlier version" in found.stdout
    assert {k: v for k, v in snapshot_of_files(data_dir).items() if not k.endswith(".lock")} == before

    repaired = run(data_dir, "repair-data")
    assert repaired.returncode == 0, repaired.stderr
    assert "Moved 4 damaged records into" in repaired.stdout and "order A1: kept as" in repaired.stdout
    assert f"the original is kept as {JOURNAL}.before-repair-" in repaired.stdout
    healthy = run(data_dir, "check-data")
    assert healthy.returncode == 0 and "Every data file can be read." in healthy.stdout
    assert run(data_dir, "repair-data").stdout.startswith("Nothing to repair")


def test_check_data_names_any_other_file_that_cannot_be_read(data_dir: Path) -> None:
    write_store(data_dir, damaged=())
    (data_dir / "panel-secret.key").write_text("not a key")
    done = run(data_dir, "check-data")
    assert done.returncode == 1 and "panel-secret.key: CANNOT BE READ" in done.stdout


def test_check_data_without_a_data_dir_says_so(tmp_path: Path) -> None:
    done = run(tmp_path / "nowhere", "check-data")
    assert done.returncode == 1 and "no data directory" in done.stderr and not (tmp_path / "nowhere").exists()


HOLDER = textwrap.dedent("""
    import sys
    from storage.lock import FileLock
    FileLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()
""")


@pytest.mark.parametrize("command", ["check-data", "repair-data"])
@pytest.mark.parametrize("lock", ["bot.lock", "persistence.lock"])
def test_both_commands_refuse_while_the_bot_runs_and_change_nothing(data_dir: Path, command: str, lock: str) -> None:
    write_store(data_dir)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir / lock)], cwd=REPO, env=process_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = {k: v for k, v in snapshot_of_files(data_dir).items() if not k.endswith(".lock")}
        done = run(data_dir, command)
        assert {k: v for k, v in snapshot_of_files(data_dir).items() if not k.endswith(".lock")} == before
    finally:
        holder.communicate("", timeout=10)
    assert done.returncode == 2 and "is running" in done.stderr and str(holder.pid) in done.stderr


# -- end to end -----------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sandbox, Bot]]:
    with sandbox_and_bot(tmp_path, start=False) as world:
        yield world


@pytest.mark.e2e
def test_a_flipped_byte_no_longer_stops_the_bot_for_good(world: tuple[Sandbox, Bot], tmp_path: Path) -> None:
    sandbox, bot = world
    bot.start()
    group = sandbox.create_group("Karim Telecom")
    for n in (10, 20, 30):
        sandbox.post(group, "8801711111111@lid", f".{n}", "Alice")
    wait_for(lambda: len(bot.orders()) == 3, 20, "three orders")
    assert bot.api.post("/api/approve/A2")[0] == 200
    wait_for(lambda: bot.api.get("/api/orders/A2")["status"] == "completed", 20, "A2 delivered")
    bot.stop()

    # One flipped bit in A3's first record, with acknowledged records after it.
    [journal] = bot.data_dir.glob("orders.journal.*")
    raw = journal.read_bytes()
    at = raw.index(b'"id":"A3"')
    end = raw.index(b"\n", at)
    journal.write_bytes(raw[:end - 1] + bytes([raw[end - 1] ^ 0x01]) + raw[end:])
    code, output = Bot(bot.data_dir, sandbox.url, tmp_path / "refused.log").run_to_exit()
    assert code == 2 and "python run.py check-data" in output.strip().splitlines()[-1]

    checked = run(bot.data_dir, "check-data")
    assert checked.returncode == 1 and "checksum mismatch" in checked.stdout
    repaired = run(bot.data_dir, "repair-data")
    assert repaired.returncode == 0, repaired.stderr
    assert "order A3" in repaired.stdout

    bot.start()
    orders = {o["id"]: o for o in bot.orders()}
    assert orders["A2"]["status"] == "completed" and orders["A1"]["status"] == "pending"
    assert "A3" in orders  # its later records were intact: only the damaged one is set aside
    assert list(bot.data_dir.glob("damaged-*.jsonl")) and list(bot.data_dir.glob("*.before-repair-*"))
    bot.stop()
    assert not [p for p in leftover_processes() if str(bot.data_dir) in p[1]]

