"""The panel's defences: encrypted session cookies, login required, CSRF, login throttling,
security headers, and errors that never leak a traceback or answer bad input with a 500.

Middleware order (outermost first): Host check → sessions → errors → login/CSRF. The error middleware sits
inside the session middleware so the responses it builds still carry a changed session cookie.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any, Awaitable, Callable, Mapping, TypeVar
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_urldispatcher import StaticResource
from aiohttp_session import Session, get_session, new_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet
from yarl import URL

from domain.users import Role
from web.auth import PanelUser, UserDirectory
from web.bridge import BridgeError
from web.network import NETWORK, NetworkPolicy, host_middleware
from web.sessions import SessionRegistry
from web.throttle import KnownDevices

log = logging.getLogger("diamondbot.panel")

COOKIE_NAME = "diamondbot_session"
SESSION_MAX_AGE = 12 * 3600
SESSION_ID, SESSION_AT = "sid", "at"  # the session's id and login time, for SessionRegistry
SESSION_PASSWORD = "pw"  # the fingerprint of the user's password at login (web.auth.fingerprint)
SESSIONS = web.AppKey("sessions", SessionRegistry)
DEVICES = web.AppKey("devices", KnownDevices)
USERS = web.AppKey("users", UserDirectory)
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
LOGIN_PAGE = "/login"

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# The logged-in user of a request and its role, set by the login middleware.
USER = web.RequestKey("user", str)
ROLE = web.RequestKey("role", Role)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
# How a page tells a person that their role does not allow it (set by web.routes.pages).
FORBIDDEN_PAGE = web.AppKey("forbidden_page", Callable[[web.Request, str], Awaitable[web.StreamResponse]])
_ROLE_ATTR = "__panel_role__"


class ApiError(Exception):
    """An error answer: JSON {"error": message} under /api, plain text on pages."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def public(handler: H) -> H:
    """Mark a handler as reachable without logging in (login, healthz)."""
    setattr(handler, "__panel_public__", True)
    return handler


def csrf_exempt(handler: H) -> H:
    """Mark a handler that defends against cross-site requests itself (JSON login)."""
    setattr(handler, "__panel_csrf_exempt__", True)
    return handler


def needs(role: Role) -> Callable[[H], H]:
    """Declare the role a route needs: Role.STAFF (anyone logged in) or Role.OWNER. A private
    route that declares none is refused to everyone: forgetting cannot open a route."""

    def mark(handler: H) -> H:
        setattr(handler, _ROLE_ATTR, role)
        return handler

    return mark


staff = needs(Role.STAFF)
owner = needs(Role.OWNER)


def role_needed(handler: Any) -> Role | None:
    """The role a route's handler declared (None: none)."""
    role = getattr(handler, _ROLE_ATTR, None)
    return role if isinstance(role, Role) else None


def permits(have: Role, need: Role) -> bool:
    """Whether a user of role `have` may use a route that needs `need` (an owner may do all)."""
    return need is Role.STAFF or have is Role.OWNER


def _flag(request: web.Request, name: str) -> bool:
    return bool(getattr(request.match_info.handler, name, False))


def is_public(request: web.Request) -> bool:
    """Whether the matched route needs no login: marked @public, or a static file."""
    route = request.match_info.route
    return _flag(request, "__panel_public__") or isinstance(getattr(route, "resource", None), StaticResource)


