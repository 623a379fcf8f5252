"""The sandbox's aiohttp app: a WhatsApp-like group chat with a JSON API, a chat page and a bot socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from sandbox.state import (
    BOT_IDS,
    BOT_LID,
    BOT_NAME,
    BOT_PHONE,
    EDIT,
    MAX_GROUP_NAME,
    MAX_SENDER_NAME,
    MAX_TEXT,
    REVOKE,
    BotAcked,
    BotMembership,
    Change,
    DataFile,
    Event,
    Group,
    GroupCreated,
    GroupRenamed,
    Inbound,
    InvalidEvent,
    Message,
    MessageChanged,
    MessagePosted,
    SandboxState,
    encode_line,
    event_record,
    is_user_id,
    other_form,
)

log = logging.getLogger("sandbox")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

STATIC_DIR = Path(__file__).with_name("static")
MAX_BODY = 256 * 1024
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_FAULTS = 1_000_000
LIMIT_RE = re.compile(r"[0-9]{1,7}")
# A bot that stops reading is cut off rather than buffered forever; its cursor brings the rest back.
BOT_QUEUE_MAX = 10_000
BOT_FRAME_MAX = 64 * 1024
# WhatsApp's time limits, counted from the message's own timestamp: a text can be edited for
# 15 minutes; "delete for everyone" is offered for "about 2 days" (2 days and 12 hours since 2022).
EDIT_WINDOW = 15 * 60
REVOKE_WINDOW = 60 * 60 * 60

# Close codes of the bot socket (4000-4999 belong to the application).
CLOSE_REPLACED = 4000  # another bot connection took over, like WhatsApp's "stream replaced"
CLOSE_DISCONNECTED = 4001  # test control
CLOSE_TOO_SLOW = 4002

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class ApiError(Exception):
    """An error answered as `{"error": message}` with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class StoreFailed(Exception):
    """The data file could not be written; nothing more is accepted until a restart."""


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response rendered by orjson."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


# -- durability ------------------------------------------------------------------------------


