"""The panel's defences: login on every route, CSRF on every unsafe one, throttling, headers,
cookies, and the users file (first-start admin, set-password, corrupt files left alone)."""

from __future__ import annotations

import asyncio
import logging
import re
import stat
from pathlib import Path
from typing import Any, AsyncIterator
from unittest.mock import ANY

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_urldispatcher import StaticResource
from argon2 import Type

from storage.errors import CorruptFile
from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client
from domain.users import Role
from web import auth
from web.app import create_app
from web.routes import PANEL
from web.security import COOKIE_NAME, role_needed
from web.throttle import DEVICE_COOKIE

REAL_HASHER = auth.HASHER
ORDER = "A1"
GROUP = "120363000000000001@g.us"
STAFF_USER, STAFF_PASSWORD = "nasrin", "nasrins-long-password"
# The routes only an owner may use (settings, users, group settings, re-pairing WhatsApp); every
# other private route is for staff too. A change here is a decision, not an accident.
OWNER_ROUTES = {
    ("GET", "/settings"), ("HEAD", "/settings"), ("POST", "/settings"),
    ("GET", "/users"), ("HEAD", "/users"), ("POST", "/users"),
    ("GET", "/api/users"), ("HEAD", "/api/users"), ("POST", "/api/users"),
    ("PATCH", f"/api/users/{STAFF_USER}"), ("DELETE", f"/api/users/{STAFF_USER}"),
    ("PATCH", f"/api/groups/{GROUP}"), ("POST", f"/groups/{GROUP}"),
    ("POST", f"/api/groups/{GROUP}/move"), ("POST", f"/machines/{GROUP}"),  # where a group runs (issue 16)
    ("GET", "/api/whatsapp/qr.svg"), ("HEAD", "/api/whatsapp/qr.svg"), ("POST", "/api/whatsapp/repair"),
}
WRITES = ("command", "update_group", "move_group", "record_payment", "void_payment", "update_shop", "send_reminders", "save_user",
          "repair")
# Routes anyone may call; everything else must refuse an anonymous client.
PUBLIC = {("GET", "/login"), ("HEAD", "/login"), ("POST", "/login"), ("POST", "/api/login"),
          ("GET", "/healthz"), ("HEAD", "/healthz")}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PAYMENT = {"group_id": GROUP, "amount": "500", "method": "bkash"}


pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    gid = b.add_group("Alpha Resellers", group_id=GROUP)
    b.add_order(gid, 10)
    b.add_payment(gid, "100")
    b.add_user(STAFF_USER, STAFF_PASSWORD, "staff")
    return b


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def client(data_dir: Path, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(data_dir, **{"panel.login_attempts": "3", "panel.login_window": "60s"})
    bridge.add_user("admin", PASSWORD)
    async with panel_client(config, bridge) as c:
        yield c


def app_routes(client: TestClient[Any, Any]) -> list[tuple[str, str]]:
    """(method, concrete path) of every route the app serves, static files excepted."""
    app: web.Application = client.server.app  # type: ignore[assignment]
    out = []
    for route in app.router.routes():
        if isinstance(route.resource, StaticResource):
            continue
        canonical = route.resource.canonical  # type: ignore[union-attr]
        group_path = canonical.startswith(("/api/groups", "/groups", "/machines"))
        out.append((route.method, canonical.format(id=GROUP if group_path else ORDER, name=STAFF_USER)))
    return out


def wants_json(path: str) -> bool:
    return path.startswith("/api/") or path == "/metrics"


def request_body(path: str, token: str | None) -> dict[str, Any]:
    """A body that would change something if the request got through."""
    if path.startswith("/api/groups/"):
        return {"json": {"rate": "7.00"}}
    if path == "/api/payments":
        return {"json": PAYMENT}
    json_bodies = {
        "/api/shop": {"stock": 7},
        "/api/reminders": {"min_due": "0"},
        "/api/users": {"username": "mallory", "role": "owner", "password": "mallorys-long-password"},
        f"/api/users/{STAFF_USER}": {"role": "owner"},
        "/api/account/password": {"current": "not-the-password", "password": "another-long-password"},
    }
    if path in json_bodies:
        return {"json": json_bodies[path]}
    if wants_json(path):
        return {}
    form = {"username": "admin", "password": PASSWORD, **PAYMENT, "action": "close", "confirm": "yes",
            "section": "stock", "stock": "7", "min_due": "0"}
    if token is not None:
        form["csrf_token"] = token
    return {"data": form}


def test_route_table_is_what_the_tests_cover(client: TestClient[Any, Any]) -> None:
    """A guard against a vacuous enumeration: the routes of SPEC §7 are all there."""
    routes = set(app_routes(client))
    for expected in [("GET", "/"), ("GET", "/api/orders"), ("GET", f"/api/orders/{ORDER}"),
                     ("POST", f"/api/orders/{ORDER}/approve"), ("POST", f"/api/orders/{ORDER}/process"),
                     ("POST", f"/api/orders/{ORDER}/cancel"), ("POST", f"/api/orders/{ORDER}/delete"),
                     ("POST", f"/api/approve/{ORDER}"), ("POST", f"/api/delete/{ORDER}"),
                     ("GET", "/api/groups"), ("PATCH", f"/api/groups/{GROUP}"), ("GET", "/api/reconciliation"),
                     ("GET", "/api/status"), ("GET", "/metrics"), ("GET", "/api/session"),
                     ("POST", "/api/logout"), ("POST", "/logout"), ("GET", "/api/payments"),
                     ("POST", "/api/payments"), ("GET", f"/api/groups/{GROUP}/ledger"), ("GET", "/api/reports/daily"),
                     ("GET", "/api/export/orders.csv"), ("GET", "/api/export/payments.csv"), ("GET", "/payments"),
                     ("POST", "/payments"), ("GET", f"/groups/{GROUP}/ledger"), ("GET", "/reports"),
                     ("POST", f"/api/orders/{ORDER}/undo"), ("GET", "/api/shop"), ("PATCH", "/api/shop"),
                     ("POST", "/api/reminders"), ("POST", "/shop"), ("POST", "/reminders"), ("GET", "/account"),
                     ("POST", "/account"), ("POST", "/api/account/password"), *OWNER_ROUTES, *PUBLIC]:
        assert expected in routes, expected


# --- login required ---------------------------------------------------------------------------


async def test_every_private_route_refuses_anonymous_clients(client: TestClient[Any, Any],
                                                             bridge: FakeBridge) -> None:
    before = bridge.snapshot()
    checked = 0
    for method, path in app_routes(client):
        if (method, path) in PUBLIC:
            continue
        resp = await client.request(method, path, allow_redirects=False, **request_body(path, None))
        if wants_json(path):
            assert resp.status == 401, (method, path, resp.status)
            if method != "HEAD":
                assert "error" in await resp.json()
        else:
            assert resp.status in (302, 303), (method, path, resp.status)
            assert resp.headers["Location"].startswith("/login")
        checked += 1
    assert checked >= 20
    assert bridge.snapshot() == before
    assert not [c for c in bridge.calls if c[0] in WRITES]


async def test_public_routes_and_static_files_need_no_login(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/login")).status == 200
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/static/panel.css")
    assert resp.status == 200 and resp.content_type == "text/css"


async def test_garbage_or_foreign_cookie_is_anonymous(client: TestClient[Any, Any], data_dir: Path,
                                                      bridge: FakeBridge, tmp_path: Path) -> None:
    client.session.cookie_jar.update_cookies({COOKIE_NAME: "gAAAAAB-not-a-real-token"})
    assert (await client.get("/api/orders")).status == 401
    # A cookie made with another installation's key is worthless here.
    other_dir = tmp_path / "other"
    async with panel_client(make_config(other_dir), bridge) as other:
        await login(other)
        stolen = other.session.cookie_jar.filter_cookies(other.make_url("/"))[COOKIE_NAME].value
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE_NAME: stolen})
    assert (await client.get("/api/orders")).status == 401


