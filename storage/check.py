"""The data directory's stores read without changing anything (`run.py check-data`), and their
damaged journal records set aside (`run.py repair-data`).

A damaged record is one the bot refuses to start with: a line that fails its checksum (a flipped
bit, a bad disk block), or an intact line that is no record this version can apply. The repair
never deletes one: each is written verbatim (base64, and as text where it reads) into a side file
`damaged-<time>.jsonl` in the data directory, and the journal it was in is rewritten without it
(atomically; the original stays beside it as `<journal>.before-repair-<time>`). The report says
what each damaged record held as far as it can be read, and which orders, payments and groups it
touched: the state they are left in (their last intact record) and what is lost with it.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from domain.money import MoneyError, parse_amount, taka
from storage.atomic import atomic_write_bytes, fsync_dir
from domain.records import (
    ChecksRecord,
    GroupRecord,
    HeldRecord,
    MetaRecord,
    OrderRecord,
    PaymentRecord,
    RecordError,
    SeenRecord,
    UserRecord,
    decode,
)
from storage.database import STORE_NAME, Database, DatabaseError
from storage.inbox import STORE_NAME as INBOX_STORE

# The journal's record kinds, as a damaged record's "t" may still show them.
ORDER, PAYMENT, GROUP, SEEN = OrderRecord.KIND, PaymentRecord.KIND, GroupRecord.KIND, SeenRecord.KIND
CHECKS, HELD, META = ChecksRecord.KIND, HeldRecord.KIND, MetaRecord.KIND
from storage.errors import CorruptFile, StorageError
from storage.journal import Damage, JournalContents, Record, encode_record, read_journal
from storage.store import read_layout

INBOX = INBOX_STORE
STORES = (STORE_NAME, INBOX)
SIDE_FILE = "damaged-{stamp}.jsonl"
BACKUP_SUFFIX = ".before-repair-{stamp}"

# What a damaged payload may still show, read field by field when it is no longer JSON.
_TEXT_FIELDS = ("t", "g", "id", "status", "amount", "rate", "userName", "userId", "messageId", "groupName",
                "method", "reference", "group_id", "message_id", "sender", "sender_name", "text", "username", "role")
_NUMBER_FIELDS = ("diamonds", "s")
_HEADER = re.compile(rb"^[0-9a-f]{8} (0|[1-9][0-9]{0,9}) ")


@dataclass(slots=True)
class Damaged:
    """One damaged record: where it is, what could be read of it, and what losing it means."""

    store: str
    path: Path
    generation: int
    damage: Damage
    fields: dict[str, Any]  # what could be read: kind "t", group "g", ids, amounts, …
    decoded: bool  # its payload still reads as JSON (despite a failed checksum, values may be wrong)
    effects: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        d = self.damage
        return f"{self.path.name}, record {d.line} at byte offset {d.offset} ({len(d.raw)} bytes)"


@dataclass(slots=True)
class JournalFile:
    """One journal generation as read: its intact records and what is wrong in it."""

    generation: int
    path: Path
    contents: JournalContents
    keep: list[Record]  # the intact records the store applies (all of them but unappliable ones)
    damaged: list[Damaged]
    torn: bool  # ends in a write cut short by a crash (the newest generation only; the start drops it)


@dataclass(slots=True)
class StoreCheck:
    """One store (snapshot + journal generations) as read, without changing anything."""

    name: str
    directory: Path
    problem: CorruptFile | None = None  # unreadable beyond repair (snapshot, missing generations)
    snapshot_summary: str = ""
    snapshot_data: Any = None
    journals: list[JournalFile] = field(default_factory=list)

    @property
    def damaged(self) -> list[Damaged]:
        return [d for j in self.journals for d in j.damaged]


@dataclass(slots=True)
class DataCheck:
    """Every store of a data directory, and the database the bot would start from."""

    data_dir: Path
    stores: list[StoreCheck]
    database: Database | None  # the orders as the intact records leave them (None if unreadable)

    @property
    def damaged(self) -> list[Damaged]:
        return [d for s in self.stores for d in s.damaged]

    @property
    def problems(self) -> list[CorruptFile]:
        return [s.problem for s in self.stores if s.problem is not None]

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.problems


# -- reading ------------------------------------------------------------------------------------


def check_data(data_dir: str | os.PathLike[str]) -> DataCheck:
    """Read every store of the data directory; changes nothing."""
    data_dir = Path(data_dir)
    orders, db = _check_orders(data_dir)
    inbox = _check_store(data_dir, INBOX)
    for d in inbox.damaged:
        d.effects = _inbox_effects(d, db)
    return DataCheck(data_dir, [orders, inbox], db)


def _check_store(directory: Path, name: str) -> StoreCheck:
    """Read a store's files; damaged records are collected, anything worse becomes `problem`."""
    check = StoreCheck(name, directory)
    try:
        layout = read_layout(directory, name)
    except CorruptFile as e:
        check.problem = e
        return check
    check.snapshot_summary = "" if layout.data is None else f"{layout.snapshot_bytes} bytes"
    newest = layout.current[-1][0] if layout.current else None
    for gen, path in layout.current:
        contents = read_journal(path)
        damaged = [_damaged(name, path, gen, d) for d in contents.damaged]
        torn = bool(contents.torn_bytes)
        if torn and gen != newest:
            # Compaction syncs a generation before starting the next: only the newest may be torn.
            tail = path.read_bytes()[contents.torn_at:]
            lines = len(contents.records) + len(contents.damaged) + 1
            damaged.append(_damaged(name, path, gen, Damage(
                contents.torn_at, lines, tail, "incomplete, but a newer journal generation exists")))
            torn = False
        check.journals.append(JournalFile(gen, path, contents, list(contents.records), damaged, torn))
    check.snapshot_data = layout.data
    return check


