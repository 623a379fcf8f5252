"""The panel's users beside the journal: the users file of earlier versions, brought into the journal
once, and a change made while the bot is stopped (`run.py set-password`).

Since issue 13 the users live in the journal (`domain.records.UserRecord`), written by the
PersistenceActor like everything else. `panel-users.json` is only read: at the first start of this
version (no user in the journal yet) its users come in as owners; the file itself is left as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from domain.users import Role, User, UserError, save_user
from domain.records import UserRecord
from storage.errors import CorruptFile

LEGACY_FILE = "panel-users.json"
IMPORTED_BY = "import:panel-users.json"


def _bad(path: Path, reason: str) -> CorruptFile:
    return CorruptFile(path, reason, remedy=(
        "restore it from a backup, or move it away: the bot then starts with a new user `admin` "
        "(its password is printed once), or set one first with `python run.py set-password admin`"))


def legacy_users(data_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]] | None:
    """The users of `panel-users.json` by name, None without the file; CorruptFile when it cannot
    be read or a user in it cannot come in as written."""
    path = Path(data_dir) / LEGACY_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _bad(path, f"cannot be read ({e.strerror or e})") from e
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise _bad(path, f"not valid JSON ({e})") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise _bad(path, 'expected an object {"users": {name: {"hash": ...}}}')
    for name, entry in users.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str) or not entry["hash"]:
            raise _bad(path, f"user {name!r} has no password hash")
    return users


def legacy_import(db_users: dict[str, Any], data_dir: str | os.PathLike[str], now: float) -> list[UserRecord]:
    """The records that bring `panel-users.json`'s users into a journal that has no user yet, as
    owners (they could do everything before roles existed); [] when the journal has users or
    there is no such file. CorruptFile when it cannot be read: nothing is imported then."""
    if db_users:
        return []
    found = legacy_users(data_dir)
    records = []
    path = Path(data_dir) / LEGACY_FILE
    for name, entry in sorted((found or {}).items()):
        try:
            user = User.from_record({"username": name, "role": Role.OWNER.value, "passwordHash": entry["hash"]})
        except ValueError as e:
            raise _bad(path, f"user {name!r} cannot be imported: {e}") from None
        records.append(UserRecord.of(User(user.username, Role.OWNER, user.password_hash, False, now, IMPORTED_BY)))
    return records


def set_password_stopped(data_dir: str | os.PathLike[str], username: str, password_hash: str, by: str,
                         now: float) -> User:
    """Set a user's password in the journal of a stopped bot (holding its locks, as import-json
    does): an existing user keeps its role, a new one (or a removed one) becomes an owner. Returns
    the user as written. LockHeld when the bot runs, UserError for a bad name, StorageError /
    DatabaseError (naming the file) when the data cannot be read; nothing is written then."""
    from storage.atomic import ensure_dir
    from storage.database import open_database
    from storage.lock import holding_locks

    ensure_dir(data_dir)
    with holding_locks(data_dir):
        store, db = open_database(Path(data_dir))
        try:
            records = legacy_import(db.users, data_dir, now)  # the first start would have done it
            for record in records:
                db.apply(record)
            users = db.panel_users()
            current = users.get(username)
            role = current.role if current is not None and current.active else Role.OWNER
            user = save_user(users, username, role, password_hash, by, now)
            if user is None:  # cannot happen: a new hash always changes the user
                raise UserError(400, "nothing to change")
            records.append(UserRecord.of(user))
            store.append([orjson.dumps(r.encode()) for r in records])
            store.sync()
        finally:
            store.close()
    return user