def wants_json(request: web.Request) -> bool:
    """Machine endpoints answer errors in JSON; pages answer with redirects and text."""
    path = request.path
    return path.startswith("/api/") or path in ("/api", "/metrics", "/healthz")


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def error_response(request: web.Request, status: int, message: str,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    if wants_json(request):
        return json_error(status, message, headers)
    return web.Response(status=status, text=message, headers=headers)


# --- where a form leads back to ---------------------------------------------------------------


def _serves_page(app: web.Application, path: str) -> bool:
    """Whether `path` is one of the panel's own pages (a GET route outside /api and /static)."""
    if path.startswith(("/api/", "/static/")) or path in ("/metrics", "/healthz"):
        return False
    for route in app.router.routes():
        if route.method != "GET" or route.resource is None:
            continue
        info = route.resource.get_info()
        pattern = info.get("pattern")
        if info.get("path") == path or (pattern is not None and pattern.fullmatch(path)):
            return True
    return False


def safe_next(app: web.Application, value: Any, default: str) -> str:
    """A page of this panel to go back to after a form or the login, or `default`.

    Only a path the panel serves: one leading "/", no scheme or host, no backslash, no space or
    control character anywhere (yarl drops a tab, so "/<tab>/evil.example" would become
    "//evil.example", another site), and still a bare path once yarl has read it (returned as
    yarl writes it, which is what the Location header will say)."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return default
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//") or not _serves_page(app, parts.path):
        return default
    url = str(URL(value))  # as it will be written in the Location header
    if not url.startswith("/") or url.startswith("//") or URL(url).is_absolute():
        return default
    return url


# --- sessions ---------------------------------------------------------------------------------


class PanelCookieStorage(EncryptedCookieStorage):
    """Encrypted cookie sessions. Fernet's ttl makes a cookie expire `max_age` after login even
    if a client keeps sending it. The cookie is Secure when the browser came over https (served
    with TLS, panel.secure_cookies, or a trusted proxy's X-Forwarded-Proto); on plain http on
    loopback it cannot be, or the browser would never send it back."""

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        await super().save_session(request, response, session)
        morsel = response.cookies.get(self.cookie_name)
        if morsel is not None and request.app[NETWORK].https(request):
            morsel["secure"] = True


def session_storage(fernet: Fernet, max_age: int = SESSION_MAX_AGE) -> EncryptedCookieStorage:
    return PanelCookieStorage(fernet, cookie_name=COOKIE_NAME, max_age=max_age, httponly=True,
                              samesite="Strict", secure=False)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def session_user(session: Session) -> str | None:
    user = session.get("user")
    return user if isinstance(user, str) and user else None


async def start_session(request: web.Request, user: PanelUser) -> str:
    """A fresh session for a user who just logged in (or set a new password), with a new CSRF
    token; returns the token."""
    session = await new_session(request)
    token = new_token()
    session["user"] = user.name
    session[SESSION_PASSWORD] = user.fingerprint
    session[CSRF_FIELD] = token
    session[SESSION_ID], session[SESSION_AT] = request.app[SESSIONS].new()
    return token


async def current_user(request: web.Request, session: Session) -> PanelUser | None:
    """The session's user while the server honours the session: not logged out or expired, the
    user not removed, its password the one it logged in with. BridgeError when the users cannot
    be read."""
    name = session_user(session)
    if name is None or not request.app[SESSIONS].valid(session.get(SESSION_ID), session.get(SESSION_AT)):
        return None
    user = await request.app[USERS].get(name)
    remembered = session.get(SESSION_PASSWORD)
    if user is None or not isinstance(remembered, str) or not hmac.compare_digest(remembered, user.fingerprint):
        return None
    return user


async def form_token(request: web.Request) -> str:
    """The session's CSRF token, created for an anonymous visitor of the login form if missing."""
    session = await get_session(request)
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = new_token()
        session[CSRF_FIELD] = token
    return token


async def end_session(request: web.Request) -> None:
    session = await get_session(request)
    request.app[SESSIONS].revoke(session.get(SESSION_ID), session.get(SESSION_AT))
    session.invalidate()


async def _sent_token(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in FORM_TYPES:
        try:
            form = await request.post()
        except (ValueError, HttpProcessingError):  # a malformed form carries no token
            return ""
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def csrf_ok(request: web.Request, session: Session) -> bool:
    """Whether the request carries the session's CSRF token (constant-time comparison)."""
    expected = session.get(CSRF_FIELD)
    sent = await _sent_token(request)
    if not isinstance(expected, str) or not expected or not sent:
        return False
    try:
        return hmac.compare_digest(sent.encode(), expected.encode())
    except UnicodeError:  # undecodable header bytes arrive as lone surrogates
        return False


# --- headers and middlewares ------------------------------------------------------------------


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs for every response, errors and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        # API answers and pages carry session data or CSRF tokens: keep them out of caches.
        response.headers["Cache-Control"] = "no-store"


_MESSAGES = {
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}
# Headers of aiohttp's HTTP errors worth keeping on the JSON answer.
_KEEP_HEADERS = ("Allow", "Retry-After")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to an answer: ApiError and HTTP errors as given, BridgeError as 503,
    anything unexpected as a generic 500 with the traceback in the log."""
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(request, e.status, e.message, e.headers)
    except web.HTTPException as e:
        if e.status < 400 or not wants_json(request):
            raise
        headers = {k: e.headers[k] for k in _KEEP_HEADERS if k in e.headers}
        return json_error(e.status, _MESSAGES.get(e.status, (e.reason or "error").lower()), headers)
    except HttpProcessingError as e:  # a malformed form or multipart body
        return error_response(request, 400, f"malformed request body: {e.message}")
    except UnicodeDecodeError:  # a form body that is not UTF-8 (found by tests/test_fuzz.py)
        return error_response(request, 400, "malformed request body: not valid UTF-8")
    except BridgeError as e:
        log.warning("%s %s: %s", request.method, request.path, e)
        return error_response(request, 503, f"the bot is not answering: {e}")
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(request, 500, "internal error; the panel log has the details")


@web.middleware
async def login_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a logged-in user (except public routes) whose role the route permits, and the
    CSRF token on unsafe methods."""
    session = await get_session(request)
    public = is_public(request)
    user: PanelUser | None = None
    if not public and session_user(session) is not None:
        user = await current_user(request, session)
        if user is None:
            session.invalidate()  # logged out elsewhere, removed, or the password changed since
    if user is None and not public:
        if wants_json(request):
            return json_error(401, "not logged in; POST /api/login first")
        # A page asked for is where the login leads back to (a form post goes to the start).
        back = request.path_qs if request.method in ("GET", "HEAD") and request.path != "/" else ""
        raise web.HTTPSeeOther(LOGIN_PAGE + ("?" + urlencode({"next": back}) if back else ""))
    name = user.name if user is not None else "anonymous"
    unsafe = request.method in UNSAFE_METHODS
    if unsafe and not _flag(request, "__panel_csrf_exempt__") and not await csrf_ok(request, session):
        log.warning("%s %s refused: missing or wrong CSRF token (user %s, from %s)",
                    request.method, request.path, name, request.app[NETWORK].client_address(request))
        return error_response(request, 403, f"missing or wrong CSRF token; send the session's token "
                                            f"in header {CSRF_HEADER}")
    if user is not None:
        request[USER] = user.name
        request[ROLE] = user.role
    status: Any = "error"
    try:
        response = await _allowed(request, handler, user)
        status = response.status
        return response
    except (ApiError, web.HTTPException) as e:
        status = e.status
        raise
    finally:
        if unsafe:
            # An audit line for every state-changing request; never a password or token.
            log.info("%s %s by %s from %s: %s", request.method, request.path, name,
                     request.app[NETWORK].client_address(request), status)


async def _allowed(request: web.Request, handler: Handler, user: PanelUser | None) -> web.StreamResponse:
    """The handler's answer if the user's role permits the route; 403 otherwise."""
    if user is None or request.match_info.http_exception is not None:
        return await handler(request)  # a public route, or no route at all (404, 405)
    need = role_needed(request.match_info.handler)
    if need is None:
        log.error("%s %s declares no role (web.security.needs): refused", request.method, request.path)
        return error_response(request, 403, "this route declares no role; nobody may use it")
    if not permits(user.role, need):
        message = "only an owner may do this"
        page = request.app.get(FORBIDDEN_PAGE)
        if page is not None and not wants_json(request):
            return await page(request, message)
        return error_response(request, 403, message)
    return await handler(request)


def setup_security(app: web.Application, fernet: Fernet, sessions: SessionRegistry, users: UserDirectory,
                   network: NetworkPolicy | None = None) -> None:
    """Install the Host check, sessions, the error and login middlewares, and the security headers."""
    app[SESSIONS] = sessions
    app[USERS] = users
    app[DEVICES] = KnownDevices(fernet)
    app[NETWORK] = network or NetworkPolicy()
    app.middlewares.append(host_middleware)
    app.middlewares.append(session_middleware(session_storage(fernet)))
    app.middlewares.append(error_middleware)
    app.middlewares.append(login_middleware)
    app.on_response_prepare.append(security_headers)