def _check_orders(data_dir: Path) -> tuple[StoreCheck, Database | None]:
    """The orders store, and the database its snapshot and intact records make."""
    check = _check_store(data_dir, STORE_NAME)
    if check.problem is not None:
        return check, None
    try:
        db = Database.from_snapshot(check.snapshot_data)
    except DatabaseError as e:
        check.problem = CorruptFile(data_dir / f"{STORE_NAME}.snapshot.json", str(e))
        return check, None
    if check.snapshot_summary:
        check.snapshot_summary = (f"{len(db.groups)} groups, {len(db.order_group)} orders, "
                                  f"{len(db.payments)} payments")
    # Replay as the bot does; a record it cannot apply is damaged like an unreadable one.
    replay: list[tuple[tuple[int, int], dict[str, Any] | None, Damaged | None]] = []
    for journal in check.journals:
        replay.extend(((journal.generation, d.damage.line), None, d) for d in journal.damaged)
        keep: list[Record] = []
        for record in journal.contents.records:
            position = (journal.generation, record.line)
            try:
                value = orjson.loads(record.payload)
                if not isinstance(value, Mapping):
                    raise DatabaseError(f"a JSON {type(value).__name__}, not a record object")
                db.apply(decode(value))
            except (orjson.JSONDecodeError, DatabaseError, RecordError) as e:
                damage = Damage(record.offset, record.line, encode_record(record.payload),
                                f"intact, but it cannot be applied: {e}")
                bad = _damaged(STORE_NAME, journal.path, journal.generation, damage)
                journal.damaged.append(bad)
                replay.append((position, None, bad))
                continue
            keep.append(record)
            replay.append((position, dict(value), None))
        journal.keep = keep
        journal.damaged.sort(key=lambda d: d.damage.offset)
    replay.sort(key=lambda item: item[0])
    _order_effects(replay, db)
    return check, db


def _damaged(store: str, path: Path, gen: int, damage: Damage) -> Damaged:
    fields, decoded = readable(damage.raw)
    return Damaged(store, path, gen, damage, fields, decoded)


def readable(raw: bytes) -> tuple[dict[str, Any], bool]:
    """What can still be read of a damaged line: (fields, whether its payload is still JSON)."""
    m = _HEADER.match(raw)
    payload = raw[m.end():].rstrip(b"\n") if m else raw[raw.find(b"{"):].rstrip(b"\n") if b"{" in raw else raw
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, Mapping):
        return _flatten(value), True
    text = payload.decode("utf-8", errors="replace")
    fields: dict[str, Any] = {}
    for key in _TEXT_FIELDS:
        found = re.search(r'"%s"\s*:\s*"((?:[^"\\]|\\.){0,200})"' % re.escape(key), text)
        if found and key not in fields:
            fields[key] = found.group(1)
    for key in _NUMBER_FIELDS:
        found = re.search(r'"%s"\s*:\s*(-?[0-9]{1,12})\b' % re.escape(key), text)
        if found:
            fields[key] = int(found.group(1))
    return fields, False


