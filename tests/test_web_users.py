"""The panel's users through the API and the pages (over the in-memory bridge, whose users follow
the PersistenceActor's rules): an owner adds staff, resets passwords, changes roles and removes
people, and the sessions of a reset or removed user end at once; everyone changes their own
password with the current one; refusals say why and change nothing; the Users page lists who
changed what."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.fake_bridge import PASSWORD, FakeBridge, login, make_config, panel_client
from web import auth

pytestmark = pytest.mark.usefixtures("cheap_hashes")

STAFF_PW = "nasrins-long-password"


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_user("admin", PASSWORD)
    return b


@pytest.fixture
async def client(tmp_path: Path, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    async with panel_client(make_config(tmp_path / "data", **{"bot.language": "en"}), bridge) as c:
        yield c


@pytest.fixture
async def other(client: TestClient[Any, Any]) -> AsyncIterator[aiohttp.ClientSession]:
    """A second browser on the same panel (its own cookies)."""
    async with aiohttp.ClientSession(base_url=str(client.make_url("/")),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


async def add_staff(client: TestClient[Any, Any], token: str, name: str = "nasrin") -> None:
    resp = await client.post("/api/users", json={"username": name, "role": "staff", "password": STAFF_PW},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 201, await resp.text()


async def test_an_owner_adds_staff_who_log_in_as_staff(client: TestClient[Any, Any], other: aiohttp.ClientSession,
                                                       bridge: FakeBridge) -> None:
    token = await login(client)
    resp = await client.post("/api/users", json={"username": "nasrin", "role": "staff", "password": STAFF_PW},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 201
    body = await resp.json()
    assert body["username"] == "nasrin" and body["role"] == "staff" and "passwordHash" not in body
    assert auth.HASHER.verify(bridge.db.panel_users()["nasrin"].password_hash, STAFF_PW)
    await login(other, "nasrin", STAFF_PW)
    assert (await (await other.get("/api/session")).json())["role"] == "staff"
    listed = await (await client.get("/api/users")).json()
    assert [(u["username"], u["role"]) for u in listed["users"]] == [("admin", "owner"), ("nasrin", "staff")]
    assert all("passwordHash" not in u for u in listed["users"])
    assert (listed["audit"][0]["user"], listed["audit"][0]["change"], listed["audit"][0]["by"]) == (
        "nasrin", "added", "admin:admin")  # newest first


@pytest.mark.parametrize("body, words", [
    ({"username": "nasrin", "role": "staff", "password": "short"}, "at least 12"),
    ({"username": "no spaces", "role": "staff", "password": STAFF_PW}, "username"),
    ({"username": "nasrin", "role": "king", "password": STAFF_PW}, "role"),
    ({"username": "nasrin", "role": "staff"}, "password"),
    ({"username": "nasrin", "role": "staff", "password": STAFF_PW, "admin": True}, "unknown field"),
    ({"username": "admin", "role": "staff", "password": STAFF_PW}, "taken"),
])
async def test_bad_users_are_refused_and_nothing_changes(client: TestClient[Any, Any], bridge: FakeBridge,
                                                         body: dict[str, Any], words: str) -> None:
    token = await login(client)
    before = bridge.snapshot()
    resp = await client.post("/api/users", json=body, headers={"X-CSRF-Token": token})
    assert resp.status == 400 and words in (await resp.json())["error"]
    assert bridge.snapshot() == before


async def test_a_reset_ends_the_users_sessions(client: TestClient[Any, Any], other: aiohttp.ClientSession) -> None:
    token = await login(client)
    await add_staff(client, token)
    await login(other, "nasrin", STAFF_PW)
    assert (await other.get("/api/orders")).status == 200
    resp = await client.patch("/api/users/nasrin", json={"password": "a-brand-new-password"},
                              headers={"X-CSRF-Token": token})
    assert resp.status == 200 and (await resp.json())["role"] == "staff"
    assert (await other.get("/api/orders")).status == 401
    bad = await other.post("/api/login", json={"username": "nasrin", "password": STAFF_PW})
    assert bad.status == 401
    await login(other, "nasrin", "a-brand-new-password")
    # The owner's own password is changed under Account, with the current one.
    own = await client.patch("/api/users/admin", json={"password": "a-brand-new-password"},
                             headers={"X-CSRF-Token": token})
    assert own.status == 400 and "/api/account/password" in (await own.json())["error"]


async def test_a_role_change_applies_at_once_and_keeps_the_session(client: TestClient[Any, Any],
                                                                   other: aiohttp.ClientSession) -> None:
    token = await login(client)
    await add_staff(client, token)
    staff_token = await login(other, "nasrin", STAFF_PW)
    assert (await other.get("/settings")).status == 403
    resp = await client.patch("/api/users/nasrin", json={"role": "owner"}, headers={"X-CSRF-Token": token})
    assert resp.status == 200
    assert (await other.get("/settings")).status == 200
    # Now two owners: the first may step down; the last may not.
    down = await client.patch("/api/users/admin", json={"role": "staff"}, headers={"X-CSRF-Token": token})
    assert down.status == 200 and (await client.get("/api/users")).status == 403
    last = await other.patch("/api/users/nasrin", json={"role": "staff"}, headers={"X-CSRF-Token": staff_token})
    assert last.status == 409 and "only owner" in (await last.json())["error"]


async def test_removing_someone_ends_their_sessions_and_keeps_an_owner(client: TestClient[Any, Any],
                                                                      other: aiohttp.ClientSession,
                                                                      bridge: FakeBridge) -> None:
    token = await login(client)
    h = {"X-CSRF-Token": token}
    await add_staff(client, token)
    await login(other, "nasrin", STAFF_PW)
    resp = await client.delete("/api/users/nasrin", headers=h)
    assert resp.status == 200 and (await resp.json())["removed"] is True
    assert (await other.get("/api/orders")).status == 401
    assert (await other.post("/api/login", json={"username": "nasrin", "password": STAFF_PW})).status == 401
    assert (await client.delete("/api/users/nasrin", headers=h)).status == 404
    assert (await client.patch("/api/users/nasrin", json={"role": "owner"}, headers=h)).status == 404
    before = bridge.snapshot()
    last = await client.delete("/api/users/admin", headers=h)
    assert last.status == 409 and bridge.snapshot() == before
    listed = await (await client.get("/api/users")).json()
    assert [(u["username"], u["removed"]) for u in listed["users"]] == [("admin", False), ("nasrin", True)]
    # A removed name may be given to someone again.
    await add_staff(client, token)
    assert [a["change"] for a in (await (await client.get("/api/users")).json())["audit"]][:2] == ["restored", "removed"]


async def test_everyone_changes_their_own_password(client: TestClient[Any, Any], other: aiohttp.ClientSession) -> None:
    token = await login(client)
    await add_staff(client, token)
    staff_token = await login(other, "nasrin", STAFF_PW)
    h = {"X-CSRF-Token": staff_token}
    wrong = await other.post("/api/account/password", json={"current": "not-it-at-all", "password": "nasrins-new-password"},
                             headers=h)
    assert wrong.status == 400 and "current" in (await wrong.json())["error"]
    short = await other.post("/api/account/password", json={"current": STAFF_PW, "password": "short"}, headers=h)
    assert short.status == 400 and "12" in (await short.json())["error"]
    done = await other.post("/api/account/password", json={"current": STAFF_PW, "password": "nasrins-new-password"},
                            headers=h)
    assert done.status == 200
    new_token = (await done.json())["csrf_token"]
    # This browser goes on with its new session; the old token is no longer the session's.
    assert (await other.get("/api/session")).status == 200
    assert (await other.post("/api/orders/Z1/approve", headers={"X-CSRF-Token": staff_token})).status == 403
    assert (await other.post("/api/orders/Z1/approve", headers={"X-CSRF-Token": new_token})).status == 404
    assert (await client.post("/api/login", json={"username": "nasrin", "password": STAFF_PW})).status == 401
    await login(client, "nasrin", "nasrins-new-password")


async def test_the_users_page_adds_resets_changes_and_removes(client: TestClient[Any, Any],
                                                              other: aiohttp.ClientSession, bridge: FakeBridge) -> None:
    await login(client)
    page = await client.get("/users")
    html = await page.text()
    assert page.status == 200 and 'name="action" value="add"' in html
    token = csrf_of(html)
    added = await client.post("/users", data={"csrf_token": token, "action": "add", "username": "nasrin",
                                              "role": "staff", "password": STAFF_PW})
    assert added.status == 200 and "nasrin added as Staff" in await added.text()
    short = await client.post("/users", data={"csrf_token": token, "action": "add", "username": "karim",
                                              "role": "staff", "password": "short"})
    text = await short.text()
    assert short.status == 400 and "at least 12" in text and 'value="karim"' in text  # what was typed stays
    await login(other, "nasrin", STAFF_PW)
    reset = await client.post("/users", data={"csrf_token": token, "action": "reset", "username": "nasrin",
                                              "password": "a-brand-new-password"})
    assert reset.status == 200 and "logged out everywhere" in await reset.text()
    assert (await other.get("/api/orders")).status == 401
    role = await client.post("/users", data={"csrf_token": token, "action": "role", "username": "nasrin", "role": "owner"})
    assert role.status == 200 and bridge.db.panel_users()["nasrin"].role.value == "owner"
    removed = await client.post("/users", data={"csrf_token": token, "action": "remove", "username": "nasrin"})
    assert removed.status == 200 and bridge.db.panel_users()["nasrin"].removed
    last = await client.post("/users", data={"csrf_token": token, "action": "remove", "username": "admin"})
    assert last.status == 409 and "only owner" in await last.text()
    page = await (await client.get("/users")).text()
    audit = page[page.index('id="user-audit"'):]
    for words in ("added as Staff", "password set", "role changed to Owner", "removed"):
        assert words in audit, words


async def test_the_users_page_in_bengali(tmp_path: Path, bridge: FakeBridge) -> None:
    bridge.add_user("nasrin", STAFF_PW, "staff", by="admin:admin")
    async with panel_client(make_config(tmp_path / "bn", **{"bot.language": "bn"}), bridge) as c:
        await login(c)
        html = await (await c.get("/users")).text()
        assert "ব্যবহারকারী" in html and "কর্মী" in html and "মালিক" in html


async def test_the_account_page_changes_your_own_password(client: TestClient[Any, Any]) -> None:
    await login(client)
    html = await (await client.get("/account")).text()
    token = csrf_of(html)
    assert "admin" in html and 'autocomplete="current-password"' in html
    differ = await client.post("/account", data={"csrf_token": token, "current": PASSWORD,
                                                 "password": "a-brand-new-password", "again": "something-else-entirely"})
    assert differ.status == 400 and "differ" in await differ.text()
    wrong = await client.post("/account", data={"csrf_token": token, "current": "nope-nope-nope",
                                                "password": "a-brand-new-password", "again": "a-brand-new-password"})
    assert wrong.status == 400 and "not your current password" in await wrong.text()
    done = await client.post("/account", data={"csrf_token": token, "current": PASSWORD,
                                               "password": "a-brand-new-password", "again": "a-brand-new-password"})
    assert done.status == 200 and "Your password is changed" in await done.text()
    assert (await client.get("/api/session")).status == 200  # still logged in here
    assert (await client.post("/api/login", json={"username": "admin", "password": PASSWORD})).status == 401
