"""Intake: which chat messages become orders (exactly once per message), which get a one-time
"not understood" reply, which are ignored and why; and the guards on a new order — the
duplicate question, the due limit, auto-approval (SPEC §3.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Iterable

from domain.group import GroupBook, GroupSettings
from domain.orders import Order, Status, new_order
from domain.parsing import InvalidOrderText, OrderForms, OrderText, parse_order
from domain.shop import ShopNow


@dataclass(frozen=True, slots=True)
class Limits:
    """The intake rules' parameters (from config)."""

    min_diamonds: int
    max_diamonds: int
    max_age: float
    reply_invalid: bool
    duplicate_window: float = 0.0  # 0: no duplicate guard
    forms: OrderForms = OrderForms()  # which forms of order the shop takes

@dataclass(frozen=True, slots=True)
class Inbound:
    """The fields of a chat message intake needs (transport-neutral)."""

    message_id: str
    sender: str
    sender_alt: str
    sender_name: str
    text: str
    timestamp: float
    group_name: str = ""
    from_me: bool = False
    recovered: bool = False
    check_watermark: bool = False  # history replays only: live and inbox messages may arrive late
    confirmed: bool = False  # its sender said "yes" to the duplicate question: no guard again


@dataclass(slots=True)
class IntakeResult:
    new_orders: list[Order] = field(default_factory=list)
    invalid: list[tuple[Inbound, InvalidOrderText]] = field(default_factory=list)  # to answer once
    # Orders in a group whose rate nobody has set: answered, never billed at a guessed price.
    unpriced: list[Inbound] = field(default_factory=list)
    closed: list[Inbound] = field(default_factory=list)  # the shop is closed: answered, nothing taken
    over_stock: list[tuple[Inbound, int]] = field(default_factory=list)  # (message, diamonds left)
    # Held by the duplicate guard: (message, diamonds, the earlier order it repeats).
    held: list[tuple[Inbound, int, Order]] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)  # ids to record as handled
    ignored: dict[str, int] = field(default_factory=dict)  # reason -> count
    settings_changed: bool = False

    def ignore(self, reason: str) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1


def take_in(
    book: GroupBook,
    messages: Iterable[Inbound],
    *,
    now: float,
    limits: Limits,
    own_ids: frozenset[str] = frozenset(),
    shop: ShopNow = ShopNow(),
) -> IntakeResult:
    """Decide what a batch of messages does, and apply it to the book.

    Applies at once (ids reserved, orders added) so a duplicate arriving before the batch is
    durable is still recognised; the caller must persist the result before telling anyone."""
    result = IntakeResult()
    for msg in messages:
        if msg.from_me or msg.sender in own_ids:
            result.ignore("own message")
            continue
        parsed = parse_order(msg.text, limits.min_diamonds, limits.max_diamonds, limits.forms)
        if parsed is None:
            result.ignore("chat")
            continue
        if msg.message_id in book.seen:
            result.ignore("duplicate")
            continue
        if msg.timestamp < now - limits.max_age:
            result.ignore("too old")
            continue
        if msg.check_watermark and msg.timestamp < book.watermark:
            result.ignore("before watermark")
            continue
        book.seen[msg.message_id] = msg.timestamp
        result.seen[msg.message_id] = msg.timestamp
        book.watermark = max(book.watermark, msg.timestamp)
        if not book.settings.enabled:
            # Handled as nothing, for good: enabling the group later must not turn a replay of
            # this message into an order nobody placed since.
            result.ignore("group disabled")
            continue
        if msg.group_name and msg.group_name != book.settings.name:
            book.settings = replace(book.settings, name=msg.group_name)
            result.settings_changed = True
        if isinstance(parsed, InvalidOrderText):
            if limits.reply_invalid:
                result.invalid.append((msg, parsed))
            continue
        assert isinstance(parsed, OrderText)
        if not shop.open:
            result.closed.append(msg)
            continue
        if book.settings.rate is None:
            result.unpriced.append(msg)
            continue
        if shop.stock_left is not None and parsed.diamonds > shop.stock_left:
            result.over_stock.append((msg, shop.stock_left))
            continue
        if not msg.confirmed and limits.duplicate_window > 0:
            earlier = find_duplicate(book.orders.values(), user_id=msg.sender, user_alt=msg.sender_alt,
                                     diamonds=parsed.diamonds, now=msg.timestamp,
                                     window=limits.duplicate_window, player_id=parsed.player_id)
            if earlier is not None:
                result.held.append((msg, parsed.diamonds, earlier))
                continue
        order = new_order(
            order_id=f"{book.settings.code}{book.next_seq}",
            group_id=book.group_id,
            group_name=book.settings.name,
            user_id=msg.sender,
            user_alt=msg.sender_alt,
            user_name=msg.sender_name,
            message_id=msg.message_id,
            text=msg.text,
            diamonds=parsed.diamonds,
            rate=book.settings.rate,
            created_at=msg.timestamp,
            now=now,
            recovered=msg.recovered,
            player_id=parsed.player_id,
        )
        book.next_seq += 1
        book.put(order)
        result.new_orders.append(order)
    return result


