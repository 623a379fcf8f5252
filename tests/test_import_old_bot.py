"""`run.py import-json` on what real shops have (issue 12): files from Windows tools (UTF-16/32
with a byte-order mark, UTF-8 with one, CRLF), every field the old bots wrote (the player, who
approved or deleted an order and why, when processing began, a group's due limit, fields nobody
here knows), and their payments file (payment-transactions.json) beside database.json.

Every file here is written by the test, in the shape the old Node bots wrote: `playerIdNumber:
playerIdNumber || userId`, payment-transactions.json as a list of {id: 1, 2 …, userId, groupId,
amount, type: "auto" | "manual", status: "approved", createdAt}."""

from __future__ import annotations

import codecs
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiohttp.test_utils import TestClient

import run
from actors.messages import ListPayments, VoidPayment
from domain.clock import FakeClock, from_iso, to_iso
from domain.orders import AuditEntry, Order, Status, from_record, to_record
from domain.payments import Payment, paid_records, void
from domain.payments import from_record as payment_from_record
from domain.payments import to_record as payment_to_record
from gateway.fake import FakeTransport
from storage.check import check_data
from storage.database import Database, open_database
from storage.importer import SeedImport, import_json
from tests.e2e import REPO, process_env
from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client
from tests.harness import T
from tests.test_import_json import HOLDER

DHAKA = ZoneInfo("Asia/Dhaka")
NOW = 1_765_300_000.0  # 2025-12-09, after everything in the files
SHOP = "120363041234567890@g.us"
OTHER = "120363049876543210@g.us"
RAHIM = "76210050711676@lid"
KARIM = "76210050711677@lid"
SUMI_PHONE = "8801711000001"
SUMI = f"{SUMI_PHONE}@s.whatsapp.net"
DAY = 1765040000000  # 2025-12-06T16:53:20Z in the old bot's epoch milliseconds
FAST = {"reconciliation.interval": "20ms", "reconciliation.checkpoint_interval": "1s"}


def entry(n: int, **fields: Any) -> dict[str, Any]:
    """An entry as the old bot's addEntry wrote it (id = Date.now())."""
    return {"id": DAY + n, "userId": RAHIM, "userName": "Rahim", "playerIdNumber": RAHIM, "diamonds": 10,
            "rate": 2.3, "status": "pending", "createdAt": to_iso(DAY / 1000 + n), "messageId": f"MSG{n}",
            **fields}


def database(entries: list[dict[str, Any]], *, others: list[dict[str, Any]] = (), **group: Any) -> dict[str, Any]:
    return {"groups": {SHOP: {"groupId": SHOP, "groupName": "রহিম স্টোর", "rate": 2.3, "entries": entries, **group},
                       OTHER: {"groupName": "Karim Telecom", "rate": 2.5, "entries": list(others)}},
            "lastUpdated": "2025-12-07T00:00:00.000Z"}


def transaction(n: int, **fields: Any) -> dict[str, Any]:
    """A payment as the old bot's ledger (addTransaction) wrote it."""
    return {"id": n, "userId": RAHIM, "userName": "Rahim", "groupId": SHOP, "amount": 23, "type": "auto",
            "status": "approved", "createdAt": "2025-12-07T00:00:00.000Z", **fields}


def write(path: Path, doc: Any, encoding: str = "utf-8", bom: bytes = b"", crlf: bool = False) -> Path:
    """A JSON file as a Windows tool may save it: indented, in `encoding`, after `bom`."""
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    if crlf:
        text = text.replace("\n", "\r\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bom + text.encode(encoding))
    return path


def do_import(data_dir: Path, path: Path, payments: Path | None = None, default_rate: Decimal | None = Decimal(100),
              **kw: Any):
    return import_json(path, data_dir, default_rate=default_rate, tz=DHAKA, now=NOW, max_diamonds=100_000,
                       progress=kw.pop("progress", io.StringIO()), payments=payments, **kw)


def load(data_dir: Path) -> Database:
    store, db = open_database(data_dir)
    store.close()
    return db


def orders(db: Database, gid: str = SHOP) -> dict[str, dict[str, Any]]:
    """The group's imported orders by the old bot's id."""
    return {e["importedId"].removeprefix("seed:"): e for e in db.groups[gid].entries.values()}


def payments(db: Database) -> dict[str, dict[str, Any]]:
    return {p["importedId"]: p for p in db.payments}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "run.py", *args], cwd=REPO, env=process_env(), capture_output=True,
                          text=True, timeout=60)


# -- encodings --------------------------------------------------------------------------------

ENCODINGS = [
    ("utf-8", b"", "UTF-8"),
    ("utf-8", codecs.BOM_UTF8, "UTF-8 with a byte-order mark"),
    ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16 (little-endian)"),
    ("utf-16-be", codecs.BOM_UTF16_BE, "UTF-16 (big-endian)"),
    ("utf-32-le", codecs.BOM_UTF32_LE, "UTF-32 (little-endian)"),
    ("utf-32-be", codecs.BOM_UTF32_BE, "UTF-32 (big-endian)"),
]