class Committer:
    """Group commit: events submitted while an fsync runs share the next one; each is applied
    to the state (and announced) only once it is on disk, in submission order."""

    def __init__(
        self, data_file: DataFile, state: SandboxState, on_applied: Callable[[Event], None]
    ) -> None:
        self._file = data_file
        self._state = state
        self._on_applied = on_applied
        self._queue: list[tuple[Event, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # One thread: fsync must not stall the loop, and writes must stay in order.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-fsync")
        self.failure = ""

    def start(self) -> None:
        """Start the writer task on the running loop."""
        self._task = asyncio.create_task(self._run(), name="sandbox-committer")

    async def commit(self, event: Event) -> None:
        """Return once `event` is durable and applied; raises StoreFailed."""
        if self.failure or self._closing:
            raise StoreFailed(self.failure or "the sandbox is shutting down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        self._wake.set()
        await future

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._queue = self._queue, []
            if self.failure:
                self._fail(batch)
                continue
            lines = b"".join(encode_line(event_record(event)) for event, _ in batch)
            try:
                await loop.run_in_executor(self._executor, self._file.append, lines)
            except OSError as exc:
                # No retry after a failed fsync: the page cache may already have dropped the data.
                self.failure = f"writing {self._file.path} failed ({exc}); restart the sandbox"
                log.error("%s", self.failure)
                self._fail(batch)
                continue
            for event, future in batch:
                try:
                    self._state.apply(event)
                except InvalidEvent as exc:  # a bug: handlers validate before submitting
                    self.failure = f"inconsistent event {exc}; restart the sandbox"
                    log.error("%s", self.failure)
                    if not future.done():
                        future.set_exception(StoreFailed(self.failure))
                    continue
                try:
                    self._on_applied(event)
                except Exception:  # the write stands; a broken listener must not stop the writer
                    log.exception("delivering an event to the bot failed")
                if not future.done():
                    future.set_result(None)

    def _fail(self, batch: list[tuple[Event, asyncio.Future[None]]]) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(StoreFailed(self.failure))


# -- the bot's device connection -------------------------------------------------------------


def message_frame(message: Inbound, group_name: str, *, offline: bool) -> dict[str, Any]:
    """What the bot receives for one group message, or for an edit or delete of one (the same
    frame with `edits` or `revokes` naming the changed message)."""
    return {
        "type": "message",
        "offline": offline,
        "group_id": message.group_id,
        "group_name": group_name,
        **message.to_json(),
    }


@dataclass(frozen=True, slots=True)
class GroupNotice:
    """A change of the groups the bot's number is in, as its connected device is told of it
    (WhatsApp's group notifications): added to a group (or created it), a group renamed, removed."""

    event: str  # "joined", "renamed" or "left"
    group: Group

    def frame(self) -> dict[str, Any]:
        return {"type": "group", "event": self.event, "group": self.group.info()}


class BotConnection:
    """One bot session: its socket, the groups and offline queue it was given and the live
    messages and group notices after them."""

    def __init__(self, ws: web.WebSocketResponse, offline: list[Inbound], cursor: int, groups: list[Group]) -> None:
        self.ws = ws
        self._offline = offline
        self._groups = groups
        self._live: asyncio.Queue[Inbound | GroupNotice] = asyncio.Queue(BOT_QUEUE_MAX)
        self.sent_seq = cursor  # acks are clamped to it: nobody acknowledges what it never got

    def push(self, item: Inbound | GroupNotice) -> bool:
        """Queue a live message or group notice; False when the bot is too far behind."""
        try:
            self._live.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def pump(self, state: SandboxState) -> None:
        """Send hello (with the groups the bot is in), the offline queue, offline_done, then live
        messages and group notices until the socket closes."""
        try:
            await self._send({"type": "hello", "bot": {"phone": BOT_PHONE, "lid": BOT_LID, "name": BOT_NAME},
                              "groups": [g.info() for g in self._groups]})
            offline, self._offline = self._offline, []
            for message in offline:
                await self._deliver(message, state, offline=True)
            await self._send({"type": "offline_done", "count": len(offline)})
            while True:
                item = await self._live.get()
                if isinstance(item, GroupNotice):
                    await self._send(item.frame())
                else:
                    await self._deliver(item, state, offline=False)
        except ConnectionError:
            pass  # the socket closed under us; the handler cleans up

    async def _deliver(self, message: Inbound, state: SandboxState, *, offline: bool) -> None:
        # Counted before the await: the bot may ack it before our drain returns.
        self.sent_seq = message.seq
        await self._send(message_frame(message, state.groups[message.group_id].name, offline=offline))

    async def _send(self, frame: dict[str, Any]) -> None:
        if self.ws.closed:
            raise ConnectionResetError("socket closed")
        await self.ws.send_str(orjson.dumps(frame).decode())


class BotHub:
    """The one bot device WhatsApp allows per session: a new connection replaces the old one."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self.current: BotConnection | None = None
        self._acking = 0
        self._closing: set[asyncio.Task[Any]] = set()

    def connect(self, ws: web.WebSocketResponse) -> BotConnection:
        """Make `ws` the bot's connection, with its groups and everything after the durable cursor queued."""
        old = self.current
        # Snapshot and registration happen without an await between them, so every message
        # and group change is either in this snapshot or pushed live later, never both or neither.
        state = self._state
        conn = BotConnection(ws, state.inbound_after(state.cursor), state.cursor, state.bot_groups())
        self.current = conn
        if old is not None:
            self._close(old, CLOSE_REPLACED, "replaced")
        return conn

    def release(self, conn: BotConnection) -> None:
        """Forget `conn` once its socket is gone."""
        if self.current is conn:
            self.current = None

    def disconnect(self, code: int, reason: str) -> bool:
        """Close the bot's connection, if any."""
        conn, self.current = self.current, None
        if conn is None:
            return False
        self._close(conn, code, reason)
        return True

    def on_applied(self, event: Event) -> None:
        """Deliver a newly durable message, edit or delete to the connected bot (not its own,
        nor one of a group it is not in), and tell it of changes of its groups."""
        item: Inbound | GroupNotice
        if isinstance(event, (MessagePosted, MessageChanged)):
            item = event.message if isinstance(event, MessagePosted) else event.change
            if not self._state.reaches_bot(item):
                return
        elif isinstance(event, GroupCreated):
            item = GroupNotice("joined", event.group)  # its creator's number is in a new group
        elif isinstance(event, GroupRenamed):
            group = self._state.groups[event.group_id]
            if not group.bot_member:
                return  # only members hear of a rename
            item = GroupNotice("renamed", group)
        elif isinstance(event, BotMembership):
            item = GroupNotice("joined" if event.member else "left", self._state.groups[event.group_id])
        else:
            return
        if self.current is None:
            return  # the next hello lists the groups; the offline queue holds the messages
        if not self.current.push(item):
            self.disconnect(CLOSE_TOO_SLOW, "too slow; reconnect for the rest")

    def ack_target(self, conn: BotConnection, seq: int) -> int | None:
        """The cursor an ack moves to, or None when it moves nothing."""
        target = min(seq, conn.sent_seq)
        if target <= max(self._state.cursor, self._acking):
            return None
        self._acking = target
        return target

    async def close_all(self) -> None:
        """Close the bot's socket for shutdown and wait for pending closes."""
        self.disconnect(WSCloseCode.GOING_AWAY, "sandbox shutting down")
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _close(self, conn: BotConnection, code: int, reason: str) -> None:
        task = asyncio.create_task(conn.ws.close(code=code, message=reason.encode()))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


# -- test controls ---------------------------------------------------------------------------


@dataclass
class Faults:
    """TEST CONTROL: make the next bot sends fail, to exercise the bot's retry and pause paths."""

    fail_sends: int = 0  # answered 503
    rate_limit_sends: int = 0  # answered 429 (checked first)

    def take(self) -> int | None:
        """The status the next bot send fails with, if any."""
        if self.rate_limit_sends:
            self.rate_limit_sends -= 1
            return 429
        if self.fail_sends:
            self.fail_sends -= 1
            return 503
        return None

    def to_json(self) -> dict[str, int]:
        return {"fail_sends": self.fail_sends, "rate_limit_sends": self.rate_limit_sends}


# -- input -----------------------------------------------------------------------------------


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; raises ApiError(400)."""
    body = await request.read()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object")
    return data


def string_field(
    body: dict[str, Any], key: str, *, max_len: int, required: bool = True, blank: bool = False
) -> str:
    """A string field; absent or null optional fields read as ""."""
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"field {key!r} is required")
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"field {key!r} must be a string")
    if len(value) > max_len:
        raise ApiError(400, f"field {key!r} is longer than {max_len} characters")
    if required and not blank and not value.strip():
        raise ApiError(400, f"field {key!r} must not be empty")
    return value


def user_id(value: str, what: str) -> str:
    """`value` if it is a WhatsApp user id; else a 400 that names `what` ("field 'sender'")."""
    if not is_user_id(value):
        raise ApiError(400, f"{what} must look like '8801712345678@lid' or '…@s.whatsapp.net'")
    return value


def limit_of(request: web.Request) -> int:
    """The `limit` query parameter (default DEFAULT_LIMIT); raises ApiError(400)."""
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    # Not str.isdigit(): it accepts "²", which int() then rejects.
    if not LIMIT_RE.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def int_field(body: dict[str, Any], key: str, *, maximum: int) -> int | None:
    """An optional integer field in 0..maximum."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise ApiError(400, f"field {key!r} must be an integer from 0 to {maximum}")
    return value


# -- the app ---------------------------------------------------------------------------------


class Sandbox:
    """The handlers, over one state, one committer and one bot hub."""

    def __init__(self, data_file: DataFile, state: SandboxState) -> None:
        self.data_file = data_file
        self.state = state
        self.hub = BotHub(state)
        self.faults = Faults()
        self.committer: Committer | None = None
        self.clock: Callable[[], float] = time.time  # tests move it to check the time limits
        self._changing: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._membership = asyncio.Lock()  # a membership change is checked against the one before it

    async def startup(self, app: web.Application) -> None:
        """Start the committer on the app's loop."""
        self.committer = Committer(self.data_file, self.state, self.hub.on_applied)
        self.committer.start()

    async def shutdown(self, app: web.Application) -> None:
        """Close the bot's socket before the server stops accepting."""
        await self.hub.close_all()

    async def cleanup(self, app: web.Application) -> None:
        """Write what is queued and release the data file."""
        if self.committer is not None:
            await self.committer.close()
        self.data_file.close()

    async def commit(self, event: Event) -> None:
        """Make `event` durable; a broken data file answers 503."""
        assert self.committer is not None
        try:
            await self.committer.commit(event)
        except StoreFailed as exc:
            raise ApiError(503, str(exc)) from None

    def group(self, group_id: str) -> Group:
        """The group or a 404."""
        group = self.state.groups.get(group_id)
        if group is None:
            raise ApiError(404, f"unknown group {group_id!r}")
        return group

    def quoted(self, body: dict[str, Any], group: Group) -> str:
        """The optional quoted_id, which must name a message of this group."""
        quoted_id = string_field(body, "quoted_id", max_len=100, required=False)
        if quoted_id:
            quoted = self.state.message(quoted_id)
            if quoted is None or quoted.group_id != group.id:
                raise ApiError(404, f"quoted message {quoted_id!r} is not in group {group.id}")
        return quoted_id

    async def post(
        self, group: Group, sender: str, alt: str, name: str, text: str, quoted_id: str, *, from_bot: bool
    ) -> web.Response:
        """Store one message and answer its id and timestamp."""
        message = Message(
            group_id=group.id,
            seq=self.state.allocate_seq(),
            id=self.state.new_message_id(),
            timestamp=int(self.clock()),
            sender=sender,
            sender_alt=alt,
            sender_name=name,
            text=text,
            from_bot=from_bot,
            quoted_id=quoted_id,
        )
        await self.commit(MessagePosted(message))
        return json_response({"id": message.id, "timestamp": message.timestamp}, 201)

    @contextlib.asynccontextmanager
    async def changing(self, message_id: str) -> AsyncIterator[None]:
        """One change of a message at a time: checked against the state the one before it left
        (an edit racing a delete must not both pass the checks and then fail when applied)."""
        lock, users = self._changing.setdefault(message_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._changing[message_id]

    def changeable(self, group: Group, message_id: str, sender: str, kind: str) -> Message:
        """The message `sender` wants to edit or delete, if allowed now; raises ApiError."""
        target = self.state.message(message_id)
        if target is None or target.group_id != group.id:
            raise ApiError(404, f"message {message_id!r} is not in group {group.id}")
        if sender not in (target.sender, target.sender_alt):
            raise ApiError(403, f"only the sender of message {message_id} can {kind} it")
        if kind == EDIT and target.from_bot:
            raise ApiError(403, "the bot's messages cannot be edited")
        if target.deleted:
            raise ApiError(409, f"message {message_id} was deleted")
        window, limit = (EDIT_WINDOW, "15 minutes") if kind == EDIT else (REVOKE_WINDOW, "about 2 days")
        if self.clock() - target.timestamp > window:
            raise ApiError(409, f"too late: WhatsApp allows to {kind} a message for {limit}")
        return target

    async def change(self, target: Message, kind: str, text: str) -> dict[str, Any]:
        """Store an edit or delete of `target` as its own event; the answer's fields."""
        change = Change(
            kind=kind,
            group_id=target.group_id,
            seq=self.state.allocate_seq(),
            id=self.state.new_message_id(),
            target=target.id,
            timestamp=int(self.clock()),
            sender=target.sender,
            sender_alt=target.sender_alt,
            sender_name=target.sender_name,
            text=text,
            from_bot=target.from_bot,
        )
        try:
            self.state.check_change(change)
        except InvalidEvent as exc:  # a bug: changeable() checks the same and more
            raise ApiError(409, str(exc)) from None
        await self.commit(MessageChanged(change))
        message = self.state.message(target.id)
        assert message is not None
        return {"id": change.id, "timestamp": change.timestamp, "message": message.to_json()}

    # -- public API --

    async def create_group(self, request: web.Request) -> web.Response:
        """POST /api/groups {"name"} → 201 {"id", "name"}."""
        body = await json_object(request)
        name = string_field(body, "name", max_len=MAX_GROUP_NAME).strip()
        group = Group(self.state.new_group_id(), name)
        await self.commit(GroupCreated(group))
        return json_response(group.to_json(), 201)

    async def list_groups(self, request: web.Request) -> web.Response:
        """GET /api/groups → [{"id", "name", "bot_member"}] in creation order."""
        return json_response([g.to_json() for g in self.state.groups.values()])

    async def rename_group(self, request: web.Request) -> web.Response:
        """PATCH /api/groups/{id} {"name"}: a member renames the group → 200 the group. The bot
        is told, if it is in the group."""
        group = self.group(request.match_info["group_id"])
        body = await json_object(request)
        name = string_field(body, "name", max_len=MAX_GROUP_NAME).strip()
        if name != group.name:
            await self.commit(GroupRenamed(group.id, name))
        return json_response(self.group(group.id).to_json())

    async def set_bot_member(self, request: web.Request) -> web.Response:
        """POST /api/groups/{id}/bot {"member": false|true}: an admin removes the bot's number
        from the group or adds it again → 200 the group. The bot is told either way."""
        group_id = request.match_info["group_id"]
        self.group(group_id)
        body = await json_object(request)
        member = body.get("member")
        if not isinstance(member, bool):
            raise ApiError(400, "field 'member' must be true or false")
        async with self._membership:
            if self.group(group_id).bot_member != member:
                await self.commit(BotMembership(group_id, member))
        return json_response(self.group(group_id).to_json())

    async def post_message(self, request: web.Request) -> web.Response:
        """POST /api/groups/{id}/messages: a user writes in the group."""
        group = self.group(request.match_info["group_id"])
        body = await json_object(request)
        sender = user_id(string_field(body, "sender", max_len=64), "field 'sender'")
        alt = string_field(body, "sender_alt", max_len=64, required=False)
        if alt and not other_form(sender, alt):
            raise ApiError(400, "field 'sender_alt' must be the other form of the sender (LID ↔ phone)")
        if sender in BOT_IDS or alt in BOT_IDS:
            raise ApiError(400, "only the bot writes as the bot: use /api/bot/send")
        name = string_field(body, "sender_name", max_len=MAX_SENDER_NAME, blank=True)
        text = string_field(body, "text", max_len=MAX_TEXT)
        quoted_id = self.quoted(body, group)
        return await self.post(group, sender, alt, name, text, quoted_id, from_bot=False)

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH /api/groups/{id}/messages/{message_id} {"sender", "text"}: its sender edits a text
        (not the bot's, within 15 minutes) → 200 {"id", "timestamp", "message"}: the edit's own
        id and time, and the message as history now shows it."""
        group = self.group(request.match_info["group_id"])
        body = await json_object(request)
        sender = user_id(string_field(body, "sender", max_len=64), "field 'sender'")
        text = string_field(body, "text", max_len=MAX_TEXT)
        message_id = request.match_info["message_id"]
        async with self.changing(message_id):
            target = self.changeable(group, message_id, sender, EDIT)
            return json_response(await self.change(target, EDIT, text))

    async def delete_message(self, request: web.Request) -> web.Response:
        """DELETE /api/groups/{id}/messages/{message_id}?sender=…: "delete for everyone" by its
        sender (the bot for its own), within about 2 days → 200 {"id", "timestamp", "message"}."""
        group = self.group(request.match_info["group_id"])
        sender = user_id(request.query.get("sender", ""), "query 'sender'")
        message_id = request.match_info["message_id"]
        async with self.changing(message_id):
            target = self.changeable(group, message_id, sender, REVOKE)
            return json_response(await self.change(target, REVOKE, ""))

    async def list_messages(self, request: web.Request) -> web.Response:
        """GET /api/groups/{id}/messages?limit=N → the last N messages, oldest first."""
        group = self.group(request.match_info["group_id"])
        return json_response([m.to_json() for m in self.state.recent(group.id, limit_of(request))])

    async def status(self, request: web.Request) -> web.Response:
        """GET /api/status."""
        return json_response(
            {
                "bot_connected": self.hub.current is not None,
                "groups": len(self.state.groups),
                "messages": self.state.message_count,
                "pending_for_bot": self.state.pending_for_bot(),
            }
        )

    # -- the bot --

    async def bot_connect(self, request: web.Request) -> web.StreamResponse:
        """GET /api/bot/connect: the bot's device socket (hello, offline queue, offline_done, live)."""
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=BOT_FRAME_MAX)
        if not ws.can_prepare(request).ok:
            raise ApiError(400, "this endpoint is the bot's WebSocket: connect with a WebSocket client")
        await ws.prepare(request)
        conn = self.hub.connect(ws)
        pump = asyncio.create_task(conn.pump(self.state), name="sandbox-bot-pump")
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    error = await self.bot_frame(conn, frame.data)
                elif frame.type == WSMsgType.BINARY:
                    error = "send JSON text frames"
                else:
                    break
                if error and not ws.closed:
                    await ws.send_str(orjson.dumps({"type": "error", "error": error}).decode())
        except ConnectionError:
            pass
        finally:
            self.hub.release(conn)
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await ws.close()
        return ws

    async def bot_frame(self, conn: BotConnection, data: str) -> str:
        """Handle one frame from the bot; returns an error text or ""."""
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            return "frame must be JSON"
        if not isinstance(frame, dict) or frame.get("type") != "ack":
            return 'unknown frame; the bot sends {"type": "ack", "seq": N}'
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            return "ack seq must be a non-negative integer"
        target = self.hub.ack_target(conn, seq)
        if target is not None:
            try:
                await self.commit(BotAcked(target))
            except ApiError as exc:
                return exc.message
        return ""

    async def bot_send(self, request: web.Request) -> web.Response:
        """POST /api/bot/send {"group_id", "text", "quoted_id"?}: the bot writes in a group."""
        body = await json_object(request)
        group_id = string_field(body, "group_id", max_len=64)
        group = self.group(group_id)
        text = string_field(body, "text", max_len=MAX_TEXT)
        quoted_id = self.quoted(body, group)
        if not group.bot_member:
            raise ApiError(403, f"the bot is not in group {group.id}: WhatsApp refuses to send there")
        fault = self.faults.take()
        if fault == 429:
            response = json_response({"error": "rate-overlimit (test control)"}, 429)
            response.headers["Retry-After"] = "1"
            return response
        if fault == 503:
            return json_response({"error": "service unavailable (test control)"}, 503)
        return await self.post(group, BOT_LID, BOT_PHONE, BOT_NAME, text, quoted_id, from_bot=True)

    async def bot_groups(self, request: web.Request) -> web.Response:
        """GET /api/bot/groups → [{"id", "name"}]: the groups the bot's number is in."""
        return json_response([g.info() for g in self.state.bot_groups()])

    async def bot_history(self, request: web.Request) -> web.Response:
        """GET /api/bot/groups/{id}/messages?limit=N → the bot's own history of the group: the
        last N messages posted while it was in it, oldest first."""
        group = self.group(request.match_info["group_id"])
        return json_response([m.to_json() for m in self.state.recent_for_bot(group.id, limit_of(request))])

    # -- TEST CONTROLS: not part of the WhatsApp-like world; for tests and training only --

    async def set_faults(self, request: web.Request) -> web.Response:
        """POST /api/control/faults {"fail_sends"?, "rate_limit_sends"?}: set the counters."""
        body = await json_object(request)
        fail = int_field(body, "fail_sends", maximum=MAX_FAULTS)
        limited = int_field(body, "rate_limit_sends", maximum=MAX_FAULTS)
        if fail is not None:
            self.faults.fail_sends = fail
        if limited is not None:
            self.faults.rate_limit_sends = limited
        return json_response(self.faults.to_json())

    async def get_faults(self, request: web.Request) -> web.Response:
        """GET /api/control/faults: what is still armed."""
        return json_response(self.faults.to_json())

    async def disconnect(self, request: web.Request) -> web.Response:
        """POST /api/control/disconnect: drop the bot's socket, as a network blip would."""
        closed = self.hub.disconnect(CLOSE_DISCONNECTED, "disconnected by test control")
        return json_response({"disconnected": closed})

    # -- page --

    async def index(self, request: web.Request) -> web.FileResponse:
        """The chat page."""
        return web.FileResponse(STATIC_DIR / "index.html")


def _errors_middleware() -> Middleware:
    """Every /api error as JSON `{"error"}`; an unexpected exception is a logged 500, never a traceback page."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return json_response({"error": exc.message}, exc.status)
        except web.HTTPException as exc:
            if exc.status < 400 or not request.path.startswith("/api/"):
                raise
            if isinstance(exc, web.HTTPRequestEntityTooLarge):
                message = f"request body larger than {MAX_BODY} bytes"
            else:
                message = exc.reason
            response = json_response({"error": message}, exc.status)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            return json_response({"error": "internal error"}, 500)

    return errors


def _guard_middleware(loopback_only: bool) -> Middleware:
    """No auth, so refuse what a web page elsewhere could make a browser send here."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        # DNS rebinding: a hostile name resolving to 127.0.0.1 still carries its own Host.
        if loopback_only and urlsplit("//" + request.host).hostname not in LOOPBACK_NAMES:
            raise ApiError(403, "the sandbox answers only to 127.0.0.1, localhost or [::1]")
        origin = request.headers.get("Origin")
        unsafe = request.method not in ("GET", "HEAD", "OPTIONS") or request.path == "/api/bot/connect"
        if origin is not None and unsafe and urlsplit(origin).netloc != request.host:
            raise ApiError(403, "cross-origin request refused")
        return await handler(request)

    return guard


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cache-Control", "no-cache")


SANDBOX_KEY = web.AppKey("sandbox", Sandbox)


def make_app(data_file: DataFile, state: SandboxState, *, loopback_only: bool = True) -> web.Application:
    """The sandbox app over an opened data file, which it closes at cleanup."""
    sandbox = Sandbox(data_file, state)
    app = web.Application(
        client_max_size=MAX_BODY, middlewares=[_errors_middleware(), _guard_middleware(loopback_only)]
    )
    app[SANDBOX_KEY] = sandbox
    app.on_startup.append(sandbox.startup)
    app.on_shutdown.append(sandbox.shutdown)
    app.on_cleanup.append(sandbox.cleanup)
    app.on_response_prepare.append(_security_headers)
    r = app.router
    r.add_get("/", sandbox.index)
    r.add_static("/static/", STATIC_DIR)
    r.add_post("/api/groups", sandbox.create_group)
    r.add_get("/api/groups", sandbox.list_groups)
    r.add_patch("/api/groups/{group_id}", sandbox.rename_group)
    r.add_post("/api/groups/{group_id}/bot", sandbox.set_bot_member)
    r.add_post("/api/groups/{group_id}/messages", sandbox.post_message)
    r.add_get("/api/groups/{group_id}/messages", sandbox.list_messages)
    r.add_patch("/api/groups/{group_id}/messages/{message_id}", sandbox.edit_message)
    r.add_delete("/api/groups/{group_id}/messages/{message_id}", sandbox.delete_message)
    r.add_get("/api/status", sandbox.status)
    r.add_get("/api/bot/connect", sandbox.bot_connect)
    r.add_post("/api/bot/send", sandbox.bot_send)
    r.add_get("/api/bot/groups", sandbox.bot_groups)
    r.add_get("/api/bot/groups/{group_id}/messages", sandbox.bot_history)
    r.add_post("/api/control/faults", sandbox.set_faults)
    r.add_get("/api/control/faults", sandbox.get_faults)
    r.add_post("/api/control/disconnect", sandbox.disconnect)
    return app
