"""Import the seed's database.json (`python run.py import-json PATH`).

The seed, the Node bot this one replaces, kept everything in one file:

    {"groups": {"<id>@g.us": {"groupName": ..., "rate": 100, "entries": [
        {"id": 1765040834207, "userId": "76210050711676@lid", "status": "pending", "diamonds": 10,
         "approvedAt": ..., ...}, ...]}, ...},
     "payments": [{"groupId": ..., "amount": ..., "method": ..., "trxId": ..., "date": ...}, ...]}

with ids and times in epoch milliseconds (times also as ISO text). Each seed group becomes a
group (a letter code after the highest one in use), each entry an order with our id (`B1`, `B2`
…) that keeps the seed's id as `importedId` and in its first audit entry, each payment a
payment (`P1` …).

Nothing comes in different from what the seed had: an entry or payment whose diamonds, amount,
rate, status, time or group cannot be taken as written (25.5 diamonds, more than
orders.max_diamonds, a negative or NaN amount, an unknown status, an unreadable time, a payment
for a group nobody knows) is refused, listed in the report with its position and why, and left
for the operator; the rest is imported. An entry that is merely incomplete (no user, an approved
one without its approval time) comes in as it is and reconciliation flags it `invalid` (never
messaging anyone about it).

Only appends: the import writes journal records in the shapes the actors write and never
touches what is there. It runs only while the bot is stopped (it takes the bot's locks), and a
second run of the same file imports nothing: what was imported before is recognised by its
`importedId`, by the import's audit entry (which survives the bot rewriting the order), and
by the chat message id.

`SeedImport` decides everything without touching a file (tests use it directly);
`import_json` adds the locks, the store and the report file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TextIO

import orjson

from domain.clock import to_iso
from domain.group import GroupBook, GroupSettings, code_number, group_code, settings_record, split_order_id
from domain.money import MoneyError, exact_decimal, money_str, order_amount, parse_amount, parse_rate
from domain.orders import AuditEntry, Delivery, Order, Status, to_record, validation_problems
from domain.payments import MAX_AMOUNT
from domain.records import GroupRecord, OrderRecord, PaymentRecord
from storage.database import Database

IMPORTER = "system:import"
# The first audit entry of every imported order: "<prefix><importedId>)". Orders rewritten by
# the bot keep their audit trail (not unknown fields), so this is what a later run recognises.
NOTE_PREFIX = "imported from the seed's database.json (id "
SYNC_EVERY = 1000  # an fsync at least every this many records (between groups)
PROGRESS_LINE_EVERY = 1000  # without a terminal: one progress line per this many items
METHODS = ("bkash", "nagad", "rocket", "bank", "cash", "other")
EXPECTED = ('the seed\'s database.json: a JSON object {"groups": {"<group id>@g.us": {"groupName": …, '
            '"rate": …, "entries": [ … ]}, …}, "payments": [ … ]}')
# Times before WhatsApp existed, or more than a day ahead of the import, are not the seed's.
_EARLIEST = datetime(2009, 1, 1, tzinfo=timezone.utc).timestamp()
_FUTURE_SLACK = 86400.0
# The largest file the import reads (it is parsed in memory): far above any shop's database.json.
MAX_FILE_BYTES = 256 * 1024 * 1024
# A JS float's binary noise (16.099999999999998 for 16.1) is no poisha anyone meant.
_FLOAT_NOISE = Decimal("0.000001")

_STATUS = {
    **dict.fromkeys(("pending", "new", "waiting", "received", "queued"), Status.PENDING),
    **dict.fromkeys(("processing", "in_progress", "in-progress", "inprogress", "in progress", "working"),
                    Status.PROCESSING),
    **dict.fromkeys(("approved", "approve", "accepted"), Status.APPROVED),
    **dict.fromkeys(("completed", "complete", "done", "delivered", "success", "successful", "finished",
                     "confirmed"), Status.COMPLETED),
    **dict.fromkeys(("cancelled", "canceled", "cancel", "rejected", "declined"), Status.CANCELLED),
    **dict.fromkeys(("deleted", "delete", "removed"), Status.DELETED),
}
_TIMES = {
    "created": ("date", "createdAt", "created_at", "timestamp", "time", "orderTime", "orderedAt"),
    "processing_at": ("processingAt", "processing_at", "processingStartedAt", "processedAt"),
    "approved_at": ("approvedAt", "approved_at", "approvedTime"),
    "completed_at": ("completedAt", "completed_at", "deliveredAt", "confirmedAt", "confirmationSentAt",
                     "doneAt"),
    "cancelled_at": ("cancelledAt", "canceledAt", "cancelled_at", "rejectedAt"),
    "deleted_at": ("deletedAt", "deleted_at", "removedAt"),
}
_STAMP_OF = {Status.PROCESSING: "processing_at", Status.APPROVED: "approved_at",
             Status.COMPLETED: "completed_at", Status.CANCELLED: "cancelled_at", Status.DELETED: "deleted_at"}
_DELIVERED_FLAGS = ("confirmed", "deliveryConfirmed", "delivered", "confirmationSent", "autoConfirmed")
_USER = ("userId", "user", "sender", "senderId", "from", "author", "participant")
_USER_NAME = ("userName", "name", "pushName", "senderName", "displayName")
_USER_ALT = ("userAlt", "phone", "userPhone", "senderPn", "phoneJid")
_MESSAGE_ID = ("messageId", "msgId", "message_id", "messageID")
_TEXT = ("text", "message", "body")
_DIAMONDS = ("diamonds", "diamond", "quantity")
_PAY_GROUP = ("groupId", "group", "gid", "group_id")
_PAY_REFERENCE = ("reference", "trxId", "trxID", "trxid", "txnId", "transactionId", "ref")
_PAY_NOTE = ("note", "notes", "remark", "comment")
_PAY_TIME = ("date", "at", "createdAt", "created_at", "timestamp", "time", "paidAt")
_PAY_BY = ("by", "addedBy", "admin", "recordedBy")
_JS_DATE = re.compile(r"^\w{3} (\w{3} \d{1,2} \d{4} \d{2}:\d{2}:\d{2}) GMT([+-]\d{4})")


class SeedImportError(Exception):
    """The import did not run; the message says why and what to do. exit_code: 1 or 2."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "group 1203…@g.us (name) entry 1765040834207", "payment #3 (id …)"
    what: str
    # "refused" (not imported: it cannot come in as the seed had it), "skipped" (a duplicate),
    # "flagged" (imported; reconciliation raises `invalid`), "note"
    kind: str


