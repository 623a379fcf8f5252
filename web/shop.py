"""The shop as pages show it beside other things: its view when the bot gives it in time, and
whether an approved order can still be undone.

The shop (open or closed, stock, the undo window …) is the Supervisor's; the Dashboard and the
orders ask for it with a short deadline and do without it when the bot does not say, so a
stalled system does not slow every page down (README: "A shop's day in the panel").
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping

from aiohttp import web

from domain.clock import from_iso
from web.bridge import BridgeError
from web.routes import panel_of

log = logging.getLogger("diamondbot.panel.shop")

SHOP_WAIT = 2.0  # a page that shows the shop beside other things waits this long for it
SHOP_RETRY = 30.0  # after no answer, such pages go without it this long before asking again
UNDOABLE = ("approved", "completed")


@dataclass
class ShopSilence:
    """Until when pages do without the shop (the bot did not answer for it)."""

    until: float = 0.0


SHOP_SILENCE = web.AppKey("shop_silence", ShopSilence)


async def shop_if_known(request: web.Request) -> dict[str, Any] | None:
    """The ShopView for a page that shows it beside other things, or None when the bot does not
    say in SHOP_WAIT seconds; such pages then stop asking for SHOP_RETRY seconds."""
    silence = request.app[SHOP_SILENCE]
    if time.monotonic() < silence.until:
        return None
    try:
        result = await panel_of(request).bridge.get_shop(timeout=SHOP_WAIT)
    except BridgeError as e:
        log.warning("the shop's state is not available: %s", e)
        silence.until = time.monotonic() + SHOP_RETRY
        return None
    silence.until = 0.0
    return result.data if result.status == 200 and isinstance(result.data, dict) else None


def undo_window(shop: Mapping[str, Any] | None) -> int | None:
    """Seconds an approval can be undone (None: the shop is not known, so no undo is offered)."""
    approvals = shop.get("approvals") if shop is not None else None
    window = approvals.get("undo_window") if isinstance(approvals, Mapping) else None
    return window if isinstance(window, int) and not isinstance(window, bool) else None


def undo_until(order: Mapping[str, Any], window: int | None) -> float | None:
    """Until when an order (as the API shows it) may be undone: approved or completed, for
    `window` seconds after its approval; None when it cannot be."""
    if window is None or order.get("status") not in UNDOABLE or not order.get("approved_at"):
        return None
    try:
        return from_iso(str(order["approved_at"])) + window
    except ValueError:
        return None


def mark_undo(order: dict[str, Any], window: int | None, now: float) -> dict[str, Any]:
    """The order with `undo_until_ms` (for the page's script) when it may still be undone now."""
    until = undo_until(order, window)
    order["undo_until_ms"] = int(until * 1000) if until is not None and until > now else None
    return order
