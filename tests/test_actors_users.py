"""The panel's users in the PersistenceActor (simpleSystemBase): saved after an fsync, listed with
their hashes for the panel, refused as the rules say with nothing written, kept across restarts;
an earlier version's panel-users.json brought in once, at the first open, as owners."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from actors.messages import CommandDone, DatabaseFailed, DatabaseOpened, ListUsers, QueryResult, SaveUser
from tests.test_actors_persistence import T, Db, db  # noqa: F401  (fixture)

H1, H2 = "$argon2id$v=19$m=8,t=1,p=1$one", "$argon2id$v=19$m=8,t=1,p=1$two"


def rid() -> str:
    return uuid.uuid4().hex


def listed(db: Db) -> dict[str, Any]:
    result = db.ask(ListUsers(rid()))
    assert isinstance(result, QueryResult) and result.status == 200
    return result.data


def journal_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("orders.journal.*")))


def test_users_are_saved_listed_and_survive_a_restart(data_dir: Path) -> None:
    db = Db(data_dir)
    try:
        db.open()
        assert listed(db) == {"users": [], "audit": []}
        done = db.ask(SaveUser(rid(), "admin", "owner", H1, "system:first-start"))
        assert isinstance(done, CommandDone) and done.status == 200
        assert done.result == {"username": "admin", "role": "owner", "removed": False,
                               "at": "2025-11-24T16:00:00.000+00:00", "by": "system:first-start"}
        assert b'"t":"user"' in journal_bytes(data_dir)  # on disk when answered
        db.clock.advance(60)
        assert db.ask(SaveUser(rid(), "nasrin", "staff", H1, "admin:admin")).status == 200
        assert db.ask(SaveUser(rid(), "nasrin", "staff", H2, "admin:admin")).status == 200
    finally:
        db.close()
    again = Db(data_dir)
    try:
        assert isinstance(again.open(), DatabaseOpened)
        data = listed(again)
        assert {u["username"]: (u["role"], u["passwordHash"]) for u in data["users"]} == {
            "admin": ("owner", H1), "nasrin": ("staff", H2)}
        assert [(a["user"], a["change"], a["by"]) for a in data["audit"]] == [
            ("admin", "added", "system:first-start"), ("nasrin", "added", "admin:admin"),
            ("nasrin", "password", "admin:admin")]
    finally:
        again.close()


@pytest.mark.parametrize("msg, status", [
    (dict(username="bad name", role="staff", password_hash=H1), 400),
    (dict(username="rahim", role="chief", password_hash=H1), 400),
    (dict(username="rahim", role="staff", password_hash=None), 400),
    (dict(username="rahim", role="staff", password_hash=None, remove=True), 404),
    (dict(username="admin", role="", password_hash=None, remove=True), 409),
    (dict(username="admin", role="staff", password_hash=None), 409),
])
def test_refused_changes_write_nothing(db: Db, data_dir: Path, msg: dict[str, Any], status: int) -> None:
    db.open()
    assert db.ask(SaveUser(rid(), "admin", "owner", H1, "system:first-start")).status == 200
    before, users = journal_bytes(data_dir), listed(db)
    done = db.ask(SaveUser(rid(), by="admin:admin", **msg))
    assert isinstance(done, CommandDone) and done.status == status and done.error
    assert journal_bytes(data_dir) == before and listed(db) == users


def legacy_file(data_dir: Path, users: dict[str, Any]) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "panel-users.json"
    path.write_bytes(orjson.dumps({"users": users}))
    return path


def test_an_earlier_versions_users_come_in_once_as_owners(data_dir: Path) -> None:
    path = legacy_file(data_dir, {"admin": {"hash": H1, "created_at": "x"}, "karim": {"hash": H2}})
    content = path.read_bytes()
    first = Db(data_dir)
    try:
        assert isinstance(first.open(), DatabaseOpened)
        data = listed(first)
        assert {u["username"]: (u["role"], u["passwordHash"], u["by"]) for u in data["users"]} == {
            "admin": ("owner", H1, "import:panel-users.json"), "karim": ("owner", H2, "import:panel-users.json")}
        assert [(a["user"], a["change"]) for a in data["audit"]] == [("admin", "imported"), ("karim", "imported")]
        # Changed afterwards in the panel: the next start does not bring the file in again.
        assert first.ask(SaveUser(rid(), "karim", "staff", None, "admin:admin")).status == 200
    finally:
        first.close()
    again = Db(data_dir)
    try:
        again.open()
        data = listed(again)
        assert {u["username"]: u["role"] for u in data["users"]} == {"admin": "owner", "karim": "staff"}
        assert [(a["user"], a["change"]) for a in data["audit"]] == [
            ("admin", "imported"), ("karim", "imported"), ("karim", "role")]
    finally:
        again.close()
    assert path.read_bytes() == content  # left as it was


@pytest.mark.parametrize("content", [b"{not json", b'{"users": []}', b'{"users": {"admin": {}}}',
                                     b'{"users": {"bad name": {"hash": "h"}}}'])
def test_an_unreadable_users_file_stops_the_first_open_and_is_left_alone(data_dir: Path, content: bytes) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "panel-users.json"
    path.write_bytes(content)
    db = Db(data_dir)
    try:
        failed = db.open()
        assert isinstance(failed, DatabaseFailed) and str(path) in failed.error
        assert "set-password admin" in failed.error
    finally:
        db.asys.shutdown()
    assert path.read_bytes() == content
    assert b'"t":"user"' not in journal_bytes(data_dir)


def test_once_users_are_in_the_journal_the_file_is_not_read(data_dir: Path) -> None:
    db = Db(data_dir)
    try:
        db.open()
        db.ask(SaveUser(rid(), "admin", "owner", H1, "system:first-start"))
    finally:
        db.close()
    legacy_file(data_dir, {"mallory": {"hash": H2}}).write_bytes(b"{broken")
    again = Db(data_dir)
    try:
        assert isinstance(again.open(), DatabaseOpened)
        assert [u["username"] for u in listed(again)["users"]] == ["admin"]
    finally:
        again.close()


def test_the_supervisor_routes_the_panels_user_requests(bot: Any) -> None:
    """The panel asks the Supervisor, which forwards to the current PersistenceActor."""
    done = bot.asys.ask(bot.supervisor, SaveUser(rid(), "admin", "owner", H1, "system:first-start"), T)
    assert isinstance(done, CommandDone) and done.status == 200
    refused = bot.asys.ask(bot.supervisor, SaveUser(rid(), "admin", "", None, "admin:admin", remove=True), T)
    assert isinstance(refused, CommandDone) and refused.status == 409
    listed = bot.asys.ask(bot.supervisor, ListUsers(rid()), T)
    assert isinstance(listed, QueryResult) and [u["username"] for u in listed.data["users"]] == ["admin"]
