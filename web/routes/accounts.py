"""The panel's account pages: Payments (record a payment, each group's due, the payments
received), a group's Ledger, and the daily Report with its CSV exports.

`GET /payments`, `POST /payments` (the record form: redirect with a one-time message, or the
page again with the error and what was typed), `GET /groups/{id}/ledger`, `GET /reports`.
Every one works without JavaScript; payments.js only helps filling in the form.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from aiohttp import web
from aiohttp_session import get_session

from domain.money import taka as money_taka
from domain.payments import METHODS
from web import i18n
from web.i18n import js_labels
from web.routes import actor_by, command_result, panel_of, params, unwrap, user_of
from web.routes.pages import (
    FLASH,
    PAGE_SIZE,
    day_bounds,
    error_page,
    page,
    page_window,
    render,
    texts_of,
)
from web.routes.params import check_day, or_else
from web.routes.payments import PAYMENT_FIELDS, check_payment, duplicate_of
from web.security import ApiError, staff
from web.serialize import daily_report_json, group_list_entry, ledger_json, payment_json

LEDGER_MAX_LINES = 100  # lines a ledger page shows (a page stays small on a phone); it pages back
_IGNORED_IN_AMOUNT = str.maketrans("", "", ", \u00a0৳")  # "1,000", "৳ 500" as people type them


class RecentForms:
    """Record forms already sent, by (user, the form's one-time id): a second click, or a form
    sent twice over a slow connection, records the payment once. In memory (one panel process);
    checked and marked with no await in between, so two concurrent posts cannot both pass. A form
    the GroupActor refused is released, so it can be corrected and sent again."""

    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def claim(self, key: tuple[str, str]) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    def release(self, key: tuple[str, str]) -> None:
        """The form's payment was not recorded: it may be sent again."""
        self._seen.pop(key, None)


RECENT_FORMS = web.AppKey("recent_payment_forms", RecentForms)


def _fill(due: str | None) -> str:
    """A due as the amount field takes it ("1000", "23.50"); "" if nothing is owed."""
    try:
        d = Decimal(due) if due else Decimal(0)
    except InvalidOperation:
        return ""
    return money_taka(d, grouped=False) if d > 0 else ""


def _positive_sum(values: list[str | None]) -> str:
    total = Decimal("0.00")
    for v in values:
        try:
            d = Decimal(v) if v else Decimal(0)
        except InvalidOperation:
            continue
        if d > 0:
            total += d
    return str(total.quantize(Decimal("0.01")))


# --- payments ---------------------------------------------------------------------------------


async def _payments(request: web.Request, *, form: Mapping[str, str] | None = None, error: str | None = None,
                    status: int = 200, nonce: str = "", duplicate: Mapping[str, Any] | None = None) -> web.Response:
    """The Payments page (also after a refused post: with its error and the fields as typed, the
    same form id, and the earlier payment when the reference was recorded before)."""
    panel = panel_of(request)
    t = texts_of(request)
    q = request.query
    errors: list[str] = []
    dates, since, until = day_bounds(q, panel.tz, errors)
    group = or_else(errors, lambda: params.text(q, "group"), "")
    limit, offset = page_window(q, errors)
    groups = [group_list_entry(g, panel.tz) for g in unwrap(await panel.bridge.list_groups())]
    for g in groups:
        g["name"] = g["name"] or g["id"]
        g["fill"] = _fill(g["due"])
    names = {g["id"]: g["name"] for g in groups}
    if group and group not in names:
        errors.append(f"group: unknown {group}")
        group = ""
    listed = unwrap(await panel.bridge.list_payments(group=group, since=since, until=until, limit=limit,
                                                     offset=offset))
    payments = [payment_json(p, panel.tz, names) for p in listed["payments"]]
    total = int(listed["total"])
    filters = {"group": group, **dates}

    def url(at: int) -> str:
        params = {k: v for k, v in filters.items() if v}
        if limit != PAGE_SIZE:
            params["limit"] = str(limit)
        if at:
            params["offset"] = str(at)
        return "/payments" + (f"?{urlencode(params)}" if params else "")

    fields = {"group_id": group, "amount": "", "method": "bkash", "reference": "", "note": "", **(form or {})}
    return await render(request, "payments.html", {
        "title": t._("Payments"), "nav": "payments", "script": "payments.js",
        "groups": groups, "f": filters, "errors": errors, "form": fields, "form_error": error,
        "nonce": nonce or secrets.token_urlsafe(16), "methods": METHODS, "duplicate": duplicate,
        "total_due": _positive_sum([g["due"] for g in groups]),
        "payments": payments, "total": total, "first": offset + 1 if payments else 0,
        "last": offset + len(payments),
        "prev_url": url(max(0, offset - limit)) if offset > 0 else None,
        "next_url": url(offset + limit) if offset + limit < total else None,
        "js_labels": js_labels(t, "pay.due_now", "pay.saving"),
    }, status=status)


@staff
@page
async def payments_page(request: web.Request) -> web.Response:
    """GET /payments?group=&since=&until=&offset=&limit=: the record form (its group preset by
    `group`), each group's billed, paid and due, and the payments received."""
    return await _payments(request)


@staff
@page
async def payment_post(request: web.Request) -> web.StreamResponse:
    """POST /payments (form: group_id, amount, method, reference, note, nonce): record a payment."""
    panel = panel_of(request)
    t = texts_of(request)
    posted = await request.post()
    form = {k: v.strip() if isinstance(v := posted.get(k), str) else "" for k in PAYMENT_FIELDS}
    form["amount"] = form["amount"].translate(_IGNORED_IN_AMOUNT)
    try:
        p = check_payment(form)
    except ApiError as e:
        return await _payments(request, form=form, error=e.message, status=400)
    nonce = posted.get("nonce")
    key = (user_of(request), nonce if isinstance(nonce, str) else "")
    # Names first: once the payment is recorded, nothing may fail before the answer.
    groups = {str(g.get("group_id")): str((g.get("settings") or {}).get("groupName") or "")
              for g in unwrap(await panel.bridge.list_groups())}
    session = await get_session(request)
    if key[1] and 0 < len(key[1]) <= 64:
        if not request.app[RECENT_FORMS].claim(key):
            session[FLASH] = t._("This form was already sent once: check the payments below before recording it again.")
            raise web.HTTPSeeOther("/payments")
    else:
        key = ("", "")
    # No answer (a timeout) leaves the form marked: the payment may have been recorded, and the
    # same form sent again is then pointed to the list instead of recording it a second time.
    # The form's id also goes to the bot: the same form sent again (after a timeout, from another
    # tab, after a restart of the panel) is recorded once, whatever this process remembers.
    done = await panel.bridge.record_payment(p["group_id"], p["amount"], p["method"], p["reference"], p["note"],
                                             actor_by(request), f"form:{key[0]}:{key[1]}" if key[1] else "",
                                             confirm_duplicate=posted.get("confirm_duplicate") == "1")
    earlier = duplicate_of(done)
    if earlier is not None:  # the reference was recorded before: ask, with the same form id
        if key[1]:
            request.app[RECENT_FORMS].release(key)
        return await _payments(request, form=form, status=409, nonce=key[1],
                               duplicate=payment_json(earlier, panel.tz, groups))
    try:
        result = command_result(done)
    except ApiError as e:  # the bot answered no (400 a field, 404 no such group, 503 stopping)
        if key[1]:
            request.app[RECENT_FORMS].release(key)
        if e.status == 503:
            raise
        return await _payments(request, form=form, error=e.message, status=e.status)
    payment = result["payment"]
    method = str(payment.get("method") or p["method"])
    session[FLASH] = t._("Payment %(id)s recorded: %(amount)s by %(method)s from %(group)s. Due now: %(due)s.", 
        id=payment.get("id", ""), amount=i18n.taka(payment.get("amount")), method=t.label("method", method),
        group=groups.get(p["group_id"]) or p["group_id"], due=i18n.due_text(result.get("due"), t))
    raise web.HTTPSeeOther("/payments")


@staff
@page
async def void_post(request: web.Request) -> web.StreamResponse:
    """POST /payments/{id}/void (form: reason): void a mistaken payment; it stays listed."""
    panel = panel_of(request)
    t = texts_of(request)
    posted = await request.post()
    reason = posted.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    session = await get_session(request)
    if not reason:
        session[FLASH] = t._("Say why the payment is wrong: it stays listed, marked void.")
        raise web.HTTPSeeOther("/payments")
    payment_id = request.match_info["id"]
    try:
        result = command_result(await panel.bridge.void_payment(payment_id, reason[:500], actor_by(request)))
    except ApiError as e:
        if e.status == 503:
            raise
        session[FLASH] = t._("Not recorded: %(reason)s", reason=e.message)
        raise web.HTTPSeeOther("/payments")
    session[FLASH] = t._("Payment %(id)s is void: it stays listed but no longer counts. Due now: %(due)s.", id=payment_id.upper(), due=i18n.due_text(result.get("due"), t))
    raise web.HTTPSeeOther("/payments")


# --- ledger -----------------------------------------------------------------------------------


@staff
@page
async def ledger_page(request: web.Request) -> web.Response:
    """GET /groups/{id}/ledger?since=&until=&skip=: the opening balance, billed orders and
    payments with the running due, LEDGER_MAX_LINES at a time (the newest first: `skip` is how
    many of the newest lines to leave out), the group's totals."""
    panel = panel_of(request)
    t = texts_of(request)
    group_id = request.match_info["id"].strip()[:200]
    errors: list[str] = []
    dates, since, until = day_bounds(request.query, panel.tz, errors)
    skip = or_else(errors, lambda: params.count(request.query, "skip", 0, 0, params.MAX_OFFSET), 0)
    result = await panel.bridge.ledger(group_id, since, until)
    if result.status == 404:
        return await error_page(request, 404, t._("There is no group %(id)s.", id=group_id), back="/groups")
    data = ledger_json(unwrap(result), panel.tz)
    lines = data["lines"]
    size = LEDGER_MAX_LINES
    end = max(len(lines) - skip, 0)
    start = max(end - size, 0)
    shown = lines[start:end]
    # The balance before the first line shown, and after the last one.
    opening = data["opening"] if start == 0 else lines[start - 1]["balance"]
    closing = lines[end - 1]["balance"] if end > 0 else data["opening"]
    in_range = {"billed": str(sum((Decimal(x["debit"]) for x in lines), Decimal("0.00"))),
                "paid": str(sum((Decimal(x["credit"]) for x in lines), Decimal("0.00"))),
                "opening": data["opening"], "closing": lines[-1]["balance"] if lines else data["opening"]}
    base = f"/groups/{quote(group_id, safe='')}/ledger"
    kept = {k: v for k, v in dates.items() if v}

    def url(at: int) -> str:
        params = {**kept, **({"skip": str(at)} if at else {})}
        return base + (f"?{urlencode(params)}" if params else "")

    return await render(request, "ledger.html", {
        "title": t._("Ledger: %(name)s", name=data["group_name"] or group_id), "nav": "groups",
        "g": data, "group_id": group_id, "lines": shown, "total_lines": len(lines),
        "first_line": start + 1 if shown else 0, "last_line": end, "opening": opening, "closing": closing,
        "in_range": in_range, "f": dates, "errors": errors,
        "earlier_url": url(skip + size) if start > 0 else None,
        "later_url": url(max(skip - size, 0)) if end < len(lines) else None,
        "export_query": urlencode({"group": group_id, **kept}),
    })


# --- reports ----------------------------------------------------------------------------------


@staff
@page
async def reports_page(request: web.Request) -> web.Response:
    """GET /reports?day=YYYY-MM-DD (default today): the daily report per group and its totals,
    and the CSV exports for a date range."""
    panel = panel_of(request)
    t = texts_of(request)
    errors: list[str] = []
    day = or_else(errors, lambda: check_day(params.text(request.query, "day", 20)), "")
    report = daily_report_json(unwrap(await panel.bridge.daily_report(day)))
    try:
        the_day = date.fromisoformat(report["day"])
    except ValueError:
        the_day = datetime.now(panel.tz).date()
    today = datetime.fromtimestamp(time.time(), panel.tz).date()
    return await render(request, "reports.html", {
        "title": t._("Daily report"), "nav": "reports", "r": report, "day": the_day.isoformat(),
        "errors": errors,
        "prev_day": (the_day - timedelta(days=1)).isoformat(),
        "next_day": (the_day + timedelta(days=1)).isoformat() if the_day < today else None,
        "today": today.isoformat() if the_day != today else None,
        "export": {"since": the_day.replace(day=1).isoformat(), "until": the_day.isoformat()},
        "groups": [{"id": g["group_id"], "name": g["name"] or g["group_id"]} for g in report["groups"]],
        "total_due": _positive_sum([g["due"] for g in report["groups"]]),
        "timezone": panel.config.bot.timezone,
    }, status=400 if errors else 200)


def add_routes(app: web.Application) -> None:
    app[RECENT_FORMS] = RecentForms()
    app.router.add_get("/payments", payments_page)
    app.router.add_post("/payments", payment_post)
    app.router.add_post("/payments/{id}/void", void_post)
    app.router.add_get("/groups/{id}/ledger", ledger_page)
    app.router.add_get("/reports", reports_page)