def _flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record's kind, group and the fields of its value worth showing, in one flat dict."""
    out: dict[str, Any] = {k: record[k] for k in ("t", "g") if k in record}
    value = record.get("v")
    if isinstance(value, Mapping):
        # Whatever its kind reads as (a flipped bit may have hit it), its ids are worth showing.
        out.update({k: value[k] for k in _TEXT_FIELDS + _NUMBER_FIELDS if k in value and k not in ("t", "g")})
        if record.get("t") not in (ORDER, PAYMENT):
            # (a panel user's password hash is not shown, even in a report of damage)
            out["v"] = {k: v for k, v in value.items() if k != "passwordHash"}
    message = record.get("m")
    if isinstance(message, Mapping):
        out.update({k: message[k] for k in ("group_id", "message_id", "sender", "sender_name", "text")
                    if k in message})
    if "s" in record:
        out["s"] = record["s"]
    return out


# -- what losing a record means -------------------------------------------------------------------


def _order_effects(replay: list[tuple[tuple[int, int], dict[str, Any] | None, Damaged | None]],
                   db: Database) -> None:
    """Fill in `effects` of each damaged orders record, knowing every intact record after it."""
    later_orders: dict[str, tuple[int, int]] = {}  # order id -> position of its last intact record
    later_payments: dict[str, tuple[int, int]] = {}
    later_settings: dict[tuple[str, str], tuple[int, int]] = {}  # (group, key) -> last set
    for position, record, _ in replay:
        if record is None:
            continue
        kind, value, gid = record.get("t"), record.get("v"), str(record.get("g", ""))
        if kind == ORDER and isinstance(value, Mapping) and value.get("id"):
            later_orders[str(value["id"])] = position
        elif kind == PAYMENT and isinstance(value, Mapping) and value.get("id"):
            later_payments[str(value["id"])] = position
        elif kind == GROUP and isinstance(value, Mapping):
            for key in value:
                later_settings[(gid, key)] = position
    for position, _, bad in replay:
        if bad is not None:
            bad.effects = _effects_of(bad, position, db, later_orders, later_payments, later_settings)


def _effects_of(bad: Damaged, position: tuple[int, int], db: Database, later_orders: dict[str, tuple[int, int]],
                later_payments: dict[str, tuple[int, int]],
                later_settings: dict[tuple[str, str], tuple[int, int]]) -> list[str]:
    f = bad.fields
    kind, gid = f.get("t"), str(f.get("g") or "")
    group = _group_label(db, gid)
    if kind == ORDER:
        oid = str(f.get("id") or "")
        if not oid:
            return [f"an order of {group}, but which one cannot be read: compare the group's orders with its chat"]
        if later_orders.get(oid, (-1, -1)) > position:
            return [f"order {oid}: a later intact record holds its whole state, so nothing of it is lost"]
        found = db.find(oid)
        if found is None:
            return [f"order {oid} of {group} is in no intact record: it is lost (what could be read of it is "
                    "above); if it was a real order, ask the reseller to post it again"]
        return [f"order {oid}: kept as its last intact record has it ({_order_state(found[1])}); the change in "
                f"this record{_changed_to(f, found[1])} is lost: check the order and repeat the change if needed"]
    if kind == PAYMENT:
        pid = str(f.get("id") or "")
        if not pid:
            return [f"a payment of {group}, but which one cannot be read: compare the group's payments with "
                    "your bKash/Nagad records"]
        if later_payments.get(pid, (-1, -1)) > position:
            return [f"payment {pid}: a later intact record holds it, so nothing of it is lost"]
        at = db.payment_index.get(pid)
        if at is None:
            return [f"payment {pid} of {group} is in no intact record: it is lost and no longer counts in the "
                    "group's due; record it again in the panel if it was real"]
        return [f"payment {pid}: kept as its last intact record has it ({_payment_state(db.payments[at])}); the "
                "change in this record (a void?) is lost: check it in the panel"]
    if kind == GROUP:
        value = f.get("v") if isinstance(f.get("v"), Mapping) else None
        if value is None:
            return [f"a settings change of {group} that cannot be read; it keeps its earlier settings "
                    f"({_settings(db, gid)}): check them on the Groups page"]
        lost = {k: v for k, v in value.items() if later_settings.get((gid, k), (-1, -1)) < position}
        if not lost:
            return [f"settings of {group}: later intact records set every value again, so nothing is lost"]
        shown = ", ".join(f"{k} = {v!r}" for k, v in lost.items())
        return [f"settings of {group}: this change is lost ({shown}); it keeps {_settings(db, gid)}: check them "
                "on the Groups page (a lost nextSeq is harmless: order ids continue after the highest)"]
    if kind == SEEN:
        return [f"message ids {group} had handled: if one of these messages is replayed it may be taken again, "
                "so look for a duplicate order in the group after the start"]
    if kind == CHECKS:
        return [f"reconciliation check counts of {group}: nothing to do"]
    if kind == HELD:
        return [f"an order the duplicate guard held in {group} (waiting for 'yes'): the hold is lost; the "
                "reseller may have to order again"]
    if kind == META:
        return ["the bot's start counter: nothing to do"]
    if kind == UserRecord.KIND:
        name = f.get("username") if isinstance(f.get("username"), str) else "?"
        return [f"a change to panel user {name}: the Users page shows the users as the intact records leave "
                "them; make the change again there if it is missing"]
    ids = sorted(set(re.findall(r'"id"\s*:\s*"([A-Z]{1,3}[0-9]{1,9})"', bad.damage.raw.decode("utf-8", "replace"))))
    hint = f" It mentions {', '.join(ids)}: check {'them' if len(ids) > 1 else 'it'} in the panel." if ids else ""
    return [f"what kind of record it was cannot be read.{hint}"]