@pytest.mark.parametrize(("encoding", "bom", "name"), ENCODINGS, ids=[n for _, _, n in ENCODINGS])
def test_files_saved_by_windows_tools_import_with_every_character(data_dir: Path, tmp_path: Path, encoding: str,
                                                                  bom: bytes, name: str) -> None:
    folder = tmp_path / "config"
    write(folder / "database.json", database([entry(1, playerIdNumber="৫৭৬৫১৫২৭৫", note="ভাই দ্রুত 🙏")]),
          encoding, bom, crlf=True)
    write(folder / "payment-transactions.json", [transaction(1, note="বিকাশে দিলাম")], encoding, bom, crlf=True)
    report = do_import(data_dir, folder)
    assert report.refused == [] and (report.orders_imported, report.payments_imported) == (1, 1)
    assert report.files == [f"{folder / 'database.json'} ({name})", f"{folder / 'payment-transactions.json'} ({name})"]
    db = load(data_dir)
    assert db.groups[SHOP].settings["groupName"] == "রহিম স্টোর"
    [order] = orders(db).values()
    assert order["playerId"] == "576515275" and order["imported"] == {"note": "ভাই দ্রুত 🙏"}
    [payment] = db.payments
    assert payment["note"] == "বিকাশে দিলাম; paid by Rahim (76210050711676@lid); type: auto"


NOT_READ = [
    # Notepad's "ANSI": a Windows code page, which cannot be told from the others for sure.
    ("Café".join(['{"groups": {"1@g.us": {"groupName": "', '", "entries": []}}}']).encode("cp1252"),
     "is not UTF-8: byte 0xE9 on line 1, column 41 cannot be UTF-8"),
    ('{"groups": {}}'.encode("utf-16-le"), "looks like UTF-16 (little-endian) text without a byte-order mark"),
    ('{"groups": {}}'.encode("utf-16-be"), "looks like UTF-16 (big-endian) text without a byte-order mark"),
    ('{"groups": {}}'.encode("utf-32-le"), "looks like UTF-32 (little-endian) text without a byte-order mark"),
    ('{"groups": {}}'.encode("utf-32-be"), "looks like UTF-32 (big-endian) text without a byte-order mark"),
    (codecs.BOM_UTF16_LE + '{"groups": {}}'.encode("utf-16-le") + b"\x00",
     "starts with the byte-order mark of UTF-16 (little-endian) but is not valid UTF-16 (little-endian)"),
    (codecs.BOM_UTF8 + b'{"groups": {"\xff": {}}}', "is not UTF-8: byte 0xFF on line 1, column 14"),
]


