"""The vocabulary of the actor system: every message that crosses an actor boundary.

Read this file first. Messages are frozen dataclasses of plain data because they travel
between processes as pickles. Requests that expect an answer carry a `request_id`, echoed in
the reply, so a late reply to a timed-out request is recognised and dropped.

    run.py ──StartSystem──▶ Supervisor ──OpenDatabase──▶ PersistenceActor
                               │  ──StartGateway──▶ GatewayActor ◀──▶ transport (sandbox/WhatsApp)
                               │  ──InitGroup──▶ GroupActor (one per chat group)
    GatewayActor ──InboundBatch──▶ Supervisor ──GroupInbound──▶ GroupActor
    GroupActor ──LoadGroup / Persist──▶ PersistenceActor ──GroupLoaded / Persisted──▶ GroupActor
    GroupActor ──SendText──▶ GatewayActor ──SendResult──▶ GroupActor
    panel ──OrderCommand / UpdateGroup──▶ Supervisor ──▶ GroupActor ──CommandDone──▶ panel
    panel ──ListOrders / GetOrder / ListGroups / GetReport──▶ PersistenceActor ──▶ panel
    panel ──ListUsers / SaveUser──▶ Supervisor ──▶ PersistenceActor ──QueryResult / CommandDone──▶ panel
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config import Config
from domain.admins import AdminRoster
from domain.chat import ChatMessage, ConnectionDetail, ConnectionState, GroupsChange, Quote
from domain.desk_events import SendKey, StoredGroup
from domain.records import Record

# --- system lifecycle -------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The process that started the system; actors exit when it is gone (see actors/watchdog)."""

    pid: int
    start_time: int
    sid: int


@dataclass(frozen=True)
class StartSystem:
    config: Config
    owner: Owner | None = None
    clock: Any = None
    transport: Any = None  # tests pass a FakeTransport; otherwise built from config.gateway.kind


@dataclass(frozen=True)
class SystemStarted:
    boot: int
    persistence: Any  # ActorAddress
    gateway: Any
    pgid: int = 0  # process group of the actor processes (run.py records it to clean up after a crash)


@dataclass(frozen=True)
class SystemFailed:
    error: str


@dataclass(frozen=True)
class StopSystem:
    """Flush what is in memory (check counts) before the system shuts down."""


@dataclass(frozen=True)
class SystemStopped:
    pass


@dataclass(frozen=True)
class GroupStopped:
    """A GroupActor's answer to StopSystem, sent once its last checkpoint is on disk."""

    group_id: str


@dataclass(frozen=True)
class SendingStopped:
    """The GatewayActor's answer to StopSystem: it hands nothing more to the transport, and the
    results of what was in flight went to their groups (so they are written before the end)."""

    unfinished: int = 0  # sends still without a result when it stopped waiting


# --- persistence ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenDatabase:
    config: Config
    owner: Owner | None = None
    clock: Any = None


@dataclass(frozen=True)
class DatabaseOpened:
    boot: int
    installed_at: float
    groups: tuple[tuple[str, str, str], ...]  # (group id, code, name) of every known group
    pid: int = 0
    admins: AdminRoster = AdminRoster()  # the shop's admins, with when each was one


@dataclass(frozen=True)
class DatabaseFailed:
    error: str


@dataclass(frozen=True)
class Epoch:
    """Incarnation of a GroupActor: (boot of the system, restart count). Only the newest may write."""

    boot: int
    n: int


@dataclass(frozen=True)
class LoadGroup:
    group_id: str
    epoch: Epoch
    horizon: float  # archived orders older than this are not sent back


@dataclass(frozen=True)
class GroupLoaded:
    group_id: str
    epoch: Epoch
    stored: StoredGroup  # settings None: a group never seen before


@dataclass(frozen=True)
class Batch:
    """Several messages for one actor in one transmission (Thespian's TCP transport waits for
    an acknowledgement per message, so fewer, larger messages carry far more). Every actor
    that can receive effects handles it (actors/base.py); the panel's bridge unwraps it."""

    items: tuple[Any, ...]


