"""Payments, ledgers, the daily report and CSV exports (JSON API).

`GET /api/payments`, `POST /api/payments`, `GET /api/groups/{id}/ledger`, `GET /api/reports/daily`,
`GET /api/export/orders.csv`, `GET /api/export/payments.csv`. Money is exact throughout: decimal
strings in and out, a JSON number with a fraction is refused (floats lose money).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import datetime, tzinfo
from typing import Any, Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from actors.messages import CommandDone, QueryResult
from domain.payments import PaymentError, check_amount, check_note, check_reference, parse_method
from web.routes import user_of, actor_by, command_result, json_response, panel_of, read_json_object, unwrap
from web.routes import params
from web.routes.params import check_day, check_params, date_range
from web.security import ApiError, staff
from web.serialize import daily_report_json, group_list_entry, ledger_json, order_json, payment_json

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
EXPORT_PAGE = 500  # the bridge's largest page
MAX_EXPORT_PAGES = 2000  # a million rows: far beyond any shop; a guard against a runaway loop
PAYMENT_FIELDS = ("group_id", "amount", "method", "reference", "note")
BOM = "\ufeff"  # Excel reads a CSV as UTF-8 (Bengali names intact) only with it

# A player ID is text (a leading "+" is defused like any cell a person wrote, which also keeps
# a spreadsheet from reading a phone number as a number).
ORDER_COLUMNS = ("id", "created_at", "group_id", "group_name", "user_id", "user_name", "player_id", "diamonds",
                 "rate", "amount", "status", "approved_at", "completed_at", "cancelled_at", "deleted_at", "recovered",
                 "message_id")
# A voided payment stays in the export (the audit) with `counted` 0.00: sum `counted`, not `amount`.
PAYMENT_COLUMNS = ("id", "at", "group_id", "group_name", "amount", "counted", "method", "reference", "note", "by",
                   "imported_id", "voided_at", "voided_by", "void_reason")
_TIME_COLUMNS = frozenset({"created_at", "approved_at", "completed_at", "cancelled_at", "deleted_at", "at",
                           "voided_at"})
_PLAIN_COLUMNS = frozenset({"diamonds", "rate", "amount", "counted", "recovered"})  # numbers the bot wrote


# --- validation -------------------------------------------------------------------------------


def _text_field(body: Mapping[str, Any], name: str, max_len: int) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: must be text")
    if len(value) > max_len:
        raise ApiError(400, f"{name}: at most {max_len} characters")
    return value


def check_payment(body: Mapping[str, Any]) -> dict[str, str]:
    """The fields of a payment to record, checked by the domain's rules (the GroupActor checks
    again); ApiError 400 naming the field otherwise."""
    unknown = sorted(k for k in body if k not in PAYMENT_FIELDS)
    if unknown:
        raise ApiError(400, f"{', '.join(unknown)}: not a payment field; use {', '.join(PAYMENT_FIELDS)}")
    group_id = body.get("group_id")
    if not isinstance(group_id, str) or not group_id.strip():
        raise ApiError(400, "group_id: required, the group's id as GET /api/groups lists it")
    if len(group_id) > 200:
        raise ApiError(400, "group_id: at most 200 characters")
    amount = body.get("amount")
    if amount is None or amount == "":
        raise ApiError(400, "amount: required, a decimal string such as \"500\" or \"23.50\"")
    if isinstance(amount, float):
        raise ApiError(400, "amount: send a decimal string such as \"23.50\" or a whole number; "
                            "JSON numbers with a fraction are floats, and floats lose money")
    if isinstance(amount, int) and not isinstance(amount, bool):
        amount = str(amount)
    method = body.get("method")
    if method is None or method == "":
        raise ApiError(400, "method: required; use one of bkash, nagad, rocket, bank, cash, other")
    if not isinstance(method, str) or len(method) > 40:
        raise ApiError(400, "method: use one of bkash, nagad, rocket, bank, cash, other")
    reference = _text_field(body, "reference", 1000)
    note = _text_field(body, "note", 5000)
    try:
        check_amount(amount)
        parse_method(method)
        check_reference(reference)
        check_note(note)
    except PaymentError as e:
        raise ApiError(400, str(e)) from None
    assert isinstance(amount, str)
    return {"group_id": group_id.strip(), "amount": amount.strip(), "method": method.strip(),
            "reference": reference.strip(), "note": note.strip()}


def _group_id(request: web.Request) -> str:
    group_id = request.match_info["id"].strip()
    if not group_id or len(group_id) > 200:
        raise ApiError(404, f"no group {group_id[:200]}")
    return group_id


# --- JSON -------------------------------------------------------------------------------------


async def group_names(request: web.Request) -> dict[str, str]:
    """Group id -> name, for lists of payments (whose records carry only the id)."""
    groups = unwrap(await panel_of(request).bridge.list_groups())
    return {str(g.get("group_id")): str((g.get("settings") or {}).get("groupName") or "") for g in groups}


@staff
async def list_payments(request: web.Request) -> web.Response:
    """GET /api/payments?group=&since=&until=&limit=&offset= → {"payments": [...], "total": n}, newest first."""
    panel = panel_of(request)
    check_params(request, ("group", "since", "until", "limit", "offset"))
    q = request.query
    since, until = date_range(q, panel.tz)
    filters = {"group": params.text(q, "group"), "since": since, "until": until,
               "limit": params.count(q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
               "offset": params.count(q, "offset", 0, 0, params.MAX_OFFSET)}
    listed, names = await asyncio.gather(panel.bridge.list_payments(**filters), group_names(request))
    data = unwrap(listed)
    return json_response({"payments": [payment_json(p, panel.tz, names) for p in data["payments"]],
                          "total": data["total"]})


@staff
async def record_payment(request: web.Request) -> web.Response:
    """POST /api/payments {"group_id", "amount", "method", "reference", "note", "confirm_duplicate"}
    → 201 {"payment": {...}, "due": "<decimal>"}; 400 bad field, 404 unknown group, 409
    {"error", "duplicate_of": {...}} when the group already has a payment with this reference
    (send "confirm_duplicate": true to record it all the same)."""
    panel = panel_of(request)
    body = await read_json_object(request)
    confirm = body.pop("confirm_duplicate", False)
    if not isinstance(confirm, bool):
        raise ApiError(400, "confirm_duplicate: true or false")
    p = check_payment(body)
    names = await group_names(request)  # before the write: nothing after it may fail
    # A client that may retry sends an Idempotency-Key: the same key records the payment once.
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 64 or not key.isprintable():
        raise ApiError(400, "Idempotency-Key: at most 64 printable characters")
    done = await panel.bridge.record_payment(p["group_id"], p["amount"], p["method"], p["reference"], p["note"],
                                             actor_by(request), f"api:{user_of(request)}:{key}" if key else "",
                                             confirm_duplicate=confirm)
    earlier = duplicate_of(done)
    if earlier is not None:
        return json_response({"error": done.error, "duplicate_of": payment_json(earlier, panel.tz, names)},
                             status=409)
    result = command_result(done)
    return json_response({"payment": payment_json(result["payment"], panel.tz, names),
                          "due": str(result["due"])}, status=201)


def duplicate_of(done: CommandDone) -> Mapping[str, Any] | None:
    """The earlier payment with the same reference, when the group refused this one as a duplicate."""
    if done.status != 409 or not isinstance(done.result, Mapping):
        return None
    earlier = done.result.get("duplicate_of")
    return earlier if isinstance(earlier, Mapping) else None


@staff
async def void_payment(request: web.Request) -> web.Response:
    """POST /api/payments/{id}/void {"reason"} → {"payment", "due"}: a mistaken payment stays
    listed but no longer counts; 400 without a reason, 404 unknown, 409 already void."""
    panel = panel_of(request)
    body = await read_json_object(request)
    unknown = sorted(k for k in body if k != "reason")
    if unknown:
        raise ApiError(400, f"{', '.join(unknown)}: not a field; send {{\"reason\": \"…\"}}")
    reason = _text_field(body, "reason", 500).strip()
    if not reason:
        raise ApiError(400, "reason: required, say why the payment is void")
    names = await group_names(request)
    result = command_result(await panel.bridge.void_payment(request.match_info["id"], reason, actor_by(request)))
    return json_response({"payment": payment_json(result["payment"], panel.tz, names), "due": str(result["due"])})


@staff
async def group_ledger(request: web.Request) -> web.Response:
    """GET /api/groups/{id}/ledger?since=&until= → the opening balance, billed orders and payments
    with the running due, and the group's billed, paid and due."""
    panel = panel_of(request)
    check_params(request, ("since", "until"))
    since, until = date_range(request.query, panel.tz)
    data = unwrap(await panel.bridge.ledger(_group_id(request), since, until))
    return json_response(ledger_json(data, panel.tz))


