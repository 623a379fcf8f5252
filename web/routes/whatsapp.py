"""The WhatsApp connection on the panel: its state, the QR code or pairing code, re-pair.

GET  /api/whatsapp          → {"kind", "state", "detail", "qr_available", "pair_code", "expires_at",
                                "paused_until", "queued"}
GET  /api/whatsapp/qr.svg   → the QR code to scan now (image/svg+xml), 404 when there is none
POST /api/whatsapp/repair   → {"ok": true}: unlink this session and pair again
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from aiohttp import web

from actors.messages import GatewayStatus
from domain.clock import to_iso
from domain.chat import ConnectionState
from web.qr import qr_svg
from web.routes import json_response, panel_of, unwrap
from web.security import ApiError, owner, staff


async def _status(request: web.Request) -> GatewayStatus:
    status = unwrap(await panel_of(request).bridge.gateway_status())
    if not isinstance(status, GatewayStatus):
        raise RuntimeError(f"the gateway answered {type(status).__name__}, not GatewayStatus")
    return status


def _time(value: float | None, tz: tzinfo) -> str | None:
    return to_iso(value, tz) if value is not None else None


def _describe(status: GatewayStatus) -> str:
    """The state's detail in words: while pairing, what to do with the code shown."""
    detail = status.detail
    if status.state is ConnectionState.PAIRING and not detail.expired:
        if detail.pair_code:
            todo = ("on the bot's phone: WhatsApp → Settings → Linked devices → Link a device → "
                    "Link with phone number instead, and enter the pairing code")
        elif detail.qr:
            todo = "scan the QR code with the bot's phone: WhatsApp → Settings → Linked devices → Link a device"
        else:
            todo = "waiting for a QR code from WhatsApp"
        return f"{todo}. {detail.message}" if detail.message else todo
    if status.state is ConnectionState.BANNED:
        reason = detail.reason or "no reason given"
        return f"temporarily banned by WhatsApp ({reason}); all sending is paused until the ban ends"
    return detail.message


def whatsapp_json(kind: str, status: GatewayStatus, tz: tzinfo) -> dict[str, Any]:
    """The WhatsApp page's data; times in ISO 8601 with the panel's offset."""
    detail = status.detail
    pairing = status.state is ConnectionState.PAIRING
    shows_expiry = pairing or status.state is ConnectionState.BANNED
    return {
        "kind": kind,
        "state": status.state.value,
        "detail": _describe(status),
        "qr_available": pairing and bool(detail.qr),
        "pair_code": detail.pair_code if pairing and detail.pair_code else None,
        "expires_at": _time(detail.expires_at, tz) if shows_expiry else None,
        "paused_until": _time(status.paused_until, tz),
        "queued": status.queued,
    }


@staff
async def whatsapp_status(request: web.Request) -> web.Response:
    """GET /api/whatsapp"""
    panel = panel_of(request)
    return json_response(whatsapp_json(panel.config.gateway.kind, await _status(request), panel.tz))


@owner
async def whatsapp_qr(request: web.Request) -> web.Response:
    """GET /api/whatsapp/qr.svg: the QR code to scan now, rendered with segno."""
    status = await _status(request)
    if status.state is not ConnectionState.PAIRING or not status.detail.qr:
        raise ApiError(404, "no QR code to show now")
    return web.Response(body=qr_svg(status.detail.qr), content_type="image/svg+xml")


@owner
async def whatsapp_repair(request: web.Request) -> web.Response:
    """POST /api/whatsapp/repair: unlink the session and show a new QR code (or pairing code)."""
    unwrap(await panel_of(request).bridge.repair())
    return json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/whatsapp", whatsapp_status)
    app.router.add_get("/api/whatsapp/qr.svg", whatsapp_qr)
    app.router.add_post("/api/whatsapp/repair", whatsapp_repair)