@dataclass(frozen=True)
class Persist:
    """Records to make durable, in order. Once they are fsynced the PersistenceActor sends
    `effects` — (address, message) pairs, merged into one Batch per address and commit —
    and, if `ack`, Persisted to the writer."""

    group_id: str
    epoch: Epoch
    batch_id: int
    records: tuple[Record, ...]
    sync: bool = True  # False: a checkpoint that may ride on the next fsync
    effects: tuple[tuple[Any, Any], ...] = ()
    ack: bool = True


@dataclass(frozen=True)
class Persisted:
    group_id: str
    batch_id: int


@dataclass(frozen=True)
class PersistRefused:
    """A write from a stale incarnation (fencing) or after a failed fsync; the writer must stop."""

    group_id: str
    batch_id: int
    reason: str


# --- chat in and out --------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundItem:
    message: ChatMessage
    inbox_seq: int = 0  # 0: not in the inbox (history replays are not recorded)


@dataclass(frozen=True)
class InboundBatch:
    items: tuple[InboundItem, ...]


@dataclass(frozen=True)
class GroupInbound:
    items: tuple[InboundItem, ...]


@dataclass(frozen=True)
class InboundHandled:
    """The group made these inbox entries durable (as orders, replies, or nothing)."""

    inbox_seqs: tuple[int, ...]


@dataclass(frozen=True)
class SendText:
    """Queue a chat message. `key` identifies what it is about (a SendKey, a ReportKey): a
    newer SendText with the same key replaces one still waiting in the queue."""

    key: SendKey | Any
    group_id: str
    text: str
    quote: Quote | None = None
    priority: int = 1  # 0 delivery messages, 1 receipts, 2 everything else
    reply_to: Any = None  # where the SendResult goes (the group; the sender if None)


@dataclass(frozen=True)
class SendResult:
    key: SendKey | Any
    ok: bool
    message_id: str = ""
    error: str = ""
    withdrawn: bool = False  # taken back before it was sent (WithdrawSend)


@dataclass(frozen=True)
class WithdrawSend:
    """Take back a message still waiting in the outbox; answered with a withdrawn SendResult if
    it was (a message already handed to the transport gets its own result as usual)."""

    key: SendKey | Any
    reply_to: Any = None


@dataclass(frozen=True)
class StartGateway:
    """Answered with QueryResult (200 or 500 with the reason)."""

    request_id: str
    config: Config
    transport: Any = None  # tests pass a FakeTransport; otherwise built from config.gateway.kind
    owner: Owner | None = None
    clock: Any = None


@dataclass(frozen=True)
class ReplayInbox:
    """Send a restarted group whatever the inbox holds for it unhandled."""

    group_id: str


@dataclass(frozen=True)
class GatewayStatus:
    """The chat connection as the panel shows it: its state and what goes with it, the queue."""

    state: ConnectionState
    detail: ConnectionDetail = ConnectionDetail()
    queued: int = 0
    paused_until: float | None = None
    sent_last_hour: int = 0


@dataclass(frozen=True)
class GetGatewayStatus:
    request_id: str
    reply_to: Any = None


@dataclass(frozen=True)
class RePair:
    """Unlink the WhatsApp session and pair again (the panel's re-pair button). Answered with
    QueryResult: 200 {"ok": true} once pairing restarts, 409 for a transport without pairing."""

    request_id: str
    reply_to: Any = None  # filled by the Supervisor when it forwards


# --- group actors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InitGroup:
    group_id: str
    code: str
    name: str
    epoch: Epoch
    config: Config
    persistence: Any
    gateway: Any
    own_ids: frozenset[str] = frozenset()
    admins: AdminRoster = AdminRoster()
    floor: float = 0.0  # install time: history before it never becomes an order
    owner: Owner | None = None
    clock: Any = None  # tests inject a FakeClock (simpleSystemBase passes it by reference)


