"""The panel's users and their roles: who may log in, what each may do, and the rules for changing
them (an owner adds staff, resets passwords, removes people, changes roles; the shop always keeps
an owner).

A user is kept as its journal record (`domain.records.UserRecord`): the user as it is now, with
when and by whom it was last changed. A removed user stays, marked removed, so the audit and old
trails still name it. Password hashes are made and checked by the panel (argon2id); here they are
only carried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Iterable, Mapping

from domain.clock import from_iso, to_iso

MAX_HASH = 512  # an argon2id hash is ~100 characters; anything much longer is not one
_USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Role(str, Enum):
    """What a panel user may do."""

    OWNER = "owner"  # everything: settings, users, the shop's texts
    STAFF = "staff"  # the day's work: orders, payments, reminders, opening and closing the shop


class UserError(ValueError):
    """A change to the panel's users that is refused; `status` as the panel answers it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Change(str, Enum):
    """What one user record changed, for the audit list."""

    ADDED = "added"
    IMPORTED = "imported"
    PASSWORD = "password"
    ROLE = "role"
    ROLE_AND_PASSWORD = "role_and_password"
    REMOVED = "removed"
    RESTORED = "restored"


def check_username(name: Any) -> str:
    """The username if it is 1–64 letters, digits, '.', '_' or '-'; else UserError 400."""
    if not isinstance(name, str) or not _USERNAME.fullmatch(name):
        raise UserError(400, "username: 1 to 64 letters, digits, '.', '_' or '-'")
    return name


def check_role(role: Any) -> Role:
    """The role named; UserError 400 for anything else."""
    try:
        return Role(role)
    except ValueError:
        raise UserError(400, f"role: use {' or '.join(r.value for r in Role)}") from None


@dataclass(frozen=True, slots=True)
class User:
    """A panel user as stored: its role, password hash, whether removed, and its last change."""

    username: str
    role: Role
    password_hash: str
    removed: bool = False
    at: float = 0.0  # when this record was written
    by: str = ""  # "admin:<name>", "cli:set-password", "system:first-start", "import:panel-users.json"

    @property
    def active(self) -> bool:
        return not self.removed

    def to_record(self) -> dict[str, Any]:
        """The record's value, as the journal keeps it."""
        return {"username": self.username, "role": self.role.value, "passwordHash": self.password_hash,
                "removed": self.removed, "at": to_iso(self.at), "by": self.by}

    @classmethod
    def from_record(cls, value: Mapping[str, Any]) -> User:
        """A user from its stored value; ValueError naming what is wrong."""
        name = value.get("username")
        try:
            check_username(name)
            role = check_role(value.get("role"))
        except UserError as e:
            raise ValueError(f"user record {name!r}: {e}") from None
        password_hash = value.get("passwordHash")
        if not isinstance(password_hash, str) or not password_hash:
            raise ValueError(f"user record {name!r}: no password hash")
        at = value.get("at")
        return cls(str(name), role, password_hash, bool(value.get("removed", False)),
                   from_iso(at) if isinstance(at, str) else 0.0, str(value.get("by") or ""))


def active_owners(users: Iterable[User]) -> list[str]:
    return [u.username for u in users if u.active and u.role is Role.OWNER]


def save_user(users: Mapping[str, User], username: Any, role: Any, password_hash: str | None, by: str,
              now: float, remove: bool = False) -> User | None:
    """The user record that saving this change writes, None when nothing changes; UserError
    400 bad input, 404 an unknown (or removed) user to reset or remove, 409 when the shop would
    be left without an owner.

    A new name (or a removed user's) needs a password hash and becomes a user with `role`; an
    existing one gets the role and, if given, the new hash; `remove` marks it removed."""
    name = check_username(username)
    if password_hash is not None and (not isinstance(password_hash, str) or not password_hash
                                      or len(password_hash) > MAX_HASH):
        raise UserError(400, "password_hash: not a password hash")
    current = users.get(name)
    if remove:
        if current is None or current.removed:
            raise UserError(404, f"no user {name}")
        if current.role is Role.OWNER and active_owners(users.values()) == [name]:
            raise UserError(409, f"{name} is the only owner: make someone else an owner first")
        return replace(current, removed=True, at=now, by=by)
    wanted = check_role(role)
    if current is None or current.removed:
        if password_hash is None:
            raise UserError(400 if current is None else 404,
                            "password: a new user needs one" if current is None else f"no user {name}")
        return User(name, wanted, password_hash, False, now, by)
    if current.role is Role.OWNER and wanted is not Role.OWNER and active_owners(users.values()) == [name]:
        raise UserError(409, f"{name} is the only owner: make someone else an owner first")
    if wanted is current.role and password_hash is None:
        return None
    return replace(current, role=wanted, password_hash=password_hash or current.password_hash, at=now, by=by)


def change_of(before: User | None, after: User) -> Change:
    """What a new record of a user changed (for the audit)."""
    if before is None:
        return Change.IMPORTED if after.by.startswith("import:") else Change.ADDED
    if after.removed:
        return Change.REMOVED
    if before.removed:
        return Change.RESTORED
    role = after.role is not before.role
    password = after.password_hash != before.password_hash
    if role and password:
        return Change.ROLE_AND_PASSWORD
    return Change.ROLE if role else Change.PASSWORD
