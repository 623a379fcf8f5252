"""GET /api/events: server-sent events with every order or group change, as it happens.

Browsers' EventSource reconnects by itself (we suggest 2 s); an event `resync` asks the page to
reload what it shows, because changes were missed (a slow client, a restarted actor). A stream
ends when its session does: logged out, removed, a new password, or expired (12 h after the login).
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web
from aiohttp_session import get_session

from web.bridge import BridgeError
from web.live import Closed
from web.routes import PANEL, panel_of
from web.security import SESSION_AT, SESSIONS, current_user, staff
from web.serialize import order_json

KEEPALIVE = 15.0
KEEPALIVE_TICK = object()


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _still_valid(request: web.Request, session: object) -> bool:
    """Whether the stream's session still holds (a user removed or given a new password: no)."""
    try:
        return await current_user(request, session) is not None  # type: ignore[arg-type]
    except BridgeError:
        return False  # the bot does not answer: the browser reconnects and hears so


@staff
async def events(request: web.Request) -> web.StreamResponse:
    panel = panel_of(request)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # a reverse proxy must not buffer the stream
    })
    session = await get_session(request)
    sessions, at = request.app[SESSIONS], session.get(SESSION_AT)
    await response.prepare(request)
    queue = panel.bridge.live.subscribe()
    try:
        await response.write(b"retry: 2000\n\n")
        while True:
            # Wake up no later than the session expires: the stream ends with it.
            left = sessions.expires_at(at) - sessions.clock() if isinstance(at, (int, float)) else 0.0
            try:
                change = await asyncio.wait_for(queue.get(), max(0.0, min(KEEPALIVE, left)))
            except asyncio.TimeoutError:
                change = KEEPALIVE_TICK
            if isinstance(change, Closed) or not await _still_valid(request, session):
                break  # shutting down, logged out (maybe in another tab), removed or expired: nothing more
            if change is KEEPALIVE_TICK:
                await response.write(b": keepalive\n\n")
                continue
            if change is None:
                await response.write(_event("resync", {}))
                continue
            for view in change.orders:
                await response.write(_event("order", order_json(view, panel.tz)))
            for group_id in change.groups:
                await response.write(_event("group", {"id": group_id}))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        panel.bridge.live.unsubscribe(queue)
    return response


async def end_streams(app: web.Application) -> None:
    """On shutdown, end every open stream at once instead of waiting out its keepalive."""
    app[PANEL].bridge.live.end_streams()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/events", events)
    app.on_shutdown.append(end_streams)