@dataclass(frozen=True)
class GroupReady:
    group_id: str
    epoch: Epoch
    error: str = ""  # the group could not load (e.g. an unreadable stored rate)
    pid: int = 0


@dataclass(frozen=True)
class GroupRoute:
    """Supervisor → GatewayActor: send this group's messages straight to its actor (None:
    it is restarting; send them to the Supervisor, which holds them)."""

    group_id: str
    address: Any


@dataclass(frozen=True)
class GroupsSeen:
    """GatewayActor → Supervisor: what the transport learned of the groups the bot is in."""

    change: GroupsChange


@dataclass(frozen=True)
class GroupNews:
    """Supervisor → GroupActor: the group's name, and whether the bot's number is in it."""

    name: str
    present: bool = True


@dataclass(frozen=True)
class GatewayMoved:
    """The GatewayActor was restarted and has a new address."""

    address: Any


@dataclass(frozen=True)
class OwnIds:
    """The bot's own sender ids, learned when the transport connects."""

    ids: frozenset[str]


@dataclass(frozen=True)
class AdminsChanged:
    """The shop's admins changed (Supervisor → every GroupActor)."""

    roster: AdminRoster


# --- panel requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderCommand:
    request_id: str
    order_id: str
    action: str  # process | approve | cancel | delete
    by: str  # "admin:<name>", "whatsapp:<id>" or "system"
    reply_to: Any = None  # filled by the Supervisor when it forwards


@dataclass(frozen=True)
class UpdateGroup:
    request_id: str
    group_id: str
    patch: dict[str, Any]
    by: str
    reply_to: Any = None


@dataclass(frozen=True)
class CommandDone:
    """Answer to OrderCommand / UpdateGroup. `status` is an HTTP-like code: 200, 400, 404, 409, 503."""

    request_id: str
    status: int
    result: dict[str, Any] | None = None
    error: str = ""


@dataclass(frozen=True)
class ListOrders:
    request_id: str
    status: str = ""
    group: str = ""
    q: str = ""
    since: float | None = None
    until: float | None = None
    limit: int = 50
    offset: int = 0
    reply_to: Any = None  # filled by the Supervisor, which forwards panel reads


@dataclass(frozen=True)
class GetOrder:
    request_id: str
    order_id: str
    reply_to: Any = None  # filled by the Supervisor, which forwards panel reads


@dataclass(frozen=True)
class ListGroups:
    request_id: str
    reply_to: Any = None  # filled by the Supervisor, which forwards panel reads


@dataclass(frozen=True)
class GetReport:
    """The reconciliation report: counts, check buckets, issues, recent cycles."""

    request_id: str
    reply_to: Any = None  # filled by the Supervisor, which forwards panel reads


@dataclass(frozen=True)
class GetStatus:
    request_id: str


@dataclass(frozen=True)
class Locate:
    """Where a group's actor is (QueryResult data: its address, or 404)."""

    request_id: str
    group_id: str


@dataclass(frozen=True)
class QueryResult:
    request_id: str
    status: int
    data: Any = None
    error: str = ""


@dataclass(frozen=True)
class Ping:
    request_id: str


@dataclass(frozen=True)
class Pong:
    request_id: str
    detail: dict[str, Any] = field(default_factory=dict)


# --- live updates for the panel ---------------------------------------------------------------


@dataclass(frozen=True)
class Subscribe:
    """Ask for `Changed` after every durable write. A lease: renew it within SUBSCRIPTION_TTL."""

    request_id: str
    reply_to: Any = None  # filled by the Supervisor


SUBSCRIPTION_TTL = 60.0


@dataclass(frozen=True)
class Changed:
    """What one durable write changed: orders as {"record", "check"} views, group ids."""

    seq: int
    orders: tuple[dict[str, Any], ...]
    groups: tuple[str, ...]


# --- payments, ledgers, reports (issue 5) -----------------------------------------------------


