"""How the bot is doing: status, the reconciliation report, the health check, Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from actors.messages import QueryResult
from domain.orders import Status
from web.bridge import ActorBridge, BridgeError
from web.routes import PANEL, json_response, panel_of, unwrap
from web.security import public, staff
from web.serialize import report_json, status_json

HEALTH_TIMEOUT = 2.0


@staff
async def status(request: web.Request) -> web.Response:
    """GET /api/status → gateway, groups, uptime, boot, restarts and the panel's own start."""
    panel = panel_of(request)
    data = unwrap(await panel.bridge.status())
    return json_response(status_json(data, panel.tz, panel.started_at, time.time()))


@staff
async def reconciliation(request: web.Request) -> web.Response:
    """GET /api/reconciliation → counts, check buckets, open issues, recent cycles (newest first)."""
    panel = panel_of(request)
    return json_response(report_json(unwrap(await panel.bridge.report()), panel.tz))


class HealthProbe:
    """One status ask at a time: a timed-out ask keeps a bridge worker busy until the bridge's
    own timeout, so frequent health checks during an outage must not pile up more of them."""

    def __init__(self, bridge: ActorBridge) -> None:
        self.bridge = bridge
        self._task: asyncio.Task[QueryResult] | None = None

    async def check(self) -> tuple[int, dict[str, Any]]:
        if not self.bridge.healthy():
            return 503, {"status": "down", "reason": "the panel's link to the bot is closed"}
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self.bridge.status())
            # A probe that fails after its waiter gave up must not log "exception never retrieved".
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            result = await asyncio.wait_for(asyncio.shield(self._task), HEALTH_TIMEOUT)
        except (asyncio.TimeoutError, BridgeError):
            return 503, {"status": "down", "reason": "the actor system did not answer"}
        if result.status != 200 or not isinstance(result.data, Mapping):
            return 503, {"status": "down", "reason": "the actor system answered with an error"}
        if not result.data.get("started"):
            return 503, {"status": "starting"}
        return 200, {"status": "ok"}

    async def close(self, app: web.Application | None = None) -> None:
        """on_cleanup: cancel a probe still waiting for the actor system."""
        if self._task is not None and not self._task.done():
            self._task.cancel()


HEALTH = web.AppKey("health", HealthProbe)


@public
async def healthz(request: web.Request) -> web.Response:
    """GET /healthz (no login) → 200 {"status": "ok"} once the actor system has started, else 503."""
    code, body = await request.app[HEALTH].check()
    return json_response(body, status=code)


# prometheus_client writes this (text) format; its CONTENT_TYPE_LATEST has moved on with versions.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PanelMetrics:
    """The bot's figures as Prometheus gauges in a registry of this panel's own (never the
    process-wide default one): set from the actors' answers at each scrape, then written out."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders = Gauge("diamondbot_orders", "Orders by status.", ["status"], registry=r)
        self.open_issues = Gauge("diamondbot_open_issues", "Open orders with an unresolved issue.", registry=r)
        self.gateway_connected = Gauge("diamondbot_gateway_connected", "1 when the chat transport is connected.",
                                       registry=r)
        self.outbox_queued = Gauge("diamondbot_outbox_queued", "Chat messages waiting in the send queue.", registry=r)
        self.groups = Gauge("diamondbot_groups", "Groups known to the supervisor.", registry=r)
        self.uptime = Gauge("diamondbot_uptime_seconds", "Seconds since the actor system started.", registry=r)

    def exposition(self, status_data: Mapping[str, Any], report: Mapping[str, Any]) -> bytes:
        """The text exposition of these figures (set and written with no await in between)."""
        counts = report.get("counts") or {}
        gateway = status_data.get("gateway") or {}
        for s in Status:
            self.orders.labels(status=s.value).set(float(counts.get(s.value, 0) or 0))
        self.open_issues.set(float(report.get("issues_found", 0) or 0))
        self.gateway_connected.set(1 if gateway.get("state") == "connected" else 0)
        self.outbox_queued.set(float(gateway.get("queued", 0) or 0))
        self.groups.set(float((status_data.get("groups") or {}).get("total", 0) or 0))
        self.uptime.set(float(status_data.get("uptime", 0) or 0))
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", PanelMetrics)


@staff
async def metrics(request: web.Request) -> web.Response:
    """GET /metrics (login required) → Prometheus text."""
    bridge = panel_of(request).bridge
    status_result, report_result = await asyncio.gather(bridge.status(), bridge.report())
    body = request.app[METRICS].exposition(unwrap(status_result), unwrap(report_result))
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app[HEALTH] = probe = HealthProbe(app[PANEL].bridge)
    app[METRICS] = PanelMetrics()
    app.on_cleanup.append(probe.close)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/reconciliation", reconciliation)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)