@dataclass(slots=True)
class Report:
    source: str = ""
    data_dir: str = ""
    groups_created: list[str] = field(default_factory=list)  # "B Karim Telecom (<id>)"
    groups_updated: list[str] = field(default_factory=list)
    groups_unchanged: list[str] = field(default_factory=list)
    groups_skipped: int = 0
    orders_imported: int = 0
    orders_flagged: int = 0
    orders_already: int = 0
    orders_refused: int = 0
    orders_duplicate: int = 0
    deliveries_due: int = 0  # approved orders whose delivery message the bot will now send
    payments_imported: int = 0
    payments_already: int = 0
    payments_refused: int = 0
    payments_duplicate: int = 0
    notes: Counter[str] = field(default_factory=Counter)  # conversions that need no one's attention
    problems: list[Problem] = field(default_factory=list)
    log_path: str = ""

    def problem(self, where: str, what: str, kind: str) -> None:
        self.problems.append(Problem(where, what, kind))

    @property
    def refused(self) -> list[Problem]:
        return [p for p in self.problems if p.kind == "refused"]


@dataclass(slots=True)
class Plan:
    records: list[dict[str, Any]]
    report: Report


# -- reading the file -----------------------------------------------------------------------


def load_seed(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The seed's document, numbers with a fraction as exact Decimals; SeedImportError (exit 1)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            # It is parsed in memory: a file this size would end in MemoryError, not an import.
            raise SeedImportError(f"{path} is {size / 2**20:.0f} MB, more than the {MAX_FILE_BYTES // 2**20} MB "
                                  f"the import reads; the seed's database.json is far smaller: is it the right "
                                  f"file? Expected {EXPECTED}")
        raw = path.read_bytes()
    except OSError as e:
        raise SeedImportError(f"cannot read {path}: {e.strerror or e}") from None
    except MemoryError:
        raise SeedImportError(f"{path} does not fit in memory; expected {EXPECTED}") from None
    try:
        text = raw.decode("utf-8-sig")
        # parse_float: 2.3 stays the Decimal 2.3 its text says, never the binary float near it.
        doc = json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except UnicodeDecodeError as e:
        raise SeedImportError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); expected {EXPECTED}") \
            from None
    except json.JSONDecodeError as e:
        raise SeedImportError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                              f"expected {EXPECTED}") from None
    except RecursionError:
        raise SeedImportError(f"{path} is nested too deeply to be the seed's database.json; expected {EXPECTED}") \
            from None
    if not isinstance(doc, dict):
        raise SeedImportError(f"{path} holds a JSON {_json_type(doc)}; expected {EXPECTED}")
    if {"format", "journal_gen", "data"} <= doc.keys():
        raise SeedImportError(f"{path} is a snapshot of this bot's own data directory, not the seed's "
                              f"database.json; expected {EXPECTED}")
    if not isinstance(doc.get("groups"), dict):
        found = "no \"groups\"" if "groups" not in doc else f"\"groups\" is a JSON {_json_type(doc['groups'])}"
        raise SeedImportError(f"{path} has {found}; expected {EXPECTED}")
    return doc


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


# -- reading values leniently -----------------------------------------------------------------


def _first(entry: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    """(key, value) of the first key present with a value other than null/""; ("", None) if none."""
    for key in keys:
        value = entry.get(key)
        if value is not None and value != "":
            return key, value
    return "", None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _show(value: Any) -> str:
    """A seed value in a message, as the file wrote it."""
    text = str(value) if isinstance(value, Decimal) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _seed_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _epoch(number: Decimal | int) -> float:
    # The seed wrote epoch milliseconds; a number this small is seconds.
    return float(number) / 1000.0 if number > 100_000_000_000 else float(number)


def read_time(value: Any, tz: tzinfo, now: float) -> tuple[float | None, str]:
    """(seconds since the epoch, "") for epoch ms/s or ISO text; (…, "naive") when a time without an
    offset was read in `tz`; (None, "") when absent; (None, why) when unreadable."""
    if value is None or value == "":
        return None, ""
    naive = ""
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, Decimal)):
            ts = _epoch(value)
        elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            ts = _epoch(int(value.strip()))
        elif isinstance(value, str):
            text = value.strip()
            js = _JS_DATE.match(text)  # Date.toString(): "Sat Dec 06 2025 23:07:14 GMT+0600 (…)"
            if js:
                dt = datetime.strptime(f"{js.group(1)} {js.group(2)}", "%b %d %Y %H:%M:%S %z")
            else:
                dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt, naive = dt.replace(tzinfo=tz), "naive"
            ts = dt.timestamp()
        else:
            raise ValueError
        datetime.fromtimestamp(ts, timezone.utc)  # NaN, year 1e9: not a time to_iso can write
    except (ValueError, OverflowError, OSError, ArithmeticError):
        return None, f"{_show(value)} is not a time"
    if not _EARLIEST <= ts <= now + _FUTURE_SLACK:
        return None, f"{_show(value)} is not a plausible time ({to_iso(ts)})"
    return ts, naive


