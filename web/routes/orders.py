"""Orders: the filtered list, one order in detail, and the lifecycle commands."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Awaitable, Callable

from aiohttp import web

from domain.orders import Status
from web.routes import actor_by, command_result, json_response, panel_of, unwrap
from web.security import ApiError
from web.serialize import order_json

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 10_000_000
_FILTERS = ("status", "group", "q", "since", "until", "limit", "offset")
_STATUSES = tuple(s.value for s in Status)
ACTIONS = ("process", "approve", "cancel", "delete")
_EARLIEST = 0.0
_LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc).timestamp()


def _one(request: web.Request, name: str, max_len: int = 200) -> str:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, f"{name}: give it once")
    value = values[0].strip() if values else ""
    if len(value) > max_len:
        raise ApiError(400, f"{name}: at most {max_len} characters")
    return value


def _count(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = _one(request, name, 20)
    if not text:
        return default
    # isdigit alone accepts "²"; int() alone accepts "+5", " 5" and "5_0".
    if not (text.isascii() and text.isdigit()):
        raise ApiError(400, f"{name}: must be a whole number, not {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ApiError(400, f"{name}: must be between {low} and {high}")
    return value


def _statuses(text: str) -> str:
    wanted = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in _STATUSES]
    if unknown:
        raise ApiError(400, f"status: unknown {', '.join(unknown)}; use {', '.join(_STATUSES)} "
                            "(several separated by commas)")
    return ",".join(wanted)


def parse_bound(name: str, text: str, tz: tzinfo, *, end: bool) -> float | None:
    """since/until as epoch seconds. A date is a whole day in the shop's time zone: `since` its
    first midnight, `until` the next (so since=until=a day gives that day). A datetime without
    offset is read in the shop's time zone."""
    if not text:
        return None
    try:
        if len(text) <= 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(0), tz)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
        ts = moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise ApiError(400, f"{name}: not an ISO 8601 date or time: {text!r} "
                            "(e.g. 2025-11-24 or 2025-11-24T18:30+06:00)") from None
    # Far-off years are typos, and would overflow time conversions further in.
    if not _EARLIEST <= ts <= _LATEST:
        raise ApiError(400, f"{name}: {text!r} is outside 1970–2199")
    return ts


async def list_orders(request: web.Request) -> web.Response:
    """GET /api/orders?status=&group=&q=&since=&until=&limit=&offset= → {"orders", "total"}."""
    panel = panel_of(request)
    unknown = sorted(set(request.query) - set(_FILTERS))
    if unknown:
        raise ApiError(400, f"unknown parameter {', '.join(unknown)}; use {', '.join(_FILTERS)}")
    since = parse_bound("since", _one(request, "since", 40), panel.tz, end=False)
    until = parse_bound("until", _one(request, "until", 40), panel.tz, end=True)
    if since is not None and until is not None and since >= until:
        raise ApiError(400, "since: must be before until")
    filters: dict[str, Any] = {
        "status": _statuses(_one(request, "status")),
        "group": _one(request, "group"),
        "q": _one(request, "q"),
        "since": since,
        "until": until,
        "limit": _count(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        "offset": _count(request, "offset", 0, 0, MAX_OFFSET),
    }
    data = unwrap(await panel.bridge.list_orders(**filters))
    return json_response({"orders": [order_json(v, panel.tz) for v in data["orders"]],
                          "total": data["total"]})


def _order_id(request: web.Request) -> str:
    order_id = request.match_info["id"].strip()
    if not order_id or len(order_id) > 40:
        raise ApiError(404, f"no order {order_id[:40]}")
    return order_id


async def get_order(request: web.Request) -> web.Response:
    """GET /api/orders/{id} → one order with audit trail, receipt, delivery and check log."""
    panel = panel_of(request)
    view = unwrap(await panel.bridge.get_order(_order_id(request)))
    return json_response(order_json(view, panel.tz, detail=True))


def command(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler for one lifecycle action (process, approve, cancel, delete)."""

    async def handler(request: web.Request) -> web.Response:
        panel = panel_of(request)
        done = await panel.bridge.command(_order_id(request), action, actor_by(request))
        return json_response({"order": order_json(command_result(done), panel.tz, detail=True)})

    handler.__name__ = handler.__qualname__ = f"{action}_order"
    handler.__doc__ = f"POST /api/orders/{{id}}/{action} → {{\"order\": ...}}; 404 unknown, 409 refused."
    return handler


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/orders", list_orders)
    app.router.add_get("/api/orders/{id}", get_order)
    for action in ACTIONS:
        app.router.add_post(f"/api/orders/{{id}}/{action}", command(action))
    # The seed's endpoints, kept for its scripts.
    app.router.add_post("/api/approve/{id}", command("approve"))
    app.router.add_post("/api/delete/{id}", command("delete"))
