"""Panel users: the users file, argon2id password hashes, the first-start admin, the session key.

Everything here lives in the data dir beside the orders but is never touched by the actors:
`panel-users.json` (users and hashes), `panel-secret.key` (the Fernet key that encrypts session
cookies) and, on a first start without `DIAMONDBOT_ADMIN_PASSWORD`, `initial-admin-password.txt`.
All are written atomically with mode 0600. A file that cannot be read stops the caller with a
message naming it; it is never replaced by defaults.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet

from storage.atomic import atomic_write_bytes, ensure_dir
from storage.errors import CorruptFile

log = logging.getLogger("diamondbot.panel.auth")

USERS_FILE = "panel-users.json"
SECRET_FILE = "panel-secret.key"
INITIAL_PASSWORD_FILE = "initial-admin-password.txt"
ADMIN = "admin"
ENV_PASSWORD = "DIAMONDBOT_ADMIN_PASSWORD"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a cap keeps a login request cheap to refuse
_USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# argon2id with the library's defaults (RFC 9106 low-memory profile). Tests swap in a cheaper one.
HASHER = PasswordHasher()


class PasswordError(ValueError):
    """A username or password that cannot be used."""


def _now_iso() -> str:
    # Milliseconds: a session that began before a new password was set must be told apart
    # from one that began just after (web.sessions).
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def check_username(user: str) -> str:
    """The username if it is 1–64 letters, digits, '.', '_' or '-'; else PasswordError."""
    if not isinstance(user, str) or not _USERNAME.fullmatch(user):
        raise PasswordError("a username is 1 to 64 letters, digits, '.', '_' or '-'")
    return user


def check_password(password: str, source: str = "password") -> str:
    """The password if it is long enough; else PasswordError naming where it came from."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise PasswordError(f"{source} must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PasswordError(f"{source} must have at most {MAX_PASSWORD} characters")
    return password


# --- the users file ---------------------------------------------------------------------------


def users_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / USERS_FILE


def _bad(path: Path, reason: str) -> CorruptFile:
    return CorruptFile(path, reason, remedy=(
        f"restore it from a backup, or move it away and run `python run.py set-password {ADMIN}` "
        "to create a new admin"))


def load_users(data_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]] | None:
    """The users by name, or None when there is no users file; CorruptFile when it is unreadable."""
    path = users_path(data_dir)
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
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            raise _bad(path, f"user {name!r} has no password hash")
    return users


def _write_users(data_dir: str | os.PathLike[str], users: Mapping[str, Any]) -> None:
    ensure_dir(data_dir)
    data = orjson.dumps({"users": users}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    atomic_write_bytes(users_path(data_dir), data + b"\n", mode=0o600)


def set_password(data_dir: str | os.PathLike[str], user: str, password: str) -> None:
    """Set a user's password, creating the user if missing (`python run.py set-password USER`)."""
    check_username(user)
    check_password(password)
    users = load_users(data_dir) or {}
    now = _now_iso()
    entry = dict(users.get(user) or {"created_at": now})
    entry["hash"] = HASHER.hash(password)
    entry["updated_at"] = now
    users[user] = entry
    _write_users(data_dir, users)
    log.info("password of panel user %s set", user)


def ensure_admin(data_dir: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> str | None:
    """On the first start (no users file) create `admin`; return a generated password once.

    The password comes from DIAMONDBOT_ADMIN_PASSWORD, or is generated and written to
    initial-admin-password.txt (0600) and returned so the caller prints it. Returns None when
    users exist already or the password came from the environment. Never logs a password.
    """
    if load_users(data_dir) is not None:
        return None
    given = env.get(ENV_PASSWORD)
    if given:
        check_password(given, ENV_PASSWORD)
        password, generated = given, False
    else:
        password, generated = secrets.token_urlsafe(12), True
        ensure_dir(data_dir)
        # Written before the users file: a crash in between then only costs a fresh password.
        atomic_write_bytes(Path(data_dir) / INITIAL_PASSWORD_FILE, password.encode() + b"\n", mode=0o600)
    now = _now_iso()
    _write_users(data_dir, {ADMIN: {"hash": HASHER.hash(password), "created_at": now, "updated_at": now}})
    log.info("panel user %s created (password %s)", ADMIN,
             f"in {INITIAL_PASSWORD_FILE}" if generated else f"from {ENV_PASSWORD}")
    return password if generated else None


class UserStore:
    """Checks credentials against the users file, off the event loop (argon2 takes ~0.1 s)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self._dummy_hash: str | None = None

    def _verify_blocking(self, user: str, password: str) -> bool:
        # Read on every login so `set-password` takes effect without a restart.
        users = load_users(self.data_dir) or {}
        entry = users.get(user)
        if entry is None:
            # Hash anyway: an unknown user must take as long as a wrong password.
            if self._dummy_hash is None:
                self._dummy_hash = HASHER.hash(secrets.token_urlsafe(16))
            stored = self._dummy_hash
        else:
            stored = entry["hash"]
        try:
            ok = HASHER.verify(stored, password)
        except VerificationError:
            return False
        except InvalidHashError:
            log.error("panel user %s has an unreadable password hash in %s; run set-password",
                      user, users_path(self.data_dir))
            return False
        return ok and entry is not None

    async def exists(self, user: str) -> bool:
        """Whether the users file has this user (read off the event loop, like a login)."""
        if not _USERNAME.fullmatch(user):
            return False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: user in (load_users(self.data_dir) or {}))

    async def verify(self, user: str, password: str) -> bool:
        """Whether the user exists and the password is theirs."""
        if not _USERNAME.fullmatch(user) or not 0 < len(password) <= MAX_PASSWORD:
            return False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._verify_blocking, user, password)


# --- the session key --------------------------------------------------------------------------


def session_key(data_dir: str | os.PathLike[str]) -> Fernet:
    """The Fernet key for session cookies: created once, then reused so sessions survive restarts."""
    path = Path(data_dir) / SECRET_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        ensure_dir(data_dir)
        key = Fernet.generate_key()
        atomic_write_bytes(path, key + b"\n", mode=0o600)
        return Fernet(key)
    except OSError as e:
        raise CorruptFile(path, f"cannot be read ({e.strerror or e})") from e
    try:
        return Fernet(raw.strip())
    except ValueError:
        raise CorruptFile(path, "not a Fernet key", remedy=(
            "restore it from a backup, or delete it to make a new one (everyone is logged out)")) from None
