"""The server's say over sessions kept in the browser's encrypted cookie.

A cookie alone cannot be taken back: a copy keeps working until it expires. So each session
carries an id and its login time, and the panel refuses one that was logged out (its id is in
`<data_dir>/panel-revoked-sessions.json` until the cookie would have expired anyway) or that
began before its user's password was last set (`run.py set-password` ends every session of the
user). The revocation file is small and written only at logout.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable

import orjson

from domain.clock import from_iso
from storage.atomic import atomic_write_bytes
from storage.errors import CorruptFile, StorageError
from web.auth import load_users, users_path

log = logging.getLogger("diamondbot.panel")

REVOKED_FILE = "panel-revoked-sessions.json"


def load_revoked(path: Path) -> dict[str, float]:
    """The revoked session ids and when their cookies expire; CorruptFile when unreadable."""
    # Never replaced by an empty list: that would quietly accept every session logged out before.
    remedy = ("restore it from a backup, or delete it: sessions logged out before are then accepted "
              "again until their cookies expire (at most 12 hours); `python run.py set-password USER` "
              "ends every session of a user at once")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CorruptFile(path, f"it cannot be read ({e.strerror or e})", remedy) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise CorruptFile(path, f"it is not valid JSON ({e})", remedy) from None
    revoked = data.get("revoked") if isinstance(data, dict) else None
    if not isinstance(revoked, dict) or not all(
            isinstance(e, (int, float)) and not isinstance(e, bool) for e in revoked.values()):
        raise CorruptFile(path, 'expected an object {"revoked": {session id: expiry time}}', remedy)
    return {str(s): float(e) for s, e in revoked.items()}


class SessionRegistry:
    def __init__(self, data_dir: str | os.PathLike[str], max_age: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / REVOKED_FILE
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = self._load()  # session id -> when its cookie expires
        self._users_seen: tuple[int, int] | None = None  # the users file's (mtime_ns, size) read
        self._password_set: dict[str, float] = {}

    def new(self) -> tuple[str, float]:
        """An id and login time for a new session."""
        return secrets.token_urlsafe(18), self.clock()

    def expires_at(self, at: float) -> float:
        """When a session begun at `at` ends (its cookie's Fernet ttl ends it the same moment)."""
        return at + self.max_age

    def valid(self, user: str, sid: Any, at: Any) -> bool:
        """Whether the server still honours the session: not logged out, not expired, not older
        than its user's password."""
        if not isinstance(sid, str) or not sid or not isinstance(at, (int, float)):
            return False  # a cookie from before sessions had ids: log in again
        if self.clock() >= self.expires_at(at):
            return False
        with self._lock:
            if sid in self._revoked:
                return False
            return at >= self._password_set_at(user)

    def revoke(self, sid: Any, at: Any) -> None:
        """Logout: this session is refused from now on, whoever sends its cookie."""
        if not isinstance(sid, str) or not sid:
            return
        now = self.clock()
        expires = (at if isinstance(at, (int, float)) else now) + self.max_age
        with self._lock:
            self._revoked = {s: e for s, e in self._revoked.items() if e > now}
            self._revoked[sid] = expires
            atomic_write_bytes(self.path, orjson.dumps({"revoked": self._revoked}), mode=0o600)

    def _load(self) -> dict[str, float]:
        return load_revoked(self.path)

    def _password_set_at(self, user: str) -> float:
        """When the user's password was last set (0 if unknown); the users file is read again
        only when it changed."""
        try:
            st = users_path(self.data_dir).stat()
        except OSError:
            return 0.0
        seen = (st.st_mtime_ns, st.st_size)
        if seen != self._users_seen:
            self._users_seen = seen
            self._password_set = {}
            try:
                users = load_users(self.data_dir) or {}
            except StorageError:
                users = {}  # the login refuses everyone then, and says why
            for name, entry in users.items():
                try:
                    self._password_set[name] = from_iso(entry["updated_at"])
                except (KeyError, TypeError, ValueError):
                    pass
        return self._password_set.get(user, 0.0)
