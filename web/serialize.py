"""Stored shapes (camelCase records, UTC times, epoch seconds) → the API's JSON (snake_case,
times in the shop's time zone with offset, money as decimal strings)."""

from __future__ import annotations

import math
from datetime import tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from domain.clock import from_iso, to_iso
from domain.money import canonical_rate, money_str


def local_iso(value: Any, tz: tzinfo) -> str | None:
    """A stored time (ISO 8601 text or epoch seconds) as ISO 8601 in `tz`; None if absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            ts = float(value)
        elif isinstance(value, str) and value:
            ts = from_iso(value)
        else:
            return None
        if not math.isfinite(ts):
            return None
        return to_iso(ts, tz)
    except (ValueError, OverflowError, OSError):
        return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def rate_str(value: Any) -> str | None:
    """A stored rate as the API writes it ("100.00", "2.3125"); None if it is not a number."""
    d = _decimal(value)
    return None if d is None else str(canonical_rate(d))


def money(value: Any) -> str | None:
    """A stored amount as a decimal string with two places ("1000.00"); None if not a number."""
    d = _decimal(value)
    return None if d is None else money_str(d)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _delivery(record: Any, tz: tzinfo) -> dict[str, Any]:
    d = record if isinstance(record, Mapping) else {}
    return {
        "attempts": _int(d.get("attempts")),
        "last_attempt_at": local_iso(d.get("lastAttemptAt"), tz),
        "last_error": _text(d.get("lastError")),
        "message_id": _text(d.get("messageId")),
        "confirmed_at": local_iso(d.get("confirmedAt"), tz),
    }


def order_json(view: Mapping[str, Any], tz: tzinfo, detail: bool = False) -> dict[str, Any]:
    """One order for the API, from a query view {"record": <stored order>, "check": [...] | None}."""
    r = view.get("record") or {}
    check = view.get("check")
    if not isinstance(check, (list, tuple)) or len(check) < 3:
        check = [0, None, ""]
    issues = r.get("issues")
    out: dict[str, Any] = {
        "id": _text(r.get("id")),
        "group_id": _text(r.get("groupId")),
        "group_name": _text(r.get("groupName")),
        "user_id": _text(r.get("userId")),
        "user_alt": _text(r.get("userAlt")),
        "user_name": _text(r.get("userName")),
        # Whom to top up: a game ID or a phone number; "" for a `.10` order (and older records).
        "player_id": _text(r.get("playerId")),
        "message_id": _text(r.get("messageId")),
        "diamonds": _int(r.get("diamonds")),
        "rate": rate_str(r.get("rate")),
        "amount": money(r.get("amount")),
        "status": _text(r.get("status")).lower(),
        "created_at": local_iso(r.get("date"), tz),
        "received_at": local_iso(r.get("receivedAt"), tz),
        "processing_at": local_iso(r.get("processingAt"), tz),
        "approved_at": local_iso(r.get("approvedAt"), tz),
        "completed_at": local_iso(r.get("completedAt"), tz),
        "cancelled_at": local_iso(r.get("cancelledAt"), tz),
        "deleted_at": local_iso(r.get("deletedAt"), tz),
        "check_count": _int(check[0]),
        "last_checked_at": local_iso(check[1], tz),
        "last_check_status": _text(check[2]),
        "issues": [str(i) for i in issues] if isinstance(issues, list) else [],
        "recovered": bool(r.get("recovered", False)),
        "delivery": _delivery(r.get("delivery"), tz),
        # Grows with every change the order's trail records (an undone approval too): of two
        # answers about an order, the one with more is the newer.
        "changes": len(r["audit"]) if isinstance(r.get("audit"), list) else 0,
    }
    if detail:
        audit = r.get("audit")
        out["text"] = _text(r.get("text"))
        out["receipt"] = _delivery(r.get("receipt"), tz)
        out["audit"] = [
            {"at": local_iso(a.get("at"), tz), "from": a.get("from"), "to": _text(a.get("to")),
             "by": _text(a.get("by")), "note": _text(a.get("note"))}
            for a in (audit if isinstance(audit, list) else []) if isinstance(a, Mapping)
        ]
    return out


def group_json(group_id: str, settings: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    """A group's settings for the API, from its stored settings record. `rate` is None (and
    `rate_set` false) for a group whose rate nobody has set: its orders are refused until then."""
    rate = rate_str(settings.get("rate"))
    left_at = local_iso(settings.get("leftAt"), tz)
    return {
        "id": group_id,
        "name": _text(settings.get("groupName")),
        "code": _text(settings.get("code")),
        "rate": rate,
        "rate_set": rate is not None,
        "enabled": bool(settings.get("enabled", True)),
        "auto_approve": bool(settings.get("autoApprove", False)),
        "auto_approve_max": _int(settings.get("autoApproveMax")),
        "due_limit": money(settings.get("dueLimit")),
        # The bot's number left the group (or was removed): it stays listed, with its account.
        "left": left_at is not None,
        "left_at": left_at,
        "joined_at": local_iso(settings.get("joinedAt"), tz),
    }


def group_list_entry(entry: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    """One entry of ListGroups ({"group_id", "settings", "counts", "orders"}) for the API."""
    out = group_json(_text(entry.get("group_id")), entry.get("settings") or {}, tz)
    out["counts"] = dict(entry.get("counts") or {})
    out["orders"] = _int(entry.get("orders"))
    for key in ("billed", "paid", "due"):  # the group's account: due = billed - paid
        out[key] = money(entry.get(key))
    return out


def payment_json(record: Mapping[str, Any], tz: tzinfo, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One stored payment for the API; `names` (group id -> name) adds the group's name."""
    group_id = _text(record.get("groupId"))
    out = {
        "id": _text(record.get("id")),
        "group_id": group_id,
        "amount": money(record.get("amount")),
        "method": _text(record.get("method")),
        "reference": _text(record.get("reference")),
        "note": _text(record.get("note")),
        "at": local_iso(record.get("at"), tz),
        "by": _text(record.get("by")),
        "imported_id": _text(record.get("importedId")),
        # A mistaken payment is voided, never removed: still listed, no longer counted.
        "voided_at": local_iso(record.get("voidedAt"), tz) if record.get("voidedAt") else None,
        "voided_by": _text(record.get("voidedBy")),
        "void_reason": _text(record.get("voidReason")),
    }
    if names is not None:
        out["group_name"] = names.get(group_id, "")
    return out


