"""The panel's users: an owner adds staff, resets passwords, changes roles and removes people
(the Users page and /api/users); everyone changes their own password (Account, /api/account).

The users are the PersistenceActor's (web.auth.UserDirectory); what an owner may do is its rule
(domain.users: the shop keeps an owner). A reset or a removal ends the user's sessions at once
(the login middleware compares each session with its user's password); a new password of one's
own starts a fresh session for this browser and ends the others.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web
from aiohttp_session import get_session

from domain.users import Role, UserError, check_role, check_username
from web import i18n
from web.auth import MIN_PASSWORD, PasswordError, check_password
from web.routes import actor_by, command_result, json_response, panel_of, read_json_object, user_of
from web.routes.pages import FLASH, page, render, texts_of
from web.security import ApiError, owner, staff, start_session

ROLES = tuple(r.value for r in Role)
AUDIT_SHOWN = 50  # the newest user changes the Users page lists


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    try:
        return check_username(name)
    except UserError:
        raise ApiError(404, f"no user {name[:64]}") from None


def _checked(username: Any, role: Any, password: Any) -> tuple[str, str, str | None]:
    """(username, role, password or None) as given, or ApiError 400 saying which is wrong."""
    try:
        name = check_username(username)
        role_value = check_role(role).value
        if password is not None:
            check_password(password)
    except (UserError, PasswordError) as e:
        raise ApiError(400, str(e)) from None
    return name, role_value, password


async def _save(request: web.Request, name: str, role: str, password: str | None, remove: bool = False) -> Mapping[str, Any]:
    """Save through the directory; the actor system's refusal (400, 404, 409) as an ApiError."""
    try:
        done = await panel_of(request).users.save(name, role, password, actor_by(request), remove)
    except PasswordError as e:
        raise ApiError(400, str(e)) from None
    return command_result(done)


def audit_rows(audit: Any, t: i18n.Words) -> list[dict[str, str]]:
    """The user changes, newest first, in the panel's words."""
    rows = []
    for a in list(audit)[::-1][:AUDIT_SHOWN]:
        role = t.label("role", str(a.get("role") or ""))
        rows.append({"at": str(a.get("at") or ""), "by": who(str(a.get("by") or ""), t), "user": str(a.get("user") or ""),
                     "what": change_words(str(a.get("change") or ""), role, t)})
    return rows


def who(by: str, t: i18n.Words) -> str:
    """Who made a change, for people: a user's name, or what did it."""
    kind, _, name = by.partition(":")
    if kind == "admin":
        return name
    return {"cli": t._("set-password (command line)"), "system": t._("first start"),
            "import": t._("brought in from panel-users.json")}.get(kind, by)


def change_words(change: str, role: str, t: i18n.Words) -> str:
    words = {
        "added": t._("added as %(role)s", role=role),
        "imported": t._("brought in as %(role)s", role=role),
        "password": t._("password set"),
        "role": t._("role changed to %(role)s", role=role),
        "role_and_password": t._("role changed to %(role)s, password set", role=role),
        "removed": t._("removed"),
        "restored": t._("added again as %(role)s", role=role),
    }
    return words.get(change, change)


# --- the API ----------------------------------------------------------------------------------


@owner
async def api_users(request: web.Request) -> web.Response:
    """GET /api/users → {"users": [{"username", "role", "removed", "at", "by"}], "audit": [newest first]}."""
    users = await panel_of(request).users.users()
    return json_response({"users": [dict(u) for u in users.records], "audit": [dict(a) for a in users.audit][::-1]})


@owner
async def api_add_user(request: web.Request) -> web.Response:
    """POST /api/users {"username", "role", "password"} → 201 the user (400 bad input, also a name
    already taken; a removed user's name may be used again)."""
    body = await read_json_object(request)
    unknown = set(body) - {"username", "role", "password"}
    if unknown:
        raise ApiError(400, f"{sorted(unknown)[0]}: unknown field; send username, role and password")
    name, role, password = _checked(body.get("username"), body.get("role"), body.get("password"))
    if password is None:
        raise ApiError(400, "password: a new user needs one")
    if await panel_of(request).users.get(name) is not None:
        raise ApiError(400, f"username: {name} is taken; reset their password or change their role instead")
    return json_response(dict(await _save(request, name, role, password)), status=201)