# ---------------------------------------------------------------------------------------------
# Guards on a new order: the duplicate question, the due limit, auto-approval (SPEC §3.4).

AUTO_APPROVER = "system:auto-approve"  # the audit's `by` for an order approved without an admin
_NOT_DUPLICATES = frozenset({Status.CANCELLED, Status.DELETED})


def find_duplicate(orders: Iterable[Order], *, user_id: str, user_alt: str, diamonds: int, now: float,
                   window: float, player_id: str = "") -> Order | None:
    """The newest live order by the same person for the same diamonds and player within `window`
    s of `now`; 0 is off. Two players' orders of the same size are no duplicates."""
    # Either side of `now`: message times may run a little ahead, and late deliveries come out of order.
    if window <= 0:
        return None
    person = {user_id, user_alt} - {""}
    best: Order | None = None
    best_at = 0.0
    for o in orders:
        if (o.diamonds != diamonds or o.player_id != player_id or o.status in _NOT_DUPLICATES
                or not person & {o.user_id, o.user_alt}):
            continue
        at = o.created_at if o.created_at is not None else o.received_at
        if abs(now - at) <= window and (best is None or at > best_at):
            best, best_at = o, at
    return best


def due_limit_exceeded(settings: GroupSettings, due_after: Decimal) -> bool:
    """Whether the group's due (with the new order counted) is over its limit; no limit, never."""
    return settings.due_limit is not None and due_after > settings.due_limit


def auto_approve_allowed(settings: GroupSettings, order: Order, due_after: Decimal) -> bool:
    """Whether an order is approved without an admin (audit by AUTO_APPROVER); a limit of 0 approves none."""
    return (settings.auto_approve and settings.auto_approve_max > 0
            and order.diamonds <= settings.auto_approve_max and not due_limit_exceeded(settings, due_after))


HELD_FOR_DUE = "held: the due limit was reached"  # the creation audit's note of such an order


def hold_for_due(order: Order) -> Order:
    """A new order taken over the due limit, marked so (in its creation audit entry, durable
    with it) to be approved automatically once payments make room, where auto-approval is on."""
    first, *rest = order.audit
    note = f"{first.note}; {HELD_FOR_DUE}" if first.note else HELD_FOR_DUE
    return replace(order, audit=(replace(first, note=note), *rest))


def held_for_due(order: Order) -> bool:
    """Still pending since the due limit held it (an edit in the chat keeps it held)."""
    return order.status is Status.PENDING and bool(order.audit) and HELD_FOR_DUE in order.audit[0].note


def releasable(book: GroupBook) -> list[Order]:
    """Orders held by the due limit that auto-approval now approves, oldest first, each counted
    in the due before the next is judged."""
    held = sorted(filter(held_for_due, book.orders.values()), key=lambda o: (o.created_at or o.received_at, o.id))
    out: list[Order] = []
    due = book.due
    settings = book.settings
    if not (settings.auto_approve and settings.auto_approve_max > 0):
        return out
    for order in held:
        if order.diamonds > settings.auto_approve_max:
            continue  # an admin approves this one, whatever the due
        if due_limit_exceeded(settings, due + order.amount):
            break  # first come, first served: a later, smaller order does not jump the queue
        out.append(order)
        due += order.amount
    return out


def find_by_message(orders: Iterable[Order], message_id: str) -> Order | None:
    """The order a chat message is about: its own message, or the bot's receipt or delivery of it."""
    if not message_id:
        return None
    for o in orders:
        if message_id in (o.message_id, o.receipt.message_id, o.delivery.message_id):
            return o
    return None
