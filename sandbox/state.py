"""The sandbox's chat world (groups, messages, the bot's cursor) and the event log it lives in.

Pure and synchronous: the server decides when to write and when to apply. The data file is an
append-only JSON-lines log; each line is `{"c": "<crc32 hex>", "r": <record>}` so a torn or
flipped line is told apart from a valid one, and the state is rebuilt by replaying it.
"""

from __future__ import annotations

import bisect
import dataclasses
import fcntl
import os
import re
import secrets
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import orjson

BOT_PHONE = "8801000000000@s.whatsapp.net"
BOT_LID = "100000000000001@lid"
BOT_NAME = "Diamond Bot"
BOT_IDS = frozenset({BOT_PHONE, BOT_LID})

MAX_TEXT = 4096
MAX_GROUP_NAME = 100  # WhatsApp's limit for a group subject
MAX_SENDER_NAME = 100

GROUP_ID_RE = re.compile(r"120363\d{12}@g\.us")
MESSAGE_ID_RE = re.compile(r"[0-9A-F]{6,64}")
LID_RE = re.compile(r"\d{5,20}@lid")
PHONE_RE = re.compile(r"\d{5,20}@s\.whatsapp\.net")

FORMAT_VERSION = 1
_HEADER = {"type": "sandbox", "version": FORMAT_VERSION}


def valid_group_name(name: str) -> bool:
    """A group subject as WhatsApp takes it: not blank, at most MAX_GROUP_NAME characters."""
    return bool(name.strip()) and len(name) <= MAX_GROUP_NAME and name == name.strip()


def is_user_id(value: str) -> bool:
    """Whether `value` is a WhatsApp user id in LID or phone form."""
    return bool(LID_RE.fullmatch(value) or PHONE_RE.fullmatch(value))


def other_form(a: str, b: str) -> bool:
    """Whether `a` and `b` are one LID and one phone id (a sender and its alternative)."""
    return bool(LID_RE.fullmatch(a) and PHONE_RE.fullmatch(b)) or bool(
        PHONE_RE.fullmatch(a) and LID_RE.fullmatch(b)
    )


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    bot_member: bool = True  # whether the bot's number is in the group (it is in those it creates)

    def to_json(self) -> dict[str, Any]:
        """The API form."""
        return {"id": self.id, "name": self.name, "bot_member": self.bot_member}

    def info(self) -> dict[str, Any]:
        """What the bot is told of a group: its id and name."""
        return {"id": self.id, "name": self.name}


def _wire(m: Message | Change, quoted_id: str) -> dict[str, Any]:
    """The fields a message and a change share on the wire and in the API."""
    return {"id": m.id, "sender": m.sender, "sender_alt": m.sender_alt, "sender_name": m.sender_name,
            "text": m.text, "timestamp": m.timestamp, "from_bot": m.from_bot, "quoted_id": quoted_id,
            "seq": m.seq}


@dataclass(frozen=True, slots=True)
class Message:
    group_id: str
    seq: int  # global, increasing across all groups: the bot's ack cursor counts in it
    id: str
    timestamp: int  # seconds, as WhatsApp gives them
    sender: str
    sender_alt: str
    sender_name: str
    text: str
    from_bot: bool
    quoted_id: str
    # What happened to it later (history shows it; the offline queue keeps it as first posted).
    edited: bool = False
    deleted: bool = False  # "delete for everyone": its text is gone
    # Whether the bot's number was in the group when it was posted: only then did its device
    # get it (live or offline) and only then is it in the bot's history. Derived when applied.
    to_bot: bool = True

    def to_json(self) -> dict[str, Any]:
        """The API form (the group is implied by the URL); `edited`/`deleted` only when true,
        `to_bot` only when false (posted while the bot was not in the group)."""
        data = _wire(self, self.quoted_id)
        if self.edited:
            data["edited"] = True
        if self.deleted:
            data["deleted"] = True
        if not self.to_bot:
            data["to_bot"] = False
        return data