@owner
async def api_change_user(request: web.Request) -> web.Response:
    """PATCH /api/users/{name} {"role"?, "password"?} → the user; a reset ends their sessions.
    Your own password is changed under /api/account/password (with the current one)."""
    name = _name(request)
    body = await read_json_object(request)
    unknown = set(body) - {"role", "password"}
    if unknown or not body:
        raise ApiError(400, f"{sorted(unknown)[0]}: unknown field; send role and/or password" if unknown
                       else "send role and/or password")
    current = await panel_of(request).users.get(name)
    if current is None:
        raise ApiError(404, f"no user {name}")
    if "password" in body and name == user_of(request):
        raise ApiError(400, "password: change your own under /api/account/password, with the current one")
    _, role, password = _checked(name, body.get("role", current.role.value), body.get("password"))
    return json_response(dict(await _save(request, name, role, password)))


@owner
async def api_remove_user(request: web.Request) -> web.Response:
    """DELETE /api/users/{name} → the user, marked removed; their sessions end (409 the last owner)."""
    return json_response(dict(await _save(request, _name(request), "", None, remove=True)))


@staff
async def api_own_password(request: web.Request) -> web.Response:
    """POST /api/account/password {"current", "password"} → {"csrf_token"}: this session goes on
    (with a new token), every other session of yours ends."""
    body = await read_json_object(request)
    token = await _change_own(request, body.get("current"), body.get("password"))
    return json_response({"ok": True, "csrf_token": token})


async def _change_own(request: web.Request, current: Any, password: Any) -> str:
    panel = panel_of(request)
    me = user_of(request)
    if not isinstance(current, str) or await panel.users.verify(me, current) is None:
        raise ApiError(400, "current: not your current password")
    try:
        check_password(password)
    except PasswordError as e:
        raise ApiError(400, str(e)) from None
    user = await panel.users.get(me)
    assert user is not None  # the login middleware found it a moment ago
    await _save(request, me, user.role.value, password)
    changed = await panel.users.get(me)
    if changed is None:
        raise ApiError(409, "your user changed meanwhile; log in again")
    return await start_session(request, changed)


# --- the pages --------------------------------------------------------------------------------


async def _users_page(request: web.Request, *, error: str | None = None, form: Mapping[str, str] | None = None,
                      status: int = 200) -> web.Response:
    t = texts_of(request)
    users = await panel_of(request).users.users()
    people = sorted(users.records, key=lambda u: (bool(u.get("removed")), str(u.get("username"))))
    return await render(request, "users.html", {
        "title": t._("Users"), "nav": "users", "script": "users.js", "styles": "forms.css",
        "people": [{**p, "by": who(str(p.get("by") or ""), t)} for p in people if not p.get("removed")],
        "removed": [dict(p) for p in people if p.get("removed")],
        "owners": sum(1 for p in people if not p.get("removed") and p.get("role") == Role.OWNER.value),
        "roles": ROLES, "audit": audit_rows(users.audit, t), "error": error,
        "form": {"username": "", "role": Role.STAFF.value, **(form or {})},
        "me": user_of(request),
        "js_labels": {"confirm.remove": t.gettext("Remove %(name)s? They are logged out at once and can no longer log in."),
                      "confirm.reset": t.gettext("Set a new password for %(name)s? They are logged out everywhere.")},
    }, status=status)


@owner
@page
async def users_page(request: web.Request) -> web.Response:
    """GET /users: everyone who may log in, with their role; add, reset, change role, remove; the audit."""
    return await _users_page(request)


