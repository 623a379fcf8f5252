"""WhatsAppTransport: the bot's own WhatsApp number through neonize 0.5.2, behind the Transport
interface (SPEC §5).

Threads (the transport's own are daemons, and stop() ends them all):

* neonize's event thread runs the handlers one at a time. They only convert, record (the sink
  returns once the messages are durable: whatsmeow has already acknowledged them to the server)
  and enqueue. neonize swallows a handler's exception, so each handler catches and logs its own.
* "whatsapp-supervisor" owns the connection. Each connection ("session") is neonize's blocking
  connect() on a "whatsapp-session" thread. The supervisor renews the QR code when whatsmeow
  gives up on it, asks for a pairing code, waits out a ban, re-pairs (logging the old device out
  first), and backs off when a connect fails. A new session that neither shows a QR code nor
  connects in time is ended and tried again later: while pairing, neonize delivers no event at
  all until the QR attempt is over, and only the login status (gateway.whatsapp.client) says how
  it ended. It never calls connect() from a handler: after a first successful connect, whatsmeow
  reconnects by itself.
* "whatsapp-send" builds each message and sends it, one at a time, each with a deadline, and
  reports exactly one SendOutcome per request. The GatewayActor paces what it hands over.
* "whatsapp-groups" fetches the groups the number is in with get_joined_groups() after each
  connect (and when a group event or an unknown group asks for it, never once per message) and
  reports the list to the sink as complete; the event thread reports each join, rename and leave
  as it comes (JoinedGroup, GroupInfo). A list fetched while such events came has them applied
  on top, so an older list never undoes a newer leave.

neonize calls that read its Go side's client table (send, pairing code, groups, logout) run
through a Gate (gateway.whatsapp.calls): only while a session has set the table up, each on a
thread of its own with a deadline; ending a session waits for them only while they may still
read the table, never for an answer from WhatsApp.
"""

from __future__ import annotations

import importlib.metadata
import logging
import queue
import random
import threading
import time
from typing import Any, Callable, Sequence, TextIO

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
from gateway.whatsapp import convert, outbound
from gateway.whatsapp.calls import READ_GRACE, Call, CallTimedOut, Gate, Halted, NoSession
from gateway.whatsapp.control import (
    After,
    Banned,
    Command,
    ConnectFailure,
    Connected,
    Disconnected,
    LoggedOut,
    LoginStatus,
    Outdated,
    Paired,
    QrCode,
    Replaced,
    Repair,
    SessionEnded,
    SinkFailed,
    Stop,
    Timer,
    TimerDue,
)
from gateway.whatsapp.ops import NeonizeOps, restrict
from gateway.whatsapp.pairing import QR_FIRST, QR_NEXT, Pairing, print_pair_code, print_qr

log = logging.getLogger(__name__)

BATCH_MAX = 500
UNKNOWN_BAN_WAIT = 900.0  # s to wait out a ban whose length WhatsApp did not say
SINK_RETRIES = (0.2, 1.0, 3.0)  # a failing sink is retried on the event thread, then the batch is logged as lost
TICK = 0.5  # the supervisor looks at its timers at least this often
GROUPS_MIN_INTERVAL = 60.0  # unknown groups trigger at most one get_joined_groups() per minute
GROUPS_RETRY = 60.0  # s after a failed get_joined_groups() before it is tried again
PAIRED_WAIT = 30.0  # scanned at the last moment: time for whatsmeow to finish logging in
STOP_JOIN = 10.0
BAN_MARGIN = 5.0
SEND_TIMEOUT = 60.0  # s a send waits for WhatsApp's answer; then it counts as failed (and may be tried again)
CALL_TIMEOUT = 30.0  # s for the other calls that wait for WhatsApp: logout, pairing code, group list
SILENT_WAIT = 45.0  # s a new session has to show a QR code or connect
REPAIR_WAIT = 60.0  # s re-pair tries to connect, to log the old device out, before it pairs anyway
LINKED_DEVICES = "on the bot's phone: WhatsApp → Settings → Linked devices"


def outdated_message() -> str:
    """What the panel and the log say when WhatsApp refuses this neonize as too old (405)."""
    try:
        version = importlib.metadata.version("neonize")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return (f"WhatsApp refuses this client as outdated (405): neonize {version} is too old. Move to a newer "
            f"neonize as the README says (Upgrading neonize): set neonize==<new version> in setup.cfg, run "
            f"`make test`, then `.venv/bin/pip install -e .` and restart the bot")


