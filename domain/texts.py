"""The bot's chat texts, rendered from the configured templates of one language."""

from __future__ import annotations

from typing import Mapping

from domain.money import taka
from domain.orders import Order

TEMPLATE_NAMES = ("received", "recovered", "delivered", "cancelled", "invalid")


class Texts:
    """Renders the templates of one language (placeholders were validated at config load)."""

    def __init__(self, templates: Mapping[str, str], min_diamonds: int, max_diamonds: int) -> None:
        missing = [n for n in TEMPLATE_NAMES if n not in templates]
        if missing:
            raise ValueError(f"message templates missing: {', '.join(missing)}")
        self.templates = dict(templates)
        self.min_diamonds = min_diamonds
        self.max_diamonds = max_diamonds

    def _render(self, name: str, order: Order | None = None) -> str:
        values = {"min": self.min_diamonds, "max": self.max_diamonds,
                  "diamonds": "", "amount": "", "order_id": "", "rate": ""}
        if order is not None:
            values.update(diamonds=order.diamonds, amount=taka(order.amount),
                          order_id=order.id, rate=str(order.rate))
        return self.templates[name].format(**values)

    def receipt(self, order: Order) -> str:
        """The confirmation that an order was taken (a recovered one says so)."""
        return self._render("recovered" if order.recovered else "received", order)

    def delivered(self, order: Order) -> str:
        return self._render("delivered", order)

    def cancelled(self, order: Order) -> str:
        return self._render("cancelled", order)

    def invalid(self) -> str:
        return self._render("invalid")
