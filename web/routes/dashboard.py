"""The dashboard's data: the seed's monitoring and performance dashboards in one JSON answer
(GET /api/dashboard), which also renders the dashboard page and refreshes it every few seconds.

Besides the raw numbers, the answer carries what the page shows: `display` (each figure as
text in the panel's language, keyed like the page's `data-k` attributes), `tones` (ok / warn /
bad) and `chart_view` (bar geometry for the server-rendered SVG charts), so the page's script
only copies values and never formats or lays out anything itself.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from aiohttp import web

from web import i18n
from web.i18n import Words
from web.metrics import ProcessSampler
from web.routes import json_response, panel_of, unwrap
from web.security import staff
from web.serialize import report_json, status_json
from web.shop import shop_if_known

METRICS = web.AppKey("metrics", ProcessSampler)
STATUSES = ("pending", "processing", "approved", "completed", "cancelled", "deleted")
BUCKETS = ("never", "lt5", "lt10", "gte10")

# Chart geometry (SVG user units): the plot sits between the y labels and the x labels.
CHART_W, CHART_H = 600, 200
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 56, 592, 12, 172


def nice_ceiling(value: float, minimum: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above value (and at least `minimum`)."""
    value = max(value, minimum)
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp  # pragma: no cover


def bar_chart(values: list[float], labels: list[str], titles: list[str], *, minimum: float,
              tick_text: Any) -> dict[str, Any]:
    """Bars for `values`, scaled to a round maximum; three gridlines (0, half, max)."""
    top = nice_ceiling(max(values, default=0.0), minimum)
    plot_w, plot_h = PLOT_RIGHT - PLOT_LEFT, PLOT_BOTTOM - PLOT_TOP
    slot = plot_w / max(len(values), 1)
    width = round(slot * 0.7, 1)
    bars = []
    for i, (value, label, title) in enumerate(zip(values, labels, titles)):
        height = plot_h * value / top
        if 0 < height < 1:
            height = 1.0  # a non-zero bar stays visible
        bars.append({"x": round(PLOT_LEFT + i * slot + (slot - width) / 2, 1),
                     "y": round(PLOT_BOTTOM - height, 1), "w": width, "h": round(height, 1),
                     "cx": round(PLOT_LEFT + i * slot + slot / 2, 1), "label": label, "title": title})
    ticks = [{"y": round(PLOT_BOTTOM - plot_h * f, 1), "label": tick_text(top * f)} for f in (0, 0.5, 1)]
    return {"bars": bars, "ticks": ticks}


