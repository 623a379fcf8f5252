"""The bot's chat texts as the Settings page shows them: a name for people, and a preview with
sample values, rendered the way the bot fills its templates (`{placeholder}`, `{{` for a brace).
settings.js renders the same preview while a text is typed (the same rules, the same samples).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Mapping

from config import Config
from web.i18n import N_, Words

_TOKEN = re.compile(r"\{\{|\}\}|\{(\w*)\}")

# What each text is, for people (a text the panel does not know yet shows its name).
TITLES = {
    "received": N_("Order received (receipt)"),
    "recovered": N_("Order received while the bot was offline"),
    "delivered": N_("Order complete (delivery message)"),
    "cancelled": N_("Order cancelled"),
    "invalid": N_("Order not understood"),
    "invalid_player": N_("Player order not understood"),
    "rate_not_set": N_("Group has no rate yet"),
    "rate_missing": N_("To the admins: a group has no rate"),
    "held_due": N_("Order held: the due is over the limit"),
    "duplicate": N_("Repeated order: asked first"),
    "auto_approved": N_("Order approved by itself (auto-approve)"),
    "edited": N_("Order changed by an edit"),
    "withdrawn": N_("Order cancelled: its message was deleted"),
    "due": N_("What is due (.due)"),
    "help": N_("Help (.help)"),
    "pending_list": N_("Pending orders (.pending)"),
    "rate_set": N_("New rate (.rate)"),
    "paid": N_("Payment recorded (.paid)"),
    "command_error": N_("A command written wrongly"),
    "daily_report": N_("Daily report to the admins"),
    "closed_order": N_("Shop closed: the order is not taken"),
    "out_of_stock": N_("Not enough stock: the order is not taken"),
    "shop_closed": N_("Closing notice (to every group)"),
    "shop_opened": N_("Opening notice (to every group)"),
    "stock_out": N_("To the admins: the stock ran out"),
    "undone": N_("Approval undone (the correction)"),
    "payment_numbers": N_("Payment numbers (the answer to \"bkash number?\")"),
    "due_reminder": N_("Dues reminder"),
}


def title(name: str, t: Words) -> str:
    """A text's name for people, in the panel's language."""
    return t._(TITLES[name]) if name in TITLES else name


def samples(config: Config, language: str, today: date) -> dict[str, str]:
    """Example values for every placeholder a text may have, as the bot would write them."""
    bn = language == "bn"
    return {
        "diamonds": "10", "amount": "1000", "order_id": "A1", "player_id": "576515275",
        "min": str(config.orders.min_diamonds), "max": str(config.orders.max_diamonds), "rate": "100",
        "due": "1,500", "limit": "5,000", "minutes": "3", "ago": "৩ মিনিট আগে" if bn else "3 minutes ago",
        "count": "2", "list": "A1 .10 ৳1000\nA2 .25 ৳2500", "method": "বিকাশ" if bn else "bKash",
        "reference": "TX8A1B2C", "error": "লিখুন .paid 500 bkash TRX123" if bn else "write .paid 500 bkash TRX123",
        "date": today.isoformat(), "group": "রহিম স্টোর" if bn else "Rahim Store", "orders": "12",
        "revenue": "12,000", "payments": "10,000", "stock": "500",
    }


def preview(text: str, values: Mapping[str, Any]) -> str:
    """The text with sample values, as the chat would show it; a placeholder without a sample
    stays as written, so it is seen."""

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        return str(values[name]) if name in values else token

    return _TOKEN.sub(fill, text)


def used(text: str) -> list[str]:
    """The placeholders a text uses, in order."""
    return list(dict.fromkeys(m.group(1) for m in _TOKEN.finditer(text) if m.group(1) is not None))
