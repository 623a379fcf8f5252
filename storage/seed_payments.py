"""The old bot's payments for `run.py import-json`: database.json's own and those of its payments
file (payment-transactions.json), as payment records.

A payment counts against a group's due, so nothing here is guessed:
* its group is its `groupId`, else the group of the order it names (`orderId`), else the one
  group its user (`userId`/`phone`) ordered in; a payment none of these place is refused;
* it links to the order it names (`orderId` on the record) when exactly one imported order is it;
* its status decides whether it counts: completed/success/approved … count; pending, failed,
  cancelled, refunded … come in void, the status their reason, and count nothing (the old bot did
  not count them either); an unknown status is refused;
* its type: a payment (`payment`, `auto`, `auto-deduction` …) counts; a deposit into a reseller's
  balance (`manual`, `deposit`, `topup` …) comes in void: the old bots kept balances and counted
  against dues only what they took from them, in the auto-deduction entries; an unknown type is
  refused. In database.json the method was sometimes written as the type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from domain.payments import MAX_AMOUNT, Payment
from domain.records import PaymentRecord
from storage.database import Database
from storage.import_report import Report
from storage.seed_files import json_type as _json_type
from storage.seed_values import (IMPORTER, Fields, digest, exact_amount, method_of, read_time, seed_id, show,
                                 text_field, text_of, user_keys, writable)

# importedId of a payment from the payments file ("txn:<id>"): its ids restart at 1 and would
# collide with those of database.json's payments ("seed:<id>").
TXN_PREFIX = "txn:"
_PAY_GROUP = ("groupId", "group", "gid", "group_id")
_PAY_ORDER = ("orderId", "order_id", "entryId", "entry_id")
_PAY_USER = ("userId", "phone", "user", "userPhone", "sender", "from")
_PAY_USER_NAME = ("userName", "name", "senderName")
_PAY_REFERENCE = ("reference", "trxId", "trxID", "trxid", "txnId", "transactionId", "ref")
_PAY_NOTE = ("note", "notes", "remark", "comment")
_PAY_TIME = ("date", "at", "createdAt", "created_at", "timestamp", "time", "paidAt")
_PAY_BY = ("by", "addedBy", "admin", "recordedBy", "approvedBy")
_PAY_METHOD = ("method", "via", "paymentMethod")
_PAY_AMOUNT = ("amount", "paid", "value")
_PAY_STATUS = ("status", "state", "paymentStatus")
_PAY_KIND = ("type", "kind")
# A payment's status (letters only): counted, or kept void (it never reached the shop, or went back).
_PAY_COUNTED = frozenset(("completed", "complete", "success", "successful", "succeeded", "approved", "accepted",
                          "confirmed", "done", "paid", "received", "verified"))
_PAY_NOT_COUNTED = frozenset(("pending", "processing", "waiting", "unpaid", "unverified", "submitted", "inprogress",
                              "failed", "failure", "error", "declined", "rejected", "cancelled", "canceled",
                              "refunded", "refund", "reversed", "expired", "void", "voided"))
# A payment's type (letters only): one that lowers a group's due, or a deposit into a reseller's
# balance, which the old bots counted only through the auto-deduction entries it paid for.
_KIND_PAYMENT = frozenset(("payment", "pay", "paid", "auto", "autodeduction", "deduction", "due", "duepayment"))
_KIND_DEPOSIT = frozenset(("manual", "deposit", "topup", "recharge", "balance", "addbalance"))


@dataclass(slots=True)
class GroupIndex:
    """What payments are placed by, gathered while the groups were read."""

    known: set[str] = field(default_factory=set)  # the bot's groups and the file's readable ones
    order_groups: dict[str, set[str]] = field(default_factory=dict)  # the seed's order id -> groups with it
    orders_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (group, seed's id) -> our ids
    user_groups: dict[str, set[str]] = field(default_factory=dict)  # user_keys() -> groups they ordered in


def payments_in(seed: Mapping[str, Any]) -> list[tuple[str, int, Any]]:
    """(group id from the container or "", position, raw payment) for every payment in database.json."""
    raw = seed.get("payments")
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
    for gid, g in seed["groups"].items():
        if isinstance(g, Mapping) and isinstance(g.get("payments"), list):
            out.extend((gid, i, p) for i, p in enumerate(g["payments"]))
    return out



class PaymentImport:
    """Decides the payment records of one import, after its groups (touches no file)."""

    def __init__(self, db: Database, seed: Mapping[str, Any], transactions: list[Any] | None, index: GroupIndex,
                 report: Report, *, tz: tzinfo, now: float) -> None:
        self.db, self.seed, self.transactions, self.index = db, seed, transactions, index
        self.report, self.tz, self.now = report, tz, now
        self.already = {str(p.get("importedId")) for p in db.payments
                        if isinstance(p, Mapping) and p.get("importedId")}
        numbers = [int(m.group(1)) for p in db.payments if isinstance(p, Mapping)
                   and (m := re.fullmatch(r"P([0-9]{1,18})", str(p.get("id") or "")))]
        self.next_payment = max(numbers, default=0) + 1

    def records(self, tick: Callable[[int], None]) -> list[dict[str, Any]]:
        """The payment records to append, database.json's first; `tick(1)` per payment read."""
        raw = self.seed.get("payments")
        if raw is not None and not isinstance(raw, (list, dict)):
            self.report.problem("payments", f"a JSON {_json_type(raw)}, not a list: no payments read", "note")
        records = []
        seen: dict[str, str] = {}
        for n, (container_gid, pos, payment) in enumerate(payments_in(self.seed), 1):
            record = self._payment(container_gid, f"payment #{n}", "seed:", payment, seen, needs_status=False)
            if record is not None:
                records.append(record)
            tick(1)
        seen = {}
        for n, payment in enumerate(self.transactions or (), 1):
            record = self._payment("", f"payments file #{n}", TXN_PREFIX, payment, seen, needs_status=True)
            if record is not None:
                records.append(record)
            tick(1)
        return records

    def _payment(self, container_gid: str, position: str, prefix: str, raw: Any, seen: dict[str, str], *,
                 needs_status: bool) -> dict[str, Any] | None:
        """One payment's record, or None (refused, a duplicate, or imported before). `needs_status`:
        the payments file's old bots counted only payments whose status said so."""
        report = self.report
        if not isinstance(raw, Mapping):
            report.payments_refused += 1
            report.problem(position, f"not imported: a JSON {_json_type(raw)} ({show(raw)}), not a payment",
                           "refused")
            return None
        fields = Fields(raw)
        sid = seed_id(fields.get("id"))
        where = position + (f" (id {sid})" if sid else "")
        key = f"{prefix}{sid}" if sid else f"{prefix}noid-{digest(raw)}"
        fingerprint = digest(raw)
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
        if key in self.already:
            report.payments_already += 1
            return None

        # Refused rather than changed: a payment counts against a group's due.
        refusals: list[str] = []
        notes: list[str] = []
        gid, order_id = self._payment_group(fields, container_gid, where, refusals, notes)
        amount_key, raw_amount = fields.first(_PAY_AMOUNT)
        amount, why = (None, "") if raw_amount is None else exact_amount(raw_amount, MAX_AMOUNT)
        if raw_amount is None:
            refusals.append("no amount")
        elif why:
            refusals.append(f"{amount_key} {why}")
        elif amount is not None and amount <= 0:
            refusals.append(f"{amount_key} {show(raw_amount)} is not more than 0")
        at_key, raw_at = fields.first(_PAY_TIME)
        at, issue = read_time(raw_at, self.tz, self.now)
        if issue and issue != "naive":
            refusals.append(f"{at_key} {issue}")
        method, void_reason = self._payment_kind(fields, refusals, notes, needs_status)
        if refusals:
            report.payments_refused += 1
            report.problem(where, "not imported: " + "; ".join(refusals), "refused")
            return None
        assert amount is not None and gid
        by_key, raw_by = fields.first(_PAY_BY)
        if text_of(raw_by):
            notes.append(f"recorded by {text_of(raw_by)} in the seed")
        elif raw_by is not None:
            fields.unread(by_key)
        if issue == "naive":
            report.notes[f"times without an offset read as {self.tz}"] += 1
        elif at is None:
            report.problem(where, "no date: imported without one", "note")
        note = text_field(fields, _PAY_NOTE)
        reference = text_field(fields, _PAY_REFERENCE)
        rest = fields.rest()
        payment = Payment(
            id=f"P{self.next_payment}",
            group_id=gid,
            amount=amount,
            method=method,
            reference=reference,
            note="; ".join([note] * bool(note) + notes),
            at=at or 0.0,
            by=IMPORTER,
            imported_id=key,
            order_id=order_id,
            voided_at=self.now if void_reason else None,
            voided_by=IMPORTER if void_reason else "",
            void_reason=void_reason,
            imported_fields=rest or None,
        )
        record = PaymentRecord.of(payment).encode()
        if not writable(record):
            report.payments_refused += 1
            report.problem(where, "not imported: it holds text that is not valid Unicode (a lone surrogate)",
                           "refused")
            return None
        self.report.keep("payments", rest)
        self.next_payment += 1
        report.payments_imported += 1
        if void_reason:
            report.payments_void += 1
            report.problem(f"{where} → {payment.id}", f"imported void (not counted): {void_reason}", "note")
        return record

    def _payment_group(self, fields: Fields, container_gid: str, where: str, refusals: list[str],
                       notes: list[str]) -> tuple[str, str]:
        """(the group a payment lowers the due of, our id of the order it names or ""): its groupId,
        else the group of its orderId, else the one group its user ordered in."""
        group_key, raw_group = fields.first(_PAY_GROUP)
        gid = container_gid or text_of(raw_group)
        order_key, raw_order = fields.first(_PAY_ORDER)
        order_ref = seed_id(raw_order)
        user_key, raw_user = fields.first(_PAY_USER)
        user = text_of(raw_user)
        name = text_field(fields, _PAY_USER_NAME)
        if user or name:
            notes.append("paid by " + (f"{name} ({user})" if name and user else name or user))
        elif raw_user is not None:
            fields.unread(user_key)
        known = self.index.known
        if gid and gid not in known:
            refusals.append(f"group {gid} is neither a readable group of the file nor one of the bot's, so it "
                            "would lower no group's due")
            return "", ""
        order_groups = self.index.order_groups.get(order_ref, set()) if order_ref else set()
        if order_ref and gid and order_groups and gid not in order_groups:
            refusals.append(f"{group_key or 'its group'} is {gid} but {order_key} {order_ref} is an order of "
                            f"{', '.join(sorted(order_groups))}: which group's due it lowers cannot be told")
            return "", ""
        if not gid and len(order_groups) == 1:
            gid = next(iter(order_groups))
            self.report.notes["payments placed in the group of the order they name (orderId)"] += 1
        if not gid and user:
            groups = set().union(*(self.index.user_groups.get(k, set()) for k in user_keys(user))) & known
            if len(groups) == 1:
                gid = next(iter(groups))
                self.report.problem(where, f"placed in group {gid}: the only group where {user} ordered", "note")
            elif groups:
                refusals.append(f"{user_key} {user} ordered in {len(groups)} groups ({', '.join(sorted(groups))}): "
                                "which group's due it lowers cannot be told")
            else:
                refusals.append(f"no group id, and {user_key} {user} has no order in any group of the file or the "
                                "bot to place it by")
        elif not gid:
            refusals.append("no group id" + (f", and {order_key} {order_ref} is in no group of the file or the bot"
                                             if order_ref else ", no orderId and no user to place it by"))
        if not gid or not order_ref:
            if raw_order is not None and not order_ref:
                fields.unread(order_key)
            return gid, ""
        ours = self.index.orders_of.get((gid, order_ref), [])
        if len(ours) == 1:
            return gid, ours[0]
        fields.unread(order_key)
        why = (f"names {len(ours)} orders ({', '.join(ours)})" if ours else
               "names no order of that group that came in")
        self.report.problem(where, f"{order_key} {order_ref} {why}: not linked to an order (kept as it was in the "
                                   "payment's imported fields)", "note")
        return gid, ""

    def _payment_kind(self, fields: Fields, refusals: list[str], notes: list[str],
                      needs_status: bool) -> tuple[str, str]:
        """(the method, why the payment is void or ""): from its method, type and status."""
        _, raw_method = fields.first(_PAY_METHOD)
        kind_key, raw_kind = fields.first(_PAY_KIND)
        method = method_of(raw_method)
        if raw_method is not None and method is None:
            notes.append(f"method: {text_of(raw_method) or show(raw_method)}")
        void = ""
        kind = re.sub(r"[^a-z]", "", raw_kind.lower()) if isinstance(raw_kind, str) else None
        kind_method = method_of(raw_kind)
        if raw_kind is None:
            pass
        elif kind_method is not None:  # the seed's database.json wrote the method as "type"
            if method is None and raw_method is None:
                method = kind_method
            elif kind_method != method:
                notes.append(f"{kind_key}: {raw_kind}")
        elif kind in _KIND_PAYMENT:
            notes.append(f"{kind_key}: {raw_kind}")
        elif kind in _KIND_DEPOSIT:
            void = (f"a deposit into the reseller's balance in the old bot ({kind_key} {show(raw_kind)}), not a "
                    "payment of the group's due: the old bot counted only what it took from the balance for dues "
                    "(its auto-deduction entries)")
        else:
            refusals.append(f"{kind_key} {show(raw_kind)} is neither a payment method nor a kind of payment the "
                            "import knows: whether it lowers the due cannot be told")
        status_key, raw_status = fields.first(_PAY_STATUS)
        status = re.sub(r"[^a-z]", "", raw_status.lower()) if isinstance(raw_status, str) else None
        if raw_status is None and needs_status:
            refusals.append("no status: whether the money arrived cannot be told (the old bot counted only "
                            "payments whose status said so)")
        elif raw_status is None:
            pass
        elif status in _PAY_NOT_COUNTED:
            void = void or f"{status_key} {show(raw_status)} in the old bot: not money the shop received"
        elif status not in _PAY_COUNTED:
            refusals.append(f"unknown {status_key} {show(raw_status)}: whether the money arrived cannot be told")
        return method or "other", void