@staff
async def daily_report(request: web.Request) -> web.Response:
    """GET /api/reports/daily?day=YYYY-MM-DD (default today) → per group and totals."""
    check_params(request, ("day",))
    day = check_day(params.text(request.query, "day", 20))
    return json_response(daily_report_json(unwrap(await panel_of(request).bridge.daily_report(day))))


# --- CSV --------------------------------------------------------------------------------------


async def fetch_all(call: Callable[..., Awaitable[QueryResult]], key: str, **filters: Any) -> list[dict[str, Any]]:
    """Every matching row, paging through a list call 500 at a time. Rows are never removed, only
    added: one added meanwhile shifts later pages by one, so rows are kept once by id."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    offset = 0
    for _ in range(MAX_EXPORT_PAGES):
        data = unwrap(await call(**filters, limit=EXPORT_PAGE, offset=offset))
        page = data[key]
        for row in page:
            record = row.get("record", row)  # orders come as views {"record", "check"}
            rid = str(record.get("id"))
            if rid not in seen:
                seen.add(rid)
                rows.append(row)
        offset += EXPORT_PAGE
        if not page or offset >= int(data["total"]):
            break
    return rows


def csv_time(value: str | None, tz: tzinfo) -> str:
    """An API time as a spreadsheet reads it, in the shop's time zone: "2025-11-24 21:00:00"."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def csv_text(value: Any) -> str:
    """Text a person wrote, defused: a spreadsheet runs a cell starting with = + - @ as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_response(name: str, columns: tuple[str, ...], rows: Iterable[Mapping[str, Any]], tz: tzinfo) -> web.Response:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if column in _TIME_COLUMNS:
                cells.append(csv_time(value, tz))
            elif column in _PLAIN_COLUMNS:
                cells.append("" if value is None else str(value).lower() if isinstance(value, bool) else str(value))
            else:
                cells.append(csv_text(value))
        writer.writerow(cells)
    return web.Response(body=out.getvalue().encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def export_name(kind: str, request: web.Request, code: str) -> str:
    parts = [kind, code, params.text(request.query, "since", 40)[:10], params.text(request.query, "until", 40)[:10]]
    stem = "-".join(re.sub(r"[^0-9A-Za-z]+", "", p) if i < 2 else re.sub(r"[^0-9-]+", "", p)
                    for i, p in enumerate(parts) if p)
    return f"{stem}.csv"


async def _export_filters(request: web.Request) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """(filters, groups, the filtered group's code) for an export; 404 for an unknown group."""
    panel = panel_of(request)
    check_params(request, ("since", "until", "group"))
    since, until = date_range(request.query, panel.tz)
    group = params.text(request.query, "group")
    groups = [group_list_entry(g, panel.tz) for g in unwrap(await panel.bridge.list_groups())]
    code = ""
    if group:
        match = next((g for g in groups if g["id"] == group), None)
        if match is None:
            raise ApiError(404, f"no group {group}")
        code = match["code"]
    return {"group": group, "since": since, "until": until}, groups, code


@staff
async def export_orders(request: web.Request) -> web.Response:
    """GET /api/export/orders.csv?since=&until=&group= → every matching order, oldest first (by
    the time it was posted), times in the shop's time zone, money as plain decimals."""
    panel = panel_of(request)
    filters, _, code = await _export_filters(request)
    views = await fetch_all(panel.bridge.list_orders, "orders", status="", q="", **filters)
    rows = [order_json(v, panel.tz) for v in reversed(views)]
    return csv_response(export_name("orders", request, code), ORDER_COLUMNS, rows, panel.tz)


@staff
async def export_payments(request: web.Request) -> web.Response:
    """GET /api/export/payments.csv?since=&until=&group= → every matching payment, oldest first."""
    panel = panel_of(request)
    filters, groups, code = await _export_filters(request)
    names = {g["id"]: g["name"] for g in groups}
    records = await fetch_all(panel.bridge.list_payments, "payments", **filters)
    rows = [payment_json(p, panel.tz, names) for p in reversed(records)]
    for row in rows:
        row["counted"] = "0.00" if row["voided_at"] else row["amount"]
    return csv_response(export_name("payments", request, code), PAYMENT_COLUMNS, rows, panel.tz)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/payments", list_payments)
    app.router.add_post("/api/payments", record_payment)
    app.router.add_post("/api/payments/{id}/void", void_payment)
    app.router.add_get("/api/groups/{id}/ledger", group_ledger)
    app.router.add_get("/api/reports/daily", daily_report)
    app.router.add_get("/api/export/orders.csv", export_orders)
    app.router.add_get("/api/export/payments.csv", export_payments)