class _Backoff:
    """Delays between failed connects: doubling from `low` to `high`, with jitter."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high, self.failures = low, high, 0

    def next(self) -> float:
        delay = min(self.high, self.low * 2 ** min(self.failures, 30)) * random.uniform(0.8, 1.0)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class WhatsAppTransport(Transport):
    """WhatsApp through neonize: pairing, inbound group messages, quoted replies, bans."""

    kind = "whatsapp"
    pairing = True
    end_poll = 1.0  # a session asked to end is checked this often (real seconds) ...
    end_tries = 8  # ... this many times before it is abandoned
    send_timeout = SEND_TIMEOUT  # real seconds
    call_timeout = CALL_TIMEOUT  # real seconds
    silent_wait = SILENT_WAIT  # on self.clock
    repair_wait = REPAIR_WAIT  # on self.clock
    groups_retry = GROUPS_RETRY  # real seconds

    def __init__(self, session_db: str, *, pair_phone: str = "", ops: NeonizeOps | None = None,
                 clock: Callable[[], float] = time.time, terminal: TextIO | None = None,
                 reconnect_min: float = 2.0, reconnect_max: float = 300.0, read_grace: float = READ_GRACE) -> None:
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self.session_db = session_db
        self.pair_phone = pair_phone
        self.ops = ops or NeonizeOps()
        self.clock = clock
        self.terminal = terminal
        self._lock = threading.Lock()  # state, names, own ids, lifecycle flags
        self._gate = Gate(read_grace)  # neonize calls that read its client table
        self._sink: TransportSink | None = None
        self._client: Any = None
        self._started = self._stopped = False
        self._state = ConnectionState.STOPPED
        self._detail = ConnectionDetail()
        self._own_ids: frozenset[str] = frozenset()
        self._names: dict[str, str] = {}  # every group name seen, also of groups the bot left
        self._groups: dict[str, str] = {}  # the groups the number is in, as last reported
        self._groups_lock = threading.Lock()  # group reports reach the sink one at a time, in order
        self._news_while_fetching: list[GroupsChange] | None = None  # while the list is fetched
        self._offline_sync = False  # between OfflineSyncPreview and OfflineSyncCompleted (event thread)
        self._control: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._sends: queue.SimpleQueue[OutboundText | None] = queue.SimpleQueue()
        self._unanswered_send: Call[Any] | None = None  # a send that timed out, maybe still waiting (send thread)
        self._groups_wanted = threading.Event()
        self._groups_asked_at = float("-inf")
        self._threads: list[threading.Thread] = []
        # Supervisor-only state.
        self._pairing = Pairing()
        self._backoff = _Backoff(reconnect_min, reconnect_max)
        self._retry_in = 0.0  # s until a new session after a refused connection
        self._session: tuple[int, threading.Thread] | None = None
        self._sessions = 0
        self._session_connected = False
        self._ending: After | None = None  # what to do once the session has ended
        self._end_tries = 0
        # timer -> (on self.clock?, when): code and ban expiries and the deadlines of a new session
        # and of re-pair are times on the clock (epoch seconds, as the panel shows them); retries
        # and waits are durations (time.monotonic).
        self._timers: dict[Timer, tuple[bool, float]] = {}
        self._ban_until = 0.0
        self._paired: bool | None = None  # the session database holds a device (None: unknown)
        self._repair_pending = False  # re-pair waits for a connection to log the old device out

    # -- Transport -------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def detail(self) -> ConnectionDetail:
        return self._detail

    @property
    def own_ids(self) -> frozenset[str]:
        return self._own_ids

    @property
    def client(self) -> Any:
        """neonize's client (None before start)."""
        return self._client

    def start(self, sink: TransportSink) -> None:
        with self._lock:
            if self._started:
                raise TransportError("WhatsAppTransport.start() called twice", retryable=False)
            self._started = True
        self._sink = sink
        self._client = self.ops.new_client(self.session_db, self._on_login_status)
        self._register(self._client)
        for target, name in ((self._supervise, "whatsapp-supervisor"), (self._send_loop, "whatsapp-send"),
                             (self._groups_loop, "whatsapp-groups")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        self._gate.halt()  # whoever waits for neonize stops waiting
        self._control.put(Stop())
        self._sends.put(None)
        self._groups_wanted.set()
        deadline = time.monotonic() + STOP_JOIN
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, STOP_JOIN)
        self._report(ConnectionState.STOPPED, ConnectionDetail("stopped"))

    def send(self, request: OutboundText) -> None:
        if self._sink is None:
            raise TransportError("send() before start()", retryable=False)
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._sends.put(request)
        if stopped:
            self._sink.send_finished(SendOutcome(request.request_id, False, error="transport stopped"))

    def history(self, group_id: str, limit: int) -> list[ChatMessage]:
        # neonize 0.5.2 has no on-demand history; the HistorySync after pairing arrives by itself.
        return []

    def list_groups(self) -> list[GroupInfo]:
        if self._state is not ConnectionState.CONNECTED:
            raise TransportError("not connected to WhatsApp")
        with self._groups_lock:
            return [GroupInfo(g, n) for g, n in sorted(self._groups.items())]

    def repair(self) -> None:
        """Unlink this number's device and pair again (the panel's re-pair button). Returns at once."""
        if not self._started or self._stopped:
            raise TransportError("the WhatsApp transport is not running", retryable=False)
        self._control.put(Repair())

    # -- reporting -------------------------------------------------------------------------

    def _report(self, state: ConnectionState, detail: ConnectionDetail) -> None:
        with self._lock:
            if (state, detail) == (self._state, self._detail):
                return
            self._state, self._detail = state, detail
            # Under the lock so that reports from different threads reach the sink in order.
            if self._sink is not None:
                self._sink.state_changed(state, detail)

    def _deliver(self, messages: Sequence[ChatMessage]) -> None:
        """Hand messages to the sink, which returns once they are durable (event thread)."""
        assert self._sink is not None
        for start in range(0, len(messages), BATCH_MAX):
            batch = messages[start:start + BATCH_MAX]
            for delay in (*SINK_RETRIES, None):
                try:
                    self._sink.messages_received(batch)
                    break
                except Exception as e:
                    if delay is None:
                        # whatsmeow acknowledged them already: the log is what is left of them.
                        log.critical("LOST %d WhatsApp messages the bot could not record: %r", len(batch), batch)
                        # Stop taking more: what WhatsApp has not delivered yet waits on its server.
                        self._event(SinkFailed(f"{type(e).__name__}: {e}"))
                        break
                    log.exception("recording %d WhatsApp messages failed; trying again in %.1f s", len(batch), delay)
                    time.sleep(delay)

    # -- neonize's event thread and the login status callback ------------------------------------

    def _register(self, client: Any) -> None:
        """Register every handler before connect(): neonize subscribes to what is registered."""
        from neonize import events as ev

        handlers: dict[Any, Callable[[Any, Any], None]] = {
            ev.MessageEv: self._on_message,
            ev.HistorySyncEv: self._on_history,
            ev.OfflineSyncPreviewEv: self._on_offline_preview,
            ev.OfflineSyncCompletedEv: self._on_offline_completed,
            ev.ConnectedEv: lambda c, e: self._event(Connected()),
            ev.DisconnectedEv: self._on_disconnected,
            ev.PairStatusEv: self._on_pair_status,
            ev.LoggedOutEv: self._on_logged_out,
            ev.StreamReplacedEv: lambda c, e: self._event(Replaced()),
            ev.TemporaryBanEv: self._on_ban,
            ev.ClientOutdatedEv: lambda c, e: self._event(Outdated()),
            ev.ConnectFailureEv: self._on_connect_failure,
            ev.JoinedGroupEv: self._on_group_event,
            ev.GroupInfoEv: self._on_group_event,
            ev.UndecryptableMessageEv: self._on_undecryptable,
        }
        for event_type, handler in handlers.items():
            client.event(event_type)(_guarded(handler))
        client.qr(_guarded(self._on_qr))

    def _event(self, command: Command) -> None:
        self._control.put(command)

    def _on_undecryptable(self, client: Any, event: Any) -> None:
        """A message the bot cannot read (WhatsApp usually sends it again once the keys are
        sorted out): said in the log, so an order that never shows up can be traced."""
        info = event.Info
        if info.MessageSource.IsGroup:
            log.warning("a WhatsApp message %s in %s from %s could not be decrypted%s", info.ID,
                        convert.jid_text(info.MessageSource.Chat), convert.jid_text(info.MessageSource.Sender),
                        " (not available yet)" if event.IsUnavailable else "")

    def _on_qr(self, client: Any, data: bytes) -> None:
        payload = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
        self._event(QrCode(payload))

    def _on_login_status(self, status: str) -> None:
        """How a pairing attempt ended (on a Go thread; neonize 0.5.2 only printed it)."""
        self._event(LoginStatus(status))

    def _on_message(self, client: Any, message: Any) -> None:
        chat = convert.jid_text(message.Info.MessageSource.Chat)
        if not message.Info.MessageSource.IsGroup or not convert.is_group(chat):
            return  # private chats, status updates, channels: the bot only takes orders in groups
        source = Source.OFFLINE if self._offline_sync else Source.LIVE
        # Edits and deletes first: their text reads as empty or as the new text, never as a message.
        change = convert.change_of(message)
        if change is not None:
            self.on_change(message, change, source)
            return
        item = convert.chat_message(message, self._group_name(chat), source)
        if item is not None:  # None: not text (media, reactions, polls)
            # The bot's own messages go on marked from_me: the sink and the groups ignore them.
            self._deliver([item])

    def on_change(self, message: Any, change: convert.MessageChange, source: Source) -> None:
        """An edit or delete of a group message: delivered as a ChatMessage with `edits` or
        `revokes` set (the GroupActor decides what it does to an order), or only logged when it
        does not say which message it changes or the sink does not read `edits`/`revokes`."""
        item = convert.change_message(message, change, self._group_name(change.group_id), source)
        what = f"WhatsApp {change.kind.value} of message {change.message_id or '?'} in {change.group_id} by {change.by}"
        if item is None:
            log.info("%s ignored: it names no message, or its new content is not text", what)
        elif not convert.accepts_changes(self._sink):
            log.info("%s not passed on: the sink does not read edits and deletes", what)
        else:
            log.info("%s", what)
            self._deliver([item])

    def _on_history(self, client: Any, history: Any) -> None:
        data = history.Data
        names = convert.history_group_names(data)
        with self._lock:
            for gid, name in names.items():
                self._names.setdefault(gid, name)
            known = dict(self._names)
        messages = convert.history_messages(data, known)
        log.info("WhatsApp history sync: %d group text messages in %d conversations", len(messages),
                 len(data.conversations))
        if messages:
            self._deliver(messages)

    def _on_offline_preview(self, client: Any, preview: Any) -> None:
        self._offline_sync = True
        log.info("WhatsApp is delivering what arrived while the bot was away: %d messages", preview.Message)

    def _on_offline_completed(self, client: Any, completed: Any) -> None:
        self._offline_sync = False
        log.info("WhatsApp offline delivery complete (%d events)", completed.Count)

    def _on_disconnected(self, client: Any, event: Any) -> None:
        self._offline_sync = False
        self._event(Disconnected())

    def _on_pair_status(self, client: Any, status: Any) -> None:
        from neonize.proto.Neonize_pb2 import PairStatus

        self._event(Paired(status.Status == PairStatus.SUCCESS, status.Error))

    def _on_logged_out(self, client: Any, event: Any) -> None:
        from neonize.proto.Neonize_pb2 import ConnectFailureReason

        self._event(LoggedOut(_enum_name(ConnectFailureReason, event.Reason)))

    def _on_ban(self, client: Any, ban: Any) -> None:
        from neonize.proto.Neonize_pb2 import TemporaryBan

        self._event(Banned(float(ban.Expire), _enum_name(TemporaryBan.TempBanReason, ban.Code)))

    def _on_connect_failure(self, client: Any, failure: Any) -> None:
        from neonize.proto.Neonize_pb2 import ConnectFailureReason

        if failure.Reason == ConnectFailureReason.CLIENT_OUTDATED:  # 405, should whatsmeow not say ClientOutdated
            self._event(Outdated())
        else:
            self._event(ConnectFailure(_enum_name(ConnectFailureReason, failure.Reason), failure.Message))

    def _on_group_event(self, client: Any, event: Any) -> None:
        """Added to a group, or one of the number's groups renamed, left or deleted: reported to
        the sink at once. (The device event before Connected has set `client.me`.)"""
        own = self._own_ids or convert.own_ids(getattr(client, "me", None))
        change = convert.group_change(event, own)
        if change is None:
            with self._lock:
                known = convert.group_of(event) in self._names
            if not known or not own:
                self._want_groups()  # a group it did not know of, or a leave it cannot judge
            return
        with self._lock:
            # A rejoin names no group: the name seen before, or the list brings it.
            change = GroupsChange(tuple(GroupInfo(g.group_id, g.name or self._names.get(g.group_id, ""))
                                        for g in change.present), change.gone)
            self._names.update((g.group_id, g.name) for g in change.present if g.name)
        for gid in change.gone:
            log.info("WhatsApp: the number is no longer in group %s", gid)
        for info in change.present:
            log.info("WhatsApp: the number is in group %s (%s)", info.group_id, info.name or "name unknown")
        self._report_groups(change)
        if any(not g.name for g in change.present):
            self._want_groups()

    def _report_groups(self, change: GroupsChange) -> None:
        """Tell the sink what changed of the number's groups (event thread, or the groups thread
        with a complete list)."""
        with self._groups_lock:
            if self._news_while_fetching is not None:
                self._news_while_fetching.append(change)
            self._report_groups_locked(change)

    def _report_groups_locked(self, change: GroupsChange) -> None:
        assert self._sink is not None
        known = [GroupInfo(g, n) for g, n in self._groups.items()]
        self._groups = {g.group_id: g.name for g in convert.with_changes(known, [change])}
        try:
            self._sink.groups_changed(change)
        except Exception:
            log.exception("reporting the WhatsApp groups failed")

    # -- group names -----------------------------------------------------------------------

    def _group_name(self, group_id: str) -> str:
        with self._lock:
            name = self._names.get(group_id)
        if name is None:
            self._want_groups()
        return name or ""

    def _want_groups(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._groups_asked_at < GROUPS_MIN_INTERVAL:
                return
            self._groups_asked_at = now
        self._groups_wanted.set()

    def _groups_loop(self) -> None:
        retry: float | None = None
        while True:
            self._groups_wanted.wait(retry)  # a failed list is tried again after `groups_retry`
            self._groups_wanted.clear()
            retry = None
            if self._stopped:
                return
            if self._state is not ConnectionState.CONNECTED:
                continue  # the next Connected asks again
            with self._groups_lock:
                self._news_while_fetching = []
            try:
                groups = self._gate.call(lambda: self.ops.joined_groups(self._client), self.call_timeout, "groups")
            except (NoSession, Halted):
                groups = None
            except Exception as e:
                log.warning("cannot list the WhatsApp groups: %s; trying again in %.0f s", e, self.groups_retry)
                groups, retry = None, self.groups_retry
            with self._groups_lock:
                # Taken, applied and reported in one go: no join or leave slips in between.
                news, self._news_while_fetching = self._news_while_fetching or [], None
                if groups is None:
                    continue
                present = convert.with_changes(groups, news)
                with self._lock:
                    self._names.update((g.group_id, g.name) for g in present if g.name)
                log.info("WhatsApp: the number is in %d groups", len(present))
                self._report_groups_locked(GroupsChange(tuple(present), complete=True))

    # -- sending -----------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while (request := self._sends.get()) is not None:
            outcome = self._send_one(request) if not self._stopped else None
            if outcome is None:
                outcome = SendOutcome(request.request_id, False, error="transport stopped")
            assert self._sink is not None
            try:
                self._sink.send_finished(outcome)
            except Exception:
                log.exception("reporting a send outcome failed")
        # Whatever was queued behind the stop is reported, not dropped.
        while True:
            try:
                request = self._sends.get_nowait()
            except queue.Empty:
                return
            if request is not None and self._sink is not None:
                self._sink.send_finished(SendOutcome(request.request_id, False, error="transport stopped"))

    def _send_one(self, request: OutboundText) -> SendOutcome:
        """Build and send one text, waiting at most `send_timeout` for WhatsApp; its outcome."""
        try:
            to = outbound.group_jid(request.group_id)
            message = outbound.build_message(request)
        except Exception as e:
            return SendOutcome(request.request_id, False, error=f"cannot build the message: {e}", retryable=False)
        if self._state is not ConnectionState.CONNECTED:
            return SendOutcome(request.request_id, False, error="not connected to WhatsApp", retryable=True)
        unanswered = self._unanswered_send
        if unanswered is not None and not unanswered.finished:
            # One send left waiting is enough: more would only pile up behind the same trouble.
            return SendOutcome(request.request_id, False, error="WhatsApp has not answered an earlier send yet",
                               retryable=True)
        try:
            response = self._gate.call(lambda: self.ops.send(self._client, to, message), self.send_timeout, "send")
        except CallTimedOut as e:
            self._unanswered_send = e.call
            log.warning("WhatsApp send to %s: %s", request.group_id, e)
            return SendOutcome(request.request_id, False, error=f"{e} (it may still arrive)", retryable=True)
        except (NoSession, Halted) as e:
            return SendOutcome(request.request_id, False, error=str(e), retryable=True)
        except Exception as e:
            outcome = outbound.failed(request.request_id, e)
            log.warning("WhatsApp send to %s failed: %s", request.group_id, outcome.error)
            return outcome
        return outbound.sent(request.request_id, response, self.clock())

    # -- the supervisor ----------------------------------------------------------------------

    def _supervise(self) -> None:
        try:
            self._start_session()
            while not isinstance(command := self._next_command(), Stop):
                try:
                    self._handle(command)
                except Exception:
                    log.exception("WhatsApp supervisor: handling %r failed", command)
        except Exception:
            log.exception("the WhatsApp supervisor died")
        finally:
            self._shut_session()

    def _handle(self, command: Command) -> None:
        """Run one command on the supervisor thread."""
        match command:
            case QrCode(payload):
                self._cmd_qr(payload)
            case LoginStatus(status):
                self._cmd_login_status(status)
            case Paired(ok, error):
                self._cmd_paired(ok, error)
            case Connected():
                self._cmd_connected()
            case Disconnected():
                self._cmd_disconnected()
            case ConnectFailure(reason, message):
                self._cmd_connect_failure(reason, message)
            case SinkFailed(error):
                self._cmd_sink_failed(error)
            case LoggedOut(reason):
                self._cmd_logged_out(reason)
            case Banned(expire, reason):
                self._cmd_banned(expire, reason)
            case Replaced():
                self._cmd_replaced()
            case Outdated():
                self._cmd_outdated()
            case Repair():
                self._cmd_repair()
            case SessionEnded(number, error):
                self._cmd_session_ended(number, error)
            case TimerDue(Timer.END_WAIT):
                self._timer_end_wait()
            case TimerDue(Timer.RETRY):
                self._timer_retry()
            case TimerDue(Timer.BAN):
                self._timer_ban()
            case TimerDue(Timer.QR):
                self._timer_qr()
            case TimerDue(Timer.QR_LOGIN):
                self._timer_qr_login()
            case TimerDue(Timer.SILENT):
                self._timer_silent()
            case TimerDue(Timer.REPAIR):
                self._timer_repair()
            case _:
                raise TypeError(f"not a supervisor command: {command!r}")

    def _next_command(self) -> Command:
        """The next command, or TimerDue when a timer is due."""
        while True:
            now, mono = self.clock(), time.monotonic()
            left = {name: at - (now if on_clock else mono) for name, (on_clock, at) in self._timers.items()}
            due = min(left, key=left.__getitem__, default=None)
            if due is not None and left[due] <= 0:
                del self._timers[due]
                return TimerDue(due)
            wait = TICK if due is None else min(TICK, left[due])
            try:
                return self._control.get(timeout=wait)
            except queue.Empty:
                continue

    def _at(self, timer: Timer, when: float) -> None:
        """Run `timer` at `when` on self.clock."""
        self._timers[timer] = (True, when)

    def _in(self, timer: Timer, seconds: float) -> None:
        """Run `timer` after `seconds` of real time."""
        self._timers[timer] = (False, time.monotonic() + seconds)

    def _cancel(self, *timers: Timer) -> None:
        for timer in timers:
            self._timers.pop(timer, None)

    def _start_session(self) -> None:
        """Connect (a new session thread), showing what the operator should expect."""
        self._cancel(Timer.RETRY, Timer.BAN, Timer.QR, Timer.QR_LOGIN, Timer.SILENT)
        self._pairing.new_round()
        self._session_connected = False
        if self._paired is None:
            self._paired = self.ops.has_session(self.session_db)
            restrict(self.session_db)
        if self._paired is False:
            self._report(ConnectionState.PAIRING, self._pairing.detail())
        elif self._repair_pending:
            self._report(ConnectionState.CONNECTING,
                         ConnectionDetail("re-pair: connecting to WhatsApp to log the old device out first"))
        else:
            self._report(ConnectionState.CONNECTING, ConnectionDetail("connecting to WhatsApp"))
        # neonize says nothing while a pairing attempt has shown no code: a deadline does.
        self._at(Timer.SILENT, self.clock() + self.silent_wait)
        self._sessions += 1
        number = self._sessions
        thread = threading.Thread(target=self._session_main, args=(number,), name=f"whatsapp-session-{number}",
                                  daemon=True)
        self._session = (number, thread)
        thread.start()

    def _session_main(self, number: int) -> None:
        error: BaseException | None = None
        try:
            self.ops.run(self._client)
        except Exception as e:  # the first connection failed: the supervisor backs off
            error = e
        finally:
            self._control.put(SessionEnded(number, error))

    def _end_session(self, then: After) -> None:
        """End the running session, then do `then` (see _after); at once if none runs."""
        self._gate.close()
        self._cancel(Timer.SILENT)
        if self._session is None:
            self._after(then)
            return
        self._ending = then
        self._end_tries = 0
        self._stop_client()
        self._in(Timer.END_WAIT, self.end_poll)

    def _stop_client(self) -> None:
        """Ask neonize to end the session: once no call may still be reading its client table."""
        self._gate.settle()
        try:
            self.ops.end(self._client)
        except Exception as e:
            log.warning("stopping the WhatsApp session: %s", e)

    def _session_failed(self, what: str) -> None:
        """This session brings nothing (refused, silent, pairing failed): end it, try again after the backoff."""
        self._retry_in = self._backoff.next()
        log.warning("%s; trying again in %.0f s", what, self._retry_in)
        self._report(ConnectionState.RECONNECTING, ConnectionDetail(
            f"{what} (attempt {self._backoff.failures}); next try in {self._retry_in:.0f} s"))
        self._end_session(After.RETRY)

    def _timer_end_wait(self) -> None:
        if self._session is None:
            return
        number, thread = self._session
        if thread.is_alive() and self._end_tries < self.end_tries:
            # stop() before neonize set the session up does nothing: ask again.
            self._end_tries += 1
            self._stop_client()
            self._in(Timer.END_WAIT, self.end_poll)
            return
        if thread.is_alive():
            log.warning("WhatsApp session %d does not end; leaving it behind", number)
            self.ops.abandon(self._client)
        self._cmd_session_ended(number, None)

    def _cmd_session_ended(self, number: int, error: BaseException | None) -> None:
        if self._session is None or self._session[0] != number:
            return
        self._session = None
        self._cancel(Timer.END_WAIT, Timer.SILENT)
        self._gate.close()
        then, self._ending = self._ending, None
        if then is not None:
            self._after(then)
            return
        if self._stopped:
            return
        # It ended by itself: the first connection failed (neonize raises at once), or neonize gave up.
        if self._session_connected:
            self._backoff.reset()
        delay = self._backoff.next()
        reason = f"cannot connect to WhatsApp: {error}" if error is not None else "the WhatsApp session ended"
        log.warning("%s; trying again in %.0f s", reason, delay)
        self._report(ConnectionState.RECONNECTING, ConnectionDetail(
            f"{reason} (attempt {self._backoff.failures}); next try in {delay:.0f} s"))
        self._in(Timer.RETRY, delay)

    def _after(self, then: After) -> None:
        """What follows the end of a session."""
        if self._stopped:
            return
        match then:
            case After.IDLE:
                pass
            case After.BAN:
                self._at(Timer.BAN, self._ban_until + BAN_MARGIN)
            case After.RELINK:
                # whatsmeow deletes a logged-out device itself; what is left would only log out again.
                if self.ops.has_session(self.session_db):
                    self.ops.discard_session(self.session_db)
                self._paired = False
                self._start_session()
            case After.RETRY:
                self._in(Timer.RETRY, self._retry_in)
            case After.RESTART:
                self._start_session()

    def _timer_retry(self) -> None:
        if self._session is None:
            self._start_session()

    def _timer_ban(self) -> None:
        if self._session is None:
            log.info("the WhatsApp ban should be over; connecting again")
            self._start_session()

    def _timer_silent(self) -> None:
        """A new session has shown no QR code and not connected in time: neonize would wait for ever."""
        if self._session is None or self._ending is not None or self._session_connected or self._pairing.codes:
            return
        wait = self.silent_wait
        if self._paired is False:
            what = (f"WhatsApp showed no QR code within {wait:.0f} s and gave no reason (is web.whatsapp.com "
                    f"reachable from this machine?)")
        else:
            what = f"WhatsApp did not confirm the connection within {wait:.0f} s"
        self._session_failed(what)

    def _shut_session(self) -> None:
        """On stop: end the session and wait for it, briefly."""
        self._gate.close()
        if self._session is None:
            return
        number, thread = self._session
        for _ in range(min(self.end_tries, 3)):  # shutting down: a stuck session is not waited for long
            self._stop_client()
            thread.join(self.end_poll)
            if not thread.is_alive():
                return
        log.warning("WhatsApp session %d did not end; leaving it behind", number)
        self.ops.abandon(self._client)

    # -- supervisor commands (from handlers and the actor) ----------------------------------------

    def _cmd_qr(self, payload: str) -> None:
        if self._session is None or self._ending is not None:
            return
        self._gate.open()  # a QR code comes from a session that set neonize up
        self._cancel(Timer.SILENT)
        now = self.clock()
        if not self._pairing.qr_received(payload, now):
            return
        first = self._pairing.codes == 1
        if self.pair_phone and first:
            self._ask_pair_code()
        if not self._pairing.pair_code:
            print_qr(payload, QR_FIRST if first else QR_NEXT, self.terminal)
        self._report(ConnectionState.PAIRING, self._pairing.detail())
        check = self._pairing.check_at()
        if check is not None:
            self._at(Timer.QR, check)

    def _ask_pair_code(self) -> None:
        try:
            code = self._gate.call(lambda: self.ops.pair_code(self._client, self.pair_phone), self.call_timeout,
                                   "pairing code")
        except Exception as e:
            log.error("no pairing code for +%s (%s); scan the QR code instead", self.pair_phone, e)
            return
        self._pairing.pair_code = code
        log.info("WhatsApp pairing code issued for +%s", self.pair_phone)
        print_pair_code(code, self.pair_phone, self.terminal)

    def _cmd_login_status(self, status: str) -> None:
        """How whatsmeow's QR channel ended. This session brings nothing more unless it paired:
        neonize's Go side now waits for a device id and delivers no event."""
        if self._session is None or self._ending is not None:
            return
        self._cancel(Timer.SILENT)
        match status:
            case "success":
                self._cmd_paired(True, "")
                self._in(Timer.QR_LOGIN, PAIRED_WAIT)
            case "err-client-outdated":
                self._cmd_outdated()
            case "timeout" if self._pairing.codes:
                log.info("WhatsApp ended the pairing attempt: its QR codes ran out")
                self._qr_round_over()
            case "err-scanned-without-multidevice":
                self._pairing.note = ("the phone that scanned the code cannot link devices: update WhatsApp "
                                      "on it, then scan again")
                log.warning("WhatsApp pairing: %s", self._pairing.note)
                self._report(ConnectionState.PAIRING, self._pairing.detail())
            case "timeout":
                self._session_failed("WhatsApp closed the connection before showing a QR code "
                                     "(login status: timeout)")
            case _:
                self._session_failed(f"WhatsApp ended the pairing attempt (login status: {status or 'none'})")

    def _timer_qr(self) -> None:
        """The QR code's time is up: renew the pairing attempt unless someone just scanned."""
        now = self.clock()
        if self._session is None or not self._pairing.showing:
            return
        if not self._pairing.expired(now):
            self._at(Timer.QR, self._pairing.check_at() or now)
            return
        self._qr_round_over()

    def _qr_round_over(self) -> None:
        """A pairing attempt's codes are used up: wait for a last-moment scan, or start a new attempt."""
        self._cancel(Timer.QR)
        if self.ops.has_session(self.session_db):
            log.info("the QR code was scanned; waiting for WhatsApp to finish the login")
            self._pairing.new_round()
            self._report(ConnectionState.CONNECTING, ConnectionDetail("paired; logging in"))
            self._in(Timer.QR_LOGIN, PAIRED_WAIT)
            return
        self._pairing.rounds += 1
        self._pairing.new_round()
        if self._pairing.exhausted:
            log.warning("nobody scanned the WhatsApp QR code; press re-pair on the panel to try again")
            self._report(ConnectionState.PAIRING, self._pairing.detail())
            self._end_session(After.IDLE)
        else:
            log.info("the WhatsApp QR code expired; starting a new pairing attempt")
            self._end_session(After.RESTART)

    def _timer_qr_login(self) -> None:
        if self._session is not None and not self._session_connected:
            log.warning("the login after the QR scan did not complete; connecting again")
            self._end_session(After.RESTART)

    def _cmd_paired(self, ok: bool, error: str) -> None:
        if ok:
            self._paired = True
            self._pairing.reset()
            self._cancel(Timer.QR, Timer.SILENT)
            log.info("WhatsApp paired")
            self._report(ConnectionState.CONNECTING, ConnectionDetail("paired; logging in"))
        else:
            log.warning("WhatsApp pairing failed: %s", error)

    def _cmd_connected(self) -> None:
        if self._session is None or self._ending is not None:
            return
        self._session_connected = True
        self._paired = True
        self._backoff.reset()
        self._pairing.reset()
        self._cancel(Timer.QR, Timer.QR_LOGIN, Timer.RETRY, Timer.SILENT)
        self._gate.open()
        restrict(self.session_db)
        ids = convert.own_ids(getattr(self._client, "me", None))
        with self._lock:
            self._own_ids = ids or self._own_ids
        if self._repair_pending:
            self._repair_pending = False
            self._cancel(Timer.REPAIR)
            self._logout_and_relink()
            return
        log.info("connected to WhatsApp as %s", ", ".join(sorted(ids)) or "?")
        self._report(ConnectionState.CONNECTED, ConnectionDetail())
        self._want_groups(force=True)

    def _cmd_disconnected(self) -> None:
        if self._state is ConnectionState.CONNECTED and self._ending is None:
            self._report(ConnectionState.RECONNECTING,
                         ConnectionDetail("connection lost; whatsmeow is reconnecting"))

    def _cmd_connect_failure(self, reason: str, message: str) -> None:
        # whatsmeow sends ConnectFailure only for failures it does not reconnect from by itself
        # (it expects the disconnect): this session is over; a new one after the backoff.
        if self._state not in (ConnectionState.CONNECTED, ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            return
        self._session_failed(f"WhatsApp refused the connection: {reason} {message}".strip())

    def _cmd_sink_failed(self, error: str) -> None:
        """The bot could not record received messages (a disk error): end the session so that
        nothing more is received and acknowledged, and try again after the backoff."""
        if self._ending is not None or self._session is None:
            return
        self._retry_in = self._backoff.next()
        log.error("receiving from WhatsApp paused: the bot cannot record messages (%s); trying again in %.0f s",
                  error, self._retry_in)
        self._report(ConnectionState.RECONNECTING, ConnectionDetail(
            f"the bot cannot record incoming messages ({error}); receiving paused, next try in {self._retry_in:.0f} s"))
        self._end_session(After.RETRY)

    def _cmd_logged_out(self, reason: str) -> None:
        log.error("WhatsApp logged this bot out (%s): pairing again", reason)
        self._report(ConnectionState.LOGGED_OUT, ConnectionDetail(f"logged out by WhatsApp ({reason}); pairing again"))
        self._pairing.reset()
        self._end_session(After.RELINK)

    def _cmd_banned(self, expire: float, reason: str) -> None:
        # A ban without its length (no expiry from the server) is waited out for a while too,
        # rather than connecting again at once, against the ban.
        self._ban_until = self.clock() + (expire if expire > 0 else UNKNOWN_BAN_WAIT)
        seconds = self._ban_until - self.clock()
        log.error("WhatsApp banned this number temporarily (%s) for %.0f s: all sending is paused", reason, seconds)
        self._report(ConnectionState.BANNED, ConnectionDetail(
            f"temporarily banned by WhatsApp for {seconds:.0f} s ({reason}); all sending is paused",
            expires_at=self._ban_until, reason=reason))
        self._end_session(After.BAN)

    def _cmd_replaced(self) -> None:
        log.error("another instance connected with this WhatsApp session; this one stops")
        self._report(ConnectionState.STOPPED, ConnectionDetail(
            "replaced: another instance connected with this WhatsApp session; stop it, then restart this bot"))
        self._end_session(After.IDLE)

    def _cmd_outdated(self) -> None:
        message = outdated_message()
        log.error("%s", message)
        self._report(ConnectionState.STOPPED, ConnectionDetail(message))
        self._end_session(After.IDLE)

    def _cmd_repair(self) -> None:
        """Unlink the old device (logging it out needs a connection) and pair a new one."""
        log.warning("re-pairing WhatsApp: this session is unlinked and a new one is paired")
        self._pairing.reset()
        self._repair_pending = False
        self._cancel(Timer.RETRY, Timer.BAN, Timer.QR, Timer.QR_LOGIN, Timer.SILENT, Timer.REPAIR)
        if self._session is not None and self._state is ConnectionState.CONNECTED and self._gate.is_open:
            self._logout_and_relink()
            return
        if self._state is ConnectionState.BANNED:
            self._relink(f"the old device could not be logged out during the ban (connecting would go against "
                         f"it): remove it {LINKED_DEVICES}")
            return
        linked = self._paired if self._paired is not None else self.ops.has_session(self.session_db)
        if not linked:
            self._relink("")  # nothing linked, nothing to log out
            return
        # Linked but not connected: connect first, for a while, so that the phone forgets it.
        self._repair_pending = True
        self._at(Timer.REPAIR, self.clock() + self.repair_wait)
        if self._session is None:
            self._start_session()
        else:  # a session is reconnecting: its Connected logs the old device out
            self._report(ConnectionState.CONNECTING,
                         ConnectionDetail("re-pair: connecting to WhatsApp to log the old device out first"))

    def _timer_repair(self) -> None:
        if self._repair_pending:
            self._repair_pending = False
            self._relink(f"WhatsApp could not be reached within {self.repair_wait:.0f} s to log the old device "
                         f"out: remove it {LINKED_DEVICES}")

    def _logout_and_relink(self) -> None:
        try:
            self._gate.call(lambda: self.ops.logout(self._client), self.call_timeout, "logout")
        except Exception as e:  # the session file is moved aside all the same
            self._relink(f"the old device could not be logged out ({e}): remove it {LINKED_DEVICES}")
            return
        log.info("the old WhatsApp device is logged out")
        self._relink("")

    def _relink(self, note: str) -> None:
        """End the session, move its file aside and pair a new device; `note` says what the
        operator still has to do (shown while pairing, and logged)."""
        if note:
            log.warning("re-pair: %s", note)
        self._pairing.note = note
        self._end_session(After.RELINK)


def _guarded(handler: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """A handler that logs its own exceptions: neonize would swallow them."""

    def run(client: Any, event: Any) -> None:
        try:
            handler(client, event)
        except Exception:
            log.exception("WhatsApp event handler %s failed", getattr(handler, "__name__", handler))

    return run


def _enum_name(enum: Any, value: int) -> str:
    try:
        return str(enum.Name(value)).lower().replace("_", " ")
    except ValueError:
        return str(value)