# --- CSRF -------------------------------------------------------------------------------------


def unsafe_routes(client: TestClient[Any, Any]) -> list[tuple[str, str]]:
    routes = [(m, p) for m, p in app_routes(client) if m in UNSAFE and (m, p) != ("POST", "/api/login")]
    assert len(routes) >= 10
    return routes


@pytest.mark.parametrize("variant", ["missing", "wrong", "other_session"])
async def test_unsafe_routes_need_the_sessions_csrf_token(client: TestClient[Any, Any], bridge: FakeBridge,
                                                         data_dir: Path, variant: str) -> None:
    token = await login(client)
    other_token = None
    if variant == "other_session":
        async with panel_client(make_config(data_dir), bridge) as other:
            other_token = await login(other)
    wrong = ("y" if token[0] == "x" else "x") + token[1:]  # one character off
    sent = {"missing": None, "wrong": wrong, "other_session": other_token}[variant]
    before = bridge.snapshot()
    for method, path in unsafe_routes(client):
        headers = {"X-CSRF-Token": sent} if sent is not None and wants_json(path) else {}
        resp = await client.request(method, path, headers=headers, allow_redirects=False,
                                    **request_body(path, sent))
        assert resp.status == 403, (method, path, resp.status, await resp.text())
        # Still logged in: a refused /logout did not log out either.
        assert (await client.get("/api/session")).status == 200
    assert bridge.snapshot() == before
    assert not [c for c in bridge.calls if c[0] in WRITES]


