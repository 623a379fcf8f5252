"""The vocabulary of the actor system: every message that crosses an actor boundary.

Read this file first. Messages are frozen dataclasses of plain data because they travel
between processes as pickles. Requests that expect an answer carry a `request_id`, echoed in
the reply, so a late reply to a timed-out request is recognised and dropped.

    run.py ──StartSystem──▶ Supervisor ──OpenDatabase──▶ PersistenceActor
                               │  ──StartGateway──▶ GatewayActor ◀──▶ transport (sandbox/WhatsApp)
                               │  ──StartHost──▶ GroupHost ──InitGroup──▶ GroupActor (one per chat group)
    GatewayActor ──InboundBatch──▶ Supervisor ──GroupInbound──▶ GroupActor
    GroupHost ──LoadGroups──▶ PersistenceActor ──GroupsLoaded (Packed states)──▶ GroupHost
    GroupActor ──Persist──▶ PersistenceActor ──Persisted──▶ GroupActor
    GroupActor ──SendText──▶ GatewayActor ──SendResult──▶ GroupActor
    panel ──OrderCommand / UpdateGroup──▶ Supervisor ──▶ GroupActor ──CommandDone──▶ panel
    panel ──ListOrders / GetOrder / ListGroups / GetReport──▶ PersistenceActor ──▶ panel
    panel ──ListUsers / SaveUser──▶ Supervisor ──▶ PersistenceActor ──QueryResult / CommandDone──▶ panel
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from config import Config
from domain.admins import AdminRoster
from domain.chat import ChatMessage, ConnectionDetail, ConnectionState, GroupsChange, Quote
from domain.desk_events import SendKey, StoredGroup
from domain.records import Record
from domain.shop import ShopSettings

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
    checkpoints_missing: int = 0  # groups whose last check counts did not make it before the close
    checkpoints_saved: int = 0  # groups whose last check counts are on disk (confirmed by the journal)


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
    shop: dict[str, Any] = field(default_factory=dict)  # the shop's settings as the panel left them
    shop_audit: tuple[dict[str, Any], ...] = ()  # who changed the shop's settings, oldest first
    stock_left: int | None = None
    placements: dict[str, str] = field(default_factory=dict)  # group id -> its shard (several machines)


@dataclass(frozen=True)
class DatabaseFailed:
    error: str


@dataclass(frozen=True)
class Epoch:
    """Incarnation of a GroupActor: (boot of the system, restart count). Only the newest may write."""

    boot: int
    n: int


@dataclass(frozen=True)
class LoadGroups:
    """GroupHost → PersistenceActor: the stored state of these groups, each under its new
    epoch (from now on only that incarnation may write); answered with GroupsLoaded."""

    groups: tuple[tuple[str, Epoch], ...]
    horizon: float  # archived orders older than this are not sent back


T = TypeVar("T")


@dataclass(frozen=True)
class Packed(Generic[T]):
    """A value pickled once by its sender and opened only by its last receiver: a group's
    stored state passes its host as bytes (unpickling and pickling again 100,000 orders was
    ~40 % of the hosts' CPU in a restart at 1,000 groups)."""

    data: bytes

    @classmethod
    def of(cls, value: T) -> Packed[T]:
        return cls(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def open(self) -> T:
        value: T = pickle.loads(self.data)
        return value


@dataclass(frozen=True)
class LoadedGroup:
    group_id: str
    epoch: Epoch
    stored: Packed[StoredGroup] | None  # None: refused (a newer incarnation owns the group)
    refused: str = ""


@dataclass(frozen=True)
class GroupsLoaded:
    groups: tuple[LoadedGroup, ...]


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
    shop: ShopSettings | None = None  # its payment-number keywords decide which messages are recorded


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
class GroupSpec:
    """What every group of a host shares: the config, the actors it writes and sends to, and
    the shop as it is (kept current by the host, so a restarted group starts from the news)."""

    config: Config
    persistence: Any
    gateway: Any
    boot: int
    own_ids: frozenset[str] = frozenset()
    admins: AdminRoster = AdminRoster()
    shop: ShopSettings = ShopSettings()
    floor: float = 0.0  # install time: history before it never becomes an order
    owner: Owner | None = None
    clock: Any = None  # tests inject a FakeClock (simpleSystemBase passes it by reference)


@dataclass(frozen=True)
class GroupSlot:
    """A group a host keeps: its id, its letter code (which also names its board slot), its name."""

    group_id: str
    code: str
    name: str
    n: int = 0  # its last incarnation in this boot: the next gets a higher epoch
    replay: bool = False  # moved here from another host: the inbox hands it what the old one had not made durable


@dataclass(frozen=True)
class StartHost:
    """Supervisor → GroupHost: keep these groups (start each from its stored state)."""

    spec: GroupSpec
    groups: tuple[GroupSlot, ...]


@dataclass(frozen=True)
class HostGroups:
    """Supervisor → GroupHost: keep these groups too (groups seen for the first time)."""

    groups: tuple[GroupSlot, ...]


@dataclass(frozen=True)
class InitGroup:
    """GroupHost → a new GroupActor: who it is and everything it starts from, in one message."""

    slot: GroupSlot
    epoch: Epoch
    spec: GroupSpec | None  # None: the spec the group's process inherited from its host's (actors.group)
    stored: Packed[StoredGroup]

    @property
    def group_id(self) -> str:
        return self.slot.group_id


@dataclass(frozen=True)
class GroupReady:
    """GroupActor → its host: running (or not: `error` says why, e.g. an unreadable stored rate)."""

    group_id: str
    epoch: Epoch
    error: str = ""
    pid: int = 0


@dataclass(frozen=True)
class ReadyGroup:
    group_id: str
    epoch: Epoch
    address: Any
    pid: int = 0
    error: str = ""


@dataclass(frozen=True)
class GroupsReady:
    """GroupHost → Supervisor: these groups run now (or could not start), in one message."""

    groups: tuple[ReadyGroup, ...]


@dataclass(frozen=True)
class GroupDown:
    """GroupHost → Supervisor: this group's actor exited; its host restarts it (messages for it
    go to the host meanwhile, which holds them)."""

    group_id: str


@dataclass(frozen=True)
class ForGroup:
    """Supervisor → GroupHost: a message for one of its groups that is not running right now."""

    group_id: str
    message: Any


@dataclass(frozen=True)
class ToGroups:
    """Supervisor → GroupHost: a message for every group it keeps (news for all)."""

    message: Any


@dataclass(frozen=True)
class ReloadGroups:
    """Supervisor → GroupHost: the PersistenceActor was restarted (boot `boot`, address
    `persistence`): start every group again from what it wrote."""

    boot: int
    persistence: Any


@dataclass(frozen=True)
class FinalCheckpoint:
    """GroupActor → its host at a stop: the group's last check counts, written by the host with
    every other group's in one go."""

    group_id: str
    epoch: Epoch
    records: tuple[Record, ...]


@dataclass(frozen=True)
class PersistMany:
    """GroupHost → PersistenceActor at a stop: many groups' last records, one fsync; answered
    with PersistedMany."""

    writes: tuple[tuple[str, Epoch, tuple[Record, ...]], ...]


@dataclass(frozen=True)
class PersistedMany:
    saved: tuple[str, ...]
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostStopped:
    """GroupHost → Supervisor: its groups stopped; `missing` did not hand in their last checkpoint."""

    saved: int
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupRoutes:
    """→ GatewayActor: where these groups' messages go (address None: to the Supervisor, which
    hands them to the group's host while it restarts)."""

    routes: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ShopChanged:
    """Supervisor → every GroupActor and the GatewayActor: the shop's settings changed."""

    settings: ShopSettings


@dataclass(frozen=True)
class SaveShop:
    """Supervisor → PersistenceActor: write the shop's records (settings, admins); answered with
    ShopSaved once they are durable."""

    request: Any  # the Supervisor's own: what to do once it is saved
    records: tuple[Record, ...]


@dataclass(frozen=True)
class SavePlacement:
    """Supervisor → PersistenceActor: where groups run now (GroupRecords of their shard), the
    same durable write as the shop's records; answered with ShopSaved."""

    request: Any
    records: tuple[Record, ...]


@dataclass(frozen=True)
class HostAlive:
    """GroupHost → Supervisor, every cluster.check_in with several machines: this host (and so its
    machine) is reachable; three missed and its shard's groups start elsewhere."""


@dataclass(frozen=True)
class DropGroups:
    """Supervisor → GroupHost: these groups run elsewhere now; stop their actors and forget them
    (a late write of theirs is refused: the new host's load took a higher epoch)."""

    group_ids: tuple[str, ...]


@dataclass(frozen=True)
class MoveGroup:
    """Panel → Supervisor: run this group on that shard (answered with CommandDone)."""

    request_id: str
    group_id: str
    shard: str
    by: str
    reply_to: Any = None


@dataclass(frozen=True)
class ShopSaved:
    request: Any
    ok: bool = True
    error: str = ""
    stock_left: int | None = None  # the diamonds left once the records are applied


@dataclass(frozen=True)
class StockOut:
    """PersistenceActor → Supervisor: approvals took the last of the stock (it is `left` now)."""

    left: int


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
    """Where a group's actor is, or (host given) a group host (QueryResult data: its address, or 404)."""

    request_id: str
    group_id: str = ""
    host: int | None = None


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


# --- the shop's day (issue 13) ----------------------------------------------------------------


@dataclass(frozen=True)
class GetShop:
    """→ QueryResult(200, <ShopView>) (answered by the Supervisor; see CONTRACT in docs)."""

    request_id: str
    reply_to: Any = None


@dataclass(frozen=True)
class UpdateShop:
    """→ CommandDone(200, result=<ShopView>) | CommandDone(400, error="<field>: why")."""

    request_id: str
    patch: dict[str, Any]
    by: str  # "admin:<username>"
    reply_to: Any = None


@dataclass(frozen=True)
class SendReminders:
    """Send groups their due → CommandDone(200, result={"sent": [group ids], "skipped": {group id: why}})."""

    request_id: str
    group_ids: tuple[str, ...] = ()  # () = every group whose due is over `min_due`
    min_due: str = "0"  # decimal string; groups with due > min_due
    by: str = ""
    reply_to: Any = None