@dataclass(frozen=True)
class RecordPayment:
    """A payment a group made (panel, API or `.paid` in the chat); answered with CommandDone
    whose result is {"payment": <stored payment>, "due": "<decimal>"}."""

    request_id: str
    group_id: str
    amount: str  # a decimal string; floats lose money
    method: str  # bkash | nagad | rocket | bank | cash | other
    reference: str = ""  # TrxID or bank reference
    note: str = ""
    by: str = ""  # "admin:<name>", "whatsapp:<id>"
    reply_to: Any = None
    # The request's own key: a retry with the same key gets the payment already recorded
    # (answered 200 with it) instead of a second one.
    client_key: str = ""
    # Record it although the group holds a payment with the same reference (TrxID); without
    # it such a payment is answered 409 with {"duplicate_of": <that payment>}.
    confirm_duplicate: bool = False


@dataclass(frozen=True)
class VoidPayment:
    """Void a mistaken payment: kept and listed, it no longer reduces the due. Answered with
    CommandDone: 200 {"payment", "due"}, 404 unknown payment, 409 already void, 400 no reason."""

    request_id: str
    group_id: str
    payment_id: str
    reason: str
    by: str
    reply_to: Any = None


@dataclass(frozen=True)
class ListPayments:
    request_id: str
    group: str = ""
    since: float | None = None
    until: float | None = None
    limit: int = 100
    offset: int = 0
    reply_to: Any = None


@dataclass(frozen=True)
class GetLedger:
    """One group's account: billed orders and payments in time order with the running due."""

    request_id: str
    group_id: str
    since: float | None = None
    until: float | None = None
    reply_to: Any = None


@dataclass(frozen=True)
class GetDailyReport:
    """Per group for one local day (YYYY-MM-DD; "" = today): orders, diamonds, revenue,
    payments, due."""

    request_id: str
    day: str = ""
    reply_to: Any = None


@dataclass(frozen=True)
class SendDailyReport:
    """Send the daily report of `day` ("" today) to the admin numbers now (the timer sends
    this to the Supervisor at reports.daily_at)."""

    day: str = ""


# --- the panel's users (issue 13) -------------------------------------------------------------


@dataclass(frozen=True)
class ListUsers:
    """The panel's users, with their password hashes (the panel checks logins against them), and
    the audit of changes to them: QueryResult(200, {"users": [<user record>], "audit": [{"at",
    "by", "user", "change", "role"}, oldest first]}). Answered by the PersistenceActor."""

    request_id: str
    reply_to: Any = None  # filled by the Supervisor, which forwards panel reads


@dataclass(frozen=True)
class SaveUser:
    """Add a user, set its role or password, or remove it (domain.users.save_user); answered
    with CommandDone after the fsync: 200 {the user record without its hash}, 400 bad input,
    404 an unknown user to reset or remove, 409 removing or demoting the last owner."""

    request_id: str
    username: str
    role: str  # "owner" | "staff"; ignored when removing
    password_hash: str | None  # argon2id, made by the panel; None keeps the password
    by: str  # "admin:<name>"
    remove: bool = False
    reply_to: Any = None


# --- the shop (issue 13: /work/helpers/CONTRACT-13.md) ----------------------------------------


@dataclass(frozen=True)
class GetShop:            # → QueryResult(200, <ShopView>)   (answered by the Supervisor)
    request_id: str
    reply_to: Any = None


@dataclass(frozen=True)
class UpdateShop:         # → CommandDone(200, result=<ShopView>) | CommandDone(400, error="<field>: why")
    request_id: str
    patch: dict[str, Any]
    by: str               # "admin:<username>"
    reply_to: Any = None


@dataclass(frozen=True)
class SendReminders:      # → CommandDone(200, result={"sent": [group ids], "skipped": {group id: why}})
    request_id: str
    group_ids: tuple[str, ...] = ()   # () = every group whose due is over `min_due`
    min_due: str = "0"                # decimal string; groups with due > min_due
    by: str = ""
    reply_to: Any = None
