"""Import the old bot's files (`python run.py import-json PATH [--payments FILE]`).

The seed, the Node bot this one replaces, kept everything in one file:

    {"groups": {"<id>@g.us": {"groupName": ..., "rate": 100, "dueLimit": 5000, "entries": [
        {"id": 1765040834207, "userId": "76210050711676@lid", "playerIdNumber": "576515275",
         "status": "approved", "diamonds": 10, "approvedAt": ..., "approvedBy": ..., ...}, ...]}, ...},
     "payments": [{"groupId": ..., "amount": ..., "method": ..., "trxId": ..., "date": ...}, ...]}

with ids and times in epoch milliseconds (times also as ISO text); the bots with reseller
balances kept their payments in `payment-transactions.json` beside it (storage.seed_files reads
the files). Each seed group becomes a group (a letter code after the highest one in use), each
entry an order with our id (`B1`, `B2` …) that keeps the seed's id as `importedId` and in its
first audit entry, each payment a payment (`P1` …).

Nothing comes in different from what the seed had: an entry or payment whose diamonds, amount,
rate, status, time or group cannot be taken as written (25.5 diamonds, more than
orders.max_diamonds, a negative or NaN amount, an unknown status, an unreadable time, a payment
for a group nobody knows) is refused, listed in the report with its position and why, and left
for the operator; the rest is imported. An entry that is merely incomplete (no user, an approved
one without its approval time) comes in as it is and reconciliation flags it `invalid` (never
messaging anyone about it). Every field is either read into ours (the player, who approved or
deleted it and why, when processing began, a group's due limit, a payment's order) or kept
exactly as written in the record's `imported` object, and the report counts those by name.

Payments: one the old bot did not count (status pending, failed, cancelled, refunded …; a
deposit into a reseller's balance, which the old bot counted only through its auto-deduction
entries) comes in void, its reason saying why, so the due is the one the old bot had. A payment
finds its group by its `groupId`, else by the order it names (`orderId`), else by its user's
orders when they are all in one group; otherwise it is refused.

Only appends: the import writes journal records in the shapes the actors write and never
touches what is there. It runs only while the bot is stopped (it takes the bot's locks), and a
second run of the same files imports nothing: what was imported before is recognised by its
`importedId`, by the import's audit entry (which survives the bot rewriting the order), and
by the chat message id.

`SeedImport` decides everything without touching a file (tests use it directly);
`import_json` adds the locks, the store and the report file.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import orjson

from domain.group import (GroupBook, GroupSettings, SettingsError, apply_settings_patch, code_number, group_code,
                          settings_record, split_order_id)
from domain.money import money_str, order_amount, parse_rate
from domain.orders import AuditEntry, Delivery, Order, Status, to_record, validation_problems
from domain.parsing import player_id_of
from domain.payments import MAX_AMOUNT
from domain.records import GroupRecord, OrderRecord
from storage.database import Database
from storage.import_report import (PROGRESS_LINE_EVERY, Problem, Progress, Report, format_report, not_imported,
                                    write_log)
from storage.seed_files import (EXPECTED, MAX_FILE_BYTES, SeedFile, SeedImportError, Sources, load_payments,
                                load_seed, sources)
from storage.seed_files import json_type as _json_type
from storage.seed_payments import TXN_PREFIX, GroupIndex, PaymentImport, payments_in
from storage.seed_values import (IMPORTER, Fields, actor, digest, exact_amount, rate_of, read_time, seed_id, show,
                                 text_field, text_of, user_keys, verbatim, writable)

__all__ = ["EXPECTED", "IMPORTER", "MAX_FILE_BYTES", "NOTE_PREFIX", "PROGRESS_LINE_EVERY", "TXN_PREFIX", "Plan",
           "Problem", "Progress", "Report", "SeedImport", "SeedImportError", "format_report", "import_json",
           "load_seed", "not_imported"]

# The first audit entry of every imported order: "<prefix><importedId>)". Orders rewritten by
# the bot keep their audit trail, so this is what a later run recognises.
NOTE_PREFIX = "imported from the seed's database.json (id "
# Audit entries of what the old bot recorded about an order: who approved or deleted it, and why.
HISTORY_NOTE = "import: in the old bot"
SYNC_EVERY = 1000  # an fsync at least every this many records (between groups)
_MAX_DUE_LIMIT = Decimal("1000000000000")

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
    "processing_at": ("processingAt", "processing_at", "processingStartedAt", "processingStartAt",
                      "processingStart", "startedProcessingAt", "processStartedAt", "startedAt", "processedAt"),
    "approved_at": ("approvedAt", "approved_at", "approvedTime"),
    "completed_at": ("completedAt", "completed_at", "deliveredAt", "confirmedAt", "confirmationSentAt",
                     "doneAt"),
    "cancelled_at": ("cancelledAt", "canceledAt", "cancelled_at", "rejectedAt"),
    "deleted_at": ("deletedAt", "deleted_at", "removedAt"),
}
_STAMP_OF = {Status.PROCESSING: "processing_at", Status.APPROVED: "approved_at",
             Status.COMPLETED: "completed_at", Status.CANCELLED: "cancelled_at", Status.DELETED: "deleted_at"}
# Who moved an entry into a state, and why (the reason explains the last move a person made).
_BY = {
    Status.PROCESSING: ("processingBy", "processedBy", "processingStartedBy"),
    Status.APPROVED: ("approvedBy", "approved_by", "approver"),
    Status.CANCELLED: ("cancelledBy", "canceledBy", "cancelled_by", "rejectedBy"),
    Status.DELETED: ("deletedBy", "deleted_by", "removedBy"),
}
_REASON = ("correctionReason", "correction_reason", "reason", "cancelReason", "cancellationReason",
           "deleteReason", "deletionReason", "rejectReason", "rejectionReason")
_CORRECTED_BY = ("correctedBy", "corrected_by")
_DELIVERED_FLAGS = ("confirmed", "deliveryConfirmed", "delivered", "confirmationSent", "autoConfirmed")
_ARCHIVED_FLAGS = ("archived", "isArchived")
_USER = ("userId", "user", "sender", "senderId", "from", "author", "participant")
_USER_NAME = ("userName", "name", "pushName", "senderName", "displayName")
_USER_ALT = ("userAlt", "phone", "userPhone", "senderPn", "phoneJid")
# The player to top up. The old bots wrote `playerIdNumber: playerIdNumber || userId`: the
# user's own id there means none was given.
_PLAYER = ("playerIdNumber", "playerId", "playerID", "player_id", "gameId", "gameID", "game_id", "uid")
_MESSAGE_ID = ("messageId", "msgId", "message_id", "messageID")
_TEXT = ("text", "message", "body")
_DIAMONDS = ("diamonds", "diamond", "quantity")
_AMOUNT = ("amount", "price", "total")
_GROUP_NAME = ("groupName", "name")
_DUE_LIMIT = ("dueLimit", "due_limit", "maxDue")
_DOC_KEYS = frozenset(("groups", "payments"))


@dataclass(slots=True)
class Plan:
    records: list[dict[str, Any]]
    report: Report


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
    """Decides, from the database as it is and the old bot's documents, the records an import
    appends and the report; touches no file."""

    def __init__(self, db: Database, seed: Mapping[str, Any], *, default_rate: Decimal | None, tz: tzinfo,
                 max_diamonds: int, min_diamonds: int = 1, now: float | None = None,
                 transactions: list[Any] | None = None) -> None:
        self.db = db
        self.seed = seed
        self.transactions = transactions  # the payments file's payments (None: no such file)
        self.default_rate = None if default_rate is None else parse_rate(default_rate)
        self.tz = tz
        self.now = time.time() if now is None else now
        self.report = Report()
        self.min_diamonds, self.max_diamonds = min_diamonds, max_diamonds
        self.groups_read: set[str] = set()  # the file's groups that were read (payments may name them)
        # (group id, importedId) and (group id, message id) -> our order id, already in the database.
        self.imported: dict[tuple[str, str], str] = {}
        self.by_message: dict[tuple[str, str], str] = {}
        self.index = GroupIndex()  # what the payments are placed by
        for gid, image in db.groups.items():
            for oid, entry in image.entries.items():
                for key in set(_imported_ids(entry)):
                    self.imported[(gid, key)] = oid
                    self._remember_order(gid, key, oid)
                message_id = entry.get("messageId")
                if isinstance(message_id, str) and message_id:
                    self.by_message[(gid, message_id)] = oid
                for user in (entry.get("userId"), entry.get("userAlt")):
                    self._remember_user(gid, user)
        for gid, raw_group in seed["groups"].items():
            for raw in _raw_entries(raw_group):
                if isinstance(raw, Mapping):
                    sid = seed_id(raw.get("id"))
                    if sid is not None:
                        self.index.order_groups.setdefault(sid, set()).add(gid)
                    for key in _USER + _USER_ALT:
                        self._remember_user(gid, raw.get(key))
        codes = [str(g.settings.get("code") or "") for g in db.groups.values()]
        numbers = [code_number(c) for c in codes if _is_code(c)]
        self.next_code = max(numbers, default=0) + 1
        unread = sorted(k for k in seed if k not in _DOC_KEYS)
        if unread:
            self.report.unread.append("database.json's " + ", ".join(f'"{k}"' for k in unread) + " (not groups or "
                                      "payments: nothing of Diamond Bot holds them)")

    def _remember_order(self, gid: str, imported_id: str, oid: str) -> None:
        if imported_id.startswith("seed:") and not imported_id.startswith("seed:noid-"):
            ref = imported_id[5:].split("#")[0]
            ours = self.index.orders_of.setdefault((gid, ref), [])
            if oid not in ours:
                ours.append(oid)
            self.index.order_groups.setdefault(ref, set()).add(gid)

    def _remember_user(self, gid: str, user: Any) -> None:
        if isinstance(user, (str, int)) and not isinstance(user, bool):
            for key in user_keys(str(user)):
                self.index.user_groups.setdefault(key, set()).add(gid)

    def items(self) -> int:
        """How many entries and payments the documents hold (the progress bar's total)."""
        n = sum(len(_raw_entries(g)) for g in self.seed["groups"].values())
        return n + len(payments_in(self.seed)) + len(self.transactions or ())

    def batches(self, tick: Callable[[int], None] | None = None) -> Iterator[list[dict[str, Any]]]:
        """The records to append, a group (its settings first, then its orders) at a time, then the
        payments; `tick(n)` as entries and payments are read. The report is complete at the end."""
        tick = tick or (lambda n: None)
        for gid, raw_group in self.seed["groups"].items():
            records = self._group(gid, raw_group, tick)
            if records:
                yield records
        self.index.known = set(self.db.groups) | self.groups_read
        payments = PaymentImport(self.db, self.seed, self.transactions, self.index, self.report, tz=self.tz,
                                 now=self.now).records(tick)
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
        fields = Fields(raw)
        name_key, raw_name = fields.first(_GROUP_NAME)
        seed_name = text_of(raw_name)
        where = f"group {gid}" + (f" ({seed_name})" if seed_name else "")
        if not writable({"g": gid, "v": verbatim({k: v for k, v in raw.items() if k not in ("entries", "payments")})}):
            n = len(_raw_entries(raw))
            report.groups_skipped += 1
            report.orders_refused += n
            report.problem(where, f"not imported, nor its {n} entries: its id or settings hold text that is not "
                                  "valid Unicode (a lone surrogate)", "refused")
            tick(n)
            return []
        if not gid.strip().endswith("@g.us"):
            report.problem(where, "not a WhatsApp group id (…@g.us): imported as it is, but no chat "
                                  "will ever match it", "note")
        if raw_name is not None and not isinstance(raw_name, str):
            report.problem(where, f"{name_key} {show(raw_name)} is not text: used as text", "note")
        raw_rate = fields.get("rate")
        seed_rate = rate_of(raw_rate)
        if seed_rate is None and raw_rate not in (None, ""):
            report.problem(where, f"rate {show(raw_rate)} is not a usable rate", "note")
        due_limit = self._due_limit(fields, where)
        if fields.get("groupId") not in (None, gid):
            fields.unread("groupId")
            report.problem(where, f"its groupId {show(raw['groupId'])} is not the id it is filed under: kept as it "
                                  "was in the group's imported fields", "note")
        auto_approve = fields.get("autoApprove")
        if not isinstance(auto_approve, bool):
            fields.unread("autoApprove")
        image = self.db.groups.get(gid)
        if image is not None and image.settings:
            g = self._existing_group(gid, image.settings, seed_rate, where)
            # The bot's own name and auto-approval stay; the seed's, where they differ, are kept.
            if raw_name is not None and seed_name != g.name:
                fields.unread(name_key)
            if isinstance(auto_approve, bool) and auto_approve != image.settings.get("autoApprove", False):
                fields.unread("autoApprove")
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

        entries = fields.get("entries")
        if isinstance(entries, dict):  # entries keyed by id
            entries = [dict(e, id=e.get("id", k)) if isinstance(e, Mapping) else e for k, e in entries.items()]
        elif entries is None:
            entries = []
        elif not isinstance(entries, list):
            report.problem(where, f"\"entries\" is a JSON {_json_type(entries)}, not a list: no orders read",
                           "note")
            fields.unread("entries")
            entries = []
        for pos, entry in enumerate(entries):
            self._entry(g, where, pos, entry)
            tick(1)
        if g.priced_at_group_rate:
            report.notes["entries without a rate of their own priced at their group's rate"] += \
                g.priced_at_group_rate
        if isinstance(raw.get("payments"), list):
            fields.get("payments")  # read with the payments
        rest = fields.rest()

        self.groups_read.add(gid)
        label = f"{g.code} {g.name or '(no name)'} ({gid})"
        if g.settings is None:
            book = GroupBook(GroupSettings(gid, g.name, g.code, g.rate or self.default_rate,
                                           auto_approve=auto_approve is True, due_limit=due_limit),
                             next_seq=g.next_seq, watermark=g.watermark)
            settings = settings_record(book)
            if rest:
                settings["imported"] = rest
                self.report.keep("groups", rest)
            report.groups_created.append(label)
        else:
            changes = self._settings_changes(g, seed_rate, due_limit, rest, where)
            if not g.orders and not changes:
                report.groups_unchanged.append(label)
                if rate_of(g.settings.get("rate")) is None:
                    report.groups_without_rate.append(label)
                return []
            settings = dict(g.settings, code=g.code, nextSeq=g.next_seq,
                            watermark=max(float(g.settings.get("watermark") or 0.0), g.watermark), **changes)
            report.groups_updated.append(label)
        if settings.get("rate") is None:
            report.groups_without_rate.append(label)
        # The group (its code and a nextSeq past every imported id) before its orders.
        return [GroupRecord(gid, settings).encode()] + [OrderRecord(gid, o).encode() for o in g.orders]

    def _due_limit(self, fields: Fields, where: str) -> Decimal | None:
        """The group's due limit as the seed had it, validated as the panel validates one; None
        (and the field kept verbatim, the setting listed as not imported) when it cannot be one."""
        key, raw = fields.first(_DUE_LIMIT)
        if raw is None:
            return None
        amount, why = exact_amount(raw, _MAX_DUE_LIMIT)
        if amount is not None:
            try:
                probe = GroupSettings("", "", "", None)
                return apply_settings_patch(probe, {"due_limit": money_str(amount)}).due_limit
            except SettingsError as e:
                why = f"{show(raw)}: {str(e).removeprefix('due_limit: ')}"
        why = f"{key} {why}"
        fields.unread(key)
        self.report.settings_refused += 1
        self.report.problem(where, f"not imported: {why}; the group has no due limit from the import (the value "
                                   "is kept in the group's imported fields): set it in the panel", "refused")
        return None

    def _settings_changes(self, g: _Group, seed_rate: Decimal | None, due_limit: Decimal | None,
                          rest: dict[str, Any], where: str) -> dict[str, Any]:
        """What an existing group takes from the seed: the rate and due limit it has none of (a
        group the bot learned of before the import has neither), and the fields kept verbatim."""
        assert g.settings is not None
        changes: dict[str, Any] = {}
        ours = rate_of(g.settings.get("rate"))
        if ours is None and seed_rate is not None:
            changes["rate"] = str(seed_rate)
            self.report.problem(where, f"had no rate here: takes the seed's rate {seed_rate}", "note")
        ours_due = g.settings.get("dueLimit")
        if due_limit is not None:
            if ours_due in (None, ""):
                changes["dueLimit"] = str(due_limit)
                self.report.problem(where, f"had no due limit here: takes the seed's {money_str(due_limit)}", "note")
            elif exact_amount(ours_due, _MAX_DUE_LIMIT)[0] != due_limit:
                self.report.problem(where, f"already here with due limit {ours_due}; the seed's {money_str(due_limit)} "
                                           "is not used (change it in the panel if the seed's is right)", "note")
        if rest:
            kept = g.settings.get("imported")
            kept = dict(kept) if isinstance(kept, Mapping) else {}
            if any(kept.get(k) != v for k, v in rest.items()):
                changes["imported"] = {**kept, **rest}
                self.report.keep("groups", rest)
        return changes

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
        ours = rate_of(settings.get("rate"))
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
                           f"not imported: a JSON {_json_type(raw)} ({show(raw)}), not an entry", "refused")
            return
        fields = Fields(raw)
        sid = seed_id(fields.get("id"))
        _, raw_diamonds = fields.first(_DIAMONDS)
        where = f"{group_where} entry #{pos + 1}" + (f" (id {sid})" if sid is not None else "")
        if sid is None and raw_diamonds is None:
            report.orders_refused += 1
            report.problem(where, f"not imported: no id and no diamonds ({show(raw)})", "refused")
            return
        key = f"seed:{sid}" if sid is not None else f"seed:noid-{digest(raw)}"
        _, message_id = fields.first(_MESSAGE_ID)
        message_id = text_of(message_id)
        fingerprint = digest([raw.get(k) for k in _USER + _DIAMONDS + _MESSAGE_ID + _TIMES["created"]])
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
            name, value = fields.first(_TIMES[what])
            ts, issue = read_time(value, self.tz, self.now)
            if issue == "naive":
                report.notes[f"times without an offset read as {self.tz}"] += 1
            elif issue:
                refusals.append(f"{name} {issue}")
            return ts

        diamonds = self._diamonds(raw_diamonds, refusals)

        # Amount and rate: the entry's own, the one its amount implies, or the seed's rate of its
        # group; never a guess (orders.default_rate would bill an order the seed never had).
        amount_key, raw_amount = fields.first(_AMOUNT)
        amount, why = (None, "") if raw_amount is None else exact_amount(raw_amount, MAX_AMOUNT)
        if why:
            refusals.append(f"{amount_key} {why}")
        raw_rate = fields.get("rate")
        rate = rate_of(raw_rate)
        if rate is None and raw_rate not in (None, ""):
            refusals.append(f"rate {show(raw_rate)} is not a usable rate")
        elif rate is None and g.rate is not None:
            rate = g.rate
            g.priced_at_group_rate += 1
            notes.append(f"no rate of its own: priced at the group's rate {rate} in the seed")
        elif rate is None and amount and diamonds and (implied := rate_of(amount / diamonds)) is not None \
                and order_amount(diamonds, implied) == amount:
            rate = implied
            notes.append(f"no rate of its own or of its group: rate {rate} from its amount")
        elif rate is None:
            refusals.append("no rate of its own, and its group has no usable rate in the file")

        # Status: only one the seed evidently meant.
        raw_status = fields.get("status")
        status_text = str(raw_status).strip().lower() if isinstance(raw_status, str) else ""
        status = _STATUS.get(status_text)
        if status is None:
            refusals.append("no status: whether it was delivered cannot be told" if raw_status in (None, "")
                            else f"unknown status {show(raw_status)}")
        elif status_text != status.value:
            report.notes[f"status {status_text!r} read as {status.value}"] += 1

        created = time_of("created")
        if created is None and not any(raw.get(k) not in (None, "") for k in _TIMES["created"]) and sid:
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
        delivered = fields.flag(_DELIVERED_FLAGS)
        if status is Status.APPROVED and (delivered or stamps["completed_at"] is not None):
            status = Status.COMPLETED
            stamps["completed_at"] = stamps["completed_at"] or stamps["approved_at"]
            report.notes["approved entries the seed had delivered imported as completed"] += 1
        archived_flag = fields.flag(_ARCHIVED_FLAGS)
        if fields.flag(("deleted",)) and status is not Status.COMPLETED and status is not Status.DELETED:
            notes.append(f"marked deleted in the seed while {status.value}")
            status = Status.DELETED
        elif archived_flag and not status.archived:
            to = Status.COMPLETED if status is Status.APPROVED else Status.DELETED
            problems.append(f"archived in the seed while {status.value}: imported as {to.value}")
            status = to
        recovered = fields.flag(("recovered",))

        user_key, user = fields.first(_USER)
        user_id = text_of(user)
        if user is not None and not user_id:
            fields.unread(user_key)
            problems.append(f"{user_key} {show(user)} is not a user id: kept as it was in the order's imported "
                            "fields")
        user_alt = text_field(fields, _USER_ALT)
        user_name = text_field(fields, _USER_NAME)
        text = text_field(fields, _TEXT)
        player_id = self._player(fields, user_id, user_alt, problems)
        history = self._history(fields, status, stamps)
        receipt_at = created if created is not None else self.now
        rest = fields.rest()
        order = Order(
            id=f"{g.code}{g.next_seq}",
            group_id=g.gid,
            group_name=g.name,
            user_id=user_id,
            user_alt=user_alt,
            user_name=user_name,
            player_id=player_id,
            message_id=message_id,
            text=text,
            diamonds=diamonds,
            rate=rate,
            amount=amount,
            status=status,
            created_at=created,
            received_at=receipt_at,
            recovered=recovered,
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
            audit=(AuditEntry(self.now, None, status.value, IMPORTER, f"{NOTE_PREFIX}{key})"),) + history
            + ((AuditEntry(self.now, status.value, status.value, IMPORTER,
                           "import: " + "; ".join(notes + problems)),)
               if notes or problems else ()),
            imported_fields=rest or None,
        )
        record = to_record(order)
        record = {"id": record.pop("id"), "importedId": key, **record}
        if not writable(record):
            report.orders_refused += 1
            report.problem(where, "not imported: it holds text that is not valid Unicode (a lone surrogate)",
                           "refused")
            return
        self.report.keep("orders", rest)
        # What reconciliation will find (the stored record reads back as this very order).
        invalid = validation_problems(order)
        g.next_seq += 1
        if created is not None:
            g.watermark = max(g.watermark, created)
        g.orders.append(record)
        self._remember_order(g.gid, key, order.id)
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

    def _player(self, fields: Fields, user_id: str, user_alt: str, problems: list[str]) -> str:
        """The player to top up, as an order keeps it; "" when the entry names none."""
        key, raw = fields.first(_PLAYER)
        text = text_of(raw)
        if raw is None:
            return ""
        own = {user_id, user_alt, user_id.partition("@")[0], user_alt.partition("@")[0]} - {""}
        if text in own:
            # `playerIdNumber: playerIdNumber || userId` (its number alone, in some bots): no player.
            self.report.notes[f"{key} that only repeats the user's WhatsApp id (the old bot wrote that when no "
                              "player was given): no player ID"] += 1
            return ""
        player = player_id_of(text) if text else None
        if player is None:
            fields.unread(key)
            problems.append(f"{key} {show(raw)} is not a player ID (digits, or + and a phone number): the order has "
                            "none; the value is kept as it was in its imported fields")
            return ""
        if player != text:
            self.report.notes[f"player IDs written with spaces, dashes or Bengali digits read as digits "
                              f"({key})"] += 1
        return player

    def _history(self, fields: Fields, status: Status, stamps: Mapping[str, float | None]) -> tuple[AuditEntry, ...]:
        """What the seed recorded of the entry's way to its status, as audit entries: who moved it
        (approvedBy, deletedBy …) and why (correctionReason …), at the seed's times. The reason
        explains the last move a person made (for a completed order: its approval)."""
        path = [Status.PENDING]
        by_keys = {s: fields.first(keys) for s, keys in _BY.items()}
        for state in (Status.PROCESSING, Status.APPROVED, Status.CANCELLED, Status.COMPLETED, Status.DELETED):
            passed = stamps[_STAMP_OF[state]] is not None or by_keys.get(state, ("", None))[1] is not None
            approval = state is Status.APPROVED and status is Status.COMPLETED
            if state is status or approval or (passed and state is not Status.COMPLETED and _before(state, status)):
                path.append(state)
        reason_key, raw_reason = fields.first(_REASON)
        reason = text_of(raw_reason) if isinstance(raw_reason, str) else ""
        if raw_reason is not None and not reason:
            fields.unread(reason_key)
        corrected_key, raw_corrected = fields.first(_CORRECTED_BY)
        explained = next((s for s in reversed(path) if s is not Status.COMPLETED), Status.PENDING)
        entries = []
        used_by: set[str] = set()
        for before, state in zip([None, *path], path):
            key, raw_by = by_keys.get(state, ("", None))
            by = actor(raw_by)
            note_reason = reason if state is explained else ""
            if state is explained and not by and actor(raw_corrected):
                by, key = actor(raw_corrected), corrected_key
            if before is None and not note_reason:
                continue  # created: the import's own entry says it
            if not by and not note_reason:
                continue
            at = stamps.get(_STAMP_OF.get(state, ""), None) if state is not Status.PENDING else None
            note = HISTORY_NOTE + ("" if at is not None else ", time not recorded")
            if note_reason:
                note += f"; {reason_key}: {note_reason}"
            entries.append(AuditEntry(at if at is not None else self.now, (before or state).value, state.value,
                                      by or IMPORTER, note))
            used_by.add(key)
        for key, _ in by_keys.values():
            if key not in used_by:
                fields.unread(key)  # a move the entry's status does not show: kept as written
        if raw_corrected is not None and corrected_key not in used_by:
            fields.unread(corrected_key)
        return tuple(entries)

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
            refusals.append("no diamonds" if raw is None else f"diamonds {show(raw)} is not a whole number")
            return None
        if diamonds < self.min_diamonds:
            refusals.append(f"diamonds {diamonds} is below orders.min_diamonds ({self.min_diamonds})")
            return None
        if diamonds > self.max_diamonds:
            refusals.append(f"diamonds {diamonds} is above orders.max_diamonds ({self.max_diamonds}); raise "
                            "orders.max_diamonds and import again if it is real")
            return None
        return diamonds

