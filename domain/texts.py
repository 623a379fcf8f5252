"""The bot's chat texts in the chat's language: the configured templates, and the short
answers (refusals, hints) that are not templates yet."""

from __future__ import annotations

from datetime import date as Date
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Iterable, Mapping

from domain.clock import to_iso
from domain.commands import CommandError
from domain.money import taka
from domain.orders import Order, Status
from domain.payments import METHOD_LABELS, Payment
from domain.shop import ShopSettings

PENDING_LIST_MAX = 15  # lines of `pending_list`; the rest is summed up as "… +N"

# What each text is filled with (Texts below): a shop's own wording may use these placeholders
# and no others (domain.shop refuses the rest, which would only ever render empty). `{min}` and
# `{max}`, the order limits, fill every text.
_ORDER = ("order_id", "diamonds", "amount", "rate", "player_id")
EVERY_TEXT = ("min", "max")
OFFERS: dict[str, tuple[str, ...]] = {
    "received": _ORDER, "recovered": _ORDER, "delivered": _ORDER, "cancelled": _ORDER, "undone": _ORDER,
    "auto_approved": _ORDER, "edited": _ORDER, "withdrawn": _ORDER,
    "held_due": (*_ORDER, "due", "limit"), "duplicate": (*_ORDER, "minutes", "ago"),
    "out_of_stock": ("stock",), "rate_missing": ("group",), "due_reminder": ("group", "due"), "due": ("due",),
    "pending_list": ("count", "list"), "rate_set": ("rate",), "paid": ("amount", "method", "reference", "due"),
    "command_error": ("error",), "daily_report": ("date", "group", "orders", "diamonds", "revenue", "payments", "due"),
}


def offered(name: str) -> tuple[str, ...]:
    """The placeholders a text is filled with (a text not in OFFERS: the order limits only)."""
    return (*OFFERS.get(name, ()), *EVERY_TEXT)


class _Blank(dict[str, object]):
    """Template values where a placeholder the text has no value for renders empty."""

    def __missing__(self, key: str) -> str:
        return ""


