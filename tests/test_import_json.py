"""`python run.py import-json PATH`: the seed's database.json into the bot's data directory.

The fixture is a database.json as the seed's Node bot wrote it (epoch-ms ids and dates, ISO
dates, rates as numbers and strings, every status it used, broken entries and payments)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

import run
from actors.messages import ListPayments, VoidPayment
from storage.database import open_database
from domain.clock import FakeClock, from_iso
from domain.orders import from_record, validation_problems
from gateway.fake import FakeTransport
from domain.records import decode
from storage.database import Database
from storage.importer import NOTE_PREFIX, Progress, SeedImport, SeedImportError, format_report, import_json
from tests.e2e import REPO, process_env
from tests.harness import T

FIXTURE = Path(__file__).parent / "fixtures" / "seed" / "database.json"
RAHIM = "120363041234567890@g.us"  # rate 100
KARIM = "120363049876543210@g.us"  # rate 2.3
HUB = "120363011122233344@g.us"  # rate "1.25"
NO_RATE = "120363055566677788@g.us"  # no rate
EMPTY = "120363012312312312@g.us"  # no entries
OTHER = "120363000000000009@g.us"  # ours, not in the seed
DHAKA = ZoneInfo("Asia/Dhaka")
NOW = 1_765_300_000.0  # 2025-12-09, after everything in the fixture
MAX_DIAMONDS = 100_000  # orders.max_diamonds' default
FAST = {"reconciliation.interval": "20ms", "reconciliation.checkpoint_interval": "1s"}


def do_import(data_dir: Path, path: Path = FIXTURE, **kw: Any):
    return import_json(path, data_dir, default_rate=Decimal("100"), tz=DHAKA, now=NOW, max_diamonds=MAX_DIAMONDS,
                       progress=kw.pop("progress", io.StringIO()), **kw)


def load(data_dir: Path) -> Database:
    store, db = open_database(data_dir)
    store.close()
    return db


def by_seed_id(db: Database, gid: str) -> dict[str, dict[str, Any]]:
    return {e["importedId"]: e for e in db.groups[gid].entries.values() if "importedId" in e}


def write_records(data_dir: Path, records: list[dict[str, Any]]) -> None:
    store, _ = open_database(data_dir)
    store.append([orjson.dumps(r) for r in records])
    store.sync()
    store.close()


def our_order(oid: str, gid: str) -> dict[str, Any]:
    return {"id": oid, "groupId": gid, "userId": "1@lid", "diamonds": 10, "rate": "80.00", "amount": "800.00",
            "status": "pending", "date": "2025-12-01T00:00:00.000+00:00", "messageId": f"MSG-{oid}"}


@pytest.fixture
def existing(data_dir: Path) -> Path:
    """A data dir already in use: the seed's first group is ours as A (rate 80, orders A1, A2), and
    another group of ours has code C; one payment P1."""
    write_records(data_dir, [
        {"t": "group", "g": RAHIM, "v": {"groupName": "Rahim Store", "code": "A", "rate": "80.00", "enabled": True,
                                         "autoApprove": False, "autoApproveMax": 0, "dueLimit": None,
                                         "nextSeq": 3, "watermark": 1764547200.0}},
        {"t": "order", "g": RAHIM, "v": our_order("A1", RAHIM)},
        {"t": "order", "g": RAHIM, "v": our_order("A2", RAHIM)},
        {"t": "group", "g": OTHER, "v": {"groupName": "Other", "code": "C", "rate": "90.00", "nextSeq": 1}},
        {"t": "payment", "g": OTHER, "v": {"id": "P1", "groupId": OTHER, "amount": "10.00", "method": "cash",
                                           "reference": "", "note": "", "at": None, "by": "admin"}},
    ])
    return data_dir


def test_the_seeds_file_imports_with_exact_money_mapped_statuses_and_flags(existing: Path) -> None:
    journal = existing / "orders.journal.00000000"
    before = journal.read_bytes()
    report = do_import(existing)

    assert (report.orders_imported, report.orders_flagged, report.orders_already, report.orders_refused,
            report.orders_duplicate) == (20, 3, 0, 9, 2)
    assert (report.payments_imported, report.payments_already, report.payments_refused,
            report.payments_duplicate) == (5, 0, 5, 1)
    assert report.deliveries_due == 2  # approved, valid, no delivery recorded in the seed
    assert report.groups_skipped == 1  # "oops"
    # New groups get codes after the highest in use (C); the seed's group that is already ours keeps A.
    assert [g.split()[0] for g in report.groups_created] == ["D", "E", "F", "G"]
    assert report.groups_updated == [f"A Rahim Store ({RAHIM})"]
    assert journal.read_bytes().startswith(before)  # only appended

    db = load(existing)
    codes = {gid: g.settings["code"] for gid, g in db.groups.items()}
    assert codes == {RAHIM: "A", OTHER: "C", KARIM: "D", HUB: "E", NO_RATE: "F", EMPTY: "G"}
    assert "120363099988877766@g.us" not in db.groups

    # The group already here keeps its settings (rate 80) and its orders; the seed's entries follow A2.
    rahim = db.groups[RAHIM]
    assert rahim.settings["rate"] == "80.00" and rahim.settings["groupName"] == "Rahim Store"
    assert rahim.entries["A1"] == our_order("A1", RAHIM)
    seed = by_seed_id(db, RAHIM)
    assert len(seed) == 12 and rahim.settings["nextSeq"] == 15
    assert sorted(e["id"] for e in seed.values()) == sorted(f"A{n}" for n in range(3, 15))
    first = seed["seed:1765040834207"]
    assert first["id"] == "A3" and first["userId"] == "76210050711676@lid"
    assert first["status"] == "pending" and first["diamonds"] == 10
    assert first["rate"] == "100.00" and first["amount"] == "1000.00"  # the seed's rate, not ours
    assert from_iso(first["date"]) == 1765040834.207
    assert first["audit"][0] == {"at": first["audit"][0]["at"], "from": None, "to": "pending",
                                 "by": "system:import", "note": f"{NOTE_PREFIX}seed:1765040834207)"}
    assert first["receipt"]["confirmedAt"]  # the seed answered it: no second receipt
    statuses = {k: e["status"] for k, e in seed.items()}
    assert statuses["seed:1765040900000"] == "processing"
    assert statuses["seed:1765041000000"] == "approved"
    assert statuses["seed:1765041100000"] == "completed"  # "done"
    assert statuses["seed:1765041200000"] == "completed"
    assert statuses["seed:1765041300000"] == "cancelled"
    assert statuses["seed:1765041400000"] == "deleted"
    assert "seed:1765042000000" not in statuses  # "on-hold": unknown, not imported
    assert statuses["seed:1765042200000"] == "completed"  # approved and confirmed in the seed
    done = seed["seed:1765041100000"]
    assert from_iso(done["approvedAt"]) == 1765041200.0 and from_iso(done["completedAt"]) == 1765041300.0
    assert seed["seed:1765041200000"]["completedAt"] == "2025-12-06T17:19:20.000+00:00"  # from confirmedAt
    assert seed["seed:1765041000000"]["date"] == "2025-12-06T17:10:00.000+00:00"  # ISO
    assert seed["seed:1765041500000"]["diamonds"] == 50  # "50"
    [no_id] = [e for k, e in seed.items() if k.startswith("seed:noid-")]
    assert no_id["diamonds"] == 5 and no_id["userId"] == "76210050711686@lid"

    # Exact money: 2.3 × 7 = 16.10, whether the seed stored the JS float 16.099999999999998 or nothing.
    karim = by_seed_id(db, KARIM)
    assert db.groups[KARIM].settings["rate"] == "2.30"
    assert karim["seed:1765050000000"]["amount"] == "16.10"
    assert karim["seed:1765050100000"]["amount"] == "16.10"
    assert karim["seed:1765050100000"]["rate"] == "2.30"
    assert karim["seed:1765050200000"]["amount"] == "6.90"
    assert karim["seed:1765050000000#2"]["diamonds"] == 12  # same id, other data: both kept
    assert karim["seed:1765050000000"]["messageId"] == "3EB0A1B2C3D4E5F6A7B8"
    assert sorted(e["id"] for e in karim.values()) == ["D1", "D2", "D3", "D4"]
    assert db.groups[KARIM].settings["nextSeq"] == 5

    hub = by_seed_id(db, HUB)
    assert db.groups[HUB].settings["rate"] == "1.25"
    assert hub["seed:1765060000000"]["date"] == "2025-12-07T04:00:00.000+00:00"  # naive, read in Dhaka
    assert hub["seed:1765060000000"]["amount"] == "50.00"
    assert hub["seed:1765060200000"]["rate"] == "1.50" and hub["seed:1765060200000"]["amount"] == "18.00"
    assert from_iso(hub["seed:1765060200000"]["date"]) == 1765060200.0  # no date: its id's time

    no_rate = by_seed_id(db, NO_RATE)
    assert db.groups[NO_RATE].settings["rate"] == "100.00"  # orders.default_rate, reported
    # Priced at its own rate 2.5; the others had no price of their own and the group's rate was
    # missing (priced at orders.default_rate they would be orders the seed never had).
    assert list(no_rate) == ["seed:1765070100000"] and no_rate["seed:1765070100000"]["amount"] == "12.50"
    assert db.groups[EMPTY].entries == {} and db.groups[EMPTY].settings["rate"] == "90.00"

    # Flagged: exactly the entries with partial data that are still open; reconciliation's own
    # validation finds them, and only them.
    flagged = {e["importedId"] for _, e in db.all_entries() if "importedId" in e
               and e["status"] not in ("completed", "cancelled", "deleted")
               and validation_problems(from_record(e))}
    assert flagged == {"seed:1765041900000",  # no user
                       "seed:1765042100000",  # approved without approvedAt
                       "seed:1765060100000"}  # processing without processingAt
    # Diamonds -5, 0 and "abc" are no order the seed can have meant: not imported, never made 0.
    assert not {"seed:1765041600000", "seed:1765041700000", "seed:1765041800000"} & set(seed)

    payments = {p["importedId"]: p for p in db.payments if "importedId" in p}
    assert [p["id"] for p in db.payments] == ["P1", "P2", "P3", "P4", "P5", "P6"]
    bkash = payments["seed:1765100000000"]
    assert bkash == {"id": "P2", "importedId": "seed:1765100000000", "groupId": RAHIM, "amount": "5000.00",
                     "method": "bkash", "reference": "BK9A7B6C5D", "note": "ডিসেম্বর প্রথম সপ্তাহ",
                     "at": "2025-12-07T09:33:20.000+00:00", "by": "system:import"}
    assert payments["seed:1765100100000"]["amount"] == "150.50"
    assert payments["seed:1765100100000"]["method"] == "nagad"
    assert payments["seed:1765100200000"]["amount"] == "2000.00"
    assert payments["seed:1765100300000"]["method"] == "other" and "Upay" in payments["seed:1765100300000"]["note"]
    assert payments["seed:1765100800000"]["method"] == "rocket" and payments["seed:1765100800000"]["at"] is None

    # The report names every problem, on stdout and in the data dir's logs.
    text = Path(report.log_path).read_text()
    assert Path(report.log_path).parent == existing / "logs"
    for expected in ("entry #9: a JSON string", "entry #11: no id and no diamonds",
                     "entry #8 (id 1765040834207): skipped: the same entry appears again",
                     "same message 3EB0A1B2C3D4E5F6A7B8", "group 120363099988877766@g.us: a JSON string",
                     'entry #15 (id 1765041800000): diamonds "abc" is not a whole number',
                     "entry #13 (id 1765041600000): diamonds -5 is below orders.min_diamonds",
                     "entry #16 (id 1765041900000) → A11: flagged invalid",
                     'entry #17 (id 1765042000000): unknown status "on-hold"',
                     "payment #7 (id 1765100600000): no group id", "the same payment appears again",
                     "payment #5 (id 1765100400000): amount -50 is not a usable amount",
                     "No Rate Shop): no usable rate", "status 'done' read as completed",
                     "already here with rate 80.00"):
        assert expected in text, expected
    assert text.index("NOT IMPORTED (15)") > text.index("Problems")  # the list to act on comes last
    assert format_report(report).endswith(f"This report is also in {report.log_path}")


def test_a_second_run_imports_nothing_and_says_so(data_dir: Path) -> None:
    first = do_import(data_dir)
    assert first.orders_imported == 20 and first.payments_imported == 5
    journal = (data_dir / "orders.journal.00000000").read_bytes()
    second = do_import(data_dir)
    assert (second.orders_imported, second.orders_already, second.payments_imported,
            second.payments_already) == (0, 20, 0, 5)
    assert second.groups_created == [] and second.groups_updated == []
    assert "Nothing new to import" in format_report(second)
    assert (data_dir / "orders.journal.00000000").read_bytes() == journal
    assert len(load(data_dir).order_group) == 20


def test_the_cli_imports_and_reports_on_stdout(data_dir: Path) -> None:
    done = subprocess.run([sys.executable, "run.py", "--data-dir", str(data_dir), "import-json", str(FIXTURE)],
                          cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr  # imported, except what the report lists as not imported
    assert "orders:   20 imported (3 flagged invalid for review); 9 NOT imported" in done.stdout
    assert "1 group, 9 entries and 5 payments were not imported" in done.stderr
    assert "importing: " not in done.stderr  # fewer than 1000 entries: no progress lines off a terminal
    again = subprocess.run([sys.executable, "run.py", "--data-dir", str(data_dir), "import-json", str(FIXTURE)],
                           cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 3 and "Nothing new to import" in again.stdout
    assert len(list((data_dir / "logs").glob("import-*.txt"))) == 2


HOLDER = textwrap.dedent("""
    import sys
    from storage.lock import FileLock
    FileLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()
