"""Read queries over the database image (the panel's lists, detail, groups and report).

Each answers with plain data: an order is `{"record": <stored order>, "check": [count,
last_at, last_status] | None}`; the web layer shapes it for the API.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, Callable, Iterable, Optional

from domain.clock import from_iso, to_iso
from domain.group import split_order_id
from domain.money import money_str
from domain.payments import billed_records, due, ledger, paid_records
from domain.orders import ARCHIVED, Status
from domain.reconcile import LiveCycles, live_check
from storage.database import Database

MAX_PAGE = 500
_ARCHIVED = {s.value for s in ARCHIVED}
_STATUSES = {s.value for s in Status}
_TEXT_FIELDS = ("id", "userId", "userAlt", "userName", "playerId", "groupName", "messageId", "groupId")


class QueryError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _time(value: Any) -> float | None:
    try:
        return from_iso(value) if isinstance(value, str) else None
    except ValueError:
        return None


# A group's recent cycles as its actor last wrote them (actors/board.py); None: none known.
LiveSource = Callable[[str], Optional[LiveCycles]]
_STAMPS = {"completed": "completedAt", "cancelled": "cancelledAt", "deleted": "deletedAt"}


class Checks:
    """What the panel shows of reconciliation: the checkpoints, brought up to the last cycle
    with the live figures when there are (so they are at most one cycle old)."""

    def __init__(self, db: Database, live: LiveSource | None = None) -> None:
        self.db, self.live = db, live
        self._cycles: dict[str, LiveCycles | None] = {}
        self._times: dict[str, list[float]] = {}

    def cycles_of(self, gid: str) -> LiveCycles | None:
        if gid not in self._cycles:
            live = self.live(gid) if self.live is not None else None
            self._cycles[gid] = live
            self._times[gid] = [c.started_at for c in live.cycles] if live else []
        return self._cycles[gid]

    def of(self, gid: str, entry: dict[str, Any]) -> list[Any] | None:
        """An order's [count, last_at, last_status]."""
        check = self.db.check_of(gid, str(entry.get("id")))
        if self.cycles_of(gid) is None or not self._times[gid]:
            return check
        status = str(entry.get("status") or "")
        closed_at = None
        if status in _ARCHIVED:
            closed_at = _time(entry.get(_STAMPS.get(status, ""))) or _time(entry.get("date"))
            audit = entry.get("audit")
            last = audit[-1] if isinstance(audit, list) and audit and isinstance(audit[-1], dict) else {}
            status = str(last.get("from") or status)  # what it was while it was checked
        received = _time(entry.get("receivedAt")) or _time(entry.get("date"))
        return live_check(check, received, closed_at, status, self._times[gid])

    def recent(self, gid: str, n: int) -> list[dict[str, Any]]:
        """The group's last n cycle summaries."""
        live = self.cycles_of(gid)
        if live is not None and live.cycles:
            return [asdict(c) for c in live.cycles[-n:]]
        return self.db.groups[gid].cycles[-n:]

    def tally(self, gid: str) -> dict[str, Any]:
        """The group's checks and cycles of its latest day."""
        live = self.cycles_of(gid)
        return asdict(live.tally) if live is not None and live.tally.day else self.db.groups[gid].stats


def _view(checks: Checks, gid: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"record": entry, "check": checks.of(gid, entry)}


def _id_order(order_id: Any) -> tuple[str, int, str]:
    """Ids of the same second in the order they were given: B9 before B14 (not as text)."""
    parts = split_order_id(str(order_id or ""))
    return (parts[0], parts[1], "") if parts else ("", -1, str(order_id or ""))


