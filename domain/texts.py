"""The bot's chat texts, rendered from the configured templates of one language."""

from __future__ import annotations

from datetime import date as Date
from decimal import Decimal
from typing import Iterable, Mapping

from domain.money import taka
from domain.orders import Order, Status
from domain.payments import METHOD_LABELS, Payment

TEMPLATE_NAMES = ("received", "recovered", "delivered", "cancelled", "invalid", "held_due", "duplicate",
                  "edited", "withdrawn", "due", "help", "pending_list", "rate_set", "paid", "command_error",
                  "daily_report")
PENDING_LIST_MAX = 15  # lines of `pending_list`; the rest is summed up as "… +N"


class _Blank(dict[str, object]):
    """Template values where a placeholder the text has no value for renders empty."""

    def __missing__(self, key: str) -> str:
        return ""


class Texts:
    """Renders the templates of one language (placeholders were validated at config load)."""

    def __init__(self, templates: Mapping[str, str], min_diamonds: int, max_diamonds: int) -> None:
        missing = [n for n in TEMPLATE_NAMES if n not in templates]
        if missing:
            raise ValueError(f"message templates missing: {', '.join(missing)}")
        self.templates = dict(templates)
        self.min_diamonds = min_diamonds
        self.max_diamonds = max_diamonds

    def _render(self, name: str, order: Order | None = None, **extra: object) -> str:
        values = _Blank(min=self.min_diamonds, max=self.max_diamonds)
        if order is not None:
            values.update(diamonds=order.diamonds, amount=taka(order.amount), order_id=order.id, rate=str(order.rate))
        values.update(extra)
        return self.templates[name].format_map(values)

    def receipt(self, order: Order) -> str:
        """The confirmation that an order was taken (a recovered one says so)."""
        return self._render("recovered" if order.recovered else "received", order)

    def delivered(self, order: Order) -> str:
        """The delivery message of an approved order."""
        return self._render("delivered", order)

    def cancelled(self, order: Order) -> str:
        """The user is told the order was cancelled."""
        return self._render("cancelled", order)

    def invalid(self) -> str:
        """The one reply to order-looking text that is not a valid order."""
        return self._render("invalid")

    def held_due(self, order: Order, due: Decimal, limit: Decimal) -> str:
        """An order left pending because the group's due (with it) is over its limit."""
        return self._render("held_due", order, due=taka(due), limit=taka(limit))

    def duplicate(self, order: Order, minutes: float) -> str:
        """The question to a repeated order; `order` is the earlier one, `minutes` how long ago (at least 1)."""
        return self._render("duplicate", order, minutes=max(1, round(minutes)))

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
        lines = [f"{o.id} .{o.diamonds} ৳{taka(o.amount)}" for o in orders[:PENDING_LIST_MAX]]
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

    def daily_report(self, date: Date | str, group: str, orders: int, diamonds: int, revenue: Decimal,
                     payments: Decimal, due: Decimal) -> str:
        """One group's day: orders, diamonds, sales, payments and the due at its end."""
        return self._render("daily_report", date=str(date), group=group, orders=orders, diamonds=diamonds,
                            revenue=taka(revenue), payments=taka(payments), due=taka(due))


_BN_STATUS = {Status.PENDING: "অপেক্ষমাণ", Status.PROCESSING: "প্রক্রিয়াধীন", Status.APPROVED: "অনুমোদিত",
              Status.COMPLETED: "সম্পন্ন", Status.CANCELLED: "বাতিল", Status.DELETED: "মুছে ফেলা"}
_EN_VERBS = {"approve": "approved", "cancel": "cancelled", "edit": "edited"}
_BN_VERBS = {"approve": "অনুমোদন করা", "cancel": "বাতিল করা", "edit": "বদলানো"}


def refusal(order: Order, what: str, language: str) -> str:
    """Why an order can no longer be approved, cancelled or edited ("approve", "cancel", "edit"),
    in the chat's language."""
    if language == "bn":
        return f"অর্ডার {order.id} এখন {_BN_STATUS[order.status]} — এটি আর {_BN_VERBS[what]} যাবে না"
    return f"order {order.id} is {order.status.value}; it can no longer be {_EN_VERBS[what]}"
