"""Panel users as the panel sees them: argon2id password hashes, logins checked against the users the
PersistenceActor keeps (`ListUsers` / `SaveUser` through the bridge), the first-start admin, and the
session key.

The users live in the journal with everything else (domain.users); the panel keeps a copy for a
few seconds, because every request checks its session's user and role, and forgets it at once
after a change it made. `panel-secret.key` (the Fernet key that encrypts session cookies) and, on
a first start without `DIAMONDBOT_ADMIN_PASSWORD`, `initial-admin-password.txt` are the panel's own
files in the data dir, written atomically with mode 0600. A file that cannot be read stops the
caller with a message naming it; it is never replaced by defaults.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet

from actors.messages import CommandDone
from domain.users import Role, UserError, check_username
from storage.atomic import atomic_write_bytes, ensure_dir
from storage.errors import CorruptFile
from web.bridge import ActorBridge, BridgeError

log = logging.getLogger("diamondbot.panel.auth")

SECRET_FILE = "panel-secret.key"
INITIAL_PASSWORD_FILE = "initial-admin-password.txt"
ADMIN = "admin"
FIRST_START = "system:first-start"
ENV_PASSWORD = "DIAMONDBOT_ADMIN_PASSWORD"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a cap keeps a login request cheap to refuse
USERS_TTL = 5.0  # seconds the panel trusts its copy of the users (its own changes: none at all)
USERS_STALE = 60.0  # while the bot does not answer, a copy this old still serves

# argon2id with the library's defaults (RFC 9106 low-memory profile). Tests swap in a cheaper one.
HASHER = PasswordHasher()


class PasswordError(ValueError):
    """A username or password that cannot be used."""


def check_password(password: Any, source: str = "password") -> str:
    """The password if it is long enough; else PasswordError naming where it came from."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise PasswordError(f"{source} must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PasswordError(f"{source} must have at most {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    """An argon2id hash of a password that check_password accepted (~0.1 s: not on the event loop)."""
    return HASHER.hash(password)


def fingerprint(password_hash: str) -> str:
    """What a session remembers of its user's password: a new password ends every session
    begun before it (the hash itself never goes into a cookie, even an encrypted one)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class PanelUser:
    """A user who may log in (not removed)."""

    name: str
    role: Role
    password_hash: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.password_hash)

    @property
    def owner(self) -> bool:
        return self.role is Role.OWNER


@dataclass(frozen=True)
class Users:
    """One reading of the panel's users: those who may log in, every record (removed ones too,
    without hashes) and the audit of changes, oldest first."""

    active: Mapping[str, PanelUser]
    records: tuple[Mapping[str, Any], ...] = ()
    audit: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Users:
        active: dict[str, PanelUser] = {}
        shown = []
        for value in data.get("users") or ():
            name, role, password_hash = value.get("username"), value.get("role"), value.get("passwordHash")
            shown.append({k: v for k, v in value.items() if k != "passwordHash"})
            if value.get("removed") or not isinstance(password_hash, str):
                continue
            try:
                active[check_username(name)] = PanelUser(name, Role(role), password_hash)
            except (UserError, ValueError):
                log.error("panel user record %r cannot be used; it is ignored", name)
        return cls(active, tuple(shown), tuple(data.get("audit") or ()))