""")


def test_a_running_bot_refuses_the_import_with_exit_2_and_nothing_written(existing: Path) -> None:
    files = {p.name: p.read_bytes() for p in existing.glob("orders.*")}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(existing / "persistence.lock")], cwd=REPO,
                              env=process_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        done = subprocess.run([sys.executable, "run.py", "--data-dir", str(existing), "import-json", str(FIXTURE)],
                              cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
        for pipe in (holder.stdin, holder.stdout):
            assert pipe is not None
            pipe.close()
    assert done.returncode == 2
    assert "Diamond Bot is already running" in done.stderr and f"pid {holder.pid}" in done.stderr
    assert "Nothing was imported" in done.stderr and done.stdout == ""
    assert {p.name: p.read_bytes() for p in existing.glob("orders.*")} == files
    assert not (existing / "logs").exists()


@pytest.mark.parametrize("content, expected", [
    (b"{not json", "is not valid JSON (line 1, column 2"),
    (b"[1, 2]", "holds a JSON array"),
    (b'{"groups": []}', '"groups" is a JSON array'),
    (b'{"orders": {}}', 'has no "groups"'),
    (b'{"format": 1, "journal_gen": 0, "data": {}}', "snapshot of this bot's own data directory"),
])
def test_an_unreadable_file_exits_1_naming_what_was_expected_and_writes_nothing(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str) -> None:
    bad = tmp_path / "database.json"
    bad.write_bytes(content)
    assert run.main(["--data-dir", str(data_dir), "import-json", str(bad)]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Nothing was imported" in err
    assert '{"groups": {"<group id>@g.us": {"groupName"' in err or "snapshot" in err
    assert not data_dir.exists()


def test_a_missing_file_exits_1(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--data-dir", str(data_dir), "import-json", str(tmp_path / "nope.json")]) == 1
    assert "cannot read" in capsys.readouterr().err and not data_dir.exists()


def test_an_unreadable_data_dir_is_not_touched(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "orders.snapshot.json").write_text("{broken")
    with pytest.raises(SeedImportError) as e:
        do_import(data_dir)
    assert e.value.exit_code == 1 and "orders.snapshot.json" in str(e.value)
    assert (data_dir / "orders.snapshot.json").read_text() == "{broken"
    assert not list(data_dir.glob("orders.journal.*"))


def test_the_actors_take_over_the_imported_orders(make_bot, data_dir: Path) -> None:
    do_import(data_dir)  # fresh: A রহিম স্টোর, B Karim Telecom, C ডায়মন্ড হাব ঢাকা, D No Rate Shop, E Empty
    bot = make_bot(clock=FakeClock(NOW), fake=FakeTransport(groups={KARIM: "Karim Telecom"}), **FAST)
    orders = {o["id"]: o for o in bot.orders()}
    assert len(orders) == 20
    assert orders["B2"]["amount"] == "16.10"
    assert orders["B2"]["audit"][0]["note"] == f"{NOTE_PREFIX}seed:1765050100000)"
    # domain.orders.to_record keeps no unknown field: once the bot rewrites an imported order
    # (B2 delivered, B1 stuck_pending) only its audit trail still names the seed's id.
    assert orders["B3"]["importedId"] == "seed:1765050200000"  # archived, never rewritten

    bot.post(KARIM, "76210050711690@lid", ".10")
    new = bot.order("B5")["record"]
    assert (new["diamonds"], new["rate"], new["amount"], new["status"]) == (10, "2.30", "23.00", "pending")
    assert bot.order("B1")["record"]["diamonds"] == 7  # not overwritten
    bot.pump(0.5)  # more reconciliation cycles

    # Only the approved, readable orders without a recorded delivery got a message (their
    # delivery, as the seed would have sent it); no second receipt for anything imported, and
    # nothing at all about the flagged ones, which reconciliation marked invalid.
    texts = {gid: bot.replies(gid) for gid in (RAHIM, KARIM, HUB, NO_RATE, EMPTY)}
    assert len(texts[RAHIM]) == 1 and "50" in texts[RAHIM][0] and "৳5000" in texts[RAHIM][0]
    assert len(texts[KARIM]) == 2 and sum("৳16.10" in t for t in texts[KARIM]) == 1  # B2's delivery, B5's receipt
    assert texts[HUB] == [] and texts[EMPTY] == [] and texts[NO_RATE] == []
    invalid = {i["order_id"] for i in bot.report()["issues"] if "invalid" in i["issues"]}
    assert invalid == {"A9", "A10", "C2"}  # no user; approved without approvedAt; processing without its time
    assert bot.order("A3")["record"]["status"] == "completed"
    bot.stop()

    # The journal stays readable, the bot's rewrites keep the seed id, and a rerun recognises
    # the orders it has since rewritten.
    db = load(data_dir)
    rewritten = db.find("A3")[1]
    assert rewritten["importedId"].startswith("seed:") and rewritten["status"] == "completed"
    again = do_import(data_dir)
    assert (again.orders_imported, again.orders_already) == (0, 20)


def test_an_imported_payment_can_be_voided_like_any_other(make_bot, data_dir: Path) -> None:
    """Imported payments keep the importer's ids ("P1"), which name no group: the bot finds
    the group itself."""
    do_import(data_dir)
    bot = make_bot(clock=FakeClock(NOW), fake=FakeTransport(groups={KARIM: "Karim Telecom"}), **FAST)
    payments = bot.query(ListPayments("l")).data["payments"]
    first = next(p for p in payments if p["id"] == "P1")
    due_before = next(g for g in bot.groups() if g["group_id"] == first["groupId"])["due"]
    done = bot.asys.ask(bot.supervisor, VoidPayment("v", "", "p1", "entered twice in the old bot", "admin:x"), T)
    assert done.status == 200, done
    assert done.result["payment"]["voidReason"] == "entered twice in the old bot"
    assert Decimal(done.result["due"]) == Decimal(due_before) + Decimal(first["amount"])
    unknown = bot.asys.ask(bot.supervisor, VoidPayment("u", "", "PZ99", "x", "admin:x"), T)
    assert (unknown.status, unknown.error) == (404, "no payment PZ99")
    also = bot.asys.ask(bot.supervisor, VoidPayment("w", "", "P999", "x", "admin:x"), T)
    assert (also.status, also.error) == (404, "no payment P999")


def test_an_entry_whose_message_is_already_an_order_is_not_imported_again() -> None:
    db = Database()
    db.apply(decode({"t": "group", "g": KARIM, "v": {"groupName": "Karim Telecom", "code": "A", "rate": "2.30",
                                                     "nextSeq": 2}}))
    db.apply(decode({"t": "order", "g": KARIM, "v": dict(our_order("A1", KARIM), messageId="3EB0A1B2C3D4E5F6A7B9")}))
    seed = {"groups": {KARIM: json.loads(FIXTURE.read_text(), parse_float=Decimal)["groups"][KARIM]}}
    plan = SeedImport(db, seed, default_rate=Decimal(100), tz=DHAKA, now=NOW, max_diamonds=MAX_DIAMONDS).plan()
    assert plan.report.orders_already == 1 and plan.report.orders_imported == 3
    ids = [r["v"]["id"] for r in plan.records if r["t"] == "order"]
    assert ids == ["A2", "A3", "A4"]  # after A1, never reusing it
    assert plan.records[0] == {"t": "group", "g": KARIM, "v": {"groupName": "Karim Telecom", "code": "A",
                                                                "rate": "2.30", "nextSeq": 5,
                                                                "watermark": 1765050200.0}}


def test_rates_are_read_exactly_from_the_json_text(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "database.json"
    path.write_text('{"groups": {"1@g.us": {"groupName": "x", "rate": 0.1, "entries": ['
                    '{"id": 1765040834207, "userId": "1@lid", "diamonds": 3, "status": "pending",'
                    ' "date": 1765040834207}]}, "2@g.us": {"groupName": "y", "rate": 1.0000001, "entries": []}}}')
    report = do_import(data_dir, path)
    db = load(data_dir)
    [order] = db.groups["1@g.us"].entries.values()
    assert (order["rate"], order["amount"]) == ("0.10", "0.30")  # 3 × 0.1 in binary floats is 0.30000000000000004
    assert db.groups["2@g.us"].settings["rate"] == "100.00"  # more than 4 places: unusable, default, reported
    assert any("1.0000001 is not a usable rate" in p.what for p in report.problems)


def test_a_group_key_that_is_no_whatsapp_group_is_reported(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "database.json"
    path.write_text('{"groups": {"bad-group-id": {"groupName": 5, "rate": 2, "entries": []}}}')
    report = do_import(data_dir, path)
    said = [p.what for p in report.problems if "bad-group-id" in p.where]
    assert any("not a WhatsApp group id" in w for w in said), said
    assert any("groupName 5 is not text" in w for w in said), said
    assert load(data_dir).groups["bad-group-id"].settings["groupName"] == "5"  # kept, nothing lost


def test_progress_is_a_bar_on_a_terminal_and_a_line_per_1000_elsewhere(data_dir: Path, tmp_path: Path) -> None:
    entries = [{"id": 1765040834207 + i, "userId": f"{i}@lid", "diamonds": 10, "status": "completed",
                "date": 1765040834207 + i, "completedAt": 1765040834207 + i} for i in range(2500)]
    path = tmp_path / "database.json"
    path.write_text(json.dumps({"groups": {"1@g.us": {"groupName": "Big", "rate": 1, "entries": entries}}}))
    out = io.StringIO()
    report = do_import(data_dir, path, progress=out)
    assert report.orders_imported == 2500
    assert out.getvalue().splitlines() == ["importing: 1000/2500", "importing: 2000/2500"]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    bar = Progress("importing", 3, tty)
    for _ in range(3):
        bar.update()
    bar.close()
    assert tty.getvalue().startswith("\rimporting ") and "100% 3/3" in tty.getvalue()
    assert tty.getvalue().endswith("\n")


def test_payment_records_apply_dedupe_by_id_and_survive_a_snapshot() -> None:
    db = Database()
    first = {"id": "P1", "groupId": "1@g.us", "amount": "10.00", "method": "cash"}
    db.apply(decode({"t": "payment", "g": "1@g.us", "v": first}))
    db.apply(decode({"t": "payment", "g": "1@g.us", "v": {"id": "P2", "groupId": "1@g.us", "amount": "5.00"}}))
    db.apply(decode({"t": "payment", "g": "1@g.us", "v": dict(first, amount="12.00")}))  # P1 again: replaces it
    assert [(p["id"], p["amount"]) for p in db.payments] == [("P1", "12.00"), ("P2", "5.00")]
    assert "1@g.us" not in db.groups  # a payment creates no group
    again = Database.from_snapshot(orjson.loads(orjson.dumps(db.snapshot())))
    assert again.snapshot()["payments"] == db.payments
    again.apply(decode({"t": "payment", "g": "1@g.us", "v": dict(first, amount="13.00")}))
    assert [(p["id"], p["amount"]) for p in again.payments] == [("P1", "13.00"), ("P2", "5.00")]


# -- nothing comes in different from what the seed had ----------------------------------------------

GOOD = {"id": 1765040000000, "userId": "76210050711676@lid", "status": "pending", "diamonds": 10,
        "date": 1765040000000}


def seed_file(tmp_path: Path, entries: list[Any], payments: list[Any] = (), rate: Any = 100) -> Path:
    path = tmp_path / "database.json"
    group = {"groupName": "Shop", "entries": entries}
    if rate is not None:
        group["rate"] = rate
    path.write_text(json.dumps({"groups": {RAHIM: group}, "payments": list(payments)}))
    return path


def entry(**changes: Any) -> dict[str, Any]:
    return {**GOOD, "id": 1765040000001, **changes}


REFUSED_ENTRIES = [
    (entry(diamonds=25.5), "diamonds 25.5 is not a whole number"),
    (entry(diamonds=1_000_000), "diamonds 1000000 is above orders.max_diamonds (100000)"),
    (entry(diamonds=-3), "diamonds -3 is below orders.min_diamonds (1)"),
    (entry(diamonds="NaN"), 'diamonds "NaN" is not a whole number'),
    (entry(diamonds=None), "no diamonds"),
    (entry(amount=-1000), "amount -1000 is not a usable amount"),
    (entry(amount="NaN"), 'amount "NaN" is not a usable amount'),
    (entry(amount=1e300), "is not a usable amount"),
    (entry(amount=123456789012), "is more than 10000000.00"),
    (entry(amount=1000.555), "amount 1000.555 has fractions of a poisha"),
    (entry(rate="abc"), 'rate "abc" is not a usable rate'),
    (entry(rate=-2), "rate -2 is not a usable rate"),
    (entry(status="on-hold"), 'unknown status "on-hold"'),
    (entry(status=None), "no status"),
    (entry(date="yesterday"), 'date "yesterday" is not a time'),
    (entry(date=32503680000000), "is not a plausible time"),  # the year 3000
    (entry(status="approved", approvedAt="soon"), 'approvedAt "soon" is not a time'),
]


@pytest.mark.parametrize(("bad", "why"), REFUSED_ENTRIES, ids=[why for _, why in REFUSED_ENTRIES])
def test_an_entry_that_cannot_come_in_as_written_is_refused_and_the_rest_imported(
        data_dir: Path, tmp_path: Path, bad: dict[str, Any], why: str) -> None:
    report = do_import(data_dir, seed_file(tmp_path, [GOOD, bad, {**GOOD, "id": 1765040000002}]))
    assert (report.orders_imported, report.orders_refused) == (2, 1)
    [refused] = report.refused
    assert refused.where == f"group {RAHIM} (Shop) entry #2 (id 1765040000001)"
    assert why in refused.what, refused.what
    db = load(data_dir)
    assert sorted(e["importedId"] for e in db.groups[RAHIM].entries.values()) == [
        "seed:1765040000000", "seed:1765040000002"]
    assert all((e["diamonds"], e["amount"]) == (10, "1000.00") for e in db.groups[RAHIM].entries.values())
    text = format_report(report)
    tail = text[text.index("NOT IMPORTED (1)"):]
    assert "entry #2 (id 1765040000001): " in tail and why in tail


def test_entries_of_a_group_without_a_rate_come_in_only_with_a_price_of_their_own(data_dir: Path,
                                                                                  tmp_path: Path) -> None:
    entries = [GOOD, entry(rate="2.5"), {**GOOD, "id": 1765040000002, "amount": 700}]
    report = do_import(data_dir, seed_file(tmp_path, entries, rate=None))
    assert report.orders_imported == 2
    assert [p.what for p in report.refused] == [
        "not imported: no rate of its own, and its group has no usable rate in the file"]
    amounts = {e["importedId"]: e["amount"] for e in load(data_dir).groups[RAHIM].entries.values()}
    assert amounts == {"seed:1765040000001": "25.00", "seed:1765040000002": "700.00"}  # never default_rate × 10


def test_a_js_float_amount_is_the_poisha_it_meant(data_dir: Path, tmp_path: Path) -> None:
    report = do_import(data_dir, seed_file(tmp_path, [entry(diamonds=7, rate="2.3", amount=16.099999999999998)]))
    assert report.refused == [] and report.orders_imported == 1
    [order] = load(data_dir).groups[RAHIM].entries.values()
    assert order["amount"] == "16.10"


PAYMENT = {"id": 1765100000000, "groupId": RAHIM, "amount": 5000, "method": "bKash", "trxId": "BK1",
           "date": 1765100000000}
REFUSED_PAYMENTS = [
    ({**PAYMENT, "groupId": "120363000000000777@g.us"},
     "group 120363000000000777@g.us is neither a readable group of the file nor one of the bot's"),
    ({**PAYMENT, "groupId": None}, "no group id"),
    ({**PAYMENT, "amount": -50}, "amount -50 is not a usable amount"),
    ({**PAYMENT, "amount": 0}, "amount 0 is not more than 0"),
    ({**PAYMENT, "amount": "NaN"}, 'amount "NaN" is not a usable amount'),
    ({**PAYMENT, "amount": 99_999_999}, "is more than 10000000.00"),
    ({**PAYMENT, "amount": 10.005}, "amount 10.005 has fractions of a poisha"),
    ({**PAYMENT, "amount": None}, "no amount"),
    ({**PAYMENT, "date": "last week"}, 'date "last week" is not a time'),
]


@pytest.mark.parametrize(("bad", "why"), REFUSED_PAYMENTS, ids=[why for _, why in REFUSED_PAYMENTS])
def test_a_payment_that_cannot_come_in_as_written_is_refused_and_the_rest_imported(
        data_dir: Path, tmp_path: Path, bad: dict[str, Any], why: str) -> None:
    payments = [PAYMENT, {**bad, "id": 1765100000001}, {**PAYMENT, "id": 1765100000002, "amount": 300}]
    report = do_import(data_dir, seed_file(tmp_path, [GOOD], payments))
    assert (report.payments_imported, report.payments_refused) == (2, 1)
    [refused] = report.refused
    assert refused.where == "payment #2 (id 1765100000001)" and why in refused.what, refused.what
    db = load(data_dir)
    assert [(p["groupId"], p["amount"]) for p in db.payments] == [(RAHIM, "5000.00"), (RAHIM, "300.00")]


def test_a_payment_of_a_group_the_bot_already_has_comes_in(data_dir: Path, tmp_path: Path) -> None:
    write_records(data_dir, [{"t": "group", "g": OTHER, "v": {"groupName": "Other", "code": "A", "rate": "90.00"}}])
    report = do_import(data_dir, seed_file(tmp_path, [GOOD], [{**PAYMENT, "groupId": OTHER}]))
    assert report.refused == [] and [p["groupId"] for p in load(data_dir).payments] == [OTHER]


def test_the_cli_exits_3_and_lists_what_was_not_imported_last(data_dir: Path, tmp_path: Path) -> None:
    path = seed_file(tmp_path, [GOOD, entry(diamonds=25.5)], [{**PAYMENT, "groupId": "120363000000000777@g.us"}])
    done = subprocess.run([sys.executable, "run.py", "--data-dir", str(data_dir), "import-json", str(path)],
                          cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    tail = done.stdout[done.stdout.index("NOT IMPORTED (2)"):]
    assert "entry #2 (id 1765040000001): diamonds 25.5 is not a whole number" in tail
    assert "payment #1 (id 1765100000000): group 120363000000000777@g.us is neither" in tail
    assert "1 entry and 1 payment were not imported" in done.stderr
    assert len(load(data_dir).order_group) == 1 and load(data_dir).payments == []


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(data_dir: Path, tmp_path: Path) -> None:
    huge = tmp_path / "database.json"
    with open(huge, "wb") as f:  # sparse: no disk and no memory used, unless someone reads it
        f.truncate(257 * 1024 * 1024)
    done = subprocess.run([sys.executable, "run.py", "--data-dir", str(data_dir), "import-json", str(huge)],
                          cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "257 MB, more than the 256 MB the import reads" in done.stderr and "Nothing was imported" in done.stderr
    assert not data_dir.exists()
