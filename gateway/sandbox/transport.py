"""SandboxTransport: the bot's link to the local sandbox, connected the way a WhatsApp device is.

One background thread runs an asyncio loop (the socket, sends, history calls); inbound batches go
to the sink on a second thread, so a sink that blocks until its write is durable never stalls
the loop; send outcomes, state changes and the bot's groups (all of them in hello, then each
join, rename and leave) go through a third, so they are not stuck behind it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import logging
import queue
import random
import threading
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, TypeVar

import aiohttp
import orjson
from yarl import URL

from domain.chat import (
    ChatMessage,
    ConnectionDetail,
    ConnectionState,
    GroupInfo,
    GroupsChange,
    OutboundText,
    SendOutcome,
    Source,
)
from gateway.transport import Transport, TransportError, TransportSink

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_MAX = 500
HISTORY_MAX = 1000  # the sandbox's own limit per request
REQUEST_TIMEOUT = 10.0
CALL_TIMEOUT = 15.0  # history() and list_groups(), from the caller's thread
HEARTBEAT = 15.0  # pings find a dead peer that never sent a FIN
STOP_JOIN = 10.0
CLOSE_REPLACED = 4000  # the sandbox's code for "another bot connection took over"


class _SinkFailed(Exception):
    """The sink raised: nothing after this batch may be acknowledged on this connection."""


_Call = tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]]


class _Worker:
    """One daemon thread running calls in order."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Queue `fn(*args)`; its result or exception lands in the future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put((future, fn, args))
        return future

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(*args)` without waiting; an exception is logged."""
        self.submit(fn, *args).add_done_callback(_log_failure)

    def close(self, timeout: float) -> bool:
        """Run what is queued, then end the thread; False if it is still busy after `timeout`."""
        self._calls.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue  # its connection dropped before it started: the server sends it again
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("sink callback failed", exc_info=future.exception())


def accepts_changes(sink: Any) -> bool:
    """Whether a TransportSink reads `ChatMessage.edits` and `revokes` (it says so with a class
    attribute `accepts_changes = True`). One that does not would take an edit's new text for a new
    message, a new order: it is given no edits and no deletes (they are still acknowledged)."""
    return getattr(sink, "accepts_changes", False) is True


class _Inbox:
    """Frames read from the socket and not yet handed to the sink, in order."""

    OFFLINE_DONE = object()

    def __init__(self) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._ready = asyncio.Event()

    def put(self, item: Any) -> None:
        self._items.append(item)
        self._ready.set()

    async def take(self, limit: int) -> Any:
        """OFFLINE_DONE, or the messages available now up to it (at most `limit`)."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        if self._items[0] is self.OFFLINE_DONE:
            return self._items.popleft()
        batch = []
        while self._items and len(batch) < limit and self._items[0] is not self.OFFLINE_DONE:
            batch.append(self._items.popleft())
        return batch


@dataclass(frozen=True, slots=True)
class _Closed:
    reason: str
    lasted: float  # seconds since hello; 0 when it never got that far
    replaced: bool = False


def group_info(data: Any) -> GroupInfo:
    """A group as the sandbox names it (`{"id", "name"}`); raises ValueError."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise ValueError(f"group without an id: {data!r:.200}")
    name = data.get("name")
    return GroupInfo(data["id"], name if isinstance(name, str) else "")


def hello_groups(frame: dict[str, Any]) -> GroupsChange | None:
    """The groups the bot is in, as hello lists them (all of them); None if hello lists none
    (a sandbox from before the list: the bot learns its groups from their messages)."""
    groups = frame.get("groups")
    if not isinstance(groups, list):
        return None
    return GroupsChange(tuple(group_info(g) for g in groups), complete=True)


def group_change(frame: dict[str, Any]) -> GroupsChange:
    """A "group" frame: the bot joined a group (was added, or created it), a group it is in was
    renamed, or it left one (was removed); raises ValueError."""
    group, event = group_info(frame.get("group")), frame.get("event")
    if event in ("joined", "renamed"):
        return GroupsChange(present=(group,))
    if event == "left":
        return GroupsChange(gone=(group.group_id,))
    raise ValueError(f"group frame with an unknown event {event!r}")


def chat_message(data: dict[str, Any], source: Source, group_name: str = "") -> ChatMessage:
    """A sandbox message (socket frame or history item) as a ChatMessage; raises on bad fields.

    A frame with `edits` or `revokes` is an edit or a delete of an earlier message: its own id and
    time, the changed message's id in `edits`/`revokes`, and the new text ("" for a delete)."""
    fields = {k: data.get(k) for k in ("id", "sender", "group_id")}
    if not all(isinstance(v, str) and v for v in fields.values()):
        raise ValueError(f"message without id, sender or group: {data!r:.200}")
    # Present means a change, which must name its message: one without would read as a new message.
    changed = {k: data[k] for k in ("edits", "revokes") if k in data}
    if len(changed) > 1 or not all(isinstance(v, str) and v for v in changed.values()):
        raise ValueError(f"message {fields['id']} with a bad edits or revokes: {data!r:.200}")
    edits, revokes, text = changed.get("edits", ""), changed.get("revokes", ""), data.get("text")
    if revokes:
        text = ""  # whatever it says, a delete carries no text
    elif not isinstance(text, str) or not text:
        # An empty text would read as a message; only a delete may have none.
        raise ValueError(f"message {fields['id']} without text")
    timestamp = data.get("timestamp")
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool):
        raise ValueError(f"message {fields['id']} without a timestamp")
    return ChatMessage(
        group_id=fields["group_id"],
        group_name=str(data.get("group_name") or group_name),
        message_id=fields["id"],
        sender=fields["sender"],
        sender_alt=str(data.get("sender_alt") or ""),
        sender_name=str(data.get("sender_name") or ""),
        text=text,
        timestamp=float(timestamp),
        from_me=data.get("from_bot") is True,
        source=source,
        quoted_id=str(data.get("quoted_id") or ""),
        edits=edits,
        revokes=revokes,
    )


class SandboxTransport(Transport):
    """The sandbox as a chat backend: offline queue, history replay, live messages, sends."""

    kind = "sandbox"
    history_replayable = True  # the sandbox keeps every group's history and replays it at each start

    def __init__(
        self, url: str, *, history_limit: int = 50, reconnect_min: float = 0.5, reconnect_max: float = 10.0
    ) -> None:
        base = URL(url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"sandbox url must be http(s)://host:port, got {url!r}")
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self._base = base
        self._history_limit = max(0, min(history_limit, HISTORY_MAX))
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._lock = threading.Lock()
        self._sink: TransportSink | None = None
        self._started = False
        self._stopped = False
        self._state = ConnectionState.STOPPED
        self._detail = ConnectionDetail()
        self._own_ids: frozenset[str] = frozenset()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._outbox: asyncio.Queue[tuple[int, OutboundText]] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._inbound: _Worker | None = None
        self._events: _Worker | None = None
        self._events_closed = False
        self._unfinished: dict[int, OutboundText] = {}  # sends whose outcome is not reported yet
        self._tokens = itertools.count()
        self._history_done = False
        self._group_names: dict[str, str] = {}

    # -- Transport -------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def own_ids(self) -> frozenset[str]:
        return self._own_ids

    def start(self, sink: TransportSink) -> None:
        with self._lock:
            if self._started:
                raise TransportError("SandboxTransport.start() called twice", retryable=False)
            self._started = True
        self._sink = sink
        self._inbound = _Worker("sandbox-inbound")
        self._events = _Worker("sandbox-events")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="sandbox-transport", daemon=True
        )
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:
                pass  # the loop already ended
        if self._thread is not None:
            self._thread.join(STOP_JOIN)
        for token in list(self._unfinished):
            self._finish(token, ok=False, error="transport stopped", retryable=True)
        if self._sink is not None:
            self._set_state(ConnectionState.STOPPED, "stopped")
        with self._lock:
            self._events_closed = True
        for worker in (self._events, self._inbound):
            if worker is not None and not worker.close(STOP_JOIN):
                log.warning("the sink is still busy after stop(); its thread is left to finish")

    def send(self, request: OutboundText) -> None:
        if self._sink is None:
            raise TransportError("send() before start()", retryable=False)
        token = next(self._tokens)
        with self._lock:
            self._unfinished[token] = request
            loop, outbox = (None, None) if self._stopped else (self._loop, self._outbox)
        try:
            if loop is None or outbox is None:
                raise RuntimeError("stopped")
            loop.call_soon_threadsafe(outbox.put_nowait, (token, request))
        except RuntimeError:
            self._finish(token, ok=False, error="transport stopped", retryable=True)

    def history(self, group_id: str, limit: int) -> list[ChatMessage]:
        if limit <= 0:
            return []
        return self._call(self._fetch_history(group_id, min(limit, HISTORY_MAX)))

    def list_groups(self) -> list[GroupInfo]:
        return self._call(self._fetch_groups())

    # -- the loop thread -------------------------------------------------------------------

    def _thread_main(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready))
        except Exception:
            log.exception("the sandbox transport's loop died")
        finally:
            ready.set()  # never leave start() waiting

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._outbox = asyncio.Queue()
        # sock_read is lifted by aiohttp for the WebSocket; plain requests get their own total.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT, sock_read=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            ready.set()
            tasks = [
                asyncio.create_task(self._connect_loop(), name="sandbox-connect"),
                asyncio.create_task(self._send_loop(), name="sandbox-send"),
            ]
            try:
                await self._stop_event.wait()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._session = None

    async def _connect_loop(self) -> None:
        self._set_state(ConnectionState.CONNECTING)
        failures = 0
        while True:
            try:
                closed = await self._connection()
            except (aiohttp.ClientError, OSError) as exc:
                closed = _Closed(f"cannot connect: {exc or type(exc).__name__}", 0.0)
            except Exception as exc:  # a bug must not end the reconnecting for good
                log.exception("unexpected error in the sandbox connection")
                closed = _Closed(f"unexpected error: {exc!r}", 0.0)
            if closed.replaced:
                # As whatsmeow on StreamReplaced: reconnecting would only steal it back in turn.
                self._set_state(ConnectionState.STOPPED, closed.reason)
                return
            if closed.lasted >= self._reconnect_max:
                failures = 0  # a healthy connection that dropped: come back quickly
            delay = min(self._reconnect_max, self._reconnect_min * 2**failures) * random.uniform(0.8, 1.0)
            failures = min(failures + 1, 30)
            self._set_state(ConnectionState.RECONNECTING, closed.reason)
            log.info("sandbox connection: %s; retrying in %.1fs", closed.reason, delay)
            await asyncio.sleep(delay)

    async def _connection(self) -> _Closed:
        """One WebSocket session, from handshake to close."""
        assert self._session is not None
        scheme = "wss" if self._base.scheme == "https" else "ws"
        ws_url = self._base.with_scheme(scheme) / "api" / "bot" / "connect"
        async with self._session.ws_connect(ws_url, heartbeat=HEARTBEAT, max_msg_size=8 << 20) as ws:
            hello = await asyncio.wait_for(ws.receive(), REQUEST_TIMEOUT)
            frame = _frame(hello)
            bot = frame.get("bot") if frame and frame.get("type") == "hello" else None
            if frame is None or not isinstance(bot, dict):
                return _Closed("protocol error: no hello from the sandbox", 0.0)
            try:
                groups = hello_groups(frame)
            except ValueError as exc:
                return _Closed(f"protocol error: a bad group list in hello ({exc})", 0.0)
            self._own_ids = frozenset(str(bot[k]) for k in ("phone", "lid") if bot.get(k))
            since = asyncio.get_running_loop().time()
            self._set_state(ConnectionState.CONNECTED)
            if groups is not None:
                self._groups_changed(groups)
            inbox = _Inbox()
            problem: list[str] = []
            deliver = asyncio.create_task(self._deliver(ws, inbox, problem), name="sandbox-deliver")
            try:
                code, reason = await self._read(ws, inbox)
            finally:
                deliver.cancel()
                await asyncio.gather(deliver, return_exceptions=True)
            lasted = asyncio.get_running_loop().time() - since
            if code == CLOSE_REPLACED:
                reason = "replaced: another bot connected to the sandbox; restart this one to take over"
                return _Closed(reason, lasted, replaced=True)
            return _Closed(problem[0] if problem else f"connection closed ({code} {reason})".strip(), lasted)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, inbox: _Inbox) -> tuple[int | None, str]:
        """Read frames into the inbox until the socket closes; returns the close code and reason."""
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return msg.data, str(msg.extra or "")
            if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return ws.close_code, ""
            if msg.type is aiohttp.WSMsgType.ERROR:
                return ws.close_code, str(ws.exception() or "socket error")
            frame = _frame(msg)
            kind = frame.get("type") if frame is not None else None
            if frame is not None and kind == "message":
                seq = frame.get("seq")
                source = Source.OFFLINE if frame.get("offline") else Source.LIVE
                try:
                    if not isinstance(seq, int):
                        raise ValueError("no seq")
                    message = chat_message(frame, source)
                except ValueError as exc:
                    # Cannot happen with our sandbox; a later ack covers it, as the bot could not use it.
                    log.error("dropping a malformed message frame: %s", exc)
                    continue
                self._group_names[message.group_id] = message.group_name
                inbox.put((seq, message))
            elif frame is not None and kind == "group":
                try:
                    change = group_change(frame)
                except ValueError as exc:
                    log.error("ignoring a malformed group frame: %s", exc)
                    continue
                self._groups_changed(change)
            elif kind == "offline_done":
                inbox.put(_Inbox.OFFLINE_DONE)
            elif frame is not None and kind == "error":
                log.warning("the sandbox refused a frame: %s", frame.get("error"))

    async def _deliver(self, ws: aiohttp.ClientWebSocketResponse, inbox: _Inbox, problem: list[str]) -> None:
        """Hand batches to the sink and ack each once it returned; on failure, drop the socket."""
        try:
            while True:
                item = await inbox.take(BATCH_MAX)
                if item is _Inbox.OFFLINE_DONE:
                    if not self._history_done:
                        await self._replay_history()
                        self._history_done = True
                    continue
                batch = [message for _, message in item]
                if not accepts_changes(self._sink):
                    batch = [m for m in batch if not (m.edits or m.revokes)]
                if batch:
                    await self._hand_over(batch)
                # Cumulative: only safe because a failed batch ends this connection below.
                await ws.send_str(orjson.dumps({"type": "ack", "seq": item[-1][0]}).decode())
        except Exception as exc:
            if not isinstance(exc, (_SinkFailed, TransportError, aiohttp.ClientError, OSError)):
                log.exception("unexpected error delivering sandbox messages")
            problem.append(str(exc) or repr(exc))
            # Ending the connection is what makes the sandbox send the unacknowledged again.
            await ws.close(code=1000, message=b"bot could not take the messages")

    async def _hand_over(self, batch: list[ChatMessage]) -> None:
        """Run sink.messages_received(batch) on the inbound thread and wait for it."""
        assert self._inbound is not None and self._sink is not None
        try:
            await asyncio.wrap_future(self._inbound.submit(self._sink.messages_received, batch))
        except Exception as exc:
            log.exception("sink.messages_received failed; the sandbox will send the batch again")
            raise _SinkFailed(f"sink failed: {exc!r}") from exc

    async def _replay_history(self) -> None:
        """Deliver every group's recent history once, as Source.HISTORY, so nothing missed is lost."""
        if self._history_limit == 0:
            return
        messages: list[ChatMessage] = []
        for group in await self._fetch_groups():
            messages.extend(await self._fetch_history(group.group_id, self._history_limit))
        for start in range(0, len(messages), BATCH_MAX):
            await self._hand_over(messages[start : start + BATCH_MAX])

    # -- HTTP ------------------------------------------------------------------------------

    async def _get_json(self, url: URL) -> Any:
        """GET a JSON document; raises TransportError."""
        if self._session is None:
            raise TransportError("transport is stopping")
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"GET {url.path}: {exc or type(exc).__name__}") from exc
        if status != 200:
            retryable = status >= 500 or status == 429
            raise TransportError(f"GET {url.path}: {status} {_error_text(body)}", retryable=retryable)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise TransportError(f"GET {url.path}: not JSON") from exc

    async def _fetch_groups(self) -> list[GroupInfo]:
        """The groups the bot is in."""
        data = await self._get_json(self._base / "api" / "bot" / "groups")
        if not isinstance(data, list):
            raise TransportError("GET /api/bot/groups: not a list")
        groups = [
            GroupInfo(str(g["id"]), str(g.get("name", ""))) for g in data if isinstance(g, dict) and g.get("id")
        ]
        self._group_names.update((g.group_id, g.name) for g in groups)
        return groups

    async def _fetch_history(self, group_id: str, limit: int) -> list[ChatMessage]:
        """The bot's own history of a group: what it received while it was in it."""
        url = (self._base / "api" / "bot" / "groups" / group_id / "messages").with_query(limit=limit)
        data = await self._get_json(url)
        if not isinstance(data, list):
            raise TransportError(f"GET {url.path}: not a list")
        if group_id not in self._group_names:
            await self._fetch_groups()
        name = self._group_names.get(group_id, "")
        messages = []
        for item in data:
            if isinstance(item, dict) and item.get("deleted") is True:
                continue  # deleted for everyone: nothing is left of it to take
            try:
                messages.append(chat_message({**item, "group_id": group_id}, Source.HISTORY, name))
            except (ValueError, TypeError) as exc:
                log.error("skipping a malformed history item: %s", exc)
        return messages

    async def _send_loop(self) -> None:
        # One at a time, in order, as over a single WhatsApp connection.
        assert self._outbox is not None
        while True:
            token, request = await self._outbox.get()
            self._finish(token, **await self._post(request))

    async def _post(self, request: OutboundText) -> dict[str, Any]:
        """Send one text; the keyword arguments of its SendOutcome."""
        if self._state is not ConnectionState.CONNECTED or self._session is None:
            # whatsmeow refuses to send without a connection too; the gateway retries.
            return {"ok": False, "error": "not connected to the sandbox", "retryable": True}
        body: dict[str, Any] = {"group_id": request.group_id, "text": request.text}
        if request.quote is not None:
            body["quoted_id"] = request.quote.message_id
        try:
            async with self._session.post(
                self._base / "api" / "bot" / "send",
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            ) as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, OSError) as exc:
            return {"ok": False, "error": f"send failed: {exc or type(exc).__name__}", "retryable": True}
        if 200 <= status < 300:
            try:
                data = orjson.loads(raw)
                return {"ok": True, "message_id": str(data["id"]), "timestamp": float(data["timestamp"])}
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                # It may well be stored: sending it again could post it twice.
                return {"ok": False, "error": f"unreadable answer to a send ({status})", "retryable": False}
        error = f"{status} {_error_text(raw)}"
        if status == 429:
            return {"ok": False, "error": error, "retryable": True, "rate_limited": True}
        return {"ok": False, "error": error, "retryable": status >= 500}

    # -- reporting -------------------------------------------------------------------------

    def _finish(self, token: int, **outcome: Any) -> None:
        """Report a send's outcome, exactly once per token."""
        with self._lock:
            request = self._unfinished.pop(token, None)
            if request is None:
                return
            queued = not self._events_closed and self._events is not None
            if queued:
                assert self._events is not None and self._sink is not None
                self._events.call(self._sink.send_finished, SendOutcome(request.request_id, **outcome))
        if not queued and self._sink is not None:
            self._sink.send_finished(SendOutcome(request.request_id, **outcome))

    def _groups_changed(self, change: GroupsChange) -> None:
        """Tell the sink of the bot's groups, in order with the connection states."""
        self._group_names.update((g.group_id, g.name) for g in change.present)
        if self._events is not None and self._sink is not None and not self._events_closed:
            self._events.call(self._sink.groups_changed, change)

    def _set_state(self, state: ConnectionState, message: str = "") -> None:
        detail = ConnectionDetail(message)
        if (state, detail) == (self._state, self._detail):
            return
        self._state, self._detail = state, detail
        if self._events is not None and self._sink is not None and not self._events_closed:
            self._events.call(self._sink.state_changed, state, detail)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop from another thread and wait for it; raises TransportError."""
        loop = self._loop
        if loop is None or self._stopped or self._session is None:
            coro.close()
            raise TransportError("the sandbox transport is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise TransportError("blocking call from the transport's own loop", retryable=False)
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(CALL_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TransportError(f"no answer from the sandbox within {CALL_TIMEOUT:.0f}s") from None
        except concurrent.futures.CancelledError:
            raise TransportError("the sandbox transport stopped") from None


def _frame(msg: aiohttp.WSMessage) -> dict[str, Any] | None:
    """A text frame's JSON object, or None."""
    if msg.type is not aiohttp.WSMsgType.TEXT:
        return None
    try:
        data = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _error_text(body: bytes) -> str:
    """The `error` of a JSON error body, else the body's start."""
    try:
        data = orjson.loads(body)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return data["error"]
    except orjson.JSONDecodeError:
        pass
    return body[:200].decode("utf-8", "replace")