EDIT = "edit"
REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class Change:
    """An edit or a "delete for everyone" of an earlier message. Like on WhatsApp it is a message
    of its own (own id, own seq, the time of the change) that names the message it changes; the
    sender is the changed message's sender."""

    kind: str  # EDIT or REVOKE
    group_id: str
    seq: int
    id: str
    target: str  # the id of the message edited or deleted
    timestamp: int
    sender: str
    sender_alt: str
    sender_name: str
    text: str  # an edit's new text; "" for a delete
    from_bot: bool

    def to_json(self) -> dict[str, Any]:
        """What the bot receives (in a "message" frame): a message that `edits` or `revokes` another."""
        return {**_wire(self, ""), ("edits" if self.kind == EDIT else "revokes"): self.target}


@dataclass(frozen=True, slots=True)
class GroupCreated:
    group: Group


@dataclass(frozen=True, slots=True)
class MessagePosted:
    message: Message


@dataclass(frozen=True, slots=True)
class MessageChanged:
    change: Change


@dataclass(frozen=True, slots=True)
class GroupRenamed:
    group_id: str
    name: str


@dataclass(frozen=True, slots=True)
class BotMembership:
    """The bot's number was added to a group (member) or removed from it."""

    group_id: str
    member: bool


@dataclass(frozen=True, slots=True)
class BotAcked:
    seq: int


Event = Union[GroupCreated, GroupRenamed, BotMembership, MessagePosted, MessageChanged, BotAcked]
# What the bot is sent: new messages and changes of earlier ones, in seq order.
Inbound = Union[Message, Change]


class InvalidEvent(ValueError):
    """An event that does not fit the state it is applied to."""