def _before(state: Status, final: Status) -> bool:
    """Whether an entry that ended in `final` may have passed through `state` on its way."""
    earlier = {Status.PENDING: (), Status.PROCESSING: (Status.PENDING,),
               Status.APPROVED: (Status.PENDING, Status.PROCESSING),
               Status.CANCELLED: (Status.PENDING, Status.PROCESSING),
               Status.COMPLETED: (Status.PENDING, Status.PROCESSING, Status.APPROVED),
               Status.DELETED: (Status.PENDING, Status.PROCESSING, Status.APPROVED, Status.CANCELLED)}
    return state in earlier[final]


def _raw_entries(raw_group: Any) -> list[Any]:
    """A seed group's entries as a list (they may be keyed by id); [] for anything else."""
    if not isinstance(raw_group, Mapping):
        return []
    entries = raw_group.get("entries")
    if isinstance(entries, dict):
        return [dict(e, id=e.get("id", k)) if isinstance(e, Mapping) else e for k, e in entries.items()]
    return entries if isinstance(entries, list) else []


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


def import_json(path: str | os.PathLike[str], data_dir: str | os.PathLike[str], *, default_rate: Decimal | None,
                tz: tzinfo, max_diamonds: int, min_diamonds: int = 1, now: float | None = None,
                progress: TextIO | None = None, payments: str | os.PathLike[str] | None = None) -> Report:
    """Import the old bot's files into the (stopped) bot's data directory and write the report file:
    `path` is its database.json or its folder (with payment-transactions.json when there), `payments`
    a payments file named on its own.

    SeedImportError: exit_code 1 when a file (or the data directory) cannot be read, 2 when the
    bot is running. Nothing is written in either case."""
    from storage.database import DatabaseError, open_database  # the same reading as the bot's
    from storage.errors import StorageError
    from storage.lock import FileLock, LockHeld

    try:
        # Every file before anything is created: an unreadable one writes nothing.
        found = sources(path, payments)
        seed = load_seed(found.database)
        transactions = load_payments(found.payments) if found.payments is not None else None
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
            importer = SeedImport(db, seed.doc, default_rate=default_rate, tz=tz, now=now,
                                  min_diamonds=min_diamonds, max_diamonds=max_diamonds,
                                  transactions=_payment_list(transactions))
            _describe_files(importer.report, found, seed, transactions)
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
    report.source, report.data_dir = str(found.database.resolve()), str(data_dir)
    if found.payments is not None:
        report.payments_source = str(found.payments.resolve())
    report.log_path = str(write_log(data_dir, report, tz, importer.now))
    return report