class Texts:
    """Renders the templates of one language (the config loader checked their names and
    placeholders) and the fixed answers of the same language: the one place that picks the
    chat's language."""

    def __init__(self, templates: Mapping[str, str], min_diamonds: int, max_diamonds: int,
                 language: str = "bn", off: frozenset[str] = frozenset()) -> None:
        self.base = dict(templates)  # the config's, before the shop's changes
        self.templates = dict(templates)
        self.min_diamonds = min_diamonds
        self.max_diamonds = max_diamonds
        self.language = language if language in _PHRASES else "bn"
        self._phrases = _PHRASES[self.language]
        self.off = off  # texts the shop switched off (domain.shop.OPTIONAL_TEXTS)

    def with_shop(self, shop: ShopSettings) -> Texts:
        """The same texts with the shop's own wording and the ones it switched off."""
        texts = Texts(self.base, self.min_diamonds, self.max_diamonds, self.language, shop.texts_off)
        texts.templates = shop.templates(self.language, self.base)
        return texts

    def enabled(self, name: str) -> bool:
        """Whether the bot says this text (the optional ones can be switched off)."""
        return name not in self.off

    def closed_order(self) -> str:
        """An order while the shop is closed."""
        return self._render("closed_order")

    def out_of_stock(self, left: int) -> str:
        """An order bigger than the diamonds left."""
        return self._render("out_of_stock", stock=max(left, 0))

    def undone(self, order: Order) -> str:
        """The correction after an approval was undone (the delivery message had gone out)."""
        return self._render("undone", order)

    def auto_approved(self, order: Order) -> str:
        """An order approved without an admin (sent only when the shop switches it on)."""
        return self._render("auto_approved", order)

    def payment_numbers(self) -> str:
        """The shop's payment numbers and how to pay."""
        return self._render("payment_numbers")

    def due_reminder(self, group: str, due: Decimal) -> str:
        """A group's due, as a reminder."""
        return self._render("due_reminder", group=group, due=taka(due))

    def shop_notice(self, opened: bool) -> str:
        """What every group is told when the shop closes or opens."""
        return self._render("shop_opened" if opened else "shop_closed")

    def stock_out(self) -> str:
        """To the admins: the stock ran out and the shop closed."""
        return self._render("stock_out")

    def _render(self, name: str, order: Order | None = None, **extra: object) -> str:
        values = _Blank(min=self.min_diamonds, max=self.max_diamonds)
        if order is not None:
            values.update(diamonds=order.diamonds, amount=taka(order.amount), order_id=order.id, rate=str(order.rate),
                          player_id=order.player_id)
        values.update(extra)
        template = self.templates[name]
        if "{player_id}" in template and not values.get("player_id"):
            # A `.10` order has no player: the line that would show one is left out.
            template = "\n".join(line for line in template.split("\n") if "{player_id}" not in line)
        return template.format_map(values)

    def receipt(self, order: Order) -> str:
        """The confirmation that an order was taken (a recovered one says so)."""
        return self._render("recovered" if order.recovered else "received", order)

    def delivered(self, order: Order) -> str:
        """The delivery message of an approved order."""
        return self._render("delivered", order)

    def cancelled(self, order: Order) -> str:
        """The user is told the order was cancelled."""
        return self._render("cancelled", order)

    def invalid(self, player_form: bool = False) -> str:
        """The one reply to order-looking text that is not a valid order: how to write the dot
        form, or (player_form) the player form."""
        return self._render("invalid_player" if player_form else "invalid")

    def rate_not_set(self) -> str:
        """An order in a group whose rate nobody has set yet."""
        return self._render("rate_not_set")

    def rate_missing(self, group: str) -> str:
        """To the admins: a group has orders but no rate."""
        return self._render("rate_missing", group=group)

    def held_due(self, order: Order, due: Decimal, limit: Decimal) -> str:
        """An order left pending because the group's due (with it) is over its limit."""
        return self._render("held_due", order, due=taka(due), limit=taka(limit))

    def duplicate(self, order: Order, seconds: float) -> str:
        """The question to a repeated order; `order` is the earlier one, `seconds` how long ago."""
        return self._render("duplicate", order, minutes=max(1, round(seconds / 60)), ago=self.ago(seconds))

    def ago(self, seconds: float) -> str:
        """How long ago, as the chat says it: "just now", "5 minutes ago", "2 hours ago"."""
        p = self._phrases
        if seconds < 60:
            return p["just_now"]
        if seconds < 90 * 60:
            return p["minutes_ago"].format(n=round(seconds / 60))
        return p["hours_ago"].format(n=round(seconds / 3600))

    def edited(self, order: Order) -> str:
        """A pending order changed by an edit of its message (the order as it is now)."""
        return self._render("edited", order)

    def withdrawn(self, order: Order) -> str:
        """A pending order cancelled because its message was deleted."""
        return self._render("withdrawn", order)

    def due(self, amount: Decimal) -> str:
        """The group's balance (negative: credit)."""
        return self._render("due", due=taka(amount))

    def help(self) -> str:
        """How to order and which commands there are."""
        return self._render("help")

    def pending_list(self, orders: Iterable[Order]) -> str:
        """The open orders, one "A7 .10 ৳1000" line each, at most PENDING_LIST_MAX then "… +N"."""
        orders = list(orders)
        lines = [f"{o.id} .{o.diamonds} ৳{taka(o.amount)}" + (f" 🎮 {o.player_id}" if o.player_id else "")
                 for o in orders[:PENDING_LIST_MAX]]
        if len(orders) > PENDING_LIST_MAX:
            lines.append(f"… +{len(orders) - PENDING_LIST_MAX}")
        return self._render("pending_list", count=len(orders), list="\n".join(lines) or "—")

    def rate_set(self, rate: Decimal) -> str:
        """The group's new rate."""
        return self._render("rate_set", rate=str(rate))

    def paid(self, payment: Payment, due: Decimal) -> str:
        """A recorded payment and the due after it."""
        method = METHOD_LABELS.get(payment.method, payment.method)
        text = self._render("paid", amount=taka(payment.amount), method=method, reference=payment.reference,
                            due=taka(due))
        # Without a reference "(bKash {reference})" would leave "(bKash )".
        return text if payment.reference else text.replace(f"{method} )", f"{method})")

    def command_error(self, message: str) -> str:
        """A command written wrongly, with what to write instead."""
        return self._render("command_error", error=message)

    def wrong(self, error: CommandError) -> str:
        """A command written wrongly (domain.commands says how, in both languages)."""
        return self.command_error(error.in_language(self.language))

    def say(self, phrase: str, **values: object) -> str:
        """One of the fixed answers (`_PHRASES`), as a command_error line."""
        return self.command_error(self._phrases[phrase].format(**values))

    def refusal(self, order: Order, what: str) -> str:
        """Why an order can no longer be approved, cancelled or edited ("approve", "cancel", "edit")."""
        p = self._phrases
        return self.say("refusal", order_id=order.id, status=p["status"][order.status], verb=p["verbs"][what])

    def duplicate_reference(self, earlier: Payment, tz: tzinfo) -> str:
        """A `.paid` whose reference was recorded before: the question whether to record it again."""
        when = (to_iso(earlier.at, tz) or "")[:16].replace("T", " ") if earlier.at else "?"
        return self.say("duplicate_reference", reference=earlier.reference, payment_id=earlier.id,
                        amount=taka(earlier.amount), when=when)

    def daily_report(self, date: Date | str, group: str, orders: int, diamonds: int, revenue: Decimal,
                     payments: Decimal, due: Decimal) -> str:
        """One group's day: orders, diamonds, sales, payments and the due at its end."""
        return self._render("daily_report", date=str(date), group=group, orders=orders, diamonds=diamonds,
                            revenue=taka(revenue), payments=taka(payments), due=taka(due))


