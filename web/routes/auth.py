"""Logging in and out (a form for people, JSON for clients) and the session."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp_session import get_session

from web.auth import PanelUser
from web.routes import json_response, panel_of, read_json_object, role_of, user_of
from web.routes.pages import render, texts_of
from web.network import NETWORK
from web.security import (
    DEVICES,
    ApiError,
    csrf_exempt,
    end_session,
    form_token,
    public,
    safe_next,
    session_user,
    staff,
    start_session,
)

log = logging.getLogger("diamondbot.panel.auth")

WRONG_CREDENTIALS = "wrong username or password"


async def check_credentials(request: web.Request, username: str, password: str) -> PanelUser:
    """Throttled credential check: ApiError 429 (with Retry-After) or 401; the user on success.
    Unknown user and wrong password get the same answer. A browser that logged in as this user
    before counts on its own allowance (web.throttle)."""
    panel = panel_of(request)
    address = request.app[NETWORK].client_address(request)
    device = request.app[DEVICES].device_for(request, username)
    keys = panel.throttle.keys(username, address=address, device=device,
                               existing=await panel.users.exists(username))
    wait = panel.throttle.retry_after(keys)
    if wait is not None:
        log.warning("panel login for %r from %s refused: too many failures", username[:64], address)
        raise ApiError(429, f"too many failed logins; try again in {wait} s", {"Retry-After": str(wait)})
    # Counted before the check, so a burst of concurrent guesses cannot all slip past the limit
    # while their hashes are being verified; a success clears it again.
    panel.throttle.failed(keys)
    user = await panel.users.verify(username, password)
    if user is None:
        log.warning("panel login failed for %r from %s%s", username[:64], address,
                    " (a known browser)" if device else "")
        raise ApiError(401, WRONG_CREDENTIALS)
    panel.throttle.succeeded(keys)
    log.info("panel login of %s (%s) from %s", username, user.role.value, address)
    return user


def remember_browser(request: web.Request, response: web.StreamResponse, username: str) -> None:
    """After a login: this browser is known for the user from now on (its own login allowance)."""
    request.app[DEVICES].remember(request, response, username, secure=request.app[NETWORK].https(request))


async def _login_page(request: web.Request, token: str, *, message: str = "", username: str = "",
                      next_path: str = "/", status: int = 200,
                      headers: dict[str, str] | None = None) -> web.Response:
    t = texts_of(request)
    return await render(request, "login.html", {"title": t._("Log in"), "message": message,
                                                "username": username, "csrf_token": token,
                                                "next": next_path},
                        status=status, headers=headers)


@public
async def login_page(request: web.Request) -> web.StreamResponse:
    """GET /login: the form, with a pre-login CSRF token kept in the (anonymous) session."""
    next_path = safe_next(request.app, request.query.get("next"), "/")
    if session_user(await get_session(request)):
        raise web.HTTPSeeOther(next_path)
    return await _login_page(request, await form_token(request), next_path=next_path)


@public
async def login_form(request: web.Request) -> web.StreamResponse:
    """POST /login (form; the middleware has checked the pre-login CSRF token)."""
    form = await request.post()
    username = form.get("username")
    password = form.get("password")
    username = username.strip() if isinstance(username, str) else ""
    password = password if isinstance(password, str) else ""
    next_path = safe_next(request.app, form.get("next"), "/")
    t = texts_of(request)
    try:
        user = await check_credentials(request, username, password)
    except ApiError as e:
        message = (t._("Too many failed attempts. Try again in %(seconds)s seconds.", seconds=e.headers.get("Retry-After", "")) if e.status == 429
                   else t._("Wrong username or password."))
        return await _login_page(request, await form_token(request), message=message, username=username,
                                 next_path=next_path, status=e.status, headers=e.headers)
    await start_session(request, user)
    done = web.HTTPSeeOther(next_path)
    remember_browser(request, done, username)
    raise done


@staff
async def logout_form(request: web.Request) -> web.StreamResponse:
    """POST /logout (form, CSRF token required): end the session, back to the login form."""
    log.info("panel logout of %s", user_of(request))
    await end_session(request)
    raise web.HTTPSeeOther("/login")


@public
@csrf_exempt
async def api_login(request: web.Request) -> web.Response:
    """POST /api/login {"username", "password"} → {"csrf_token", "user"} and the session cookie.

    No CSRF token is required: the client has none yet. Instead the body must be sent as
    application/json, which a cross-site HTML form cannot do, and a cross-site script could only
    with a CORS preflight that this server never approves.
    """
    if request.content_type != "application/json":
        raise ApiError(415, "send the credentials as JSON (Content-Type: application/json)")
    body = await read_json_object(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError(400, "username and password must be strings")
    username = username.strip()
    user = await check_credentials(request, username, password)
    token = await start_session(request, user)
    response = json_response({"csrf_token": token, "user": username, "role": user.role.value})
    remember_browser(request, response, username)
    return response


@staff
async def api_logout(request: web.Request) -> web.Response:
    """POST /api/logout (CSRF token required) → {"ok": true}; the session cookie is cleared."""
    log.info("panel logout of %s", user_of(request))
    await end_session(request)
    return json_response({"ok": True})


@staff
async def api_session(request: web.Request) -> web.Response:
    """GET /api/session → {"user", "role", "csrf_token"} of the logged-in client."""
    session = await get_session(request)
    return json_response({"user": user_of(request), "role": role_of(request).value,
                          "csrf_token": session.get("csrf_token")})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_form)
    app.router.add_post("/logout", logout_form)
    app.router.add_post("/api/login", api_login)
    app.router.add_post("/api/logout", api_logout)
    app.router.add_get("/api/session", api_session)