def _payment_list(found: tuple[SeedFile, str] | None) -> list[Any] | None:
    if found is None:
        return None
    seed_file, key = found
    return seed_file.doc[key] if key else seed_file.doc


def _describe_files(report: Report, found: Sources, seed: SeedFile,
                    transactions: tuple[SeedFile, str] | None) -> None:
    """The report's account of the files: which were read, in which encoding, and what of them
    has no place in Diamond Bot."""
    report.files.append(f"{found.database} ({seed.encoding})")
    if transactions is not None:
        payments_file, key = transactions
        report.files.append(f"{payments_file.path} ({payments_file.encoding}"
                            + (f", its \"{key}\" list" if key else "") + ")")
        if isinstance(payments_file.doc, dict):
            other = sorted(k for k in payments_file.doc if k != key)
            if other:
                report.unread.append(f"{payments_file.path.name}'s " + ", ".join(f'"{k}"' for k in other)
                                     + " (not payments: nothing of Diamond Bot holds them)")
    report.unread.extend(found.notes)

def _holder(e: Any) -> str:
    """Who holds a lock, from LockHeld's owner info."""
    owner = e.owner
    argv = owner.get("argv")
    command = shlex.join(argv) if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else "?"
    since = f" since {owner['started_at']}" if owner.get("started_at") else ""
    return f"{Path(e.path).name} is held by pid {owner.get('pid', 'unknown')} ({command}){since}"


