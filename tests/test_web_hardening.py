"""What a security review of the panel asked for (issue 10): a login throttle that a stranger
cannot turn against the owner and whose bounded memory cannot be flushed, forwarded addresses
believed only from trusted proxies, the Host header checked (DNS rebinding), Secure cookies over
https, passwords of at least 12 characters, and event streams that end with their session."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client
from web import auth
from web.routes import PANEL
from web.security import COOKIE_NAME, SESSIONS
from web.throttle import DEVICE_COOKIE, LoginThrottle, Source

pytestmark = pytest.mark.usefixtures("cheap_hashes")

GROUP = "120363000000000001@g.us"
THROTTLED = {"panel.login_attempts": "3", "panel.login_window": "60s"}


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_order(b.add_group("Alpha Resellers", group_id=GROUP), 10)
    b.add_user("admin", PASSWORD)
    return b


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def client(data_dir: Path, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    async with panel_client(make_config(data_dir, **THROTTLED), bridge) as c:
        yield c


async def stranger_login(client: TestClient[Any, Any], password: str, user: str = "admin",
                         headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None) -> int:
    """A login attempt from a browser of its own (no cookies of the client's), same address."""
    async with aiohttp.ClientSession(cookies=cookies) as other:
        async with other.post(client.make_url("/api/login"), json={"username": user, "password": password},
                              headers=headers) as resp:
            return resp.status


async def logout(client: TestClient[Any, Any], token: str) -> None:
    assert (await client.post("/api/logout", headers={"X-CSRF-Token": token})).status == 200


# --- the login throttle -----------------------------------------------------------------------


async def test_a_stranger_cannot_lock_the_owner_out_of_a_known_browser(client: TestClient[Any, Any]) -> None:
    await logout(client, await login(client))  # the owner's browser has logged in once
    assert DEVICE_COOKIE in {c.key for c in client.session.cookie_jar}
    # Someone on the same address (behind a proxy everyone is 127.0.0.1) guesses away.
    statuses = [await stranger_login(client, f"guess-{i}-wrong") for i in range(8)]
    assert statuses == [401] * 3 + [429] * 5
    assert await stranger_login(client, PASSWORD) == 429  # the stranger stays locked out
    # The owner's browser keeps its own allowance and logs in.
    token = await login(client)
    assert (await client.get("/api/orders")).status == 200
    await logout(client, token)
    # Its own mistakes still count, against it alone.
    for _ in range(3):
        assert (await client.post("/api/login", json={"username": "admin", "password": "typo-typo-typo"})).status == 401
    assert (await client.post("/api/login", json={"username": "admin", "password": PASSWORD})).status == 429


async def test_a_forged_or_foreign_device_cookie_is_just_unknown(client: TestClient[Any, Any],
                                                                   data_dir: Path, bridge: FakeBridge) -> None:
    await logout(client, await login(client, user="admin"))
    known = {c.key: c.value for c in client.session.cookie_jar}[DEVICE_COOKIE]
    for _ in range(3):
        await stranger_login(client, "wrong-password!")
    assert await stranger_login(client, PASSWORD, cookies={DEVICE_COOKIE: "gAAAAAforged"}) == 429
    # A browser known for another user has no allowance for this one.
    bridge.add_user("nasrin", "nasrins-long-password", "staff")
    client.server.app[PANEL].users.forget()  # type: ignore[union-attr]  (as after an owner adds her)
    async with aiohttp.ClientSession() as nasrin:
        async with nasrin.post(client.make_url("/api/login"),
                               json={"username": "nasrin", "password": "nasrins-long-password"}) as resp:
            assert resp.status == 200
        async with nasrin.post(client.make_url("/api/login"), json={"username": "admin", "password": PASSWORD}) as resp:
            assert resp.status == 429
    # The owner's cookie, copied as it is, works (it is the owner's browser as far as anyone can tell).
    assert await stranger_login(client, PASSWORD, cookies={DEVICE_COOKIE: known}) == 200


async def test_forwarded_addresses_only_from_a_trusted_proxy(data_dir: Path, bridge: FakeBridge) -> None:
    def via(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"{address}, 127.0.0.1"}  # the client, then a proxy in between

    # Without trusted proxies the header is ignored: every "client" is 127.0.0.1.
    async with panel_client(make_config(data_dir, **THROTTLED), bridge) as c:
        for _ in range(3):
            assert await stranger_login(c, "wrong-password!", headers=via("203.0.113.5")) == 401
        assert await stranger_login(c, "wrong-password!", headers=via("203.0.113.6")) == 429
    # Behind a trusted proxy each client address has its own allowance.
    async with panel_client(make_config(data_dir, **THROTTLED, **{"panel.trusted_proxies": "127.0.0.1"}),
                            bridge) as c:
        for _ in range(3):
            assert await stranger_login(c, "wrong-password!", headers=via("203.0.113.5")) == 401
        assert await stranger_login(c, "wrong-password!", headers=via("203.0.113.5")) == 429
        assert await stranger_login(c, PASSWORD, headers=via("203.0.113.6")) == 200
        # A forged address in front of the proxy's own entry changes nothing: the proxy's is used.
        assert await stranger_login(c, "wrong-password!", headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.5"}) == 429


async def test_guesses_from_many_addresses_are_capped_per_account_but_spare_known_browsers(
        data_dir: Path, bridge: FakeBridge) -> None:
    config = make_config(data_dir, **THROTTLED, **{"panel.trusted_proxies": "127.0.0.0/8"})
    async with panel_client(config, bridge) as c:
        await logout(c, await login(c))
        cap = 3 * LoginThrottle.ACCOUNT_FACTOR
        statuses = [await stranger_login(c, "wrong-password!", headers={"X-Forwarded-For": f"203.0.113.{i % 8}"})
                    for i in range(cap)]
        assert statuses == [401] * cap  # 8 addresses, none past its own 3, the account past its cap:
        assert await stranger_login(c, PASSWORD, headers={"X-Forwarded-For": "198.51.100.1"}) == 429
        # A name that is no account has no account record (and no such cap to fill).
        assert await stranger_login(c, "wrong-password!", user="nobody",
                                    headers={"X-Forwarded-For": "198.51.100.2"}) == 401
        await login(c)  # the owner's browser


def test_the_throttles_bound_cannot_erase_the_admins_record() -> None:
    now = [1000.0]
    throttle = LoginThrottle(3, 60, clock=lambda: now[0], max_keys=50)
    admin = throttle.keys("admin", address="198.51.100.7", device=None, existing=True)
    for _ in range(3):
        throttle.failed(admin)
    assert throttle.retry_after(admin) is not None
    # A spray of other usernames from other addresses, far more than the bound.
    for i in range(5000):
        throttle.failed(throttle.keys(f"user{i}", address=f"10.0.{i // 250}.{i % 250}", device=None, existing=False))
    assert throttle.size() <= 50 + 1 + 1
    assert throttle.retry_after(admin) is not None  # still locked: never evicted
    # Even a table full of locked records keeps its bound and the admin's records.
    for i in range(200):
        for _ in range(3):
            throttle.failed(throttle.keys(f"locked{i}", address=f"10.1.0.{i}", device=None, existing=False))
    assert len(throttle._tables[Source.ADDRESS]) <= 50
    assert throttle.retry_after(admin) is not None
    now[0] += 61
    assert throttle.retry_after(admin) is None  # the window passed


# --- the Host header ----------------------------------------------------------------------------


async def test_requests_for_a_foreign_host_are_refused(client: TestClient[Any, Any]) -> None:
    port = client.port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1", f"127.0.0.2:{port}", "",
                 f"rebind.attacker.test:{port}"):
        for path in ("/login", "/healthz", "/api/orders", "/static/panel.css"):
            resp = await client.get(path, headers={"Host": host}, allow_redirects=False)
            assert resp.status == 421, (host, path, resp.status)
            assert "panel.allowed_hosts" in await resp.text()
    refused = await client.post("/api/login", json={"username": "admin", "password": PASSWORD},
                                headers={"Host": "evil.example"})
    assert refused.status == 421 and "Set-Cookie" not in refused.headers
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        assert (await client.get("/login", headers={"Host": host})).status == 200, host


async def test_allowed_hosts_admit_the_names_behind_a_proxy(data_dir: Path, bridge: FakeBridge) -> None:
    config = make_config(data_dir, **{"panel.allowed_hosts": "panel.example.com,shop.example:8443"})
    async with panel_client(config, bridge) as c:
        for host, status in (("panel.example.com", 200), ("Panel.Example.com:443", 200), ("shop.example:8443", 200),
                             ("shop.example", 421), ("shop.example:443", 421), ("other.example.com", 421)):
            assert (await c.get("/login", headers={"Host": host})).status == status, host


# --- cookies over https -------------------------------------------------------------------------


def set_cookies(resp: Any) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for k, v in resp.headers.items() if k.lower() == "set-cookie"}