def _inbox_effects(bad: Damaged, db: Database | None) -> list[str]:
    f = bad.fields
    kind = f.get("t")
    if kind == "done":
        return ["marks of inbound messages as handled: those messages are offered to their groups again at "
                "start, which recognise the ones they already took"]
    message_id = str(f.get("message_id") or "")
    if kind == "in" or message_id:
        if not message_id:
            return ["an inbound message, but which one cannot be read: the chat's history replay at start may "
                    "bring it back"]
        order = next((oid for _, e in (db.all_entries() if db else ()) if e.get("messageId") == message_id
                      for oid in [str(e.get("id"))]), None)
        if order:
            return [f"inbound message {message_id}: it is order {order} already, nothing is lost"]
        return [f"inbound message {message_id} ({str(f.get('text', ''))[:40]!r}) is in no order: if it was an "
                "order, the chat's history replay at start may bring it back, or ask the reseller to post it again"]
    return ["what kind of inbox record it was cannot be read: the chat's history replay at start may bring "
            "back a message it held"]


def _group_label(db: Database, gid: str) -> str:
    if not gid:
        return "a group that cannot be read"
    image = db.groups.get(gid)
    name = str(image.settings.get("groupName") or "") if image else ""
    code = str(image.settings.get("code") or "") if image else ""
    return f"group {code + ' ' if code else ''}{name + ' ' if name else ''}({gid})"


def _money(value: Any) -> str:
    try:
        return "৳" + taka(parse_amount(str(value)))
    except (MoneyError, ArithmeticError, ValueError):
        return str(value)


def _order_state(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('status')}, {entry.get('diamonds')} diamonds, {_money(entry.get('amount'))}"