class SandboxState:
    """Groups, messages and the bot's acknowledged cursor; changed only through `apply`."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self._messages: dict[str, list[Message]] = {}
        self._by_id: dict[str, Message] = {}
        # Ids handed out but not yet applied: two writes in one group commit must not collide.
        self._taken: set[str] = set()
        self._change_ids: set[str] = set()
        self._inbound: list[Inbound] = []  # not from the bot, in seq order: the offline queue
        self._inbound_seqs: list[int] = []
        self.last_seq = 0
        self._next_seq = 1
        self.cursor = 0  # highest seq the bot acknowledged (cumulative)

    # -- reads -----------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        return len(self._by_id)

    def message(self, message_id: str) -> Message | None:
        """The applied message with this id, if any."""
        return self._by_id.get(message_id)

    def recent(self, group_id: str, limit: int) -> list[Message]:
        """The last `limit` messages of a group, oldest first."""
        return self._messages.get(group_id, [])[-limit:] if limit > 0 else []

    def recent_for_bot(self, group_id: str, limit: int) -> list[Message]:
        """The bot's own history of a group: the last `limit` messages posted while it was in
        it, oldest first (what its device received; nothing of the time it was not a member)."""
        found: list[Message] = []
        for message in reversed(self._messages.get(group_id, [])):
            if len(found) >= limit:
                break
            if message.to_bot:
                found.append(message)
        return found[::-1]

    def bot_groups(self) -> list[Group]:
        """The groups the bot's number is in, in creation order."""
        return [g for g in self.groups.values() if g.bot_member]

    def reaches_bot(self, item: Inbound) -> bool:
        """Whether the bot's device gets `item` (not its own; its number is in the group now)."""
        group = self.groups.get(item.group_id)
        return not item.from_bot and group is not None and group.bot_member

    def inbound_after(self, seq: int) -> list[Inbound]:
        """Messages and changes not from the bot with a seq above `seq`, in order."""
        return self._inbound[bisect.bisect_right(self._inbound_seqs, seq) :]

    def pending_for_bot(self) -> int:
        """How many messages (and changes) the bot has not acknowledged."""
        return len(self._inbound_seqs) - bisect.bisect_right(self._inbound_seqs, self.cursor)

    # -- allocation (before the write) -----------------------------------------------------

    def new_group_id(self) -> str:
        """A fresh group id in WhatsApp's shape."""
        while True:
            gid = "120363" + "".join(secrets.choice("0123456789") for _ in range(12)) + "@g.us"
            if gid not in self.groups and gid not in self._taken:
                self._taken.add(gid)
                return gid

    def new_message_id(self) -> str:
        """A fresh message id in the shape WhatsApp Web uses."""
        while True:
            mid = "3EB0" + secrets.token_hex(9).upper()
            if mid not in self._by_id and mid not in self._change_ids and mid not in self._taken:
                self._taken.add(mid)
                return mid

    def allocate_seq(self) -> int:
        """The next seq; a failed write leaves a gap, which is harmless (seqs only increase)."""
        seq = self._next_seq
        self._next_seq += 1
        return seq

    # -- the only writer -------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Apply one durable event; raises InvalidEvent and changes nothing if it does not fit."""
        if isinstance(event, GroupCreated):
            self._apply_group(event.group)
        elif isinstance(event, GroupRenamed):
            group = self._known(event.group_id)
            if not valid_group_name(event.name):
                raise InvalidEvent(f"bad name for group {event.group_id}: {event.name!r}")
            self.groups[group.id] = dataclasses.replace(group, name=event.name)
        elif isinstance(event, BotMembership):
            group = self._known(event.group_id)
            if group.bot_member == event.member:
                raise InvalidEvent(f"the bot is {'already' if event.member else 'not'} in group {group.id}")
            self.groups[group.id] = dataclasses.replace(group, bot_member=event.member)
        elif isinstance(event, MessagePosted):
            self._apply_message(event.message)
        elif isinstance(event, MessageChanged):
            self._apply_change(event.change)
        elif isinstance(event, BotAcked):
            if event.seq < 0 or event.seq > self.last_seq:
                raise InvalidEvent(f"ack of seq {event.seq} beyond the last message ({self.last_seq})")
            self.cursor = max(self.cursor, event.seq)
        else:  # pragma: no cover - the Union is closed
            raise InvalidEvent(f"unknown event {event!r}")

    def _known(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            raise InvalidEvent(f"unknown group {group_id}")
        return group

    def _apply_group(self, group: Group) -> None:
        if not GROUP_ID_RE.fullmatch(group.id):
            raise InvalidEvent(f"bad group id {group.id!r}")
        if not group.bot_member:
            raise InvalidEvent(f"group {group.id} created without the bot")
        if group.id in self.groups:
            raise InvalidEvent(f"group {group.id} created twice")
        self.groups[group.id] = group
        self._messages[group.id] = []
        self._taken.discard(group.id)

    def _check_new(self, what: str, item: Inbound) -> None:
        """The rules every new message or change obeys: a known group, the next seq, a fresh id."""
        if item.group_id not in self.groups:
            raise InvalidEvent(f"{what} {item.id} in unknown group {item.group_id}")
        if item.seq <= self.last_seq:
            raise InvalidEvent(f"{what} {item.id} has seq {item.seq}, not above {self.last_seq}")
        if item.id in self._by_id or item.id in self._change_ids or not MESSAGE_ID_RE.fullmatch(item.id):
            raise InvalidEvent(f"duplicate or malformed message id {item.id!r}")

    def _appended(self, item: Inbound) -> None:
        """An applied message or change takes its seq; one the bot's device gets waits for it."""
        self._taken.discard(item.id)
        if self.reaches_bot(item):
            self._inbound.append(item)
            self._inbound_seqs.append(item.seq)
        self.last_seq = item.seq
        self._next_seq = max(self._next_seq, item.seq + 1)

    def _apply_message(self, m: Message) -> None:
        self._check_new("message", m)
        if m.quoted_id:
            quoted = self._by_id.get(m.quoted_id)
            if quoted is None or quoted.group_id != m.group_id:
                raise InvalidEvent(f"message {m.id} quotes {m.quoted_id}, not a message of its group")
        m = dataclasses.replace(m, to_bot=self.groups[m.group_id].bot_member)
        self._messages[m.group_id].append(m)
        self._by_id[m.id] = m
        self._appended(m)

    def check_change(self, c: Change) -> Message:
        """The message `c` changes, if `c` may change it; raises InvalidEvent. The rules that hold
        whenever the change is applied (the time limits are the server's, checked at request time)."""
        target = self._by_id.get(c.target)
        if target is None or target.group_id != c.group_id:
            raise InvalidEvent(f"change {c.id} of {c.target}, not a message of group {c.group_id}")
        if target.deleted:
            raise InvalidEvent(f"change {c.id} of {c.target}, which was deleted")
        if (c.sender, c.sender_alt, c.from_bot) != (target.sender, target.sender_alt, target.from_bot):
            raise InvalidEvent(f"change {c.id} of {c.target} by someone other than its sender")
        if c.kind == EDIT:
            if target.from_bot or not c.text:
                raise InvalidEvent(f"edit {c.id} of a bot message or without text")
        elif c.kind != REVOKE or c.text:
            raise InvalidEvent(f"change {c.id} of unknown kind {c.kind!r} or a delete with text")
        return target

    def _apply_change(self, c: Change) -> None:
        self._check_new("change", c)
        target = self.check_change(c)
        if c.kind == EDIT:
            changed = dataclasses.replace(target, text=c.text, edited=True)
        else:
            changed = dataclasses.replace(target, text="", edited=False, deleted=True)  # as WhatsApp shows it
        messages = self._messages[c.group_id]
        index = bisect.bisect_left(messages, target.seq, key=lambda m: m.seq)
        messages[index] = changed
        self._by_id[target.id] = changed
        self._change_ids.add(c.id)
        self._appended(c)


# -- records ---------------------------------------------------------------------------------


def event_record(event: Event) -> dict[str, Any]:
    """The JSON record of an event."""
    if isinstance(event, GroupCreated):
        return {"type": "group", "id": event.group.id, "name": event.group.name}
    if isinstance(event, GroupRenamed):
        return {"type": "rename", "id": event.group_id, "name": event.name}
    if isinstance(event, BotMembership):
        return {"type": "membership", "id": event.group_id, "member": event.member}
    if isinstance(event, MessagePosted):
        m = event.message
        return {"type": "message", "group_id": m.group_id, **m.to_json()}
    if isinstance(event, MessageChanged):
        c = event.change
        return {
            "type": c.kind, "group_id": c.group_id, "seq": c.seq, "id": c.id, "target": c.target,
            "timestamp": c.timestamp, "sender": c.sender, "sender_alt": c.sender_alt,
            "sender_name": c.sender_name, "text": c.text, "from_bot": c.from_bot,
        }
    return {"type": "ack", "seq": event.seq}


def _field(record: dict[str, Any], key: str, kind: type) -> Any:
    value = record.get(key)
    # bool is an int subclass; a flag must not pass as a seq and vice versa.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidEvent(f"field {key!r} should be {kind.__name__}, got {value!r}")
    return value


def record_event(record: Any) -> Event:
    """Parse a JSON record back into an event; raises InvalidEvent."""
    if not isinstance(record, dict):
        raise InvalidEvent("record is not an object")
    kind = record.get("type")
    if kind == "group":
        return GroupCreated(Group(_field(record, "id", str), _field(record, "name", str)))
    if kind == "rename":
        return GroupRenamed(_field(record, "id", str), _field(record, "name", str))
    if kind == "membership":
        return BotMembership(_field(record, "id", str), _field(record, "member", bool))
    if kind == "message":
        return MessagePosted(
            Message(
                group_id=_field(record, "group_id", str),
                seq=_field(record, "seq", int),
                id=_field(record, "id", str),
                timestamp=_field(record, "timestamp", int),
                sender=_field(record, "sender", str),
                sender_alt=_field(record, "sender_alt", str),
                sender_name=_field(record, "sender_name", str),
                text=_field(record, "text", str),
                from_bot=_field(record, "from_bot", bool),
                quoted_id=_field(record, "quoted_id", str),
            )
        )
    if kind in (EDIT, REVOKE):
        return MessageChanged(
            Change(
                kind=kind,
                group_id=_field(record, "group_id", str),
                seq=_field(record, "seq", int),
                id=_field(record, "id", str),
                target=_field(record, "target", str),
                timestamp=_field(record, "timestamp", int),
                sender=_field(record, "sender", str),
                sender_alt=_field(record, "sender_alt", str),
                sender_name=_field(record, "sender_name", str),
                text=_field(record, "text", str),
                from_bot=_field(record, "from_bot", bool),
            )
        )
    if kind == "ack":
        return BotAcked(_field(record, "seq", int))
    raise InvalidEvent(f"unknown record type {kind!r}")


_PREFIX_LEN = len(b'{"c":"00000000","r":')


def encode_line(record: dict[str, Any]) -> bytes:
    """One log line: the record with a CRC-32 of its exact bytes."""
    body = orjson.dumps(record)
    return b'{"c":"%08x","r":' % zlib.crc32(body) + body + b"}\n"


def decode_line(line: bytes) -> Any:
    """The record of one log line (without its newline); raises ValueError if damaged."""
    if len(line) < _PREFIX_LEN + 2 or not line.startswith(b'{"c":"') or line[14:20] != b'","r":':
        raise ValueError("not a log line")
    if not line.endswith(b"}"):
        raise ValueError("line is cut short")
    body = line[_PREFIX_LEN:-1]
    try:
        crc = int(line[6:14], 16)
    except ValueError:
        raise ValueError("bad checksum field") from None
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    return orjson.loads(body)


_HEADER_LINE = encode_line(_HEADER)


# -- the data file ---------------------------------------------------------------------------


class DataFileError(Exception):
    """The data file cannot be used; the message says which file and what to do."""


class DataFile:
    """The append-only event log: loaded once, then appended to with one fsync per batch."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self.fsyncs = 0  # how many group commits hit the disk (tests check batching)
        self.torn_tail: tuple[int, Path] | None = None  # bytes dropped at load, and their copy

    def open(self) -> SandboxState:
        """Lock the file, replay it into a new state, and get it ready to append."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            try:
                # Two sandboxes appending to one log would interleave their lines.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataFileError(
                    f"{self.path} is in use by another sandbox; stop it or pass another --data-file"
                ) from None
            state = self._replay(fd)
            if os.fstat(fd).st_size == 0:
                os.write(fd, _HEADER_LINE)
                os.fsync(fd)
            if created:
                _fsync_dir(self.path.parent)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return state

    def append(self, lines: bytes) -> None:
        """Write encoded lines and fsync once; raises OSError (after which the file is done for)."""
        if self._fd is None:
            raise OSError("data file is not open")
        view = memoryview(lines)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.fsyncs += 1

    def close(self) -> None:
        """Release the file and its lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _replay(self, fd: int) -> SandboxState:
        data = _read_all(fd)
        state = SandboxState()
        if not data:
            return state
        if len(data) < len(_HEADER_LINE) and _HEADER_LINE.startswith(data):
            # Killed while writing the header of a new file: nothing was ever stored. (The
            # whole header alone is a sandbox without messages, read like any other file.)
            self._cut(fd, data, 0)
            return state
        lines = data.split(b"\n")
        # After the last newline comes either nothing or a line whose write was cut short.
        complete, tail = lines[:-1], lines[-1]
        if not complete:
            raise self._foreign()
        offset = 0
        for number, line in enumerate(complete, start=1):
            last = number == len(complete) and not tail
            try:
                record = decode_line(line)
            except ValueError as exc:
                if last and number > 1:
                    self._cut(fd, data, offset)  # the final write was torn after its newline
                    return state
                raise self._corrupt(number, offset, str(exc)) from None
            if number == 1:
                if record != _HEADER:
                    raise self._foreign()
            else:
                try:
                    state.apply(record_event(record))
                except InvalidEvent as exc:
                    raise self._corrupt(number, offset, str(exc)) from None
            offset += len(line) + 1
        if tail:
            self._cut(fd, data, offset)
        return state

    def _foreign(self) -> DataFileError:
        return DataFileError(
            f"{self.path} is not a sandbox data file (format {FORMAT_VERSION}); "
            "it was left untouched. Pass another --data-file."
        )

    def _corrupt(self, number: int, offset: int, why: str) -> DataFileError:
        return DataFileError(
            f"{self.path} is corrupt at line {number} (byte {offset}): {why}. "
            "It was left untouched. Restore a backup, or move it away to start an empty sandbox."
        )

    def _cut(self, fd: int, data: bytes, keep: int) -> None:
        """Drop a torn tail, keeping a copy beside the file: repair, but never lose bytes."""
        torn = data[keep:]
        side = self.path.with_name(f"{self.path.name}.torn-{time.time_ns()}")
        with open(side, "wb") as f:
            f.write(torn)
            f.flush()
            os.fsync(f.fileno())
        os.ftruncate(fd, keep)
        os.fsync(fd)
        _fsync_dir(self.path.parent)
        self.torn_tail = (len(torn), side)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
