"""The shop's day: open and closed, the closing notice, stock, undoing an approval, dues reminders.

API: `GET /api/shop`, `PATCH /api/shop` (staff may only open and close; the rest is the owners'),
`POST /api/orders/{id}/undo` (web.routes.orders), `POST /api/reminders`. Pages: the Dashboard's
shop card posts `POST /shop`, the Payments page's reminders post `POST /reminders`; closing the
shop and sending reminders ask for a confirmation first (a page without JavaScript, a dialog with).

The shop is the Supervisor's (actors.messages.GetShop / UpdateShop / SendReminders); its view is
described in README "A shop's day in the panel".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from aiohttp import web
from aiohttp_session import get_session

from domain.money import MoneyError, parse_amount
from web import i18n
from web.routes import command_result, actor_by, is_owner, json_response, panel_of, read_json_object, unwrap
from web.routes.pages import FLASH, error_page, page, render, texts_of
from web.security import ApiError, staff
from web.serialize import group_list_entry
from web.shop import SHOP_SILENCE, ShopSilence

STAFF_KEYS = frozenset({"open"})  # what staff may change: opening and closing the day
MAX_GROUP_IDS = 1000
_IGNORED_IN_AMOUNT = str.maketrans("", "", ", \u00a0৳")


async def update_shop(request: web.Request, patch: dict[str, Any]) -> dict[str, Any]:
    """Change the shop as the logged-in user; ApiError 403 when staff change more than `open`,
    or the Supervisor's refusal (400 "<key>: why")."""
    if not is_owner(request) and set(patch) - STAFF_KEYS:
        raise ApiError(403, "staff may only open and close the shop; the other settings are the owners'")
    view = command_result(await panel_of(request).bridge.update_shop(patch, actor_by(request)))
    request.app[SHOP_SILENCE].until = 0.0
    return dict(view)


# --- the API ----------------------------------------------------------------------------------


@staff
async def api_shop(request: web.Request) -> web.Response:
    """GET /api/shop → the ShopView: open, notice, open_notice, stock, admins, payment, approvals,
    texts, audit."""
    return json_response(unwrap(await panel_of(request).bridge.get_shop()))


@staff
async def api_patch_shop(request: web.Request) -> web.Response:
    """PATCH /api/shop with any of the ShopView's settings → the new ShopView; 400 "<key>: why"
    (nothing changed), 403 staff changing anything but `open`."""
    return json_response(await update_shop(request, await read_json_object(request)))


