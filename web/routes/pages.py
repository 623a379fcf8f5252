"""The panel's pages: server-rendered HTML (aiohttp-jinja2, autoescaped) over the same bridge and
rules as the JSON API, so every page works as plain HTML forms and each page's small script
only enhances it (live rows, one-click actions, inline edits, refreshed figures).

Pages: `/` dashboard, `/orders` (filters, pagination, live), `/orders/{id}`, `/reconciliation`,
`/groups`, `/whatsapp` (and in web.routes.accounts: `/payments`, `/groups/{id}/ledger`, `/reports`). Form posts: `POST /orders/{id}` (field `action`; cancel and delete ask
for confirmation first) and `POST /groups/{id}` (the row's settings). Everything needs a login
(the security middleware), every post the CSRF field.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import quote
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
import orjson
from aiohttp import web
from multidict import MultiMapping
from aiohttp_session import get_session

from domain.orders import TRANSITIONS, Action, Status
from domain.users import Role
from web import i18n
from web.i18n import js_labels
from web.bridge import BridgeError
from web.routes import ACTIONS, PANEL, actor_by, command_result, is_owner, panel_of, params, unwrap
from web.routes import dashboard as dash
from web.routes.groups import check_patch
from web.routes.params import or_else
from web.security import FORBIDDEN_PAGE, ROLE, USER, ApiError, form_token, owner, safe_next, staff
from web.serialize import group_list_entry, order_json, report_json, status_json
from web.shop import mark_undo, shop_if_known, undo_window

log = logging.getLogger("diamondbot.panel.pages")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
MAX_CYCLE_GROUPS = 100
CONFIRM = frozenset({"cancel", "delete"})
FORM_ACTIONS = (*ACTIONS, "undo")  # undo: within the shop's undo window (web.shop.undo_open)
STATUSES = tuple(s.value for s in Status)
OPEN = "pending,processing,approved"
# Which buttons an order in each state shows (the state machine's, minus the system's COMPLETE).
ALLOWED = {s.value: [a for a in ACTIONS if s in TRANSITIONS[Action(a)][0]] for s in Status}
FLASH = "flash"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- rendering --------------------------------------------------------------------------------


def setup_templates(app: web.Application) -> None:
    """aiohttp-jinja2 over web/templates, autoescaped, with the panel's formatting helpers and
    its words: jinja2's i18n extension with the same translations as the code (web.i18n)."""
    tz = app[PANEL].tz
    words = app[PANEL].words
    app[FORBIDDEN_PAGE] = forbidden_page
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                               trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(words.translations, newstyle=True)  # type: ignore[attr-defined]
    # tojson still escapes < > & ' for HTML; Bengali stays UTF-8 (3 bytes, not a 6-byte \u escape).
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    versions: dict[str, str] = {}

    def asset(name: str) -> str:
        """A static file's URL with its content hash, so a new version is never served stale."""
        if name not in versions:
            static = app.router.named_resources().get("static")
            versions[name] = (str(static.url_for(filename=name, append_version=True))  # type: ignore[union-attr]
                              if static is not None else f"/static/{name}")
        return versions[name]

    env.globals.update(
        asset=asset,
        when=lambda v: i18n.when(v, tz),
        when_exact=lambda v: i18n.when_exact(v, tz),
        taka=i18n.taka,
        audit_note=lambda note: i18n.audit_note(note, words),
        due_tone=i18n.due_tone,
        due_text=lambda amount: i18n.due_text(amount, words),
        label=words.label,
        rate=lambda v: "৳" + v.removesuffix(".00") if isinstance(v, str) and v else "—",
        number=i18n.number,
        ACTIONS=ACTIONS,
        STATUSES=STATUSES,
        BUCKETS=dash.BUCKETS,
        ALLOWED=ALLOWED,
        OPEN=OPEN,
        CHART_W=dash.CHART_W, CHART_H=dash.CHART_H, PLOT_LEFT=dash.PLOT_LEFT, PLOT_RIGHT=dash.PLOT_RIGHT,
    )