# The fixed answers of each language (not templates yet: the shop cannot edit them).
_PHRASES: dict[str, dict[str, Any]] = {
    "en": {
        "not_admin": "only the shop's admins can use this command",
        "not_admin_order": "only the shop's admins can approve or cancel orders",
        "no_order": "no order for that message",
        "admin_hint": "not understood: reply done to the order to approve it, or cancel to cancel it",
        "refusal": "order {order_id} is {status}; it can no longer be {verb}",
        "status": {s: s.value for s in Status},
        "verbs": {"approve": "approved", "cancel": "cancelled", "edit": "edited"},
        "duplicate_reference": "{reference} was already recorded as payment {payment_id} (৳{amount}, {when}). "
                               "To record it again, reply yes to this message",
        "just_now": "just now",
        "minutes_ago": "{n} minutes ago",
        "hours_ago": "{n} hours ago",
    },
    "bn": {
        "not_admin": "এই কমান্ড শুধু দোকানের অ্যাডমিনরা দিতে পারেন",
        "not_admin_order": "অর্ডার অনুমোদন বা বাতিল শুধু দোকানের অ্যাডমিনরা করতে পারেন",
        "no_order": "এই বার্তার কোনো অর্ডার নেই",
        "admin_hint": "বোঝা যায়নি: অনুমোদন করতে অর্ডারের উত্তরে done, বাতিল করতে cancel লিখুন",
        "refusal": "অর্ডার {order_id} এখন {status} — এটি আর {verb} যাবে না",
        "status": {Status.PENDING: "অপেক্ষমাণ", Status.PROCESSING: "প্রক্রিয়াধীন", Status.APPROVED: "অনুমোদিত",
                   Status.COMPLETED: "সম্পন্ন", Status.CANCELLED: "বাতিল", Status.DELETED: "মুছে ফেলা"},
        "verbs": {"approve": "অনুমোদন করা", "cancel": "বাতিল করা", "edit": "বদলানো"},
        "duplicate_reference": "{reference} আগেই পেমেন্ট {payment_id} হিসেবে জমা হয়েছে (৳{amount}, {when})। "
                               "আবার জমা করতে এই বার্তার উত্তরে লিখুন: yes",
        "just_now": "এইমাত্র",
        "minutes_ago": "{n} মিনিট আগে",
        "hours_ago": "{n} ঘণ্টা আগে",
    },
}