async def test_cookies_are_secure_over_https_only(data_dir: Path, bridge: FakeBridge) -> None:
    creds = {"username": "admin", "password": PASSWORD}
    https = {"X-Forwarded-Proto": "https"}
    async with panel_client(make_config(data_dir), bridge) as c:
        # Plain http on loopback; an untrusted X-Forwarded-Proto is ignored.
        for headers in (None, https):
            cookies = set_cookies(await c.post("/api/login", json=creds, headers=headers))
            assert "Secure" not in cookies[COOKIE_NAME] and "Secure" not in cookies[DEVICE_COOKIE]
    async with panel_client(make_config(data_dir, **{"panel.trusted_proxies": "127.0.0.1"}), bridge) as c:
        cookies = set_cookies(await c.post("/api/login", json=creds, headers=https))
        assert "Secure" in cookies[COOKIE_NAME] and "Secure" in cookies[DEVICE_COOKIE]
        cookies = set_cookies(await c.post("/api/login", json=creds))
        assert "Secure" not in cookies[COOKIE_NAME]
    async with panel_client(make_config(data_dir, **{"panel.secure_cookies": "true"}), bridge) as c:
        cookies = set_cookies(await c.post("/api/login", json=creds))
        assert "Secure" in cookies[COOKIE_NAME] and "Secure" in cookies[DEVICE_COOKIE]