def compact(value: float) -> str:
    """An axis label: 950, 1.5k, 25k, 1.2M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            text = f"{value / limit:.1f}".removesuffix(".0")
            return text + suffix
    return f"{value:.1f}".removesuffix(".0")


def _hour_of(iso: str | None) -> str:
    return iso[11:16] if iso and len(iso) >= 16 else ""


def _day_label(day: str) -> str:
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return day
    return f"{d.day:02d}/{d.month:02d}"


def _decimal(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return Decimal(0)


def charts_view(charts: Mapping[str, Any], t: Words) -> dict[str, Any]:
    """Orders per hour and revenue per day as bar geometry, titles and a spoken summary."""
    hours = list(charts.get("orders_per_hour") or [])
    counts = [int(h.get("orders") or 0) for h in hours]
    hour_labels = [_hour_of(h.get("hour")) for h in hours]
    orders = bar_chart(
        [float(n) for n in counts],
        [label if i % 3 == (len(hours) - 1) % 3 else "" for i, label in enumerate(hour_labels)],
        [t._("%(hour)s: %(n)s orders", hour=label, n=n) for label, n in zip(hour_labels, counts)],
        minimum=2, tick_text=compact)
    busiest = max(range(len(counts)), key=lambda i: (counts[i], i)) if counts else None
    orders["title"] = t._("Orders per hour (last 24 hours)")
    orders["summary"] = t._("%(total)s orders in the last 24 hours; busiest hour %(hour)s with %(max)s", 
        total=sum(counts), hour=hour_labels[busiest] if busiest is not None else "—",
        max=counts[busiest] if busiest is not None else 0)

    days = list(charts.get("revenue_per_day") or [])
    amounts = [_decimal(d.get("amount")) for d in days]
    day_labels = [_day_label(str(d.get("day") or "")) for d in days]
    revenue = bar_chart(
        [float(a) for a in amounts],
        [label if i % 2 == (len(days) - 1) % 2 else "" for i, label in enumerate(day_labels)],
        [t._("%(day)s: %(amount)s", day=label, amount=i18n.taka(a)) for label, a in zip(day_labels, amounts)],
        minimum=100, tick_text=compact)
    best = max(range(len(amounts)), key=lambda i: (amounts[i], i)) if amounts else None
    revenue["title"] = t._("Revenue per day (last 14 days)")
    revenue["summary"] = t._("%(total)s in the last 14 days; best day %(day)s with %(max)s", 
        total=i18n.taka(sum(amounts, Decimal(0))), day=day_labels[best] if best is not None else "—",
        max=i18n.taka(amounts[best]) if best is not None else i18n.taka(Decimal(0)))
    return {"orders": orders, "revenue": revenue}


def _pgid(status: Mapping[str, Any]) -> int | None:
    pgid = status.get("pgid")
    return pgid if isinstance(pgid, int) and not isinstance(pgid, bool) and pgid > 1 else None


async def dashboard_data(request: web.Request) -> dict[str, Any]:
    """Everything the dashboard shows, from the Supervisor's status, the PersistenceActor's
    report and /proc (BridgeError when the actor system does not answer)."""
    panel = panel_of(request)
    t = panel.words
    status_result, report_result = await asyncio.gather(panel.bridge.status(), panel.bridge.report())
    raw_status, raw_report = unwrap(status_result), unwrap(report_result)
    now = time.time()
    status = status_json(raw_status, panel.tz, panel.started_at, now)
    report = report_json(raw_report, panel.tz)
    usage = await request.app[METRICS].sample_async(_pgid(raw_status), (os.getpid(),))
    storage = report["storage"]
    database = storage["journal_bytes"] + storage["snapshot_bytes"] if isinstance(raw_report.get("storage"), Mapping) else None
    gateway = status["gateway"]
    state = str(gateway.get("state") or "stopped")
    groups = status["groups"]
    counts = {s: int(report["counts"].get(s, 0)) for s in STATUSES}
    buckets = {b: int(report["buckets"].get(b, 0)) for b in BUCKETS}
    generated = datetime.fromtimestamp(now, panel.tz).isoformat(timespec="seconds")
    data: dict[str, Any] = {
        "generated_at": generated,
        "orders": {**counts, "total": report["total"], "open": report["open_orders"]},
        "buckets": buckets,
        "issues_found": report["issues_found"],
        "last_check": report["last_check"],
        "gateway": {"kind": str(gateway.get("kind") or ""), "state": state,
                    "queued": int(gateway.get("queued") or 0)},
        "cycle_time_ms": report["cycle_time_ms"],
        "orders_tracked": report["open_orders"],
        "cycles_per_hour": report["cycles_per_hour"],
        "cycles_today": report["cycles_today"],
        "checks_today": report["checks_today"],
        "memory_bytes": usage.memory_bytes,
        "cpu_percent": usage.cpu_percent,
        "processes": usage.processes,
        "database_bytes": database,
        "uptime_s": status["uptime_s"],
        "panel_uptime_s": status["panel"]["uptime_s"],
        "groups": {"total": int(groups.get("total") or 0), "ready": int(groups.get("ready") or 0)},
        "charts": report["charts"],
    }
    data["display"] = display(data, t, panel.tz)
    data["tones"] = {
        "gateway": i18n.GATEWAY_TONE.get(state, "warn"),
        "issues_found": "bad" if data["issues_found"] else "ok",
    }
    data["chart_view"] = charts_view(data["charts"], t)
    return data


def display(d: Mapping[str, Any], t: Words, tz: Any) -> dict[str, str]:
    """Every figure as the page writes it, keyed like the page's data-k attributes."""
    n = i18n.number
    out = {f"orders.{k}": n(v) for k, v in d["orders"].items()}
    out.update({f"buckets.{k}": n(v) for k, v in d["buckets"].items()})
    kind = d["gateway"]["kind"]
    gateway = t.label("gateway", d["gateway"]["state"])
    ms = d["cycle_time_ms"]
    cpu = d["cpu_percent"]
    memory = i18n.size(d["memory_bytes"])
    out.update({
        "issues_found": n(d["issues_found"]),
        "last_check": i18n.when_exact(d["last_check"], tz) if d["last_check"] else t._("never"),
        "gateway": f"{gateway} ({kind})" if kind else gateway,
        "uptime": i18n.duration(d["uptime_s"], t),
        "cycle_time": t._("%(n)s ms", n=f"{ms:,.2f}") if ms is not None else t._("—"),
        "orders_tracked": n(d["orders_tracked"]),
        "cycles_per_hour": n(d["cycles_per_hour"]),
        "checks_today": n(d["checks_today"]),
        "memory": t._("%(size)s · processes: %(n)s", size=memory, n=d["processes"]) if d["memory_bytes"] else t._("—"),
        "cpu": t._("%(n)s%%", n=f"{cpu:.1f}") if cpu is not None else t._("—"),
        "database": i18n.size(d["database_bytes"]),
        "groups": t._("%(ready)s of %(total)s running", ready=n(d["groups"]["ready"]), total=n(d["groups"]["total"])),
        "updated": t._("Updated %(time)s", time=i18n.when_exact(d["generated_at"], tz)),
    })
    return out


def shop_display(shop: Mapping[str, Any], t: Words) -> dict[str, str]:
    """The shop card's words (open or closed, the stock left), keyed like its data-k attributes."""
    stock = shop.get("stock")
    return {
        "shop.state": t._("Open: taking orders") if shop.get("open") else t._("Closed: no orders are taken"),
        "shop.stock": t._("%(n)s diamonds left", n=i18n.number(stock)) if stock is not None else t._("Not counted"),
    }


@staff
async def api_dashboard(request: web.Request) -> web.Response:
    """GET /api/dashboard → orders by status, check buckets, issues, last check, gateway, cycle
    time and rate, checks today, memory, CPU, database size, uptime, charts, the shop (`open`,
    `stock`; null when the bot did not give it in time), plus `display`, `tones` and `chart_view`
    for the page (the shop card follows a shop that closed itself when its stock ran out)."""
    data, shop = await asyncio.gather(dashboard_data(request), shop_if_known(request))
    data["shop"] = {"open": bool(shop.get("open")), "stock": shop.get("stock")} if shop is not None else None
    if shop is not None:
        data["display"].update(shop_display(shop, panel_of(request).words))
    return json_response(data)


def add_routes(app: web.Application) -> None:
    app[METRICS] = ProcessSampler()
    app.router.add_get("/api/dashboard", api_dashboard)
