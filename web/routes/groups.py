"""Groups: their settings and order counts, and changing a group's settings."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from aiohttp import web

from domain.group import GroupSettings, SettingsError, apply_settings_patch
from web.routes import actor_by, command_result, json_response, panel_of, read_json_object, unwrap
from web.security import ApiError, owner, staff
from web.serialize import group_json, group_list_entry

FIELDS = ("rate", "enabled", "auto_approve", "auto_approve_max", "due_limit", "name")
# Only used to run the domain's validation before asking the GroupActor (which checks again).
_PROBE = GroupSettings(group_id="", name="probe", code="A", rate=Decimal("1.00"))


@staff
async def list_groups(request: web.Request) -> web.Response:
    """GET /api/groups → {"groups": [{id, name, code, rate, rate_set, enabled, auto_approve, ..., left,
    left_at, joined_at, counts, orders, billed, paid, due}]}: every group the bot knows, also those
    without orders; `rate` is null until someone sets it."""
    panel = panel_of(request)
    data = unwrap(await panel.bridge.list_groups())
    return json_response({"groups": [group_list_entry(g, panel.tz) for g in data]})


def check_patch(patch: dict[str, object]) -> None:
    """ApiError 400 naming the field for anything the GroupActor would refuse."""
    if not patch:
        raise ApiError(400, f"nothing to change; send any of {', '.join(FIELDS)}")
    unknown = sorted(k for k in patch if k not in FIELDS)
    if unknown:
        raise ApiError(400, f"{', '.join(unknown)}: not a group setting; use {', '.join(FIELDS)}")
    if "rate" in patch and patch["rate"] in (None, ""):
        # A rate can be changed, never taken away: a group without one refuses every order.
        raise ApiError(400, "rate: required, a decimal string such as \"2.30\"; a group's rate can be "
                            "changed but not unset")
    for key in ("rate", "due_limit"):
        if isinstance(patch.get(key), float):
            raise ApiError(400, f"{key}: send a decimal string such as \"2.30\" or a whole number; "
                                "JSON numbers with a fraction are floats, and floats lose money")
    name = patch.get("name")
    if isinstance(name, str) and any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise ApiError(400, "name: must not contain control or invisible formatting characters")
    try:
        apply_settings_patch(_PROBE, patch)
    except SettingsError as e:
        raise ApiError(400, str(e)) from None


@owner
async def update_group(request: web.Request) -> web.Response:
    """PATCH /api/groups/{id} with any of FIELDS → {"group": {...}}; 400 bad value, 404 unknown.
    A group that has never had an order is patched like any other (its rate set before the first)."""
    panel = panel_of(request)
    group_id = request.match_info["id"].strip()
    if not group_id or len(group_id) > 200:
        raise ApiError(404, f"no group {group_id[:200]}")
    patch = await read_json_object(request)
    check_patch(patch)
    result = command_result(await panel.bridge.update_group(group_id, patch, actor_by(request)))
    return json_response({"group": group_json(str(result.get("group_id") or group_id), result, panel.tz)})


@owner
async def move_group(request: web.Request) -> web.Response:
    """POST /api/groups/{id}/move {"shard": NAME} → {"group_id", "shard", "from"}: the group runs on
    that shard from now on (several machines); 404 unknown group, 409 a shard not connected."""
    panel = panel_of(request)
    group_id = request.match_info["id"].strip()
    if not group_id or len(group_id) > 200:
        raise ApiError(404, f"no group {group_id[:200]}")
    body = await read_json_object(request)
    shard = body.get("shard")
    if not isinstance(shard, str) or not shard.strip() or len(shard) > 32:
        raise ApiError(400, "shard: the name of a connected shard, e.g. \"b\"")
    result = command_result(await panel.bridge.move_group(group_id, shard.strip(), actor_by(request)))
    return json_response(result)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/groups", list_groups)
    app.router.add_patch("/api/groups/{id}", update_group)
    app.router.add_post("/api/groups/{id}/move", move_group)