def check_reminders(body: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """(group ids, min_due) of a reminders request, or ApiError 400 saying what is wrong."""
    keys = set(body)
    if keys - {"group_ids", "min_due"} or len(keys) != 1:
        raise ApiError(400, 'send {"group_ids": [...]} or {"min_due": "500"}')
    if "group_ids" in body:
        ids = body["group_ids"]
        if (not isinstance(ids, list) or not 1 <= len(ids) <= MAX_GROUP_IDS
                or not all(isinstance(g, str) and 0 < len(g.strip()) <= 200 for g in ids)):
            raise ApiError(400, f"group_ids: a list of 1 to {MAX_GROUP_IDS} group ids")
        return tuple(dict.fromkeys(g.strip() for g in ids)), "0"
    return (), min_due_of(body["min_due"])


def min_due_of(value: Any) -> str:
    """An amount in taka as a decimal string ("500", "99.50"); ApiError 400 otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ApiError(400, 'min_due: an amount in taka as a string, such as "500"')
    try:
        return str(parse_amount(value.translate(_IGNORED_IN_AMOUNT)))
    except MoneyError as e:
        raise ApiError(400, f"min_due: {e}") from None


@staff
async def api_reminders(request: web.Request) -> web.Response:
    """POST /api/reminders {"group_ids": [...]} or {"min_due": "500"} → {"sent": [group ids],
    "skipped": {group id: why}}: each group gets its due as a paced chat message."""
    group_ids, min_due = check_reminders(await read_json_object(request))
    done = await panel_of(request).bridge.send_reminders(group_ids, min_due, actor_by(request))
    return json_response(dict(command_result(done)))


# --- the dashboard's shop card ----------------------------------------------------------------


@staff
@page
async def shop_post(request: web.Request) -> web.StreamResponse:
    """POST /shop (form: action open | close | notice | stock): closing asks first (confirm=yes);
    the notice and the stock are the owners'."""
    t = texts_of(request)
    form = await request.post()
    action = form.get("action")
    try:
        if action == "open":
            patch: dict[str, Any] = {"open": True}
        elif action == "close":
            if form.get("confirm") != "yes":
                shop = unwrap(await panel_of(request).bridge.get_shop())
                return await render(request, "confirm_shop.html", {"title": t._("Please confirm"), "nav": "dashboard",
                                                                   "styles": "forms.css", "shop": shop})
            patch = {"open": False}
        elif action == "notice":
            notice = form.get("notice")
            patch = {"notice": notice.replace("\r\n", "\n") if isinstance(notice, str) else ""}
        elif action == "stock":
            patch = {"stock": stock_of(form.get("stock"), t)}
        else:
            raise ApiError(400, "action: use open, close, notice or stock")
        view = await update_shop(request, patch)
    except ApiError as e:
        if e.status == 503:
            raise
        message = t._("Only an owner can change the notice or the stock.") if e.status == 403 else e.message
        return await error_page(request, e.status, t._("Not done: %(reason)s", reason=message), back="/")
    session = await get_session(request)
    session[FLASH] = {
        "open": t._("The shop is open: every group that takes orders is told."),
        "close": t._("The shop is closed: every group that takes orders gets the closing notice."),
        "notice": t._("Closing notice saved."),
        "stock": (t._("Stock: %(n)s diamonds.", n=i18n.number(view.get("stock"))) if view.get("stock") is not None
                  else t._("Stock is not counted.")),
    }[str(action)]
    raise web.HTTPSeeOther("/")


def stock_of(value: Any, t: i18n.Words) -> int | None:
    """The stock field: a whole number of diamonds, or empty for not counted."""
    text = value.strip().replace(",", "") if isinstance(value, str) else ""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise ApiError(400, t._("stock: a whole number of diamonds, or empty when stock is not counted"))
    return int(text)


# --- reminders from the Payments page ---------------------------------------------------------


@staff
@page
async def reminders_post(request: web.Request) -> web.StreamResponse:
    """POST /reminders (form: group_id, or min_due; confirm): send dues reminders, after a
    confirmation that says to how many groups."""
    t = texts_of(request)
    panel = panel_of(request)
    form = await request.post()
    groups = [group_list_entry(g, panel.tz) for g in unwrap(await panel.bridge.list_groups())]
    names = {g["id"]: g["name"] or g["id"] for g in groups}
    group_id = form.get("group_id")
    group_id = group_id.strip() if isinstance(group_id, str) else ""
    try:
        if group_id:
            if group_id not in names:
                raise ApiError(404, t._("There is no group %(id)s.", id=group_id[:200]))
            targets = [g for g in groups if g["id"] == group_id]
            ids, min_due = (group_id,), "0"
        else:
            raw = form.get("min_due")
            min_due = min_due_of(raw.strip() if isinstance(raw, str) and raw.strip() else "0")
            floor = Decimal(min_due)
            targets = [g for g in groups if not g.get("left") and _due(g) > floor]
            ids = ()
    except ApiError as e:
        return await error_page(request, e.status, t._("Not sent: %(reason)s", reason=e.message), back="/payments")
    if form.get("confirm") != "yes":
        return await render(request, "confirm_reminders.html", {
            "title": t._("Please confirm"), "nav": "payments", "targets": targets, "group_id": group_id,
            "min_due": min_due})
    try:
        result = command_result(await panel.bridge.send_reminders(ids, min_due, actor_by(request)))
    except ApiError as e:
        if e.status == 503:
            raise
        return await error_page(request, e.status, t._("Not sent: %(reason)s", reason=e.message), back="/payments")
    # The bot says why it passed over each group it did not remind, also those under the amount;
    # the page names only the ones it was asked to remind (the confirmation listed them).
    asked = {g["id"] for g in targets}
    sent = list(result.get("sent") or [])
    skipped = {g: why for g, why in dict(result.get("skipped") or {}).items() if g in asked}
    message = t._("Reminders sent: %(n)s (paced like every message).", n=len(sent))
    if skipped:
        message += " " + t._("Not sent to: %(list)s.", list=", ".join(f"{names.get(g, g)} ({why})"
                                                                     for g, why in skipped.items()))
    session = await get_session(request)
    session[FLASH] = message
    raise web.HTTPSeeOther("/payments")


def _due(group: Mapping[str, Any]) -> Decimal:
    try:
        return Decimal(str(group.get("due") or "0"))
    except ArithmeticError:
        return Decimal(0)


def add_routes(app: web.Application) -> None:
    app[SHOP_SILENCE] = ShopSilence()  # shared with the pages that show the shop (web.shop)
    app.router.add_get("/api/shop", api_shop)
    app.router.add_patch("/api/shop", api_patch_shop)
    app.router.add_post("/api/reminders", api_reminders)
    app.router.add_post("/shop", shop_post)
    app.router.add_post("/reminders", reminders_post)