def _changed_to(fields: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    if fields.get("status") and fields.get("status") != entry.get("status"):
        return f" (it read {fields['status']})"
    return ""


def _payment_state(payment: Mapping[str, Any]) -> str:
    void = ", void" if payment.get("voidedAt") else ""
    return f"{_money(payment.get('amount'))} {payment.get('method', '')} {payment.get('reference', '')}".strip() + void


def _settings(db: Database, gid: str) -> str:
    image = db.groups.get(gid)
    if image is None:
        return "no settings at all"
    s = image.settings
    return f"rate {s.get('rate')}, enabled {s.get('enabled')}, due limit {s.get('dueLimit')}"


# -- setting damaged records aside ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Repair:
    """What repair_data did."""

    side_file: Path | None
    rewritten: list[tuple[Path, Path]]  # (journal, the original kept as)
    moved: list[Damaged]


class RepairRefused(StorageError):
    """Nothing was changed: the damage is not of a kind a repair can set aside."""


def repair_data(check: DataCheck, now: float) -> Repair:
    """Move every damaged record of `check` into a side file and rewrite its journal without it.

    The caller holds the bot's locks and made `check` under them. Refuses (changing nothing) when
    a store is unreadable beyond single records (a snapshot, a missing generation)."""
    if check.problems:
        raise RepairRefused("; ".join(str(p) for p in check.problems))
    if check.ok:
        return Repair(None, [], [])
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d-%H%M%S")
    side = _unused(check.data_dir / SIDE_FILE.format(stamp=stamp))
    lines = [orjson.dumps(_side_record(d, now)) + b"\n" for d in check.damaged]
    # Torn tails go along too: never acknowledged, but kept rather than dropped unseen.
    for store in check.stores:
        for journal in store.journals:
            if journal.torn:
                tail = journal.path.read_bytes()[journal.contents.torn_at:]
                torn = Damaged(store.name, journal.path, journal.generation,
                               Damage(journal.contents.torn_at, 0, tail, "a write cut short by a crash"), {}, False)
                lines.append(orjson.dumps(_side_record(torn, now)) + b"\n")
    # First the side file, durably: from then on no byte exists only in the journal being rewritten.
    atomic_write_bytes(side, b"".join(lines), mode=0o600)
    rewritten: list[tuple[Path, Path]] = []
    for store in check.stores:
        for journal in store.journals:
            if not journal.damaged and not journal.torn:
                continue
            data = journal.path.read_bytes()
            if len(data) != journal.contents.size:
                raise StorageError(f"{journal.path} changed while it was being repaired; is a bot running?")
            backup = _unused(journal.path.with_name(journal.path.name + BACKUP_SUFFIX.format(stamp=stamp)))
            os.link(journal.path, backup)  # the original, kept as it was
            fsync_dir(journal.path.parent)
            atomic_write_bytes(journal.path, b"".join(data[r.offset:r.end] for r in journal.keep), mode=0o600)
            rewritten.append((journal.path, backup))
    return Repair(side, rewritten, check.damaged)


def _side_record(d: Damaged, now: float) -> dict[str, Any]:
    return {
        "set_aside_at": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
        "store": d.store, "file": d.path.name, "byte_offset": d.damage.offset, "record": d.damage.line,
        "reason": d.damage.reason, "readable": d.fields, "effects": d.effects,
        "raw_base64": base64.b64encode(d.damage.raw).decode("ascii"),
        "raw_text": d.damage.raw.decode("utf-8", errors="replace"),
    }


def _unused(path: Path) -> Path:
    """`path`, or `path` with -2, -3 … before its suffix if it exists."""
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}") if path.suffix == ".jsonl" \
            else path.with_name(f"{path.name}-{n}")
        n += 1
    return candidate


# -- the report -------------------------------------------------------------------------------------


def describe(d: Damaged) -> str:
    """What a damaged record held, as far as it can be read."""
    f = d.fields
    if not f:
        return "nothing readable"
    kind = {ORDER: "an order", PAYMENT: "a payment", GROUP: "group settings", SEEN: "handled message ids",
            CHECKS: "check counts", HELD: "a held order", META: "the start counter", "in": "an inbound message",
            "done": "inbox entries handled"}.get(str(f.get("t")), f"a record of kind {f['t']!r}" if "t" in f
                                                  else "a record of unknown kind")
    parts = [f"{k} {f[k]}" for k in ("id", "status", "diamonds", "amount", "rate", "userName", "userId", "messageId",
                                     "method", "reference", "message_id", "sender_name", "sender", "text")
             if k in f and f[k] not in (None, "")]
    if "v" in f and isinstance(f["v"], Mapping):
        parts.append(", ".join(f"{k} = {v!r}" for k, v in list(f["v"].items())[:8]))
    group = f.get("g") or f.get("group_id")
    text = kind + (f" in group {group}" if group else "") + (": " + ", ".join(str(p) for p in parts) if parts else "")
    if d.decoded and not d.damage.reason.startswith("intact"):
        text += " (still reads as JSON, but its checksum fails: a value may be wrong)"
    return text


def format_stores(check: DataCheck) -> Iterator[str]:
    """check-data's lines for the stores' files."""
    for store in check.stores:
        if store.problem is not None:
            yield f"  {store.name}: CANNOT BE READ: {store.problem}"
            continue
        if store.snapshot_summary:
            yield f"  {store.name}.snapshot.json: ok ({store.snapshot_summary})"
        for j in store.journals:
            total = len(j.keep) + len(j.damaged)
            state = f"DAMAGED: {len(j.damaged)} of {total} records" if j.damaged else f"ok ({total} records)"
            if j.torn:
                state += (f"; ends in {j.contents.torn_bytes} bytes of a write cut short by a crash (never "
                          "acknowledged; the next start drops them)")
            yield f"  {j.path.name}: {state}"
        if not store.journals and not store.snapshot_summary:
            yield f"  {store.name}: no files yet"


def format_damaged(d: Damaged) -> Iterator[str]:
    yield f"  {d.where}: {d.damage.reason}"
    yield f"    held: {describe(d)}"
    for effect in d.effects:
        yield f"    -> {effect}"