def list_orders(
    db: Database,
    *,
    status: str = "",
    group: str = "",
    text: str = "",
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    offset: int = 0,
    live: LiveSource | None = None,
) -> dict[str, Any]:
    """Orders matching every filter given, newest first, one page of them and the total."""
    statuses = {s.strip().lower() for s in status.split(",") if s.strip()}
    unknown = statuses - _STATUSES
    if unknown:
        raise QueryError(400, f"unknown status {', '.join(sorted(unknown))}; use one of "
                              f"{', '.join(s.value for s in Status)}")
    if not 1 <= limit <= MAX_PAGE:
        raise QueryError(400, f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise QueryError(400, "offset must be 0 or more")
    since_iso = to_iso(since) if since is not None else None
    until_iso = to_iso(until) if until is not None else None
    needle = text.strip().lower()
    groups: Iterable[str] = [group] if group else db.groups.keys()
    hits: list[tuple[str, dict[str, Any]]] = []
    for gid in groups:
        image = db.groups.get(gid)
        if image is None:
            continue
        for entry in image.entries.values():
            if statuses and entry.get("status") not in statuses:
                continue
            date = entry.get("date") or ""
            # Stored times are all UTC with the same offset form, so strings compare as times.
            if since_iso is not None and date < since_iso:
                continue
            if until_iso is not None and date >= until_iso:
                continue
            if needle and not any(needle in str(entry.get(f) or "").lower() for f in _TEXT_FIELDS):
                continue
            hits.append((gid, entry))
    hits.sort(key=lambda h: (h[1].get("date") or "", *_id_order(h[1].get("id"))), reverse=True)
    page = hits[offset:offset + limit]
    checks = Checks(db, live)
    return {"orders": [_view(checks, gid, e) for gid, e in page], "total": len(hits)}


def get_order(db: Database, order_id: str, live: LiveSource | None = None) -> dict[str, Any]:
    found = db.find(order_id.strip().upper()) or db.find(order_id.strip())
    if found is None:
        raise QueryError(404, f"no order {order_id}")
    gid, entry = found
    return _view(Checks(db, live), gid, entry)


def list_groups(db: Database) -> list[dict[str, Any]]:
    out = []
    for gid, image in db.groups.items():
        counts = {s.value: 0 for s in Status}
        for entry in image.entries.values():
            status = entry.get("status")
            if status in counts:
                counts[status] += 1
        billed = billed_records(image.entries.values())
        paid = paid_records(db.group_payments(gid))
        out.append({"group_id": gid, "settings": dict(image.settings), "counts": counts,
                    "orders": len(image.entries), "billed": money_str(billed), "paid": money_str(paid),
                    "due": money_str(due(billed, paid))})
    out.sort(key=lambda g: str(g["settings"].get("code", "")))
    return out


def list_payments(db: Database, *, group: str = "", since: float | None = None,
                  until: float | None = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Payments, newest first, one page of them and the total."""
    if not 1 <= limit <= MAX_PAGE:
        raise QueryError(400, f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise QueryError(400, "offset must be 0 or more")
    if group and group not in db.groups:
        raise QueryError(404, f"no group {group}")
    hits = []
    for p in db.payments:
        if group and p.get("groupId") != group:
            continue
        at = _time(p.get("at"))
        if since is not None and (at is None or at < since):
            continue
        if until is not None and (at is None or at >= until):
            continue
        hits.append(p)
    hits.sort(key=lambda p: (str(p.get("at") or ""), *_id_order(str(p.get("id") or "")[1:])), reverse=True)
    return {"payments": hits[offset:offset + limit], "total": len(hits)}


def group_ledger(db: Database, group_id: str, since: float | None = None,
                 until: float | None = None) -> dict[str, Any]:
    """One group's account: opening balance, billed orders and payments with the running due."""
    image = db.groups.get(group_id)
    if image is None:
        raise QueryError(404, f"no group {group_id}")
    payments = db.group_payments(group_id)
    opening, lines = ledger(image.entries.values(), payments, since, until)
    billed, paid = billed_records(image.entries.values()), paid_records(payments)
    return {
        "group_id": group_id,
        "group_name": image.settings.get("groupName", ""),
        "opening": money_str(opening),
        "lines": [{"at": line.at, "kind": line.kind, "ref": line.ref, "description": line.description,
                   "debit": money_str(line.debit), "credit": money_str(line.credit),
                   "balance": money_str(line.balance)} for line in lines],
        # The range's own sums and closing balance (opening + billed − paid), beside the
        # group's totals of all time (`due` is what it owes now).
        "period": {"billed": money_str(sum((x.debit for x in lines), Decimal("0.00"))),
                   "paid": money_str(sum((x.credit for x in lines), Decimal("0.00"))),
                   "closing": money_str(lines[-1].balance if lines else opening)},
        "billed": money_str(billed), "paid": money_str(paid), "due": money_str(due(billed, paid)),
    }


def daily_report(db: Database, day: str, tz: tzinfo) -> dict[str, Any]:
    """Each group's one local day: orders taken, diamonds and revenue approved, payments, and
    what is due at the end of the day's data (now)."""
    try:
        start_local = datetime.fromisoformat(day).replace(tzinfo=tz) if day else None
    except ValueError:
        raise QueryError(400, f"day must be YYYY-MM-DD, not {day!r}") from None
    if start_local is None:
        raise QueryError(400, "day is required")
    start = start_local.timestamp()
    end = (start_local + timedelta(days=1)).timestamp()
    groups, totals = [], {"orders": 0, "diamonds": 0, "revenue": Decimal(0), "payments": Decimal(0)}
    for gid, image in db.groups.items():
        orders = diamonds = 0
        revenue = Decimal(0)
        for entry in image.entries.values():
            created = _time(entry.get("date"))
            if created is not None and start <= created < end and entry.get("status") != "deleted":
                orders += 1
            approved = _time(entry.get("approvedAt"))
            if approved is not None and start <= approved < end and entry.get("status") in ("approved", "completed"):
                amount = _amount(entry)
                if amount is not None:
                    revenue += amount
                    diamonds += entry.get("diamonds", 0) if isinstance(entry.get("diamonds"), int) else 0
        payments = db.group_payments(gid)
        paid_today = paid_records(p for p in payments if (t := _time(p.get("at"))) is not None and start <= t < end)
        billed, paid = billed_records(image.entries.values()), paid_records(payments)
        groups.append({"group_id": gid, "name": image.settings.get("groupName", ""),
                       "code": image.settings.get("code", ""), "orders": orders, "diamonds": diamonds,
                       "revenue": money_str(revenue), "payments": money_str(paid_today),
                       "due": money_str(due(billed, paid))})
        totals["orders"] += orders
        totals["diamonds"] += diamonds
        totals["revenue"] += revenue
        totals["payments"] += paid_today
    groups.sort(key=lambda g: str(g["code"]))
    return {"day": day, "groups": groups,
            "totals": {"orders": totals["orders"], "diamonds": totals["diamonds"],
                       "revenue": money_str(totals["revenue"]), "payments": money_str(totals["payments"])}}


def _amount(entry: dict[str, Any]) -> Decimal | None:
    try:
        return Decimal(str(entry.get("amount")))
    except ArithmeticError:
        return None


def check_bucket(count: int) -> str:
    if count <= 0:
        return "never"
    if count < 5:
        return "lt5"
    if count < 10:
        return "lt10"
    return "gte10"


def report(db: Database, now: float, tz: tzinfo = timezone.utc, recent_cycles: int = 5,
           live: LiveSource | None = None) -> dict[str, Any]:
    """The reconciliation report: orders by status, check buckets, open issues, recent cycles,
    today's checks and cycles (in `tz`), and the charts' series."""
    checks = Checks(db, live)
    counts = {s.value: 0 for s in Status}
    buckets = {"never": 0, "lt5": 0, "lt10": 0, "gte10": 0}
    issues = []
    last_check: float | None = None
    for gid, image in db.groups.items():
        for oid, entry in image.entries.items():
            status = entry.get("status")
            if status in counts:
                counts[status] += 1
            check = checks.of(gid, entry)
            count = int(check[0]) if check else 0
            buckets[check_bucket(count)] += 1
            if check and check[1] is not None:
                last_check = check[1] if last_check is None else max(last_check, check[1])
            if entry.get("issues") and status not in _ARCHIVED:
                issues.append({"order_id": oid, "group_id": gid, "group_name": entry.get("groupName", ""),
                               "status": status, "issues": list(entry["issues"]),
                               "created_at": entry.get("date")})
    recent = {gid: checks.recent(gid, 1000) for gid in db.groups}  # all that is known
    cycles = {gid: c[-recent_cycles:] for gid, c in recent.items() if c}
    for gid_cycles in cycles.values():
        for c in gid_cycles:
            started = c.get("started_at")
            if isinstance(started, (int, float)):
                last_check = started if last_check is None else max(last_check, started)
    issues.sort(key=lambda i: i["created_at"] or "")
    today = datetime.fromtimestamp(now, tz).date().isoformat()
    tallies = [t for t in map(checks.tally, db.groups) if t.get("day") == today]
    durations = [float(c[-1].get("duration", 0.0)) for c in cycles.values()]
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "open_orders": sum(counts[s.value] for s in Status if not s.archived),
        "buckets": buckets,
        "issues": issues,
        "issues_found": len(issues),
        "cycles": cycles,
        "last_check": last_check,
        "checks_today": sum(int(t.get("checks", 0)) for t in tallies),
        "cycles_today": sum(int(t.get("cycles", 0)) for t in tallies),
        "cycles_per_hour": round(sum(_cycles_per_hour(c) for c in recent.values())),
        "cycle_time_ms": round(1000 * sum(durations) / len(durations), 2) if durations else None,
        "charts": charts(db, now, tz),
        "generated_at": now,
    }


def _cycles_per_hour(cycles: list[dict[str, Any]]) -> float:
    """One group's recent cycle rate, from the spacing of its last cycle summaries."""
    starts = [c["started_at"] for c in cycles if isinstance(c.get("started_at"), (int, float))]
    if len(starts) < 2 or starts[-1] <= starts[0]:
        return 0.0
    return (len(starts) - 1) * 3600.0 / (starts[-1] - starts[0])


def charts(db: Database, now: float, tz: tzinfo, hours: int = 24, days: int = 14) -> dict[str, Any]:
    """Orders per hour (by the message's time) over the last `hours`, and revenue per day (by
    approval, approved and completed orders) over the last `days`, in local time."""
    hour_start = datetime.fromtimestamp(now, tz).replace(minute=0, second=0, microsecond=0)
    first_hour = hour_start - timedelta(hours=hours - 1)
    per_hour = {(first_hour + timedelta(hours=i)).isoformat(): 0 for i in range(hours)}
    today = datetime.fromtimestamp(now, tz).date()
    per_day = {(today - timedelta(days=i)).isoformat(): Decimal(0) for i in range(days - 1, -1, -1)}
    for _, entry in db.all_entries():
        created = _time(entry.get("date"))
        if created is not None:
            local = datetime.fromtimestamp(created, tz).replace(minute=0, second=0, microsecond=0)
            key = local.isoformat()
            if key in per_hour:
                per_hour[key] += 1
        if entry.get("status") in ("approved", "completed"):
            approved = _time(entry.get("approvedAt"))
            if approved is not None:
                day = datetime.fromtimestamp(approved, tz).date().isoformat()
                if day in per_day:
                    try:
                        per_day[day] += Decimal(str(entry.get("amount", "0")))
                    except ArithmeticError:
                        continue
    return {
        "orders_per_hour": [{"hour": h, "orders": n} for h, n in per_hour.items()],
        "revenue_per_day": [{"day": d, "amount": money_str(a)} for d, a in per_day.items()],
    }