def texts_of(request: web.Request) -> i18n.Words:
    """The panel's words, in the one language bot.language chose for it."""
    return panel_of(request).words


async def render(request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200,
                 headers: Mapping[str, str] | None = None) -> web.Response:
    """A page in the panel's language, with the session's CSRF token and a pending flash message."""
    t = texts_of(request)
    session = await get_session(request)
    flash = session.pop(FLASH, None) if FLASH in session else None
    role = request.get(ROLE)
    ctx = {
        "lang": t.language,
        "user": request.get(USER),
        "owner": role is Role.OWNER,  # Settings and Users are in the navigation for owners only
        "csrf_token": await form_token(request),
        "flash": flash if isinstance(flash, str) else None,
        "request_path": request.path,
        "request_path_qs": request.path_qs,
        "nav": "",
        "script": None,
        "styles": None,  # a second stylesheet for the pages that need it (forms.css)
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    if headers:
        response.headers.update(headers)
    return response


async def error_page(request: web.Request, status: int, message: str, back: str | None = None) -> web.Response:
    t = texts_of(request)
    return await render(request, "error.html", {"title": t._("Something went wrong"), "message": message, "back": back},
                        status=status)


async def forbidden_page(request: web.Request, message: str) -> web.Response:
    """What a person sees on a page their role does not allow (web.security's role check)."""
    t = texts_of(request)
    return await error_page(request, 403, t._("Only an owner can open this page or do this."), back="/")


def page(handler: Handler) -> Handler:
    """A page handler: the actor system not answering is a readable page (503), not bare text."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BridgeError as e:
            log.warning("%s %s: %s", request.method, request.path, e)
        except ApiError as e:
            if e.status != 503:
                raise
        # "Try again" reloads a page; after a failed form post, go back to the dashboard instead.
        t = texts_of(request)
        return await error_page(request, 503, t._("The bot is not answering right now. The page will work again "
                                                   "once it is back."),
                                back=None if request.method in ("GET", "HEAD") else "/")

    return wrapped


# The columns of the tables that become one card per row on a phone (panel.css, .stack): each
# cell is labelled with its column's name, given here once per page instead of once per cell.
def stacked_columns(t: i18n.Words) -> dict[str, tuple[str, ...]]:
    """Each stacked table's column names by position ("" for a cell that needs none)."""
    return {
        "orders": (t._("Order"), t._("Time"), t._("Group"), t._("Reseller"), t._("Player"), t._("Diamonds"),
                   t._("Amount"), t._("Status"), t._("Checks"), t._("Issues")),
        "groups": ("", t._("Taking orders"), t._("Rate (৳ per diamond)"), t._("Auto-approve"),
                   t._("Auto-approve up to (diamonds)"), t._("Due limit (৳)"), t._("Orders"), t._("Due")),
    }


def css_string(text: str) -> str:
    """`text` as a CSS string literal (quotes, backslashes and control characters escaped)."""
    return '"' + "".join(f"\\{ord(c):x} " if c in '"\\' or not c.isprintable() else c for c in text) + '"'


@staff
async def labels_css(request: web.Request) -> web.Response:
    """GET /labels.css: the column names of the stacked tables, as custom properties."""
    lines = [f".{table} td:nth-child({i}) {{ --label: {css_string(name)}; }}"
             for table, names in stacked_columns(texts_of(request)).items() for i, name in enumerate(names, 1) if name]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/css")


# --- dashboard --------------------------------------------------------------------------------


@staff
@page
async def dashboard(request: web.Request) -> web.Response:
    """GET /: the shop (open or closed, its notice, stock) and the monitoring and performance
    dashboards, refreshed by dashboard.js."""
    data, shop = await asyncio.gather(dash.dashboard_data(request), shop_if_known(request))
    t = texts_of(request)
    return await render(request, "dashboard.html", {"title": t._("Dashboard"), "nav": "dashboard",
                                                    "script": "dashboard.js", "styles": "forms.css", "d": data,
                                                    "shop": shop})


# --- orders -----------------------------------------------------------------------------------


def day_bounds(query: MultiMapping[str], tz: Any,
               errors: list[str]) -> tuple[dict[str, str], float | None, float | None]:
    """The since/until fields of a GET form: (their values, the bounds); a bad one is ignored and said."""
    form = {name: or_else(errors, functools.partial(params.text, query, name, 40), "") for name in ("since", "until")}
    bounds: dict[str, float | None] = {}
    for name in ("since", "until"):
        bounds[name] = or_else(errors, functools.partial(params.parse_bound, name, form[name], tz,
                                                         end=name == "until"), None)
        if bounds[name] is None:
            form[name] = ""
    if bounds["since"] is not None and bounds["until"] is not None and bounds["since"] >= bounds["until"]:
        errors.append("since: must be before until")
        form["until"], bounds["until"] = "", None
    return form, bounds["since"], bounds["until"]


def page_window(query: MultiMapping[str], errors: list[str]) -> tuple[int, int]:
    """The limit/offset fields of a GET form; a bad one falls back to the default and is said."""
    limit = or_else(errors, lambda: params.count(query, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE), PAGE_SIZE)
    offset = or_else(errors, lambda: params.count(query, "offset", 0, 0, params.MAX_OFFSET), 0)
    return limit, offset


def order_filters(request: web.Request) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(filters for the bridge, the form's values, why a filter was ignored). A page never
    answers 400 to a bad filter: it shows what it ignored and the orders without it."""
    tz = panel_of(request).tz
    q = request.query
    errors: list[str] = []
    form = {name: or_else(errors, functools.partial(params.text, q, name), "") for name in ("status", "group", "q")}
    wanted = [s.strip().lower() for s in form["status"].split(",") if s.strip()]
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        errors.append(f"status: unknown {', '.join(bad)}")
        form["status"], wanted = "", []
    dates, since, until = day_bounds(q, tz, errors)
    form.update(dates)
    limit, offset = page_window(q, errors)
    filters = {"status": ",".join(wanted), "group": form["group"], "q": form["q"],
               "since": since, "until": until, "limit": limit, "offset": offset}
    return filters, form, errors


def _page_url(form: Mapping[str, str], limit: int, offset: int) -> str:
    params = {k: v for k, v in form.items() if v}
    if limit != PAGE_SIZE:
        params["limit"] = str(limit)
    if offset:
        params["offset"] = str(offset)
    return "/orders" + (f"?{urlencode(params)}" if params else "")


BLANK_ORDER = {"id": "", "status": "pending", "created_at": "", "recovered": False, "group_name": "",
               "user_name": "", "user_id": "", "player_id": "", "diamonds": 0, "amount": None, "check_count": 0,
               "issues": [], "undo_until_ms": None}


@staff
@page
async def orders_page(request: web.Request) -> web.Response:
    """GET /orders?status=&group=&q=&since=&until=&offset=&limit=: the table, live (orders.js)."""
    panel = panel_of(request)
    t = texts_of(request)
    filters, form, errors = order_filters(request)
    listed, groups, shop = await asyncio.gather(panel.bridge.list_orders(**filters), panel.bridge.list_groups(),
                                                shop_if_known(request))
    data = unwrap(listed)
    orders = [order_json(v, panel.tz) for v in data["orders"]]
    window, now = undo_window(shop), panel.clock()
    for o in orders:
        mark_undo(o, window, now)
    total = int(data["total"])
    limit, offset = filters["limit"], filters["offset"]
    group_list = [group_list_entry(g, panel.tz) for g in unwrap(groups)]
    return await render(request, "orders.html", {
        "title": t._("Orders"), "nav": "orders", "script": "orders.js",
        "orders": orders, "total": total, "first": offset + 1 if orders else 0, "last": offset + len(orders),
        "offset": offset, "limit": limit, "f": form, "errors": errors,
        "groups": [{"id": g["id"], "name": g["name"] or g["id"]} for g in group_list],
        "prev_url": _page_url(form, limit, max(0, offset - limit)) if offset > 0 else None,
        "next_url": _page_url(form, limit, offset + limit) if offset + limit < total else None,
        "blank": BLANK_ORDER, "undo_window": window, "now_ms": int(now * 1000),
        "js_labels": js_labels(t, "status.", "issue.", "confirm.cancel", "confirm.delete", "orders.live",
                               "orders.connecting", "orders.reconnecting", "orders.count", "orders.range",
                               "error.network", "error.refused", "action.done."),
    })


@staff
@page
async def order_page(request: web.Request) -> web.Response:
    """GET /orders/{id}: every field, issues, check log, delivery attempts and the audit trail."""
    panel = panel_of(request)
    t = texts_of(request)
    order_id = request.match_info["id"].strip()[:40]
    result, shop = await asyncio.gather(panel.bridge.get_order(order_id), shop_if_known(request))
    if result.status == 404:
        return await error_page(request, 404, t._("There is no order %(id)s.", id=order_id), back="/orders")
    o = order_json(unwrap(result), panel.tz, detail=True)
    now = panel.clock()
    mark_undo(o, undo_window(shop), now)
    return await render(request, "order.html", {
        "title": t._("Order %(id)s", id=o["id"]), "nav": "orders", "script": "orders.js", "o": o,
        "now_ms": int(now * 1000),
        "js_labels": js_labels(t, "confirm.cancel", "confirm.delete", "error.network", "error.refused",
                               "action.done."),
    })


@staff
@page
async def order_action(request: web.Request) -> web.StreamResponse:
    """POST /orders/{id} (form: action, confirm, next): process / approve / cancel / delete.
    Cancel and delete show a confirmation page first unless `confirm=yes`."""
    panel = panel_of(request)
    t = texts_of(request)
    order_id = request.match_info["id"].strip()[:40]
    form = await request.post()
    action = form.get("action")
    back = safe_next(request.app, form.get("next"), "/orders/" + quote(order_id, safe=""))
    if action not in FORM_ACTIONS:
        return await error_page(request, 400, t._("Not done: %(reason)s", 
            reason=f"action: use one of {', '.join(FORM_ACTIONS)}"), back=back)
    assert isinstance(action, str)
    if action in CONFIRM and form.get("confirm") != "yes":
        result = await panel.bridge.get_order(order_id)
        if result.status == 404:
            return await error_page(request, 404, t._("There is no order %(id)s.", id=order_id), back=back)
        o = order_json(unwrap(result), panel.tz)
        return await render(request, "confirm.html", {
            "title": t._("Please confirm"), "nav": "orders", "o": o, "action": action, "next": back,
            "question": i18n.script_word(t, f"confirm.{action}", id=o["id"])})
    done = await panel.bridge.command(order_id, action, actor_by(request))
    if done.status == 404:
        return await error_page(request, 404, t._("There is no order %(id)s.", id=order_id), back=back)
    try:
        command_result(done)
    except ApiError as e:  # 400 / 409: refused, with the state machine's reason
        return await error_page(request, e.status, t._("Not done: %(reason)s", reason=e.message), back=back)
    session = await get_session(request)
    session[FLASH] = i18n.script_word(t, f"action.done.{action}", id=order_id)
    raise web.HTTPSeeOther(back)


# --- reconciliation ---------------------------------------------------------------------------


@staff
@page
async def reconciliation_page(request: web.Request) -> web.Response:
    """GET /reconciliation: counts, check buckets, open issues (linked) and each group's recent cycles."""
    panel = panel_of(request)
    t = texts_of(request)
    report_result, groups_result = await asyncio.gather(panel.bridge.report(), panel.bridge.list_groups())
    report = report_json(unwrap(report_result), panel.tz)
    names = {g["id"]: g["name"] or g["id"]
             for g in (group_list_entry(x, panel.tz) for x in unwrap(groups_result))}
    cycle_groups = [{"id": gid, "name": names.get(gid, gid), "cycles": cycles}
                    for gid, cycles in report["cycles"].items() if cycles]
    # Groups with open issues first, then by name.
    cycle_groups.sort(key=lambda g: (-g["cycles"][0]["open_issues"], g["name"].lower()))
    return await render(request, "reconciliation.html", {
        "title": t._("Reconciliation"), "nav": "reconciliation", "r": report,
        "cycle_groups": cycle_groups[:MAX_CYCLE_GROUPS], "cycle_total": len(cycle_groups),
    })


# --- groups -----------------------------------------------------------------------------------


@staff
@page
async def groups_page(request: web.Request) -> web.Response:
    """GET /groups: every group the bot knows (also those without orders, and those it left): name,
    taking orders, rate (or that none is set), auto-approve, due limit and order counts, editable in place."""
    panel = panel_of(request)
    t = texts_of(request)
    groups = [group_list_entry(g, panel.tz) for g in unwrap(await panel.bridge.list_groups())]
    for g in groups:
        counts = g["counts"]
        g["open"] = sum(int(counts.get(s, 0)) for s in OPEN.split(","))
        g["name"] = g["name"] or g["id"]
    return await render(request, "groups.html", {
        "title": t._("Groups"), "nav": "groups", "script": "groups.js", "groups": groups,
        "unrated": sum(1 for g in groups if not g["rate_set"]),
        "js_labels": js_labels(t, "groups.", "error.network", "error.refused"),
    })


def settings_patch(form: Mapping[str, Any], t: i18n.Words) -> dict[str, Any]:
    """The settings a group row's form sends (unchecked boxes are absent: false)."""
    if form.get("settings") != "1":
        raise ApiError(400, "send the group's settings form (field settings=1)")
    given = form.get("rate")
    rate = given.strip() if isinstance(given, str) else ""
    patch: dict[str, Any] = {"enabled": form.get("enabled") is not None,
                             "auto_approve": form.get("auto_approve") is not None}
    # The row of a group without a rate says so (rate_set=0): its empty field leaves the rate
    # unset and saves the rest; anywhere else an empty rate is refused by check_patch.
    if rate or form.get("rate_set") != "0":
        patch["rate"] = rate
    most = form.get("auto_approve_max")
    if isinstance(most, str) and most.strip():
        try:
            patch["auto_approve_max"] = params.whole_number(most.strip(), "auto_approve_max", 0, 0, 10**9)
        except ApiError:
            raise ApiError(400, t._("auto_approve_max: must be a whole number of diamonds, 0 or more")) from None
    limit = form.get("due_limit")
    if isinstance(limit, str):
        patch["due_limit"] = limit.strip()  # empty: no limit
    return patch


@owner
@page
async def group_action(request: web.Request) -> web.StreamResponse:
    """POST /groups/{id} (form): save a group's rate, switches and auto-approve limit."""
    panel = panel_of(request)
    t = texts_of(request)
    group_id = request.match_info["id"].strip()
    form = await request.post()
    try:
        if not group_id or len(group_id) > 200:
            raise ApiError(404, f"no group {group_id[:200]}")
        patch = settings_patch(form, t)
        check_patch(patch)
        result = command_result(await panel.bridge.update_group(group_id, patch, actor_by(request)))
    except ApiError as e:
        if e.status == 503:
            raise
        return await error_page(request, e.status, t._("Not done: %(reason)s", reason=e.message), back="/groups")
    session = await get_session(request)
    session[FLASH] = t._("Group %(name)s saved.", name=result.get("groupName") or group_id)
    code = result.get("code")
    raise web.HTTPSeeOther(f"/groups#g-{code}" if isinstance(code, str) and code.isalnum() else "/groups")


# --- machines (several machines, issue 16) ---------------------------------------------------


@staff
@page
async def machines_page(request: web.Request) -> web.Response:
    """GET /machines: the shards (machines) with their health, and where each group runs; owners
    can move a group to another connected shard."""
    panel = panel_of(request)
    t = texts_of(request)
    status = status_json(unwrap(await panel.bridge.status()), panel.tz, panel.started_at, time.time())
    cluster = status["cluster"]
    groups = sorted(status["groups"].get("actors") or [], key=lambda g: (g.get("shard", ""), g.get("code", "")))
    return await render(request, "machines.html", {
        "title": t._("Machines"), "nav": "machines", "cluster": cluster, "groups": groups,
        "live": [s["name"] for s in cluster["shards"] if s["live"]],
    })


@owner
@page
async def machine_move(request: web.Request) -> web.StreamResponse:
    """POST /machines/{id} (form, shard=NAME): run the group on that shard from now on."""
    panel = panel_of(request)
    t = texts_of(request)
    group_id = request.match_info["id"].strip()
    form = await request.post()
    shard = str(form.get("shard") or "").strip()
    try:
        if not group_id or len(group_id) > 200 or not shard or len(shard) > 32:
            raise ApiError(400, "a group and a shard")
        command_result(await panel.bridge.move_group(group_id, shard, actor_by(request)))
    except ApiError as e:
        if e.status == 503:
            raise
        return await error_page(request, e.status, t._("Not done: %(reason)s", reason=e.message), back="/machines")
    session = await get_session(request)
    session[FLASH] = t._("Group %(name)s moved to shard %(shard)s.", name=group_id, shard=shard)
    raise web.HTTPSeeOther("/machines")


# --- whatsapp ---------------------------------------------------------------------------------


def has_route(app: web.Application, method: str, path: str) -> bool:
    """Whether the app serves `method path` (the WhatsApp transport's routes may not exist yet)."""
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if route.method == method and info.get("path", info.get("formatter")) == path:
            return True
    return False


def _detail_text(detail: Any) -> str:
    """A gateway state detail for people: plain text as is; structured details (QR payloads,
    ban times) are shown by their own fields, only their message here."""
    if not isinstance(detail, str) or not detail:
        return ""
    if detail.startswith("{"):
        try:
            data = orjson.loads(detail)
        except orjson.JSONDecodeError:
            return ""
        message = data.get("message") or data.get("reason") if isinstance(data, dict) else None
        return message if isinstance(message, str) else ""
    return detail


@staff
@page
async def whatsapp_page(request: web.Request) -> web.Response:
    """GET /whatsapp: the connection; the sandbox's address, or WhatsApp's QR / pairing code."""
    panel = panel_of(request)
    t = texts_of(request)
    status = status_json(unwrap(await panel.bridge.status()), panel.tz, panel.started_at, time.time())
    gateway = status["gateway"]
    kind = str(gateway.get("kind") or panel.config.gateway.kind)
    state = str(gateway.get("state") or "stopped")
    app = request.app
    return await render(request, "whatsapp.html", {
        "title": t._("WhatsApp"), "nav": "whatsapp", "script": "whatsapp.js",
        "gateway": gateway, "kind": kind, "state": state, "tone": i18n.GATEWAY_TONE.get(state, "warn"),
        "tones": i18n.GATEWAY_TONE,
        "detail": _detail_text(gateway.get("detail")),
        "sandbox_url": panel.config.sandbox.url.rstrip("/"),
        "has_api": has_route(app, "GET", "/api/whatsapp"),
        # Scanning the QR code, or pairing again, decides whose WhatsApp the bot is: owners only.
        "has_qr": has_route(app, "GET", "/api/whatsapp/qr.svg") and is_owner(request),
        "has_repair": has_route(app, "POST", "/api/whatsapp/repair") and is_owner(request),
        "js_labels": js_labels(t, "gateway.", "wa.", "error.network", "error.refused"),
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", dashboard)
    app.router.add_get("/orders", orders_page)
    app.router.add_get("/orders/{id}", order_page)
    app.router.add_post("/orders/{id}", order_action)
    app.router.add_get("/reconciliation", reconciliation_page)
    app.router.add_get("/groups", groups_page)
    app.router.add_post("/groups/{id}", group_action)
    app.router.add_get("/whatsapp", whatsapp_page)
    app.router.add_get("/machines", machines_page)
    app.router.add_post("/machines/{id}", machine_move)
    app.router.add_get("/labels.css", labels_css)