@pytest.mark.parametrize(("content", "why"), NOT_READ, ids=[w[:40] for _, w in NOT_READ])
@pytest.mark.parametrize("which", ["database.json", "payment-transactions.json"])
def test_a_file_in_another_encoding_is_refused_saying_what_it_looks_like(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], content: bytes, why: str,
        which: str) -> None:
    folder = tmp_path / "config"
    write(folder / "database.json", database([entry(1)]))
    write(folder / "payment-transactions.json", [transaction(1)])
    (folder / which).write_bytes(content)
    assert run.main(["--data-dir", str(data_dir), "import-json", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"{folder / which} {why}" in err, err
    assert ("The import reads UTF-8 (with or without a byte-order mark), or UTF-16 or UTF-32 with a byte-order mark: "
            "open the file in a text editor and save it as UTF-8") in err
    assert err.rstrip().endswith("Nothing was imported.") and "Traceback" not in err
    assert not data_dir.exists()  # nothing written, not even the data directory


def test_crlf_and_a_byte_order_mark_change_nothing_that_was_written(data_dir: Path, tmp_path: Path) -> None:
    """The same file saved two ways imports the same records (but for the report's file line)."""
    doc = database([entry(1, approvedBy="Karim", status="approved", approvedAt=DAY + 60_000)])
    plain = do_import(data_dir / "a", write(tmp_path / "a" / "database.json", doc))
    windows = do_import(data_dir / "b", write(tmp_path / "b" / "database.json", doc, "utf-16-le", codecs.BOM_UTF16_LE,
                                              crlf=True))
    assert plain.refused == windows.refused == []
    assert load(data_dir / "a").snapshot() == load(data_dir / "b").snapshot()


# -- every field the old bots wrote --------------------------------------------------------------


def test_the_player_to_top_up_comes_in_as_orders_keep_it(data_dir: Path, tmp_path: Path) -> None:
    entries = [
        entry(1, playerIdNumber="576515275"),
        entry(2, playerIdNumber=576515276),  # a number in the JSON
        entry(3, playerIdNumber="৫৭৬৫১৫২৭৭"),  # Bengali digits
        entry(4, playerIdNumber="576-515 278"),  # as a reseller typed it
        entry(5, playerIdNumber="+8801711000001"),  # a shop that tops up by phone number
        entry(6),  # playerIdNumber || userId: none was given
        entry(7, playerIdNumber=None, playerId="576515279"),
        entry(8, playerIdNumber=None, gameId="576515280"),
        entry(9, playerIdNumber=None, player_id="576515281"),
        entry(10, playerIdNumber=None, uid="576515282"),
        entry(11, playerIdNumber="Rahim bhai"),  # no player ID: kept as it was, reported
        entry(12, playerIdNumber="123"),  # too short to be one
        {k: v for k, v in entry(13).items() if k != "playerIdNumber"},  # older entries had none
        entry(14, playerIdNumber=None, uid="76210050711676"),  # the user's own number, without its @lid
    ]
    report = do_import(data_dir, write(tmp_path / "database.json", database(entries)))
    assert report.refused == [] and report.orders_imported == 14
    got = {k[-2:]: (e["playerId"], e.get("imported", {})) for k, e in orders(load(data_dir)).items()}
    assert got == {
        "01": ("576515275", {}), "02": ("576515276", {}), "03": ("576515277", {}), "04": ("576515278", {}),
        "05": ("+8801711000001", {}), "06": ("", {}), "07": ("576515279", {}), "08": ("576515280", {}),
        "09": ("576515281", {}), "10": ("576515282", {}),
        "11": ("", {"playerIdNumber": "Rahim bhai"}), "12": ("", {"playerIdNumber": "123"}), "13": ("", {}),
        "14": ("", {}),
    }
    assert report.notes["playerIdNumber that only repeats the user's WhatsApp id (the old bot wrote that when no "
                        "player was given): no player ID"] == 1
    assert report.notes["uid that only repeats the user's WhatsApp id (the old bot wrote that when no player was "
                        "given): no player ID"] == 1
    assert report.notes["player IDs written with spaces, dashes or Bengali digits read as digits "
                        "(playerIdNumber)"] == 2
    said = {p.where.split(" → ")[0].rsplit(" ", 1)[-1].rstrip(")"): p.what for p in report.problems}
    assert 'playerIdNumber "Rahim bhai" is not a player ID' in said[str(DAY + 11)]
    assert report.kept[("orders", "playerIdNumber")] == 2


def audit(order: dict[str, Any]) -> list[tuple[str | None, str, str, str]]:
    """The audit trail after the import's own first entry: (from, to, by, note)."""
    return [(a["from"], a["to"], a["by"], a["note"]) for a in order["audit"][1:]]


def test_who_approved_or_deleted_and_why_go_into_the_audit_trail(data_dir: Path, tmp_path: Path) -> None:
    approved_at, deleted_at = DAY + 60_000, DAY + 120_000
    entries = [
        entry(1, status="approved", approvedAt=approved_at, approvedBy=SUMI),
        entry(2, status="deleted", deletedAt=deleted_at, deletedBy="Karim", correctionReason="wrong player ID"),
        entry(3, status="completed", approvedAt=approved_at, completedAt=deleted_at, approvedBy="admin",
              correctionReason="diamonds corrected from 100"),
        entry(4, status="pending", correctionReason="reseller asked to wait"),
        entry(5, status="cancelled", cancelledAt=deleted_at, cancelledBy=KARIM),
        entry(6, status="pending", approvedBy="Karim"),  # a move its status does not show: kept as written
        entry(7, status="deleted", processingStartedAt=DAY + 30_000, approvedAt=approved_at, approvedBy="admin",
              deletedAt=deleted_at, deletedBy={"name": "Karim"}),  # who deleted it: not text, kept
        entry(8, status="deleted", correctionReason="duplicate", correctedBy="Karim"),  # no deletedAt
    ]
    report = do_import(data_dir, write(tmp_path / "database.json", database(entries)))
    assert report.refused == [] and report.orders_imported == 8
    got = orders(load(data_dir))

    def at(o: dict[str, Any], i: int) -> float:
        return from_iso(o["audit"][i]["at"])

    one = got[str(DAY + 1)]
    assert audit(one) == [("pending", "approved", f"whatsapp:{SUMI}", "import: in the old bot")]
    assert at(one, 1) == approved_at / 1000 and "imported" not in one
    two = got[str(DAY + 2)]
    assert audit(two) == [("pending", "deleted", "Karim", "import: in the old bot; correctionReason: wrong player ID")]
    assert at(two, 1) == deleted_at / 1000
    three = got[str(DAY + 3)]  # the reason explains the last move a person made: the approval
    assert audit(three) == [("pending", "approved", "admin",
                             "import: in the old bot; correctionReason: diamonds corrected from 100")]
    four = got[str(DAY + 4)]
    assert audit(four) == [("pending", "pending", "system:import",
                            "import: in the old bot, time not recorded; correctionReason: reseller asked to wait")]
    assert at(four, 1) == NOW
    assert audit(got[str(DAY + 5)]) == [("pending", "cancelled", f"whatsapp:{KARIM}", "import: in the old bot")]
    six = got[str(DAY + 6)]
    assert audit(six) == [] and six["imported"] == {"approvedBy": "Karim"}
    seven = got[str(DAY + 7)]
    assert seven["processingAt"] == to_iso((DAY + 30_000) / 1000)
    assert audit(seven) == [("processing", "approved", "admin", "import: in the old bot")]
    assert seven["imported"] == {"deletedBy": {"name": "Karim"}}
    eight = got[str(DAY + 8)]
    assert audit(eight)[0] == ("pending", "deleted", "Karim",
                               "import: in the old bot, time not recorded; correctionReason: duplicate")
    assert "imported" not in eight


@pytest.mark.parametrize("name", ["processingAt", "processingStartedAt", "processingStartAt", "processingStart",
                                  "startedProcessingAt", "startedAt"])
def test_when_processing_began_is_the_orders_processing_time(data_dir: Path, tmp_path: Path, name: str) -> None:
    started = DAY + 45_000
    do_import(data_dir, write(tmp_path / "database.json", database([entry(1, status="processing", **{name: started})])))
    [order] = orders(load(data_dir)).values()
    assert from_iso(order["processingAt"]) == started / 1000 and "imported" not in order
    assert from_record(order).problems == ()


@pytest.mark.parametrize(("written", "stored"), [("5000", "5000.00"), ('"2500.50"', "2500.50"), ("0", "0.00"),
                                                 ("1500.5", "1500.50")])
def test_a_groups_due_limit_becomes_its_setting(data_dir: Path, tmp_path: Path, written: str, stored: str) -> None:
    path = write(tmp_path / "database.json", database([entry(1)], dueLimit="DUE"))
    path.write_text(path.read_text().replace('"DUE"', written))  # the number exactly as the file wrote it
    report = do_import(data_dir, path)
    assert report.refused == []
    settings = load(data_dir).groups[SHOP].settings
    assert settings["dueLimit"] == stored and "imported" not in settings


@pytest.mark.parametrize(("written", "why"), [
    (-100, "dueLimit -100 is not a usable amount (amount must be zero or more, not -100)"),
    ("lots", 'dueLimit "lots" is not a usable amount'),
    (10.005, "dueLimit 10.005 has fractions of a poisha"),
    (True, "dueLimit true is not an amount"),
])
def test_a_due_limit_that_is_none_is_listed_not_imported_and_kept(data_dir: Path, tmp_path: Path, written: Any,
                                                                  why: str) -> None:
    report = do_import(data_dir, write(tmp_path / "database.json", database([entry(1)], dueLimit=written)))
    assert report.orders_imported == 1 and report.settings_refused == 1
    [refused] = report.refused
    assert refused.where == f"group {SHOP} (রহিম স্টোর)" and why in refused.what, refused.what
    settings = load(data_dir).groups[SHOP].settings
    assert settings["dueLimit"] is None and settings["imported"]["dueLimit"] == written


def test_a_group_the_bot_knew_before_takes_the_seeds_rate_and_due_limit_only_where_it_has_none(
        data_dir: Path, tmp_path: Path) -> None:
    """The bot learns its groups from WhatsApp before the import (rate null); a rate someone set wins."""
    store, _ = open_database(data_dir)
    store.append([orjson.dumps(r) for r in (
        {"t": "group", "g": SHOP, "v": {"groupName": "Rahim Store", "code": "A", "rate": None, "dueLimit": None,
                                        "joinedAt": "2025-12-08T00:00:00.000+00:00"}},
        {"t": "group", "g": OTHER, "v": {"groupName": "Karim Telecom", "code": "B", "rate": "3.00",
                                         "dueLimit": "900.00"}})])
    store.sync()
    store.close()
    doc = database([entry(1)], dueLimit=5000)
    doc["groups"][OTHER].update(dueLimit=700, color="blue")
    path = write(tmp_path / "database.json", doc)
    report = do_import(data_dir, path)
    settings = {gid: g.settings for gid, g in load(data_dir).groups.items()}
    assert (settings[SHOP]["rate"], settings[SHOP]["dueLimit"]) == ("2.30", "5000.00")
    assert settings[SHOP]["joinedAt"] == "2025-12-08T00:00:00.000+00:00"  # the rest stays as the bot had it
    assert settings[SHOP]["groupName"] == "Rahim Store"  # WhatsApp's name; the old bot's is kept beside it
    assert settings[SHOP]["imported"] == {"groupName": "রহিম স্টোর"}
    assert (settings[OTHER]["rate"], settings[OTHER]["dueLimit"]) == ("3.00", "900.00")
    assert settings[OTHER]["imported"] == {"color": "blue"}
    said = [p.what for p in report.problems]
    assert "had no rate here: takes the seed's rate 2.30" in said
    assert any("already here with due limit 900.00; the seed's 700.00 is not used" in w for w in said)
    again = do_import(data_dir, path)
    assert again.groups_updated == [] and len(again.groups_unchanged) == 2
    assert not again.kept  # kept the first time; nothing written now


def test_what_the_import_does_not_understand_is_kept_verbatim_and_counted(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "config" / "database.json"
    path.parent.mkdir()
    extra = '{"a": [1, 2.50, {"b": null}], "big": 123456789012345678901234567890, "f": 16.099999999999998}'
    text = json.dumps(database([entry(1, checkCount=42, lastChecked=DAY + 5, createdAt=to_iso(DAY / 1000 + 1),
                                     date=DAY + 1, tags=["vip"])], color="red", autoApprove="yes"))
    path.write_text(text.replace('"tags": ["vip"]', f'"tags": ["vip"], "extra": {extra}'))
    write(path.parent / "payment-transactions.json",
          {"exportedAt": "2025-12-08", "payments": [transaction(1, reason="auto-deduction", balanceAfter=700)]})
    report = do_import(data_dir, path.parent)
    db = load(data_dir)
    [order] = orders(db).values()
    # Both times said the same; only the one not read is kept (nothing lost either way).
    assert order["imported"] == {"checkCount": 42, "lastChecked": DAY + 5, "createdAt": to_iso(DAY / 1000 + 1),
                                 "tags": ["vip"],
                                 "extra": {"a": [1, 2.5, {"b": None}], "big": "123456789012345678901234567890",
                                           "f": 16.099999999999998}}
    assert db.groups[SHOP].settings["imported"] == {"color": "red", "autoApprove": "yes"}
    assert db.groups[SHOP].settings["autoApprove"] is False
    [payment] = db.payments
    assert payment["imported"] == {"reason": "auto-deduction", "balanceAfter": 700}
    assert dict(report.kept) == {("orders", "checkCount"): 1, ("orders", "lastChecked"): 1, ("orders", "createdAt"): 1,
                                 ("orders", "tags"): 1, ("orders", "extra"): 1, ("groups", "color"): 1,
                                 ("groups", "autoApprove"): 1, ("payments", "reason"): 1,
                                 ("payments", "balanceAfter"): 1}
    assert report.unread == ['database.json\'s "lastUpdated" (not groups or payments: nothing of Diamond Bot holds '
                             'them)', 'payment-transactions.json\'s "exportedAt" (not payments: nothing of Diamond '
                                      'Bot holds them)']
    text = (Path(report.log_path)).read_text()
    assert ("Kept as they were (fields Diamond Bot has no use for, in each record's \"imported\"):\n"
            "  groups: autoApprove (1), color (1)\n"
            "  orders: checkCount (1), createdAt (1), extra (1), lastChecked (1), tags (1)\n"
            "  payments: balanceAfter (1), reason (1)\n") in text
    assert 'Not read:\n  database.json\'s "lastUpdated"' in text


# -- the payments file ----------------------------------------------------------------------------


def shop_files(tmp_path: Path, transactions: list[Any], entries: list[dict[str, Any]] | None = None,
               others: list[dict[str, Any]] = ()) -> Path:
    folder = tmp_path / "config"
    write(folder / "database.json", database([entry(1), entry(2, userId=SUMI)] if entries is None else entries,
                                             others=others))
    write(folder / "payment-transactions.json", transactions)
    return folder


def test_the_folder_the_old_bot_kept_its_files_in_imports_both(data_dir: Path, tmp_path: Path) -> None:
    folder = shop_files(tmp_path, [transaction(1), transaction(2, amount=100, type="manual"),
                                   transaction(3, amount=46, type="auto-deduction")])
    (folder / "users.json").write_text('{"76210050711676@lid": {"balance": 31}}')
    report = do_import(data_dir, folder)
    assert (report.orders_imported, report.payments_imported, report.payments_void) == (2, 3, 1)
    db = load(data_dir)
    got = payments(db)
    assert [p["id"] for p in db.payments] == ["P1", "P2", "P3"]
    assert got["txn:1"] == {"id": "P1", "importedId": "txn:1", "groupId": SHOP, "amount": "23.00", "method": "other",
                            "reference": "", "note": "paid by Rahim (76210050711676@lid); type: auto",
                            "at": "2025-12-07T00:00:00.000+00:00", "by": "system:import"}
    deposit = got["txn:2"]
    assert (deposit["voidedAt"], deposit["voidedBy"]) == (to_iso(NOW), "system:import")
    assert deposit["voidReason"].startswith("a deposit into the reseller's balance in the old bot (type \"manual\")")
    # The due is the old bot's: the deposit counted only through what was taken from it.
    assert paid_records(db.group_payments(SHOP)) == Decimal("69.00")
    assert report.unread[1:] == [f"{folder / 'users.json'} was not read: the import reads database.json and "
                             "payment-transactions.json only (pass another payments file with --payments)"]


def test_the_payments_file_can_be_named_on_its_own(data_dir: Path, tmp_path: Path) -> None:
    folder = shop_files(tmp_path, [transaction(1)])
    renamed = folder.rename(tmp_path / "copied")
    report = do_import(data_dir, renamed / "database.json", payments=renamed / "payment-transactions.json")
    assert report.payments_imported == 1 and report.payments_source == str(renamed / "payment-transactions.json")
    done = cli("--data-dir", str(tmp_path / "cli"), "import-json", str(renamed / "database.json"), "--payments",
               str(renamed / "payment-transactions.json"))
    assert done.returncode == 0, done.stderr
    assert "payments: 1 imported; 0 NOT imported" in done.stdout
    assert payments(load(tmp_path / "cli"))["txn:1"]["amount"] == "23.00"


def test_a_folder_without_a_payments_file_imports_the_database_and_says_so(data_dir: Path, tmp_path: Path) -> None:
    folder = shop_files(tmp_path, [])
    (folder / "payment-transactions.json").unlink()
    report = do_import(data_dir, folder)
    assert report.orders_imported == 2 and report.payments_imported == 0
    assert report.unread[1:] == [f"{folder} has no payment-transactions.json: no payments file read"]
    empty = do_import(tmp_path / "other", shop_files(tmp_path / "b", []))  # the old bots create it as []
    assert empty.payments_imported == 0 and empty.refused == []
    (tmp_path / "c").mkdir()
    with pytest.raises(Exception, match="is a folder without a database.json"):
        do_import(tmp_path / "d", tmp_path / "c")


STATUSES = [("approved", None), ("completed", None), ("success", None), ("Successful", None), ("paid", None),
            ("pending", "status \"pending\" in the old bot: not money the shop received"),
            ("failed", "status \"failed\" in the old bot"), ("cancelled", "status \"cancelled\" in the old bot"),
            ("refunded", "status \"refunded\" in the old bot"), ("Rejected", "status \"Rejected\" in the old bot")]


@pytest.mark.parametrize(("status", "void"), STATUSES, ids=[s for s, _ in STATUSES])
def test_a_payments_status_decides_whether_it_counts(data_dir: Path, tmp_path: Path, status: str,
                                                    void: str | None) -> None:
    report = do_import(data_dir, shop_files(tmp_path, [transaction(1, status=status)]))
    assert report.refused == [] and report.payments_imported == 1
    [p] = load(data_dir).payments
    if void is None:
        assert "voidedAt" not in p and paid_records([p]) == Decimal("23.00")
    else:
        assert void in p["voidReason"] and p["voidedBy"] == "system:import" and paid_records([p]) == 0
        assert report.payments_void == 1


METHODS = [("bKash", "bkash"), ("b-kash", "bkash"), ("বিকাশ", "bkash"), ("Nagad", "nagad"), ("নগদ", "nagad"),
           ("rocket", "rocket"), ("Bank Transfer", "bank"), ("Bank Asia", "bank"), ("cash", "cash"),
           ("ক্যাশ", "cash"), ("other", "other")]


@pytest.mark.parametrize(("written", "method"), METHODS, ids=[w for w, _ in METHODS])
def test_payment_methods_are_read_as_written_in_any_spelling(data_dir: Path, tmp_path: Path, written: str,
                                                            method: str) -> None:
    do_import(data_dir, shop_files(tmp_path, [transaction(1, method=written, type="payment")]))
    [p] = load(data_dir).payments
    assert p["method"] == method and "method:" not in p["note"]


def test_an_unknown_method_is_other_with_the_method_in_its_note(data_dir: Path, tmp_path: Path) -> None:
    do_import(data_dir, shop_files(tmp_path, [transaction(1, method="Upay")]))
    [p] = load(data_dir).payments
    assert p["method"] == "other" and "method: Upay" in p["note"]


def test_a_payment_finds_its_group_and_its_order(data_dir: Path, tmp_path: Path) -> None:
    others = [entry(50, userId=KARIM), entry(51, userId=SUMI)]
    transactions = [
        transaction(1, groupId=None, orderId=DAY + 1),  # the order's group, linked to it
        transaction(2, groupId=None, userId=None, phone=RAHIM),  # Rahim ordered only in the shop
        transaction(3, groupId=None, userId=KARIM, orderId=None),  # Karim only in the other group
        transaction(4, orderId=DAY + 2),  # its groupId, and the order it names there
        transaction(5, orderId=DAY + 99),  # an order no file holds: its groupId, not linked
        transaction(6, groupId=None, userId=SUMI_PHONE),  # a phone number: Sumi ordered in both groups
        transaction(7, groupId=None, userId="76210050711699@lid"),  # nobody who ordered
        transaction(8, groupId=OTHER, orderId=DAY + 1),  # the order is the shop's: which due?
        transaction(9, groupId=None, userId=None, userName=None),  # nothing to place it by
        transaction(10, groupId="120363000000000777@g.us"),  # a group nobody knows
    ]
    report = do_import(data_dir, shop_files(tmp_path, transactions, others=others))
    db = load(data_dir)
    ours = {e["importedId"]: e["id"] for gid in (SHOP, OTHER) for e in db.groups[gid].entries.values()}
    got = {k: (p["groupId"], p.get("orderId"), p.get("imported")) for k, p in payments(db).items()}
    assert got == {
        "txn:1": (SHOP, ours[f"seed:{DAY + 1}"], None),
        "txn:2": (SHOP, None, None),
        "txn:3": (OTHER, None, None),
        "txn:4": (SHOP, ours[f"seed:{DAY + 2}"], None),
        "txn:5": (SHOP, None, {"orderId": DAY + 99}),
    }
    refused = {p.where: p.what for p in report.refused}
    assert refused == {
        "payments file #6 (id 6)": f"not imported: userId {SUMI_PHONE} ordered in 2 groups ({SHOP}, {OTHER}): which "
                                   "group's due it lowers cannot be told",
        "payments file #7 (id 7)": "not imported: no group id, and userId 76210050711699@lid has no order in any "
                                   "group of the file or the bot to place it by",
        "payments file #8 (id 8)": f"not imported: groupId is {OTHER} but orderId {DAY + 1} is an order of {SHOP}: "
                                   "which group's due it lowers cannot be told",
        "payments file #9 (id 9)": "not imported: no group id, no orderId and no user to place it by",
        "payments file #10 (id 10)": "not imported: group 120363000000000777@g.us is neither a readable group of the "
                                     "file nor one of the bot's, so it would lower no group's due",
    }
    notes = {p.where: p.what for p in report.problems if p.kind == "note"}
    assert notes["payments file #2 (id 2)"] == f"placed in group {SHOP}: the only group where {RAHIM} ordered"
    assert notes["payments file #5 (id 5)"].startswith(f"orderId {DAY + 99} names no order of that group that came in")
    assert report.notes["payments placed in the group of the order they name (orderId)"] == 1


def test_a_payment_the_import_cannot_read_as_the_old_bot_meant_is_refused(data_dir: Path, tmp_path: Path) -> None:
    transactions = [transaction(1, status="on-hold"), transaction(2, status=None), transaction(3, type="bonus"),
                    transaction(4, amount=-5), transaction(5), "oops"]
    report = do_import(data_dir, shop_files(tmp_path, transactions))
    assert (report.payments_imported, report.payments_refused) == (1, 5)
    refused = {p.where: p.what.removeprefix("not imported: ") for p in report.refused}
    assert refused == {
        "payments file #1 (id 1)": 'unknown status "on-hold": whether the money arrived cannot be told',
        "payments file #2 (id 2)": "no status: whether the money arrived cannot be told (the old bot counted only "
                                   "payments whose status said so)",
        "payments file #3 (id 3)": 'type "bonus" is neither a payment method nor a kind of payment the import knows: '
                                   "whether it lowers the due cannot be told",
        "payments file #4 (id 4)": "amount -5 is not a usable amount (amount must be zero or more, not -5)",
        "payments file #6": 'a JSON string ("oops"), not a payment',
    }
    assert [p["importedId"] for p in load(data_dir).payments] == ["txn:5"]


def test_database_json_payments_and_the_payments_file_do_not_collide_and_import_once(data_dir: Path,
                                                                                      tmp_path: Path) -> None:
    folder = shop_files(tmp_path, [transaction(1), transaction(2, amount=50)])
    doc = json.loads((folder / "database.json").read_text())
    doc["payments"] = [{"id": 1, "groupId": SHOP, "amount": 500, "method": "bKash", "trxId": "BK1", "date": DAY}]
    write(folder / "database.json", doc)
    out = io.StringIO()
    first = do_import(data_dir, folder, progress=out)
    assert first.payments_imported == 3
    assert [(p["id"], p["importedId"]) for p in load(data_dir).payments] == [("P1", "seed:1"), ("P2", "txn:1"),
                                                                             ("P3", "txn:2")]
    journal = (data_dir / "orders.journal.00000000").read_bytes()
    again = cli("--data-dir", str(data_dir), "import-json", str(folder))
    assert again.returncode == 0, again.stderr
    assert "payments: 0 imported; 0 NOT imported; skipped: 3 already imported" in again.stdout
    assert "Nothing new to import" in again.stdout
    assert (data_dir / "orders.journal.00000000").read_bytes() == journal


def test_the_progress_bar_counts_the_payments_file_too(data_dir: Path, tmp_path: Path) -> None:
    folder = shop_files(tmp_path, [transaction(n) for n in range(1, 1500)], entries=[entry(1)])
    out = io.StringIO()
    report = do_import(data_dir, folder, progress=out)
    assert report.payments_imported == 1499
    assert out.getvalue().splitlines() == ["importing: 1000/1500"]


def test_the_import_of_a_folder_is_refused_while_the_bot_runs(data_dir: Path, tmp_path: Path) -> None:
    folder = shop_files(tmp_path, [transaction(1)])
    data_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir / "bot.lock")], cwd=REPO,
                              env=process_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        done = cli("--data-dir", str(data_dir), "import-json", str(folder))
    finally:
        holder.kill()
        holder.wait()
        for pipe in (holder.stdin, holder.stdout):
            assert pipe is not None
            pipe.close()
    assert done.returncode == 2 and "Diamond Bot is already running" in done.stderr
    assert not list(data_dir.glob("orders.*")) and not (data_dir / "logs").exists()


def test_the_cli_names_a_refused_due_limit_among_what_was_not_imported(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "config"
    write(folder / "database.json", database([entry(1), entry(2, diamonds=2.5)], dueLimit="lots"))
    write(folder / "payment-transactions.json", [transaction(1, status="on-hold")])
    done = cli("--data-dir", str(data_dir), "import-json", str(folder))
    assert done.returncode == 3
    assert "1 entry, 1 payment and 1 group setting were not imported" in done.stderr
    tail = done.stdout[done.stdout.index("NOT IMPORTED (3)"):]
    assert f"group {SHOP} (রহিম স্টোর): dueLimit \"lots\" is not a usable amount" in tail


# -- a group without a rate (orders.default_rate unset) -------------------------------------------


def test_without_a_default_rate_a_group_without_one_stays_without_and_is_named(data_dir: Path, tmp_path: Path) -> None:
    doc = database([entry(1, rate=None), entry(2, rate=None, amount=25), entry(3, rate="2.40")], rate=None)
    report = do_import(data_dir, write(tmp_path / "database.json", doc), default_rate=None)
    assert report.orders_imported == 2 and [p.what for p in report.refused] == [
        "not imported: no rate of its own, and its group has no usable rate in the file"]
    db = load(data_dir)
    assert db.groups[SHOP].settings["rate"] is None  # never a placeholder price
    assert {e["amount"] for e in orders(db).values()} == {"25.00", "24.00"}
    label = f"A রহিম স্টোর ({SHOP})"
    assert report.groups_without_rate == [label]
    text = Path(report.log_path).read_text()
    assert "WITHOUT A RATE (1): set each one's rate on the panel's Groups page" in text and f"  {label}" in text
    assert "has no rate until you set it in the panel (its orders are refused until then)" in text


def test_a_group_without_a_rate_reaches_the_bot_without_one(make_bot, data_dir: Path, tmp_path: Path) -> None:
    do_import(data_dir, write(tmp_path / "database.json", database([entry(1, rate="2.40")], rate=None)),
              default_rate=None)
    bot = make_bot(clock=FakeClock(NOW), fake=FakeTransport(groups={SHOP: "রহিম স্টোর"}),
                   **{"orders.default_rate": ""})
    shop = next(g for g in bot.groups() if g["group_id"] == SHOP)
    assert shop["settings"]["rate"] is None
    assert bot.update_group(SHOP, rate="2.50").status == 200
    assert next(g for g in bot.groups() if g["group_id"] == SHOP)["settings"]["rate"] == "2.50"


# -- the rest of the system keeps what the import kept --------------------------------------------


def rich_files(tmp_path: Path) -> Path:
    entries = [entry(1, playerIdNumber="576515275", checkCount=7, tags=["vip"]),
               entry(2, status="approved", approvedAt=DAY + 60_000, approvedBy="Karim", checkCount=3)]
    return shop_files(tmp_path, [transaction(1, orderId=DAY + 1, reason="auto-deduction")], entries=entries)


def test_the_actors_keep_the_imported_fields_through_every_change_a_void_and_a_snapshot(
        make_bot, data_dir: Path, tmp_path: Path) -> None:
    do_import(data_dir, rich_files(tmp_path))
    bot = make_bot(clock=FakeClock(NOW), fake=FakeTransport(groups={SHOP: "রহিম স্টোর"}), **FAST)
    assert bot.command("A1", "approve").status == 200
    bot.pump(0.3)  # the delivery message goes out, reconciliation checks
    a1 = bot.order("A1")["record"]
    assert a1["status"] == "completed" and a1["playerId"] == "576515275"
    assert a1["imported"] == {"checkCount": 7, "tags": ["vip"]}
    assert bot.order("A2")["record"]["imported"] == {"checkCount": 3}
    [payment] = bot.query(ListPayments("l")).data["payments"]
    assert (payment["orderId"], payment["imported"]) == ("A1", {"reason": "auto-deduction"})
    done = bot.asys.ask(bot.supervisor, VoidPayment("v", "", "P1", "entered twice in the old bot", "admin:x"), T)
    assert done.status == 200, done
    voided = done.result["payment"]
    assert (voided["orderId"], voided["imported"]) == ("A1", {"reason": "auto-deduction"})
    bot.stop()

    db = load(data_dir)
    assert db.find("A1")[1]["imported"] == {"checkCount": 7, "tags": ["vip"]}
    assert db.payments[0]["voidReason"] == "entered twice in the old bot" and db.payments[0]["orderId"] == "A1"
    # A snapshot (compaction) keeps them, and the bot starts from it with them.
    again = Database.from_snapshot(orjson.loads(orjson.dumps(db.snapshot())))
    assert again.snapshot() == db.snapshot()
    bot = make_bot(clock=FakeClock(NOW + 60), fake=FakeTransport(groups={SHOP: "রহিম স্টোর"}),
                   **{**FAST, "persistence.compact_after_bytes": "1"})
    bot.post(SHOP, RAHIM, "576515275\n20")  # a write, and with it a compaction
    bot.pump(0.3)
    assert bot.order("A1")["record"]["imported"] == {"checkCount": 7, "tags": ["vip"]}
    bot.stop()
    assert (data_dir / "orders.snapshot.json").exists()
    snapshot = orjson.loads((data_dir / "orders.snapshot.json").read_bytes())
    assert b'"checkCount":7' in orjson.dumps(snapshot)
    db = load(data_dir)
    assert db.find("A1")[1]["imported"] == {"checkCount": 7, "tags": ["vip"]}
    assert db.payments[0]["imported"] == {"reason": "auto-deduction"}
    check = check_data(data_dir)
    assert check.ok, check


@pytest.fixture
async def panel(tmp_path: Path, data_dir: Path, cheap_hashes: None) -> AsyncIterator[TestClient[Any, Any]]:
    """The panel over the imported data, read with the real queries."""
    do_import(data_dir, rich_files(tmp_path))
    bridge = FakeBridge(clock=FakeClock(NOW), db=load(data_dir))
    config = make_config(tmp_path / "panel")
    bridge.add_user("admin", PASSWORD)
    async with panel_client(config, bridge) as client:
        await login(client)
        yield client


async def test_the_panel_shows_imported_orders_payments_and_groups(panel: TestClient[Any, Any]) -> None:
    resp = await panel.get("/api/orders/A1")
    assert resp.status == 200
    order = await resp.json()
    assert order["player_id"] == "576515275" and order["id"] == "A1"
    approved = await (await panel.get("/api/orders/A2")).json()
    assert [(a["by"], a["to"]) for a in approved["audit"]][1:] == [("Karim", "approved")]
    listed = await (await panel.get("/api/orders?q=576515275")).json()
    assert [o["id"] for o in listed["orders"]] == ["A1"]
    pays = await (await panel.get("/api/payments")).json()
    assert [p["imported_id"] for p in pays["payments"]] == ["txn:1"]
    groups = await (await panel.get("/api/groups")).json()
    assert [g["rate"] for g in groups["groups"] if g["id"] == SHOP] == ["2.30"]
    for page in ("/orders", "/orders/A1", "/orders/A2", "/payments", "/groups", f"/groups/{SHOP}/ledger", "/"):
        resp = await panel.get(page)
        assert resp.status == 200, (page, await resp.text())
    assert "576515275" in await (await panel.get("/orders/A1")).text()


# -- the domain keeps them ------------------------------------------------------------------------


def test_orders_and_payments_carry_imported_fields_through_their_stored_form() -> None:
    order = from_record(dict(to_record(Order(
        id="A1", group_id=SHOP, group_name="x", user_id=RAHIM, user_alt="", user_name="", message_id="M", text="",
        diamonds=10, rate=Decimal("2.30"), amount=Decimal("23.00"), status=Status.PENDING, created_at=NOW,
        received_at=NOW, audit=(AuditEntry(NOW, None, "pending", "system:import"),),
        imported_fields={"checkCount": 4, "nested": {"a": [1, None]}}))))
    assert order.imported_fields == {"checkCount": 4, "nested": {"a": [1, None]}}
    assert to_record(order)["imported"] == {"checkCount": 4, "nested": {"a": [1, None]}}
    assert "imported" not in to_record(Order(**{**{f: getattr(order, f) for f in Order.__slots__},
                                               "imported_fields": None}))
    payment = Payment(id="P1", group_id=SHOP, amount=Decimal("23.00"), method="other", reference="", note="",
                      at=NOW, by="system:import", imported_id="txn:1", order_id="A1",
                      imported_fields={"reason": "auto-deduction"})
    record = payment_to_record(payment)
    assert (record["orderId"], record["imported"]) == ("A1", {"reason": "auto-deduction"})
    voided = void(payment_from_record(orjson.loads(orjson.dumps(record))), by="admin", reason="twice", at=NOW)
    assert payment_to_record(voided) == {**record, "voidedAt": to_iso(NOW), "voidedBy": "admin", "voidReason": "twice"}
    assert "orderId" not in payment_to_record(Payment(id="P2", group_id=SHOP, amount=Decimal(1), method="cash",
                                                      reference="", note="", at=NOW, by="admin"))


def test_the_planner_reads_the_payments_file_without_touching_a_file() -> None:
    def parsed(doc: Any) -> Any:  # as the files are read: numbers with a fraction exact
        return json.loads(json.dumps(doc), parse_float=Decimal)

    plan = SeedImport(Database(), parsed(database([entry(1)])), default_rate=None, tz=DHAKA, now=NOW,
                      max_diamonds=100_000, transactions=parsed([transaction(1, orderId=DAY + 1)])).plan()
    kinds = [r["t"] for r in plan.records]
    assert kinds == ["group", "order", "group", "payment"]
    assert plan.records[-1]["v"]["orderId"] == "A1"
