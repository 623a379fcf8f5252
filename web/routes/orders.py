"""Orders: the filtered list, one order in detail, and the lifecycle commands."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from aiohttp import web

from domain.orders import Status
from web.routes import ACTIONS, actor_by, command_result, json_response, panel_of, params, unwrap
from web.security import ApiError, staff
from web.serialize import order_json

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
_FILTERS = ("status", "group", "q", "since", "until", "limit", "offset")
_STATUSES = tuple(s.value for s in Status)


def _statuses(value: str) -> str:
    wanted = [s.strip().lower() for s in value.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in _STATUSES]
    if unknown:
        raise ApiError(400, f"status: unknown {', '.join(unknown)}; use {', '.join(_STATUSES)} "
                            "(several separated by commas)")
    return ",".join(wanted)


@staff
async def list_orders(request: web.Request) -> web.Response:
    """GET /api/orders?status=&group=&q=&since=&until=&limit=&offset= → {"orders", "total"}."""
    panel = panel_of(request)
    q = request.query
    params.check_params(request, _FILTERS)
    since, until = params.date_range(q, panel.tz)
    filters: dict[str, Any] = {
        "status": _statuses(params.text(q, "status")),
        "group": params.text(q, "group"),
        "q": params.text(q, "q"),
        "since": since,
        "until": until,
        "limit": params.count(q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        "offset": params.count(q, "offset", 0, 0, params.MAX_OFFSET),
    }
    data = unwrap(await panel.bridge.list_orders(**filters))
    return json_response({"orders": [order_json(v, panel.tz) for v in data["orders"]],
                          "total": data["total"]})


def _order_id(request: web.Request) -> str:
    order_id = request.match_info["id"].strip()
    if not order_id or len(order_id) > 40:
        raise ApiError(404, f"no order {order_id[:40]}")
    return order_id


@staff
async def get_order(request: web.Request) -> web.Response:
    """GET /api/orders/{id} → one order with audit trail, receipt, delivery and check log."""
    panel = panel_of(request)
    view = unwrap(await panel.bridge.get_order(_order_id(request)))
    return json_response(order_json(view, panel.tz, detail=True))


def command(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler for one lifecycle action (process, approve, cancel, delete, undo)."""

    async def handler(request: web.Request) -> web.Response:
        panel = panel_of(request)
        done = await panel.bridge.command(_order_id(request), action, actor_by(request))
        return json_response({"order": order_json(command_result(done), panel.tz, detail=True)})

    staff(handler)  # staff approve, cancel and undo orders like owners
    handler.__name__ = handler.__qualname__ = f"{action}_order"
    handler.__doc__ = f"POST /api/orders/{{id}}/{action} → {{\"order\": ...}}; 404 unknown, 409 refused."
    return handler


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/orders", list_orders)
    app.router.add_get("/api/orders/{id}", get_order)
    for action in ACTIONS:
        app.router.add_post(f"/api/orders/{{id}}/{action}", command(action))
    # Undo a mistaken approval within approvals.undo_window: back to the status it had (409 after).
    app.router.add_post("/api/orders/{id}/undo", command("undo"))
    # The seed's endpoints, kept for its scripts.
    app.router.add_post("/api/approve/{id}", command("approve"))
    app.router.add_post("/api/delete/{id}", command("delete"))