@owner
@page
async def users_post(request: web.Request) -> web.StreamResponse:
    """POST /users (form: action add|role|reset|remove, username, role, password)."""
    t = texts_of(request)
    form = await request.post()
    value = {k: v.strip() if isinstance(v := form.get(k), str) and k != "password" else (v if isinstance(v, str) else "")
             for k in ("action", "username", "role", "password")}
    action, name = value["action"], value["username"]
    panel = panel_of(request)
    try:
        if action == "add":
            name, role, password = _checked(name, value["role"], value["password"])
            if await panel.users.get(name) is not None:
                raise ApiError(400, t._("%(name)s is already a user.", name=name))
            await _save(request, name, role, password)
            done = t._("%(name)s added as %(role)s.", name=name, role=t.label("role", role))
        elif action in ("role", "reset", "remove"):
            current = await panel.users.get(name)
            if current is None:
                raise ApiError(404, t._("There is no user %(name)s.", name=name[:64]))
            if action == "remove":
                await _save(request, name, "", None, remove=True)
                done = t._("%(name)s removed: logged out and can no longer log in.", name=name)
            elif action == "role":
                _, role, _ = _checked(name, value["role"], None)
                await _save(request, name, role, None)
                done = t._("%(name)s is now %(role)s.", name=name, role=t.label("role", role))
            else:
                if name == user_of(request):
                    raise ApiError(400, t._("Change your own password under Account."))
                _, _, password = _checked(name, current.role.value, value["password"])
                await _save(request, name, current.role.value, password)
                done = t._("New password set for %(name)s; they were logged out everywhere.", name=name)
        else:
            raise ApiError(400, "action: use add, role, reset or remove")
    except ApiError as e:
        if e.status == 503:
            raise
        return await _users_page(request, error=e.message, status=e.status,
                                 form={"username": name, "role": value["role"]} if action == "add" else None)
    me = await panel.users.get(user_of(request))
    if me is None:
        raise web.HTTPSeeOther("/login")  # you removed yourself: this session has ended
    session = await get_session(request)
    session[FLASH] = done
    raise web.HTTPSeeOther("/users" if me.owner else "/")  # made yourself staff: Users is no longer yours


async def _account_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    t = texts_of(request)
    user = await panel_of(request).users.get(user_of(request))
    return await render(request, "account.html", {
        "title": t._("Account"), "nav": "account", "styles": "forms.css", "error": error,
        "role": user.role.value if user is not None else "",
    }, status=status)


@staff
@page
async def account_page(request: web.Request) -> web.Response:
    """GET /account: who you are, your role, and the form to change your own password."""
    return await _account_page(request)


@staff
@page
async def account_post(request: web.Request) -> web.StreamResponse:
    """POST /account (form: current, password, again): change your own password."""
    t = texts_of(request)
    form = await request.post()
    current, password, again = (form.get(k) if isinstance(form.get(k), str) else "" for k in ("current", "password", "again"))
    if password != again:
        return await _account_page(request, error=t._("The two new passwords differ."), status=400)
    try:
        await _change_own(request, current, password)
    except ApiError as e:
        if e.status == 503:
            raise
        message = (t._("That is not your current password.") if e.message.startswith("current:")
                   else t._("The new password needs at least %(n)s characters.", n=MIN_PASSWORD)
                   if "at least" in e.message else e.message)
        return await _account_page(request, error=message, status=e.status)
    session = await get_session(request)
    session[FLASH] = t._("Your password is changed. You are still logged in here; everywhere else you were logged out.")
    raise web.HTTPSeeOther("/account")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/users", api_users)
    app.router.add_post("/api/users", api_add_user)
    app.router.add_patch("/api/users/{name}", api_change_user)
    app.router.add_delete("/api/users/{name}", api_remove_user)
    app.router.add_post("/api/account/password", api_own_password)
    app.router.add_get("/users", users_page)
    app.router.add_post("/users", users_post)
    app.router.add_get("/account", account_page)
    app.router.add_post("/account", account_post)