@dataclass
class UserDirectory:
    """The panel's users, read from the actor system and kept for USERS_TTL seconds; the
    argon2 work off the event loop."""

    bridge: ActorBridge
    ttl: float = USERS_TTL
    clock: Callable[[], float] = time.monotonic
    _users: Users | None = None
    _read_at: float = 0.0
    _reading: asyncio.Future[Users] | None = None
    _dummy_hash: str | None = field(default=None, repr=False)

    def forget(self) -> None:
        """Read the users again on the next request (after a change)."""
        self._users = None

    async def users(self) -> Users:
        """The users; BridgeError when the bot does not answer and no recent copy is left."""
        now = self.clock()
        if self._users is not None and now - self._read_at < self.ttl:
            return self._users
        if self._reading is None or self._reading.done():  # one read for every request waiting on it
            self._reading = asyncio.ensure_future(self._read())
        try:
            return await asyncio.shield(self._reading)
        except BridgeError:
            if self._users is not None and now - self._read_at < USERS_STALE:
                return self._users
            raise

    async def _read(self) -> Users:
        result = await self.bridge.list_users()
        if result.status != 200:
            raise BridgeError(f"the users could not be read: {result.error or result.status}")
        users = Users.of(result.data)
        self._users, self._read_at = users, self.clock()
        return users

    async def get(self, name: str) -> PanelUser | None:
        """A user who may log in, or None."""
        return (await self.users()).active.get(name)

    async def exists(self, name: str) -> bool:
        return await self.get(name) is not None

    def _verify_blocking(self, user: PanelUser | None, password: str) -> bool:
        if user is None:
            # Hash anyway: an unknown user must take as long as a wrong password.
            if self._dummy_hash is None:
                self._dummy_hash = HASHER.hash(secrets.token_urlsafe(16))
            stored = self._dummy_hash
        else:
            stored = user.password_hash
        try:
            return HASHER.verify(stored, password) and user is not None
        except VerificationError:
            return False
        except InvalidHashError:
            log.error("panel user %s has an unreadable password hash; an owner can set a new password",
                      user.name if user else "?")
            return False

    async def verify(self, name: str, password: str) -> PanelUser | None:
        """The user, if it may log in and the password is its own."""
        if not isinstance(name, str) or not isinstance(password, str) or not 0 < len(password) <= MAX_PASSWORD:
            return None
        try:
            user = await self.get(check_username(name))
        except UserError:
            user = None
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, self._verify_blocking, user, password)
        return user if ok else None

    async def save(self, name: str, role: str, password: str | None, by: str, remove: bool = False) -> CommandDone:
        """Add, change or remove a user (the actor system's answer: 400, 404, 409 refused). The
        password, if given, must pass check_password (PasswordError)."""
        password_hash = None
        if password is not None:
            check_password(password)
            password_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
        try:
            return await self.bridge.save_user(name, role, password_hash, by, remove)
        finally:
            self.forget()


async def ensure_admin(bridge: ActorBridge, data_dir: str | os.PathLike[str],
                       env: Mapping[str, str] = os.environ) -> str | None:
    """On the first start (no user in the journal) create `admin`, an owner; return a generated
    password once.

    The password comes from DIAMONDBOT_ADMIN_PASSWORD, or is generated and written to
    initial-admin-password.txt (0600) and returned so the caller prints it. Returns None when
    users exist already (brought in from an earlier version's panel-users.json, too) or the
    password came from the environment. Never logs a password."""
    listed = await bridge.list_users()
    if listed.status != 200:
        raise BridgeError(f"the users could not be read: {listed.error or listed.status}")
    if listed.data.get("users"):
        return None
    given = env.get(ENV_PASSWORD)
    if given:
        check_password(given, ENV_PASSWORD)
        password, generated = given, False
    else:
        password, generated = secrets.token_urlsafe(12), True
        ensure_dir(data_dir)
        # Written before the user: a crash in between then only costs a fresh password.
        atomic_write_bytes(Path(data_dir) / INITIAL_PASSWORD_FILE, password.encode() + b"\n", mode=0o600)
    password_hash = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
    done = await bridge.save_user(ADMIN, Role.OWNER.value, password_hash, FIRST_START)
    if done.status != 200:
        raise BridgeError(f"the first user could not be saved: {done.error or done.status}")
    log.info("panel user %s created (password %s)", ADMIN,
             f"in {INITIAL_PASSWORD_FILE}" if generated else f"from {ENV_PASSWORD}")
    return password if generated else None


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