# --- passwords ----------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["short", "eleven-char", "a" * 11])
async def test_passwords_have_at_least_12_characters(tmp_path: Path, password: str) -> None:
    bridge = FakeBridge()
    with pytest.raises(auth.PasswordError, match="at least 12 characters"):
        await auth.UserDirectory(bridge).save("admin", "owner", password, "admin:admin")
    with pytest.raises(auth.PasswordError, match=f"{auth.ENV_PASSWORD} must have at least 12"):
        await auth.ensure_admin(bridge, tmp_path, {auth.ENV_PASSWORD: password})
    assert bridge.db.users == {}
    assert (await auth.UserDirectory(bridge).save("admin", "owner", "twelve-chars", "admin:admin")).status == 200


async def test_the_generated_first_password_is_long_enough(tmp_path: Path) -> None:
    password = await auth.ensure_admin(FakeBridge(), tmp_path, {})
    assert password is not None and auth.check_password(password) == password


# --- event streams --------------------------------------------------------------------------------


async def test_an_open_event_stream_ends_when_its_session_expires(client: TestClient[Any, Any],
                                                                  bridge: FakeBridge) -> None:
    sessions = client.server.app[SESSIONS]  # type: ignore[union-attr]
    await login(client)
    # One second of the session's 12 hours is left: the stream must end then, with no event
    # (and no keepalive, 15 s apart) to wake it.
    offset = sessions.max_age - 1.0
    sessions.clock = lambda: time.time() + offset
    resp = await client.get("/api/events")
    assert resp.status == 200 and (await resp.content.readline()).startswith(b"retry:")
    started = time.monotonic()
    rest = await asyncio.wait_for(resp.content.read(), 5)
    assert rest.strip() == b"" and time.monotonic() - started < 5
    assert (await client.get("/api/orders")).status == 401  # and the session with it