def _rate(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        return None
    try:
        return parse_rate(value)
    except MoneyError:
        return None


def _exact_amount(value: Any, most: Decimal) -> tuple[Decimal | None, str]:
    """(the amount, "") if `value` is one to the poisha (a JS float's noise aside), at most `most`;
    else (None, why)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        return None, f"{_show(value)} is not an amount"
    try:
        amount = parse_amount(value)
        written = exact_decimal(value)
    except MoneyError as e:
        return None, f"{_show(value)} is not a usable amount ({e})"
    except (ArithmeticError, ValueError):
        return None, f"{_show(value)} is not an amount"
    if abs(amount - written) > _FLOAT_NOISE:
        return None, f"{_show(value)} has fractions of a poisha"
    if amount > most:
        return None, f"{_show(value)} is more than {money_str(most)}, the most one payment or order may be"
    return amount, ""


def _digest(value: Any) -> str:
    return hashlib.sha1(orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


# -- deciding what to write -----------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    gid: str
    name: str
    code: str
    rate: Decimal | None  # the seed's rate of the group: entries without one of their own are priced at it
    next_seq: int
    watermark: float
    settings: dict[str, Any] | None  # the existing group's stored settings; None for a new group
    orders: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # importedId -> fingerprint, in this file
    message_ids: set[str] = field(default_factory=set)  # in this file
    priced_at_group_rate: int = 0  # entries without a rate of their own


class SeedImport:
    """Decides, from the database as it is and the seed's document, the records an import
    appends and the report; touches no file."""

    def __init__(self, db: Database, seed: Mapping[str, Any], *, default_rate: Decimal | None, tz: tzinfo,
                 max_diamonds: int, min_diamonds: int = 1, now: float | None = None) -> None:
        self.db = db
        self.seed = seed
        self.default_rate = None if default_rate is None else parse_rate(default_rate)
        self.tz = tz
        self.now = time.time() if now is None else now
        self.report = Report()
        self.min_diamonds, self.max_diamonds = min_diamonds, max_diamonds
        self.groups_read: set[str] = set()  # the file's groups that were read (payments may name them)
        # (group id, importedId) and (group id, message id) -> our order id, already in the database.
        self.imported: dict[tuple[str, str], str] = {}
        self.by_message: dict[tuple[str, str], str] = {}
        for gid, image in db.groups.items():
            for oid, entry in image.entries.items():
                for key in _imported_ids(entry):
                    self.imported[(gid, key)] = oid
                message_id = entry.get("messageId")
                if isinstance(message_id, str) and message_id:
                    self.by_message[(gid, message_id)] = oid
        codes = [str(g.settings.get("code") or "") for g in db.groups.values()]
        numbers = [code_number(c) for c in codes if _is_code(c)]
        self.next_code = max(numbers, default=0) + 1
        self.payments_imported = {str(p.get("importedId")) for p in db.payments
                                  if isinstance(p, Mapping) and p.get("importedId")}
        numbers = [int(m.group(1)) for p in db.payments if isinstance(p, Mapping)
                   and (m := re.fullmatch(r"P([0-9]{1,18})", str(p.get("id") or "")))]
        self.next_payment = max(numbers, default=0) + 1

    def items(self) -> int:
        """How many entries and payments the document holds (the progress bar's total)."""
        n = sum(len(g["entries"]) for g in self.seed["groups"].values()
                if isinstance(g, Mapping) and isinstance(g.get("entries"), (list, dict)))
        return n + sum(1 for _ in self._payments())

    def batches(self, tick: Callable[[int], None] | None = None) -> Iterator[list[dict[str, Any]]]:
        """The records to append, a group (its settings first, then its orders) at a time, then the
        payments; `tick(n)` as entries and payments are read. The report is complete at the end."""
        tick = tick or (lambda n: None)
        for gid, raw_group in self.seed["groups"].items():
            records = self._group(gid, raw_group, tick)
            if records:
                yield records
        payments = self._all_payments(tick)
        if payments:
            yield payments

    def plan(self, tick: Callable[[int], None] | None = None) -> Plan:
        """Everything at once (for tests; import_json streams `batches`)."""
        records = [r for batch in self.batches(tick) for r in batch]
        return Plan(records, self.report)

    # -- groups ------------------------------------------------------------------------------

    def _group(self, gid: str, raw: Any, tick: Callable[[int], None]) -> list[dict[str, Any]]:
        report = self.report
        if not gid.strip() or not isinstance(raw, Mapping):
            report.groups_skipped += 1
            why = "an empty group id" if not gid.strip() else f"a JSON {_json_type(raw)}, not a group object"
            report.problem(f"group {gid}", f"not imported: {why}", "refused")
            return []
        seed_name = _text(raw.get("groupName")) or _text(raw.get("name"))
        where = f"group {gid}" + (f" ({seed_name})" if seed_name else "")
        if not gid.strip().endswith("@g.us"):
            report.problem(where, "not a WhatsApp group id (…@g.us): imported as it is, but no chat "
                                  "will ever match it", "note")
        if raw.get("groupName") is not None and not isinstance(raw.get("groupName"), str):
            report.problem(where, f"groupName {_show(raw.get('groupName'))} is not text: used as text", "note")
        seed_rate = _rate(raw.get("rate"))
        if seed_rate is None and raw.get("rate") not in (None, ""):
            report.problem(where, f"rate {_show(raw.get('rate'))} is not a usable rate", "note")
        image = self.db.groups.get(gid)
        if image is not None and image.settings:
            g = self._existing_group(gid, image.settings, seed_rate, where)
        else:
            if seed_rate is None:
                given = (f"gets orders.default_rate {self.default_rate} (check it in the panel)"
                         if self.default_rate is not None else
                         "has no rate until you set it in the panel (its orders are refused until then)")
                report.problem(where, f"no usable rate: the group {given}; its entries without a rate or amount "
                                      "of their own are not imported", "note")
            code = group_code(self.next_code)
            self.next_code += 1
            g = _Group(gid, seed_name, code, seed_rate, 1, 0.0, None)

        entries = raw.get("entries")
        if isinstance(entries, dict):  # entries keyed by id
            entries = [dict(e, id=e.get("id", k)) if isinstance(e, Mapping) else e for k, e in entries.items()]
        elif entries is None:
            entries = []
        elif not isinstance(entries, list):
            report.problem(where, f"\"entries\" is a JSON {_json_type(entries)}, not a list: no orders read",
                           "note")
            entries = []
        for pos, entry in enumerate(entries):
            self._entry(g, where, pos, entry)
            tick(1)
        if g.priced_at_group_rate:
            report.notes["entries without a rate of their own priced at their group's rate"] += \
                g.priced_at_group_rate

        self.groups_read.add(gid)
        label = f"{g.code} {g.name or '(no name)'} ({gid})"
        if g.settings is None:
            book = GroupBook(GroupSettings(gid, g.name, g.code, g.rate or self.default_rate,
                                           auto_approve=raw.get("autoApprove") is True),
                             next_seq=g.next_seq, watermark=g.watermark)
            settings = settings_record(book)
            report.groups_created.append(label)
        elif g.orders:
            settings = dict(g.settings, code=g.code, nextSeq=g.next_seq,
                            watermark=max(float(g.settings.get("watermark") or 0.0), g.watermark))
            report.groups_updated.append(label)
        else:
            report.groups_unchanged.append(label)
            return []
        # The group (its code and a nextSeq past every imported id) before its orders.
        return [GroupRecord(gid, settings).encode()] + [OrderRecord(gid, o).encode() for o in g.orders]

    def _existing_group(self, gid: str, settings: dict[str, Any], seed_rate: Decimal | None,
                        where: str) -> _Group:
        code = str(settings.get("code") or "")
        if not _is_code(code):
            code = group_code(self.next_code)
            self.next_code += 1
        seqs = [p[1] for oid in self.db.groups[gid].entries if (p := split_order_id(oid)) and p[0] == code]
        stored_seq = settings.get("nextSeq")
        next_seq = max(stored_seq if isinstance(stored_seq, int) and not isinstance(stored_seq, bool) else 1,
                       max(seqs, default=0) + 1)
        ours = _rate(settings.get("rate"))
        if seed_rate is not None and ours is not None and seed_rate != ours:
            self.report.problem(where, f"already here with rate {ours}; the seed's rate {seed_rate} is used "
                                       "only to price its own entries (the group keeps "
                                       f"{ours}; change it in the panel if the seed's is right)", "note")
        return _Group(gid, str(settings.get("groupName") or ""), code, seed_rate, next_seq, 0.0, settings)

    # -- entries -----------------------------------------------------------------------------

    def _entry(self, g: _Group, group_where: str, pos: int, raw: Any) -> None:
        report = self.report
        if not isinstance(raw, Mapping):
            report.orders_refused += 1
            report.problem(f"{group_where} entry #{pos + 1}",
                           f"not imported: a JSON {_json_type(raw)} ({_show(raw)}), not an entry", "refused")
            return
        seed_id = _seed_id(raw.get("id"))
        _, raw_diamonds = _first(raw, _DIAMONDS)
        where = f"{group_where} entry #{pos + 1}" + (f" (id {seed_id})" if seed_id is not None else "")
        if seed_id is None and raw_diamonds is None:
            report.orders_refused += 1
            report.problem(where, f"not imported: no id and no diamonds ({_show(raw)})", "refused")
            return
        key = f"seed:{seed_id}" if seed_id is not None else f"seed:noid-{_digest(raw)}"
        _, message_id = _first(raw, _MESSAGE_ID)
        message_id = _text(message_id)
        fingerprint = _digest([raw.get(k) for k in _USER + _DIAMONDS + _MESSAGE_ID + _TIMES["created"]])
        if key in g.keys:
            if g.keys[key] == fingerprint:
                report.orders_duplicate += 1
                report.problem(where, "skipped: the same entry appears again in the file", "skipped")
                return
            n = 2
            while f"{key}#{n}" in g.keys:
                n += 1
            key = f"{key}#{n}"
            collision = (f"another entry in this group has the same id with different data: imported both, "
                         f"this one as {key} (check them)")
        else:
            collision = ""
        g.keys[key] = fingerprint
        if message_id and message_id in g.message_ids:
            report.orders_duplicate += 1
            report.problem(where, f"skipped: another entry in the file is for the same message {message_id}",
                           "skipped")
            return
        if message_id:
            g.message_ids.add(message_id)
        existing = self.imported.get((g.gid, key)) or (message_id and self.by_message.get((g.gid, message_id)))
        if existing:
            report.orders_already += 1
            return

        notes: list[str] = []  # for the order's audit trail
        problems: list[str] = [collision] if collision else []  # for the report (and the audit trail)
        refusals: list[str] = []  # why it cannot come in as the seed had it

        def time_of(what: str) -> float | None:
            name, value = _first(raw, _TIMES[what])
            ts, issue = read_time(value, self.tz, self.now)
            if issue == "naive":
                report.notes[f"times without an offset read as {self.tz}"] += 1
            elif issue:
                refusals.append(f"{name} {issue}")
            return ts

        diamonds = self._diamonds(raw_diamonds, refusals)

        # Amount and rate: the entry's own, the one its amount implies, or the seed's rate of its
        # group; never a guess (orders.default_rate would bill an order the seed never had).
        amount_key, raw_amount = _first(raw, ("amount", "price", "total"))
        amount, why = (None, "") if raw_amount is None else _exact_amount(raw_amount, MAX_AMOUNT)
        if why:
            refusals.append(f"{amount_key} {why}")
        raw_rate = raw.get("rate")
        rate = _rate(raw_rate)
        if rate is None and raw_rate not in (None, ""):
            refusals.append(f"rate {_show(raw_rate)} is not a usable rate")
        elif rate is None and g.rate is not None:
            rate = g.rate
            g.priced_at_group_rate += 1
            notes.append(f"no rate of its own: priced at the group's rate {rate} in the seed")
        elif rate is None and amount and diamonds and (implied := _rate(amount / diamonds)) is not None \
                and order_amount(diamonds, implied) == amount:
            rate = implied
            notes.append(f"no rate of its own or of its group: rate {rate} from its amount")
        elif rate is None:
            refusals.append("no rate of its own, and its group has no usable rate in the file")

        # Status: only one the seed evidently meant.
        raw_status = raw.get("status")
        status_text = str(raw_status).strip().lower() if isinstance(raw_status, str) else ""
        status = _STATUS.get(status_text)
        if status is None:
            refusals.append("no status: whether it was delivered cannot be told" if raw_status in (None, "")
                            else f"unknown status {_show(raw_status)}")
        elif status_text != status.value:
            report.notes[f"status {status_text!r} read as {status.value}"] += 1

        created = time_of("created")
        if created is None and not any(raw.get(k) not in (None, "") for k in _TIMES["created"]) and seed_id:
            # The seed's ids are Date.now() at creation.
            from_id, issue = read_time(raw.get("id"), self.tz, self.now)
            if from_id is not None and not issue and isinstance(raw.get("id"), int):
                created = from_id
                report.notes["entries without a date dated by their id (epoch ms)"] += 1
        stamps = {name: time_of(name) for name in _STAMP_OF.values()}
        if refusals:
            # Anything else would bring in a different order than the seed's (25.5 diamonds as 0, ৳0 …).
            report.orders_refused += 1
            report.problem(where, "not imported: " + "; ".join(refusals), "refused")
            return
        assert diamonds is not None and rate is not None and status is not None
        computed = order_amount(diamonds, rate)
        if amount is None:
            amount = computed
        elif amount != computed:
            problems.append(f"{amount_key} {money_str(amount)} differs from diamonds × rate "
                            f"({money_str(computed)}): kept the seed's {amount_key}")
        delivered = any(raw.get(k) is True for k in _DELIVERED_FLAGS)
        if status is Status.APPROVED and (delivered or stamps["completed_at"] is not None):
            status = Status.COMPLETED
            stamps["completed_at"] = stamps["completed_at"] or stamps["approved_at"]
            report.notes["approved entries the seed had delivered imported as completed"] += 1
        archived_flag = raw.get("archived") is True or raw.get("isArchived") is True
        if raw.get("deleted") is True and status is not Status.COMPLETED and status is not Status.DELETED:
            notes.append(f"marked deleted in the seed while {status.value}")
            status = Status.DELETED
        elif archived_flag and not status.archived:
            to = Status.COMPLETED if status is Status.APPROVED else Status.DELETED
            problems.append(f"archived in the seed while {status.value}: imported as {to.value}")
            status = to

        user_key, user = _first(raw, _USER)
        user_id = _text(user)
        if user is not None and not user_id:
            problems.append(f"{user_key} {_show(user)} is not a user id")
        receipt_at = created if created is not None else self.now
        order = Order(
            id=f"{g.code}{g.next_seq}",
            group_id=g.gid,
            group_name=g.name,
            user_id=user_id,
            user_alt=_text(_first(raw, _USER_ALT)[1]),
            user_name=_text(_first(raw, _USER_NAME)[1]),
            message_id=message_id,
            text=_text(_first(raw, _TEXT)[1]),
            diamonds=diamonds,
            rate=rate,
            amount=amount,
            status=status,
            created_at=created,
            received_at=receipt_at,
            recovered=raw.get("recovered") is True,
            processing_at=stamps["processing_at"],
            approved_at=stamps["approved_at"],
            completed_at=stamps["completed_at"],
            cancelled_at=stamps["cancelled_at"],
            deleted_at=stamps["deleted_at"],
            # The seed answered every order when it took it: never a second receipt.
            receipt=Delivery(attempts=1, last_attempt_at=receipt_at, confirmed_at=receipt_at),
            delivery=(Delivery(attempts=1, last_attempt_at=stamps["completed_at"],
                               confirmed_at=stamps["completed_at"])
                      if status is Status.COMPLETED and stamps["completed_at"] is not None else Delivery()),
            audit=(AuditEntry(self.now, None, status.value, IMPORTER, f"{NOTE_PREFIX}{key})"),)
            + ((AuditEntry(self.now, status.value, status.value, IMPORTER,
                           "import: " + "; ".join(notes + problems)),)
               if notes or problems else ()),
        )
        record = to_record(order)
        record = {"id": record.pop("id"), "importedId": key, **record}
        # What reconciliation will find (the stored record reads back as this very order).
        invalid = validation_problems(order)
        g.next_seq += 1
        if created is not None:
            g.watermark = max(g.watermark, created)
        g.orders.append(record)
        report.orders_imported += 1
        label = f"{where} → {order.id}"
        seed_said = f" ({'; '.join(problems)})" if problems else ""
        if invalid and not status.archived:
            report.orders_flagged += 1
            report.problem(label, "flagged invalid for review, no message will be sent about it: "
                           + ", ".join(invalid) + seed_said, "flagged")
        elif invalid:
            # Archived orders are not checked any more; a missing stamp on one is only history.
            missing = [i for i in invalid if " without " in i]
            for what in missing:
                state, _, stamp = what.partition(" without ")
                field_name = re.sub(r"_(\w)", lambda m: m.group(1).upper(), stamp)
                report.notes[f"{state} entries without {field_name} (archived, so not checked)"] += 1
            if len(missing) < len(invalid):
                report.problem(label, f"{status.value} (not checked any more), but: "
                               + ", ".join(i for i in invalid if i not in missing) + seed_said, "note")
            else:
                for p in problems:
                    report.problem(label, p, "note")
        else:
            for p in problems:
                report.problem(label, p, "note")
            if status is Status.APPROVED:
                report.deliveries_due += 1

    def _diamonds(self, raw: Any, refusals: list[str]) -> int | None:
        """The entry's diamonds if they are a whole number within orders' limits; else None and why."""
        if isinstance(raw, int) and not isinstance(raw, bool):
            diamonds = raw
        elif isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
            diamonds = int(raw)
        elif isinstance(raw, str) and re.fullmatch(r"-?\d{1,12}", raw.strip()):
            diamonds = int(raw.strip())  # int() reads Bengali digits too
            self.report.notes["diamonds written as text read as a number"] += 1
        else:
            refusals.append("no diamonds" if raw is None else f"diamonds {_show(raw)} is not a whole number")
            return None
        if diamonds < self.min_diamonds:
            refusals.append(f"diamonds {diamonds} is below orders.min_diamonds ({self.min_diamonds})")
            return None
        if diamonds > self.max_diamonds:
            refusals.append(f"diamonds {diamonds} is above orders.max_diamonds ({self.max_diamonds}); raise "
                            "orders.max_diamonds and import again if it is real")
            return None
        return diamonds

    # -- payments ----------------------------------------------------------------------------

    def _payments(self) -> list[tuple[str, int, Any]]:
        """(group id from the container or "", position, raw payment) for every payment in the file."""
        raw = self.seed.get("payments")
        out: list[tuple[str, int, Any]] = []
        if isinstance(raw, list):
            out.extend(("", i, p) for i, p in enumerate(raw))
        elif isinstance(raw, dict):
            for k, v in raw.items():
                if isinstance(v, list):  # payments[groupId] = [...]
                    out.extend((k, i, p) for i, p in enumerate(v))
                elif isinstance(v, Mapping):  # payments[paymentId] = {...}
                    out.append(("", len(out), dict(v, id=v.get("id", k))))
                else:
                    out.append(("", len(out), v))
        for gid, g in self.seed["groups"].items():
            if isinstance(g, Mapping) and isinstance(g.get("payments"), list):
                out.extend((gid, i, p) for i, p in enumerate(g["payments"]))
        return out

    def _all_payments(self, tick: Callable[[int], None]) -> list[dict[str, Any]]:
        raw = self.seed.get("payments")
        if raw is not None and not isinstance(raw, (list, dict)):
            self.report.problem("payments", f"a JSON {_json_type(raw)}, not a list: no payments read", "note")
        records = []
        seen: dict[str, str] = {}
        for n, (container_gid, pos, payment) in enumerate(self._payments(), 1):
            record = self._payment(container_gid, n, payment, seen)
            if record is not None:
                records.append(record)
            tick(1)
        return records

    def _payment(self, container_gid: str, n: int, raw: Any, seen: dict[str, str]) -> dict[str, Any] | None:
        report = self.report
        if not isinstance(raw, Mapping):
            report.payments_refused += 1
            report.problem(f"payment #{n}", f"not imported: a JSON {_json_type(raw)} ({_show(raw)}), not a payment",
                           "refused")
            return None
        seed_id = _seed_id(raw.get("id"))
        where = f"payment #{n}" + (f" (id {seed_id})" if seed_id else "")
        gid = container_gid or _text(_first(raw, _PAY_GROUP)[1])
        key = f"seed:{seed_id}" if seed_id else f"seed:noid-{_digest(raw)}"
        fingerprint = _digest(raw)
        if key in seen:
            if seen[key] == fingerprint:
                report.payments_duplicate += 1
                report.problem(where, "skipped: the same payment appears again in the file", "skipped")
                return None
            i = 2
            while f"{key}#{i}" in seen:
                i += 1
            key = f"{key}#{i}"
            report.problem(where, f"another payment has the same id with different data: imported both, "
                                  f"this one as {key} (check them)", "note")
        seen[key] = fingerprint
        if key in self.payments_imported:
            report.payments_already += 1
            return None

        # Refused rather than changed: a payment counts against a group's due.
        refusals = []
        if not gid:
            refusals.append("no group id")
        elif gid not in self.db.groups and gid not in self.groups_read:
            refusals.append(f"group {gid} is neither a readable group of the file nor one of the bot's, so it "
                            "would lower no group's due")
        amount_key, raw_amount = _first(raw, ("amount", "paid", "value"))
        amount, why = (None, "") if raw_amount is None else _exact_amount(raw_amount, MAX_AMOUNT)
        if raw_amount is None:
            refusals.append("no amount")
        elif why:
            refusals.append(f"{amount_key} {why}")
        elif amount is not None and amount <= 0:
            refusals.append(f"{amount_key} {_show(raw_amount)} is not more than 0")
        at_key, raw_at = _first(raw, _PAY_TIME)
        at, issue = read_time(raw_at, self.tz, self.now)
        if issue and issue != "naive":
            refusals.append(f"{at_key} {issue}")
        if refusals:
            report.payments_refused += 1
            report.problem(where, "not imported: " + "; ".join(refusals), "refused")
            return None
        assert amount is not None
        notes = []
        _, raw_method = _first(raw, ("method", "via", "type", "paymentMethod"))
        method = _method(raw_method)
        if method == "other" and raw_method is not None:
            notes.append(f"method: {_text(raw_method) or _show(raw_method)}")
        _, raw_by = _first(raw, _PAY_BY)
        if _text(raw_by):
            notes.append(f"recorded by {_text(raw_by)} in the seed")
        if issue == "naive":
            report.notes[f"times without an offset read as {self.tz}"] += 1
        elif at is None:
            report.problem(where, "no date: imported without one", "note")
        note = _text(_first(raw, _PAY_NOTE)[1])
        value = {
            "id": f"P{self.next_payment}",
            "importedId": key,
            "groupId": gid,
            "amount": money_str(amount),
            "method": method,
            "reference": _text(_first(raw, _PAY_REFERENCE)[1]),
            "note": "; ".join([note] * bool(note) + notes),
            "at": to_iso(at),
            "by": IMPORTER,
        }
        self.next_payment += 1
        report.payments_imported += 1
        return PaymentRecord(gid, value).encode()


def _method(value: Any) -> str:
    text = re.sub(r"[^a-z]", "", value.lower()) if isinstance(value, str) else ""
    if text.startswith("bank") or text in ("banktransfer", "transfer"):
        return "bank"
    return text if text in METHODS else "other"


def _is_code(code: str) -> bool:
    try:
        code_number(code)
    except ValueError:
        return False
    return True


def _imported_ids(entry: Mapping[str, Any]) -> list[str]:
    """The seed ids an order in the database was imported from (its field, and its audit trail)."""
    keys = []
    if isinstance(entry.get("importedId"), str):
        keys.append(entry["importedId"])
    audit = entry.get("audit")
    for a in audit if isinstance(audit, list) else ():
        if not isinstance(a, Mapping) or a.get("by") != IMPORTER:
            continue
        note = a.get("note")
        if isinstance(note, str) and note.startswith(NOTE_PREFIX) and note.endswith(")"):
            keys.append(note[len(NOTE_PREFIX):-1])
    return keys


# -- running it -----------------------------------------------------------------------------


class Progress:
    """A progress bar on a terminal; elsewhere one line per PROGRESS_LINE_EVERY items."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.done = 0
        self.drawn = 0.0

    def update(self, n: int = 1) -> None:
        before, self.done = self.done, self.done + n
        if self.tty:
            if time.monotonic() - self.drawn >= 0.1 or self.done >= self.total:
                self._draw()
        elif self.done // PROGRESS_LINE_EVERY > before // PROGRESS_LINE_EVERY:
            self.stream.write(f"{self.label}: {self.done // PROGRESS_LINE_EVERY * PROGRESS_LINE_EVERY}"
                              f"/{self.total}\n")
            self.stream.flush()

    def _draw(self) -> None:
        self.drawn = time.monotonic()
        width = 30
        share = self.done / self.total if self.total else 1.0
        bar = "█" * int(share * width) + "░" * (width - int(share * width))
        self.stream.write(f"\r{self.label} {bar} {share:4.0%} {self.done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def import_json(path: str | os.PathLike[str], data_dir: str | os.PathLike[str], *, default_rate: Decimal | None,
                tz: tzinfo, max_diamonds: int, min_diamonds: int = 1, now: float | None = None,
                progress: TextIO | None = None) -> Report:
    """Import the seed's file into the (stopped) bot's data directory and write the report file.

    SeedImportError: exit_code 1 when the file (or the data directory) cannot be read, 2 when the
    bot is running. Nothing is written in either case."""
    from storage.database import DatabaseError, open_database  # the same reading as the bot's
    from storage.errors import StorageError
    from storage.lock import FileLock, LockHeld

    try:
        seed = load_seed(path)  # before anything is created: an unreadable file writes nothing
    except SeedImportError as e:
        raise SeedImportError(f"{e}. Nothing was imported.") from None
    data_dir = Path(data_dir).resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SeedImportError(f"cannot create the data directory {data_dir}: {e.strerror or e}") from None
    # bot.lock: no run.py may start meanwhile; persistence.lock: the single writer of the data files.
    locks = [FileLock(data_dir / "bot.lock"), FileLock(data_dir / "persistence.lock")]
    held: list[FileLock] = []
    try:
        for lock in locks:
            try:
                lock.acquire()
            except LockHeld as e:
                raise SeedImportError(f"Diamond Bot is already running on {data_dir}: {_holder(e)}. Stop it "
                                      "first, then run the import again. Nothing was imported.", exit_code=2) \
                    from None
            held.append(lock)
        try:
            store, db = open_database(data_dir)
        except (StorageError, DatabaseError) as e:
            raise SeedImportError(f"the data directory cannot be read: {e} Nothing was imported.") from None
        try:
            importer = SeedImport(db, seed, default_rate=default_rate, tz=tz, now=now,
                                  min_diamonds=min_diamonds, max_diamonds=max_diamonds)
            bar = Progress("importing", importer.items(), progress)
            written = unsynced = 0
            try:
                for batch in importer.batches(bar.update):
                    store.append([orjson.dumps(r) for r in batch])
                    written += len(batch)
                    unsynced += len(batch)
                    if unsynced >= SYNC_EVERY:
                        store.sync()
                        unsynced = 0
                store.sync()
            except (StorageError, OSError) as e:
                raise SeedImportError(
                    f"writing to {data_dir} failed after {written} records: {e}. What was written is "
                    "complete and will not be imported twice: fix the cause and run the import again.") from None
            finally:
                bar.close()
        finally:
            store.close()
    finally:
        for lock in reversed(held):
            lock.release()
    report = importer.report
    report.source, report.data_dir = str(Path(path).resolve()), str(data_dir)
    report.log_path = str(_write_log(data_dir, report, tz, importer.now))
    return report


def _holder(e: Any) -> str:
    """Who holds a lock, from LockHeld's owner info."""
    owner = e.owner
    argv = owner.get("argv")
    command = shlex.join(argv) if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else "?"
    since = f" since {owner['started_at']}" if owner.get("started_at") else ""
    return f"{Path(e.path).name} is held by pid {owner.get('pid', 'unknown')} ({command}){since}"


def _write_log(data_dir: Path, report: Report, tz: tzinfo, now: float) -> Path:
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(now, tz).strftime("%Y%m%d-%H%M%S")
    n = 1
    while True:
        path = logs / (f"import-{stamp}.txt" if n == 1 else f"import-{stamp}-{n}.txt")
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(format_report(report, full=True) + "\n")
            return path
        except FileExistsError:
            n += 1


def format_report(report: Report, full: bool = False) -> str:
    """The summary; unless `full`, long lists are cut short with a pointer to the report file."""
    r = report

    def listed(items: list[str], limit: int) -> list[str]:
        if full or len(items) <= limit:
            return items
        return items[:limit] + [f"  … and {len(items) - limit} more in {r.log_path or 'the report file'}"]

    lines = [f"Imported {r.source or 'the seed file'} into {r.data_dir or 'the data directory'}"]
    groups = [f"{len(r.groups_created)} created", f"{len(r.groups_updated)} updated",
              f"{len(r.groups_unchanged)} unchanged"]
    if r.groups_skipped:
        groups.append(f"{r.groups_skipped} unreadable")
    lines.append("  groups:   " + ", ".join(groups))
    lines.extend(listed([f"            created {g}" for g in r.groups_created], 20))
    lines.extend(listed([f"            updated {g}" for g in r.groups_updated], 20))
    flagged = f" ({r.orders_flagged} flagged invalid for review)" if r.orders_flagged else ""
    lines.append(f"  orders:   {r.orders_imported} imported{flagged}; {r.orders_refused} NOT imported; skipped: "
                 f"{r.orders_already} already imported, {r.orders_duplicate} duplicate")
    lines.append(f"  payments: {r.payments_imported} imported; {r.payments_refused} NOT imported; skipped: "
                 f"{r.payments_already} already imported, {r.payments_duplicate} duplicate")
    if not r.orders_imported and not r.payments_imported and not r.groups_created:
        lines.append("  Nothing new to import: everything readable in the file is already here.")
    if r.deliveries_due:
        lines.append(f"  {r.deliveries_due} approved orders have no delivery recorded in the seed: the bot will "
                     "send their delivery message when it starts, as the seed would have.")
    if r.notes:
        lines.append("Conversions:")
        lines.extend(f"  {what}" + (f" ({n})" if n > 1 else "") for what, n in r.notes.items())
    others = [p for kind in ("skipped", "flagged", "note") for p in r.problems if p.kind == kind]
    if others:
        lines.append(f"Problems ({len(others)}):")
        lines.extend(listed([f"  [{p.kind}] {p.where}: {p.what}" for p in others], 200))
    if r.refused:
        # Last, where the eye lands: what did not come in and has to be entered another way.
        lines.append(f"NOT IMPORTED ({len(r.refused)}): these cannot come in as the seed had them, and were left "
                     "out rather than changed. Correct them in the file and run the import again (what came in "
                     "is not imported twice), or enter them in the panel:")
        lines.extend(listed([f"  {p.where}: {p.what.removeprefix('not imported: ')}" for p in r.refused], 200))
    if not full and r.log_path:
        lines.append(f"This report is also in {r.log_path}")
    return "\n".join(lines)
