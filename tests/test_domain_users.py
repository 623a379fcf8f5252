"""The panel's users and their rules (domain.users), and how the journal keeps them
(domain.records.UserRecord, storage.database.Database.users): an owner adds, resets, demotes and
removes; the shop always keeps an owner; every change is in the audit; a snapshot keeps both."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from domain.records import RecordError, UserRecord, decode
from domain.users import Change, Role, User, UserError, change_of, save_user
from storage.database import Database, DatabaseError

NOW = 1_764_000_000.0
H1, H2 = "$argon2id$v=19$m=8,t=1,p=1$one", "$argon2id$v=19$m=8,t=1,p=1$two"


def users(*people: User) -> dict[str, User]:
    return {u.username: u for u in people}


ADMIN = User("admin", Role.OWNER, H1, False, 1.0, "system:first-start")
NASRIN = User("nasrin", Role.STAFF, H1, False, 2.0, "admin:admin")


def test_an_owner_adds_staff_and_resets_and_promotes() -> None:
    added = save_user(users(ADMIN), "nasrin", "staff", H1, "admin:admin", NOW)
    assert added == User("nasrin", Role.STAFF, H1, False, NOW, "admin:admin")
    reset = save_user(users(ADMIN, NASRIN), "nasrin", "staff", H2, "admin:admin", NOW)
    assert reset is not None and reset.password_hash == H2 and reset.role is Role.STAFF
    promoted = save_user(users(ADMIN, NASRIN), "nasrin", "owner", None, "admin:admin", NOW)
    assert promoted is not None and promoted.role is Role.OWNER and promoted.password_hash == H1
    assert save_user(users(ADMIN, NASRIN), "nasrin", "staff", None, "admin:admin", NOW) is None  # nothing changes


def test_removed_users_stay_and_can_come_back_with_a_password() -> None:
    removed = save_user(users(ADMIN, NASRIN), "nasrin", "", None, "admin:admin", NOW, remove=True)
    assert removed is not None and removed.removed and removed.role is Role.STAFF
    after = users(ADMIN, removed)
    with pytest.raises(UserError) as err:
        save_user(after, "nasrin", "staff", None, "admin:admin", NOW)  # a reset of a removed user
    assert err.value.status == 404
    back = save_user(after, "nasrin", "owner", H2, "admin:admin", NOW + 1)
    assert back == User("nasrin", Role.OWNER, H2, False, NOW + 1, "admin:admin")


@pytest.mark.parametrize("people, call, status, words", [
    ((ADMIN,), dict(username="no spaces", role="staff", password_hash=H1), 400, "username"),
    ((ADMIN,), dict(username="x" * 65, role="staff", password_hash=H1), 400, "username"),
    ((ADMIN,), dict(username="rahim", role="boss", password_hash=H1), 400, "role"),
    ((ADMIN,), dict(username="rahim", role="staff", password_hash=None), 400, "password"),
    ((ADMIN,), dict(username="rahim", role="staff", password_hash=""), 400, "password_hash"),
    ((ADMIN,), dict(username="rahim", role="staff", password_hash="x" * 600), 400, "password_hash"),
    ((ADMIN,), dict(username="rahim", role="staff", password_hash=None, remove=True), 404, "no user rahim"),
    ((ADMIN, NASRIN), dict(username="admin", role="", password_hash=None, remove=True), 409, "only owner"),
    ((ADMIN, NASRIN), dict(username="admin", role="staff", password_hash=None), 409, "only owner"),
])
def test_refusals(people: tuple[User, ...], call: dict[str, Any], status: int, words: str) -> None:
    with pytest.raises(UserError) as err:
        save_user(users(*people), by="admin:admin", now=NOW, **call)
    assert err.value.status == status and words in str(err.value)


def test_with_a_second_owner_the_first_may_go() -> None:
    second = User("karim", Role.OWNER, H2, False, 3.0, "admin:admin")
    demoted = save_user(users(ADMIN, second), "admin", "staff", None, "admin:karim", NOW)
    assert demoted is not None and demoted.role is Role.STAFF
    gone = save_user(users(ADMIN, second), "admin", "", None, "admin:karim", NOW, remove=True)
    assert gone is not None and gone.removed
    # A removed owner does not count as one.
    with pytest.raises(UserError, match="only owner"):
        save_user(users(gone, second), "karim", "", None, "admin:karim", NOW, remove=True)


def test_the_change_each_record_makes() -> None:
    assert change_of(None, ADMIN) is Change.ADDED
    assert change_of(None, User("a", Role.OWNER, H1, by="import:panel-users.json")) is Change.IMPORTED
    assert change_of(NASRIN, replace(NASRIN, password_hash=H2)) is Change.PASSWORD
    assert change_of(NASRIN, replace(NASRIN, role=Role.OWNER)) is Change.ROLE
    assert change_of(NASRIN, replace(NASRIN, role=Role.OWNER, password_hash=H2)) is Change.ROLE_AND_PASSWORD
    assert change_of(NASRIN, replace(NASRIN, removed=True)) is Change.REMOVED
    assert change_of(replace(NASRIN, removed=True), NASRIN) is Change.RESTORED


def test_the_journal_record_and_the_database() -> None:
    raw = UserRecord.of(NASRIN).encode()
    assert raw == {"t": "user", "v": {"username": "nasrin", "role": "staff", "passwordHash": H1, "removed": False,
                                      "at": "1970-01-01T00:00:02.000+00:00", "by": "admin:admin"}}
    assert decode(raw) == UserRecord.of(NASRIN)
    for bad in ({"t": "user", "v": {"username": "nasrin", "role": "staff"}},
                {"t": "user", "v": {"username": "a b", "role": "staff", "passwordHash": H1}},
                {"t": "user", "v": {"username": "nasrin", "role": "king", "passwordHash": H1}},
                {"t": "user", "v": []}):
        with pytest.raises(RecordError):
            decode(bad)

    db = Database()
    db.apply(UserRecord.of(ADMIN))
    db.apply(UserRecord.of(NASRIN))
    db.apply(UserRecord.of(User("nasrin", Role.STAFF, H1, True, 5.0, "admin:admin")))
    assert db.panel_users()["nasrin"].removed and db.panel_users()["admin"] == ADMIN
    assert [(a["user"], a["change"], a["by"]) for a in db.user_audit] == [
        ("admin", "added", "system:first-start"), ("nasrin", "added", "admin:admin"),
        ("nasrin", "removed", "admin:admin")]
    snapshot = db.snapshot()
    assert [u["username"] for u in snapshot["users"]] == ["admin", "nasrin"]
    again = Database.from_snapshot(snapshot)
    assert again.users == db.users and again.user_audit == db.user_audit
    assert "users" not in Database().snapshot()  # a database without users keeps the old shape
    with pytest.raises(DatabaseError, match="nasrin"):
        Database.from_snapshot({**snapshot, "users": [{"username": "nasrin", "role": "staff"}]})