def ledger_json(data: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    """GetLedger's answer for the API: line times in the shop's time zone (None for an imported
    payment whose time is unknown), money as decimal strings."""
    lines = data.get("lines")
    period = data.get("period") if isinstance(data.get("period"), Mapping) else {}
    return {
        "group_id": _text(data.get("group_id")),
        "group_name": _text(data.get("group_name")),
        "opening": money(data.get("opening")) or "0.00",
        "lines": [
            {"at": local_iso(line.get("at"), tz) if line.get("at") else None,
             "kind": _text(line.get("kind")), "ref": _text(line.get("ref")),
             "description": _text(line.get("description")),
             "debit": money(line.get("debit")) or "0.00", "credit": money(line.get("credit")) or "0.00",
             "balance": money(line.get("balance")) or "0.00"}
            for line in (lines if isinstance(lines, (list, tuple)) else []) if isinstance(line, Mapping)
        ],
        "period": {k: money(period.get(k)) or "0.00" for k in ("billed", "paid", "closing")},
        "billed": money(data.get("billed")) or "0.00",
        "paid": money(data.get("paid")) or "0.00",
        "due": money(data.get("due")) or "0.00",
    }


def daily_report_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """GetDailyReport's answer for the API (already plain: a local day, counts, decimal strings)."""
    groups = data.get("groups")
    totals = data.get("totals") if isinstance(data.get("totals"), Mapping) else {}
    return {
        "day": _text(data.get("day")),
        "groups": [
            {"group_id": _text(g.get("group_id")), "name": _text(g.get("name")), "code": _text(g.get("code")),
             "orders": _int(g.get("orders")), "diamonds": _int(g.get("diamonds")),
             "revenue": money(g.get("revenue")) or "0.00", "payments": money(g.get("payments")) or "0.00",
             "due": money(g.get("due")) or "0.00"}
            for g in (groups if isinstance(groups, (list, tuple)) else []) if isinstance(g, Mapping)
        ],
        "totals": {"orders": _int(totals.get("orders")), "diamonds": _int(totals.get("diamonds")),
                   "revenue": money(totals.get("revenue")) or "0.00",
                   "payments": money(totals.get("payments")) or "0.00"},
    }


def _cycle(c: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    duration = c.get("duration")
    return {
        "started_at": local_iso(c.get("started_at"), tz),
        "checked": _int(c.get("checked")),
        "open_issues": _int(c.get("open_issues")),
        "new_issues": _int(c.get("new_issues")),
        "cleared_issues": _int(c.get("cleared_issues")),
        "actions": _int(c.get("actions")),
        "duration_ms": round(float(duration) * 1000, 2) if isinstance(duration, (int, float)) else None,
    }


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _charts(charts: Any, tz: tzinfo) -> dict[str, Any]:
    """The report's chart series: hours as local ISO times, days as local dates, money as strings."""
    c = charts if isinstance(charts, Mapping) else {}
    hours = c.get("orders_per_hour")
    days = c.get("revenue_per_day")
    return {
        "orders_per_hour": [
            {"hour": local_iso(h.get("hour"), tz), "orders": _int(h.get("orders"))}
            for h in (hours if isinstance(hours, (list, tuple)) else []) if isinstance(h, Mapping)
        ],
        "revenue_per_day": [
            {"day": _text(d.get("day")), "amount": money(d.get("amount")) or "0.00"}
            for d in (days if isinstance(days, (list, tuple)) else []) if isinstance(d, Mapping)
        ],
    }


def _storage(storage: Any) -> dict[str, int]:
    s = storage if isinstance(storage, Mapping) else {}
    return {key: _int(s.get(key)) for key in ("journal_bytes", "snapshot_bytes", "orders", "groups")}


def report_json(report: Mapping[str, Any], tz: tzinfo) -> dict[str, Any]:
    """The reconciliation report for humans: local times, durations in ms, newest cycle first,
    today's checks and cycles, the cycle rate and time, the charts' series and the storage size."""
    cycles = report.get("cycles") or {}
    return {
        "counts": dict(report.get("counts") or {}),
        "total": _int(report.get("total")),
        "open_orders": _int(report.get("open_orders")),
        "buckets": dict(report.get("buckets") or {}),
        "issues": [
            {"order_id": _text(i.get("order_id")), "group_id": _text(i.get("group_id")),
             "group_name": _text(i.get("group_name")), "status": _text(i.get("status")),
             "issues": list(i.get("issues") or []), "created_at": local_iso(i.get("created_at"), tz)}
            for i in report.get("issues") or [] if isinstance(i, Mapping)
        ],
        "issues_found": _int(report.get("issues_found")),
        "last_check": local_iso(report.get("last_check"), tz),
        "generated_at": local_iso(report.get("generated_at"), tz),
        "cycles": {
            str(gid): [_cycle(c, tz) for c in reversed(list(group_cycles)) if isinstance(c, Mapping)]
            for gid, group_cycles in cycles.items() if isinstance(group_cycles, (list, tuple))
        },
        "checks_today": _int(report.get("checks_today")),
        "cycles_today": _int(report.get("cycles_today")),
        "cycles_per_hour": _int(report.get("cycles_per_hour")),
        "cycle_time_ms": _number(report.get("cycle_time_ms")),
        "charts": _charts(report.get("charts"), tz),
        "storage": _storage(report.get("storage")),
    }


def _cluster_json(cluster: Any, tz: tzinfo) -> dict[str, Any]:
    """The shards (machines) and their health; one machine shows its own shard only."""
    if not isinstance(cluster, Mapping):
        return {"role": "", "shards": [], "waiting": 0}
    shards = []
    for s in cluster.get("shards") or []:
        shards.append({**s, "since": local_iso(s.get("since"), tz) if s.get("since") else None,
                       "lost_at": local_iso(s.get("lost_at"), tz) if s.get("lost_at") else None,
                       "health": "connected" if s.get("live") else "lost"})
    return {"role": cluster.get("role", ""), "shards": shards, "waiting": cluster.get("waiting", 0)}


def status_json(status: Mapping[str, Any], tz: tzinfo, panel_started_at: float, now: float) -> dict[str, Any]:
    """The actor system's status (GetStatus) plus the panel's own."""
    gateway = dict(status.get("gateway") or {})
    if "paused_until" in gateway:
        gateway["paused_until"] = local_iso(gateway["paused_until"], tz)
    uptime = status.get("uptime")
    return {
        "started": bool(status.get("started", False)),
        "boot": status.get("boot"),
        "uptime_s": round(float(uptime), 1) if isinstance(uptime, (int, float)) else None,
        "restarts": status.get("restarts"),
        "gateway": gateway,
        "groups": dict(status.get("groups") or {}),
        "cluster": _cluster_json(status.get("cluster"), tz),
        "actors": dict(status.get("pids") or {}),  # process ids, for operators' drills
        "panel": {"started_at": local_iso(panel_started_at, tz),
                  "uptime_s": round(now - panel_started_at, 1)},
    }