async def test_unsafe_routes_work_with_the_token(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    """The control for the test above: the same requests with the right token get through."""
    for method, path in unsafe_routes(client):
        token = await login(client)
        headers = {"X-CSRF-Token": token} if wants_json(path) else {}
        resp = await client.request(method, path, headers=headers, allow_redirects=False,
                                    **request_body(path, token))
        assert resp.status not in (401, 403), (method, path, resp.status, await resp.text())
    assert [c[0] for c in bridge.calls].count("command") == 7  # process, approve ×2, cancel, delete ×2, undo
    assert ("update_group", GROUP, {"rate": "7.00"}, "admin:admin") in bridge.calls
    assert [c[0] for c in bridge.calls].count("record_payment") == 2  # the API and the form
    assert len(bridge.db.payments) == 3  # the fixture's and these two
    assert bridge.db.groups[GROUP].settings["rate"] == "7.00"


# --- roles ------------------------------------------------------------------------------------


def route_handlers(client: TestClient[Any, Any]) -> list[tuple[str, str, Any]]:
    """(method, concrete path, handler) of every route but static files, as app_routes names them."""
    app: web.Application = client.server.app  # type: ignore[assignment]
    routes = [r for r in app.router.routes() if not isinstance(r.resource, StaticResource)]
    return [(m, p, r.handler) for (m, p), r in zip(app_routes(client), routes)]


def test_every_route_declares_the_role_it_needs(client: TestClient[Any, Any]) -> None:
    declared: dict[tuple[str, str], Role] = {}
    for method, path, handler in route_handlers(client):
        if getattr(handler, "__panel_public__", False):
            assert (method, path) in PUBLIC, (method, path)
            continue
        role = role_needed(handler)
        assert role is not None, f"{method} {path} declares no role (web.security.needs)"
        declared[(method, path)] = role
    assert {k for k, r in declared.items() if r is Role.OWNER} == OWNER_ROUTES
    assert sum(1 for r in declared.values() if r is Role.STAFF) >= 45


async def test_staff_get_403_on_every_owner_route_and_nothing_changes(client: TestClient[Any, Any],
                                                                      bridge: FakeBridge) -> None:
    token = await login(client, STAFF_USER, STAFF_PASSWORD)
    before, shop, users = bridge.snapshot(), bridge.shop.view(), dict(bridge.db.users)
    for method, path in sorted(OWNER_ROUTES):
        headers = {"X-CSRF-Token": token} if wants_json(path) else {}
        resp = await client.request(method, path, headers=headers, allow_redirects=False, **request_body(path, token))
        assert resp.status == 403, (method, path, resp.status)
        if method != "HEAD":
            said = (await resp.json())["error"] if wants_json(path) else await resp.text()
            assert "owner" in said.lower() or "মালিক" in said, (path, said)
    assert bridge.snapshot() == before and bridge.shop.view() == shop and bridge.db.users == users
    assert not [c for c in bridge.calls if c[0] in WRITES]
    assert (await client.get("/api/session")).status == 200  # still logged in


async def test_staff_use_every_other_route(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    """The control for the test above: the same requests from staff get through elsewhere."""
    checked = 0
    for method, path in app_routes(client):
        if (method, path) in PUBLIC or (method, path) in OWNER_ROUTES or (method, path) == ("HEAD", "/api/events"):
            continue  # (a HEAD of the event stream writes a body the client does not read)
        token = await login(client, STAFF_USER, STAFF_PASSWORD)
        headers = {"X-CSRF-Token": token} if wants_json(path) else {}
        body = request_body(path, token) if method in UNSAFE else {}
        if path == "/api/shop" and method == "PATCH":
            body = {"json": {"open": False}}  # what staff may change
        resp = await client.request(method, path, headers=headers, allow_redirects=False, **body)
        assert resp.status not in (401, 403), (method, path, resp.status)
        resp.close()  # /api/events streams until closed
        checked += 1
    assert checked >= 45
    assert bridge.shop.open is False
    assert {"command", "record_payment", "send_reminders"} <= {c[0] for c in bridge.calls}


async def test_staff_open_and_close_the_shop_but_change_nothing_else(client: TestClient[Any, Any],
                                                                     bridge: FakeBridge) -> None:
    token = await login(client, STAFF_USER, STAFF_PASSWORD)
    h = {"X-CSRF-Token": token}
    closed = await client.patch("/api/shop", json={"open": False}, headers=h)
    assert closed.status == 200 and (await closed.json())["open"] is False
    before = bridge.shop.view()
    for patch in ({"stock": 5}, {"open": True, "notice": "x"}, {"texts": {"bn": {"received": "x"}}}, {"admins": []}):
        resp = await client.patch("/api/shop", json=patch, headers=h)
        assert resp.status == 403 and "owners" in (await resp.json())["error"], patch
    assert bridge.shop.view() == before
    # The dashboard's forms: the same rule.
    for form in ({"action": "stock", "stock": "5"}, {"action": "notice", "notice": "x"}):
        resp = await client.post("/shop", data={**form, "csrf_token": token})
        assert resp.status == 403 and "শুধু মালিক" in await resp.text()  # "only an owner", in the panel's Bengali
    assert bridge.shop.view() == before
    opened = await client.post("/shop", data={"action": "open", "csrf_token": token}, allow_redirects=False)
    assert opened.status == 303 and bridge.shop.open is True


async def test_settings_and_users_are_in_the_navigation_of_owners_only(client: TestClient[Any, Any]) -> None:
    await login(client, STAFF_USER, STAFF_PASSWORD)
    page = await (await client.get("/")).text()
    assert 'href="/settings"' not in page and 'href="/users"' not in page and 'href="/account"' in page
    await login(client)
    page = await (await client.get("/")).text()
    assert 'href="/settings"' in page and 'href="/users"' in page


async def test_a_route_that_declares_no_role_is_refused_to_everyone(data_dir: Path, bridge: FakeBridge) -> None:
    async def forgotten(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    bridge.add_user("admin", PASSWORD)
    app = create_app(make_config(data_dir), bridge)
    app.router.add_get("/api/forgotten", forgotten)
    async with TestClient(TestServer(app)) as c:
        assert (await c.get("/api/forgotten")).status == 401
        await login(c)
        resp = await c.get("/api/forgotten")
        assert resp.status == 403 and "declares no role" in (await resp.json())["error"]


@pytest.mark.parametrize("body", [b"garbage", b"--xx\r\nbad header\r\n\r\n--xx--", b"csrf_token=\xff\xfe"])
async def test_malformed_forms_are_refused_not_crashed(client: TestClient[Any, Any], bridge: FakeBridge,
                                                       body: bytes) -> None:
    await login(client)
    before = bridge.snapshot()
    for content_type in ("multipart/form-data; boundary=xx", "multipart/form-data",
                         "application/x-www-form-urlencoded"):
        for path in (f"/api/orders/{ORDER}/approve", "/login", "/logout"):
            resp = await client.post(path, data=body, headers={"Content-Type": content_type},
                                     allow_redirects=False)
            assert resp.status in (400, 403), (path, content_type, resp.status)
    assert bridge.snapshot() == before


async def test_form_token_is_accepted_for_api_posts(client: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(client)
    resp = await client.post(f"/api/orders/{ORDER}/process", data={"csrf_token": token})
    assert resp.status == 200
    assert bridge.record(ORDER)["status"] == "processing"


async def test_json_login_refuses_form_encoding(client: TestClient[Any, Any]) -> None:
    """What a cross-site form could send: refused, and no session is created."""
    for kwargs in ({"data": {"username": "admin", "password": PASSWORD}},
                   {"data": f'{{"username": "admin", "password": "{PASSWORD}"}}',
                    "headers": {"Content-Type": "text/plain"}}):
        resp = await client.post("/api/login", **kwargs)
        assert resp.status == 415
        assert COOKIE_NAME not in resp.cookies
    assert (await client.get("/api/session")).status == 401


# --- the login form and pages -----------------------------------------------------------------


async def test_login_form_flow(client: TestClient[Any, Any]) -> None:
    page = await client.get("/login")
    html = await page.text()
    assert page.content_type == "text/html"
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert 'action="/login"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]

    creds = {"username": "admin", "password": PASSWORD}
    assert (await client.post("/login", data=creds, allow_redirects=False)).status == 403
    wrong = await client.post("/login", data={**creds, "password": "nope-nope", "csrf_token": token})
    assert wrong.status == 401 and "<form" in await wrong.text()
    assert (await client.get("/", allow_redirects=False)).status in (302, 303)

    ok = await client.post("/login", data={**creds, "csrf_token": token}, allow_redirects=False)
    assert ok.status == 303 and ok.headers["Location"] == "/"
    home = await client.get("/", allow_redirects=False)
    body = await home.text()
    # The dashboard: scripts only from /static (CSP), never inline.
    assert home.status == 200 and 'href="/orders"' in body and not re.search(r"<script(?![^>]*\bsrc=)", body)
    assert (await client.get("/login", allow_redirects=False)).status == 303
    session = await (await client.get("/api/session")).json()
    assert session["user"] == "admin" and session["csrf_token"] != token  # rotated at login

    logout_token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
    out = await client.post("/logout", data={"csrf_token": logout_token}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"
    assert (await client.get("/api/session")).status == 401


async def test_the_login_leads_back_to_the_page_asked_for_and_never_elsewhere(
        client: TestClient[Any, Any]) -> None:
    asked = await client.get("/orders?status=pending", allow_redirects=False)
    assert asked.status == 303
    page = await (await client.get(asked.headers["Location"])).text()
    assert 'name="next" value="/orders?status=pending"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    done = await client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token,
                                             "next": "/orders?status=pending"}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/orders?status=pending"
    session = await (await client.get("/api/session")).json()
    await client.post("/api/logout", headers={"X-CSRF-Token": session["csrf_token"]})
    page = await (await client.get("/login?next=//evil.example/x")).text()
    assert 'name="next" value="/"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    done = await client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token,
                                             "next": "https://evil.example/"}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/"
    # A tab that yarl drops would turn "/<tab>/evil.example" into "//evil.example": refused, in
    # the login page's link, after the form login, and for a logged-in visitor of /login.
    session = await (await client.get("/api/session")).json()
    await client.post("/api/logout", headers={"X-CSRF-Token": session["csrf_token"]})
    page = await (await client.get("/login?next=/%09/evil.example")).text()
    assert 'name="next" value="/"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    done = await client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token,
                                             "next": "/\t/evil.example"}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/"
    again = await client.get("/login?next=/%09/evil.example", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/"
    again = await client.get("/login?next=/orders%3Fstatus%3Dpending", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/orders?status=pending"


async def test_anonymous_form_login_without_a_form_page_is_refused(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": "guess"})
    assert resp.status == 403
    assert (await client.get("/api/session")).status == 401


async def test_json_login_session_and_logout(client: TestClient[Any, Any]) -> None:
    bad_user = await client.post("/api/login", json={"username": "mallory", "password": PASSWORD})
    bad_pass = await client.post("/api/login", json={"username": "admin", "password": "wrong-password"})
    assert bad_user.status == bad_pass.status == 401
    assert await bad_user.json() == await bad_pass.json()  # unknown user looks like a wrong password
    token = await login(client)
    assert await (await client.get("/api/session")).json() == {"user": "admin", "role": "owner", "csrf_token": token}
    resp = await client.post("/api/logout", headers={"X-CSRF-Token": token})
    assert resp.status == 200
    assert (await client.get("/api/session")).status == 401


async def test_a_copied_cookie_is_refused_after_logout_even_after_a_restart(
        client: TestClient[Any, Any], data_dir: Path, bridge: FakeBridge) -> None:
    token = await login(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    copied = {k: v.value for k, v in cookie.items()}  # what someone could have taken
    assert (await client.post("/api/logout", headers={"X-CSRF-Token": token})).status == 200
    client.session.cookie_jar.update_cookies(copied)  # sent again after the logout
    assert (await client.get("/api/orders")).status == 401
    refused = await client.post("/api/orders/A1/process", headers={"X-CSRF-Token": token})
    assert refused.status in (401, 403)
    assert bridge.record("A1")["status"] == "pending"
    # A new panel process on the same data dir refuses it too; a new login works.
    config = make_config(data_dir)
    async with panel_client(config, bridge) as again:
        again.session.cookie_jar.update_cookies(copied)
        assert (await again.get("/api/orders")).status == 401
        await login(again)
        assert (await again.get("/api/orders")).status == 200


async def test_a_new_password_or_a_removal_ends_the_sessions_begun_before_it(client: TestClient[Any, Any],
                                                                             bridge: FakeBridge) -> None:
    bridge.add_user("nasrin", "nasrins-long-password", "staff")
    await login(client)
    assert (await client.get("/api/orders")).status == 200
    # As `run.py set-password admin` with the bot stopped, or an owner's reset: the panel reads
    # the users again (a change made through this panel forgets its copy at once).
    await bridge.save_user("admin", "owner", auth.HASHER.hash("another-long-password"), "cli:set-password")
    client.server.app[PANEL].users.forget()  # type: ignore[union-attr]
    assert (await client.get("/api/orders")).status == 401
    await login(client, password="another-long-password")
    assert (await client.get("/api/orders")).status == 200
    # A role change keeps the session (the role is read on every request); a removal ends it.
    await login(client, "nasrin", "nasrins-long-password")
    await bridge.save_user("nasrin", "owner", None, "admin:admin")
    client.server.app[PANEL].users.forget()  # type: ignore[union-attr]
    assert await (await client.get("/api/session")).json() == {"user": "nasrin", "role": "owner",
                                                               "csrf_token": ANY}
    await bridge.save_user("nasrin", "owner", None, "admin:admin", remove=True)
    client.server.app[PANEL].users.forget()  # type: ignore[union-attr]
    assert (await client.get("/api/session")).status == 401
    assert (await client.post("/api/login", json={"username": "nasrin",
                                                  "password": "nasrins-long-password"})).status == 401


@pytest.mark.parametrize("content", [b"{not json", b'{"revoked": []}', b'{"revoked": {"sid": "soon"}}'])
def test_an_unreadable_revocation_file_stops_the_panel_and_is_left_alone(
        data_dir: Path, bridge: FakeBridge, content: bytes) -> None:
    # Starting with no revocations would quietly accept every session logged out before.
    data_dir.mkdir(parents=True)
    broken = data_dir / "panel-revoked-sessions.json"
    broken.write_bytes(content)
    with pytest.raises(CorruptFile, match="panel-revoked-sessions.json") as err:
        create_app(make_config(data_dir), bridge)
    assert "delete it" in str(err.value)
    assert broken.read_bytes() == content  # never repaired by overwriting


# --- throttling -------------------------------------------------------------------------------


async def test_login_throttling(client: TestClient[Any, Any]) -> None:
    async def attempt(user: str, password: str) -> Any:
        return await client.post("/api/login", json={"username": user, "password": password})

    for _ in range(3):
        assert (await attempt("admin", "wrong-password")).status == 401
    blocked = await attempt("admin", PASSWORD)  # even the right password waits
    assert blocked.status == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    assert "error" in await blocked.json()
    assert (await attempt("someone", "wrong-password")).status == 401  # other users unaffected

    # The form login shares the same counter.
    page = await (await client.get("/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = await client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert form.status == 429 and "Retry-After" in form.headers

    throttle = client.server.app[PANEL].throttle  # type: ignore[union-attr]
    real_clock = throttle.clock
    throttle.clock = lambda: real_clock() + 61  # the window has passed
    assert (await attempt("admin", PASSWORD)).status == 200


async def test_concurrent_guesses_cannot_outrun_the_throttle(client: TestClient[Any, Any]) -> None:
    responses = await asyncio.gather(*[
        client.post("/api/login", json={"username": "admin", "password": f"guess-number-{i}"}) for i in range(12)])
    statuses = sorted(r.status for r in responses)
    assert statuses == [401] * 3 + [429] * 9


async def test_success_resets_the_failure_count(client: TestClient[Any, Any]) -> None:
    for _ in range(2):
        assert (await client.post("/api/login", json={"username": "admin", "password": "bad-one!"})).status == 401
    await login(client)
    for _ in range(2):
        assert (await client.post("/api/login", json={"username": "admin", "password": "bad-one!"})).status == 401
    await login(client)


# --- headers and cookies ----------------------------------------------------------------------


async def test_security_headers_on_every_kind_of_response(client: TestClient[Any, Any]) -> None:
    anonymous = [await client.get("/api/orders"), await client.get("/login"), await client.get("/healthz"),
                 await client.get("/static/panel.css"), await client.get("/", allow_redirects=False)]
    token = await login(client)
    logged_in = [await client.get("/api/orders"), await client.get("/api/nope"), await client.get("/"),
                 await client.post("/api/orders/Z1/approve", headers={"X-CSRF-Token": token}),
                 await client.get("/metrics"), await client.get("/api/orders?limit=x")]
    for resp in anonymous + logged_in:
        h = resp.headers
        assert h["Content-Security-Policy"] == ("default-src 'self'; img-src 'self' data:; "
                                                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        assert h["X-Frame-Options"] == "DENY"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        if not resp.url.path.startswith("/static/"):
            assert h["Cache-Control"] == "no-store", resp.url


async def test_session_cookie_flags(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/login", json={"username": "admin", "password": PASSWORD})
    cookies = sorted(v for k, v in resp.headers.items() if k.lower() == "set-cookie")
    assert len(cookies) == 2
    device, cookie = cookies  # the known-browser cookie, the session
    assert cookie.startswith(f"{COOKIE_NAME}=") and device.startswith(f"{DEVICE_COOKIE}=")
    for c in cookies:
        assert "HttpOnly" in c and "SameSite=Strict" in c and "Path=/" in c
        assert "admin" not in c.split(";")[0]  # encrypted, not merely signed
        assert "Secure" not in c  # plain http on loopback: a Secure cookie would never come back
    assert "Max-Age=43200" in cookie


async def test_sessions_survive_a_restart(client: TestClient[Any, Any], data_dir: Path,
                                          bridge: FakeBridge) -> None:
    await login(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE_NAME].value
    async with panel_client(make_config(data_dir), bridge) as restarted:
        restarted.session.cookie_jar.update_cookies({COOKIE_NAME: cookie})
        assert (await restarted.get("/api/session")).status == 200
    key = data_dir / auth.SECRET_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


async def test_logs_name_the_user_and_never_a_secret(client: TestClient[Any, Any],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post("/api/login", json={"username": "admin", "password": "wrong-password"})
    token = await login(client)
    await client.post(f"/api/orders/{ORDER}/approve", headers={"X-CSRF-Token": token})
    await client.post(f"/api/orders/{ORDER}/approve", headers={"X-CSRF-Token": "forged"})
    text = caplog.text
    assert f"/api/orders/{ORDER}/approve by admin" in text
    assert PASSWORD not in text and "wrong-password" not in text
    assert token not in text and "forged" not in text


# --- the first start --------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_first_start_admin_from_env(data_dir: Path) -> None:
    bridge = FakeBridge()
    assert await auth.ensure_admin(bridge, data_dir, {auth.ENV_PASSWORD: "from-the-env-123"}) is None
    users = bridge.db.panel_users()
    assert list(users) == ["admin"] and users["admin"].role.value == "owner"
    assert users["admin"].password_hash.startswith("$argon2id$") and users["admin"].by == "system:first-start"
    assert auth.HASHER.verify(users["admin"].password_hash, "from-the-env-123")
    assert not data_dir.exists()  # nothing written beside the journal
    assert b"from-the-env-123" not in bridge.snapshot()


async def test_first_start_admin_generated_once(data_dir: Path) -> None:
    bridge = FakeBridge()
    password = await auth.ensure_admin(bridge, data_dir, {})
    assert password is not None and len(password) >= 16
    written = data_dir / auth.INITIAL_PASSWORD_FILE
    assert written.read_text().strip() == password and mode(written) == 0o600
    assert await auth.ensure_admin(bridge, data_dir, {}) is None
    assert await auth.ensure_admin(bridge, data_dir, {auth.ENV_PASSWORD: "a-different-one"}) is None
    assert auth.HASHER.verify(bridge.db.panel_users()["admin"].password_hash, password)
    assert len(bridge.db.users) == 1
    assert [p.name for p in data_dir.iterdir() if ".tmp-" in p.name] == []


async def test_users_already_there_get_no_first_admin(data_dir: Path) -> None:
    """Users brought in from panel-users.json (or made with set-password) are the users."""
    bridge = FakeBridge()
    bridge.add_user("rahim", PASSWORD)
    assert await auth.ensure_admin(bridge, data_dir, {}) is None
    assert list(bridge.db.users) == ["rahim"] and not data_dir.exists()


async def test_short_env_password_is_refused(data_dir: Path) -> None:
    bridge = FakeBridge()
    with pytest.raises(auth.PasswordError, match=auth.ENV_PASSWORD):
        await auth.ensure_admin(bridge, data_dir, {auth.ENV_PASSWORD: "short"})
    assert bridge.db.users == {}


def test_corrupt_session_key_stops_and_is_left_alone(data_dir: Path, bridge: FakeBridge) -> None:
    data_dir.mkdir(parents=True)
    key = data_dir / auth.SECRET_FILE
    key.write_bytes(b"not a fernet key\n")
    with pytest.raises(CorruptFile, match=auth.SECRET_FILE):
        create_app(make_config(data_dir), bridge)
    assert key.read_bytes() == b"not a fernet key\n"


def test_production_hasher_is_argon2id() -> None:
    assert REAL_HASHER.type is Type.ID
    assert REAL_HASHER.memory_cost >= 19 * 1024 and REAL_HASHER.time_cost >= 2
