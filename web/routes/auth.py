"""Logging in and out (a form for people, JSON for clients), the session, and the landing page."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from string import Template

from aiohttp import web
from aiohttp_session import get_session

from web.routes import json_response, panel_of, read_json_object, user_of
from web.security import (
    ApiError,
    csrf_exempt,
    end_session,
    form_token,
    public,
    session_user,
    start_session,
)

log = logging.getLogger("diamondbot.panel.auth")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_LOGIN = Template((TEMPLATES / "login.html").read_text(encoding="utf-8"))
_INDEX = Template((TEMPLATES / "index.html").read_text(encoding="utf-8"))

TEXT = {
    "bn": {
        "title": "লগইন", "username": "ব্যবহারকারীর নাম", "password": "পাসওয়ার্ড", "submit": "লগইন",
        "wrong": "ভুল ব্যবহারকারীর নাম বা পাসওয়ার্ড।",
        "throttled": "অনেকবার ভুল চেষ্টা হয়েছে। {seconds} সেকেন্ড পরে আবার চেষ্টা করুন।",
        "greeting": "আপনি {user} হিসেবে লগইন করেছেন।",
        "later": "প্যানেলের পাতাগুলো পরে আসছে। ততক্ষণ JSON API ব্যবহার করুন:",
        "logout": "লগআউট",
    },
    "en": {
        "title": "Log in", "username": "Username", "password": "Password", "submit": "Log in",
        "wrong": "Wrong username or password.",
        "throttled": "Too many failed attempts. Try again in {seconds} seconds.",
        "greeting": "Logged in as {user}.",
        "later": "The panel's pages come later. Until then, use the JSON API:",
        "logout": "Log out",
    },
}
WRONG_CREDENTIALS = "wrong username or password"


def _text(request: web.Request) -> dict[str, str]:
    return TEXT.get(panel_of(request).config.bot.language, TEXT["en"])


async def check_credentials(request: web.Request, username: str, password: str) -> None:
    """Throttled credential check: ApiError 429 (with Retry-After) or 401; nothing on success.
    Unknown user and wrong password get the same answer."""
    panel = panel_of(request)
    key = panel.throttle.key(request.remote, username)
    wait = panel.throttle.retry_after(key)
    if wait is not None:
        log.warning("panel login for %r from %s refused: too many failures", username[:64], request.remote)
        raise ApiError(429, f"too many failed logins; try again in {wait} s", {"Retry-After": str(wait)})
    # Counted before the check, so a burst of concurrent guesses cannot all slip past the limit
    # while their hashes are being verified; a success clears it again.
    panel.throttle.failed(key)
    if not await panel.users.verify(username, password):
        log.warning("panel login failed for %r from %s", username[:64], request.remote)
        raise ApiError(401, WRONG_CREDENTIALS)
    panel.throttle.succeeded(key)
    log.info("panel login of %s from %s", username, request.remote)


def _login_page(request: web.Request, token: str, *, message: str = "", username: str = "",
                status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    t = _text(request)
    body = _LOGIN.substitute(
        lang=panel_of(request).config.bot.language,
        title=html.escape(t["title"]),
        message=f'<p class="error" role="alert">{html.escape(message)}</p>' if message else "",
        csrf_token=html.escape(token),
        username_label=html.escape(t["username"]),
        password_label=html.escape(t["password"]),
        username=html.escape(username),
        submit=html.escape(t["submit"]),
    )
    return web.Response(text=body, content_type="text/html", status=status, headers=headers)


@public
async def login_page(request: web.Request) -> web.StreamResponse:
    """GET /login: the form, with a pre-login CSRF token kept in the (anonymous) session."""
    if session_user(await get_session(request)):
        raise web.HTTPSeeOther("/")
    return _login_page(request, await form_token(request))


@public
async def login_form(request: web.Request) -> web.StreamResponse:
    """POST /login (form; the middleware has checked the pre-login CSRF token)."""
    form = await request.post()
    username = form.get("username")
    password = form.get("password")
    username = username.strip() if isinstance(username, str) else ""
    password = password if isinstance(password, str) else ""
    t = _text(request)
    try:
        await check_credentials(request, username, password)
    except ApiError as e:
        message = t["throttled"].format(seconds=e.headers.get("Retry-After", "")) if e.status == 429 else t["wrong"]
        return _login_page(request, await form_token(request), message=message, username=username,
                           status=e.status, headers=e.headers)
    await start_session(request, username)
    raise web.HTTPSeeOther("/")


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
    await check_credentials(request, username, password)
    token = await start_session(request, username)
    return json_response({"csrf_token": token, "user": username})


async def api_logout(request: web.Request) -> web.Response:
    """POST /api/logout (CSRF token required) → {"ok": true}; the session cookie is cleared."""
    log.info("panel logout of %s", user_of(request))
    await end_session(request)
    return json_response({"ok": True})


async def api_session(request: web.Request) -> web.Response:
    """GET /api/session → {"user", "csrf_token"} of the logged-in client."""
    session = await get_session(request)
    return json_response({"user": user_of(request), "csrf_token": session.get("csrf_token")})


async def index(request: web.Request) -> web.Response:
    """GET /: a short page linking to the API until the panel's pages exist."""
    t = _text(request)
    body = _INDEX.substitute(
        lang=panel_of(request).config.bot.language,
        greeting=html.escape(t["greeting"].format(user=user_of(request))),
        later=html.escape(t["later"]),
        csrf_token=html.escape(await form_token(request)),
        logout=html.escape(t["logout"]),
    )
    return web.Response(text=body, content_type="text/html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_form)
    app.router.add_post("/logout", logout_form)
    app.router.add_post("/api/login", api_login)
    app.router.add_post("/api/logout", api_logout)
    app.router.add_get("/api/session", api_session)
