"""The server's say over sessions kept in the browser's encrypted cookie.

A cookie alone cannot be taken back: a copy keeps working until it expires. So each session
carries an id and its login time, and the panel refuses one that was logged out (its id is in
`<data_dir>/panel-revoked-sessions.json` until the cookie would have expired anyway). A session
also remembers its user's password (a fingerprint of the hash, web.auth): the login middleware
refuses it once the user is removed or has a new password. The revocation file is small and
written only at logout.
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

from storage.atomic import atomic_write_bytes
from storage.errors import CorruptFile

log = logging.getLogger("diamondbot.panel")

REVOKED_FILE = "panel-revoked-sessions.json"


def load_revoked(path: Path) -> dict[str, float]:
    """The revoked session ids and when their cookies expire; CorruptFile when unreadable."""
    # Never replaced by an empty list: that would quietly accept every session logged out before.
    remedy = ("restore it from a backup, or delete it: sessions logged out before are then accepted "
              "again until their cookies expire (at most 12 hours); a new password (Users page) ends "
              "every session of a user at once")
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

    def new(self) -> tuple[str, float]:
        """An id and login time for a new session."""
        return secrets.token_urlsafe(18), self.clock()

    def expires_at(self, at: float) -> float:
        """When a session begun at `at` ends (its cookie's Fernet ttl ends it the same moment)."""
        return at + self.max_age

    def valid(self, sid: Any, at: Any) -> bool:
        """Whether the server still honours the session: not logged out, not expired."""
        if not isinstance(sid, str) or not sid or not isinstance(at, (int, float)):
            return False  # a cookie from before sessions had ids: log in again
        if self.clock() >= self.expires_at(at):
            return False
        with self._lock:
            return sid not in self._revoked

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
