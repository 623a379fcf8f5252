"""Login throttling that a stranger cannot turn against the owner.

Failed logins are counted per user *and* source, where the source is

* a **known browser**: one that logged in as that user before carries a `diamondbot_device`
  cookie (encrypted with the session key) and has an allowance of its own, which failures from
  anywhere else never touch — so the owner's browser keeps working while someone guesses;
* otherwise the **client address** (behind a trusted reverse proxy, the address it forwards).

Guesses spread over many addresses are also capped per *existing* account (ACCOUNT_FACTOR times
the per-source allowance); that cap too spares known browsers.

Memory stays bounded under a spray of usernames and addresses, but the bound never erases what
it guards: per-account records exist only for accounts in the users file (never evicted), and
the per-source and per-browser tables evict only records that are not locking anything.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterable

import orjson
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

DEVICE_COOKIE = "diamondbot_device"
DEVICE_MAX_AGE = 180 * 86400  # a browser stays known for half a year after its last login
DEVICE_USERS = 8  # users remembered per browser


class Source(Enum):
    """What a throttle record counts the failures of."""

    DEVICE = "device"  # a known browser of this user
    ADDRESS = "address"  # a client address
    ACCOUNT = "account"  # an existing account, over every address that is not a known browser


@dataclass(frozen=True)
class ThrottleKey:
    source: Source
    who: str  # the device id or the address ("" for ACCOUNT)
    user: str  # the username as typed, lower-cased and cut to 64 characters


def user_key(user: str) -> str:
    return user.strip().lower()[:64]


class LoginThrottle:
    """At most `attempts` failed logins per (source, user) per `window` seconds, and
    `attempts * ACCOUNT_FACTOR` per existing account from sources that are not known browsers."""

    MAX_KEYS = 10_000  # per table: bounds memory under a spray of usernames and addresses
    ACCOUNT_FACTOR = 4

    def __init__(self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic,
                 max_keys: int | None = None) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self.max_keys = self.MAX_KEYS if max_keys is None else max_keys
        self._tables: dict[Source, OrderedDict[ThrottleKey, deque[float]]] = {s: OrderedDict() for s in Source}

    def keys(self, user: str, *, address: str | None, device: str | None, existing: bool) -> list[ThrottleKey]:
        """The records a login attempt counts against: its known browser's alone, or its
        address's and (for an existing account) the account's."""
        name = user_key(user)
        if device:
            return [ThrottleKey(Source.DEVICE, device, name)]
        keys = [ThrottleKey(Source.ADDRESS, address or "", name)]
        if existing:
            keys.append(ThrottleKey(Source.ACCOUNT, "", name))
        return keys

    def limit(self, key: ThrottleKey) -> int:
        return self.attempts * self.ACCOUNT_FACTOR if key.source is Source.ACCOUNT else self.attempts

    def _recent(self, key: ThrottleKey) -> deque[float] | None:
        table = self._tables[key.source]
        times = table.get(key)
        if times is None:
            return None
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del table[key]
            return None
        return times

    def _locked(self, key: ThrottleKey, times: deque[float]) -> bool:
        return len(times) >= self.limit(key) and times[-self.limit(key)] + self.window > self.clock()

    def retry_after(self, keys: Iterable[ThrottleKey]) -> int | None:
        """Seconds until another attempt is allowed on all of `keys`, or None if one is allowed now."""
        waits = []
        for key in keys:
            times = self._recent(key)
            if times is not None and len(times) >= self.limit(key):
                waits.append(max(1, math.ceil(times[-self.limit(key)] + self.window - self.clock())))
        return max(waits) if waits else None

    def failed(self, keys: Iterable[ThrottleKey]) -> None:
        for key in keys:
            times = self._recent(key) or deque(maxlen=self.limit(key))  # only the newest count
            times.append(self.clock())
            table = self._tables[key.source]
            table[key] = times
            table.move_to_end(key)
            if key.source is not Source.ACCOUNT:  # accounts are few: the users file's
                self._bound(table)

    def _bound(self, table: OrderedDict[ThrottleKey, deque[float]]) -> None:
        """Evict the oldest records that lock nothing; a locking record is never evicted (a
        table full of them lets new sources in uncounted, still under the account's cap)."""
        if len(table) <= self.max_keys:
            return
        for key in list(table):
            if len(table) <= self.max_keys:
                return
            times = self._recent(key)
            if times is not None and not self._locked(key, times):
                del table[key]
        while len(table) > self.max_keys:
            table.popitem(last=True)  # the newest: uncounted here, still under the account's cap

    def succeeded(self, keys: Iterable[ThrottleKey]) -> None:
        """A right password: its source starts afresh; the account's cap only takes back the
        attempt counted for it (someone else may be guessing meanwhile)."""
        for key in keys:
            table = self._tables[key.source]
            if key.source is Source.ACCOUNT:
                times = table.get(key)
                if times:
                    times.pop()
            else:
                table.pop(key, None)

    def size(self) -> int:
        return sum(len(t) for t in self._tables.values())


class KnownDevices:
    """The `diamondbot_device` cookie: an id for this browser and the users who logged in with
    it, encrypted and signed with the session key (a forged or foreign one is just unknown)."""

    def __init__(self, fernet: Fernet, max_age: int = DEVICE_MAX_AGE) -> None:
        self.fernet = fernet
        self.max_age = max_age

    def read(self, request: web.Request) -> tuple[str, tuple[str, ...]] | None:
        """(device id, its users) from the request's cookie, or None."""
        raw = request.cookies.get(DEVICE_COOKIE)
        if not raw or len(raw) > 4096:
            return None
        try:
            data = orjson.loads(self.fernet.decrypt(raw.encode(), ttl=self.max_age))
        except (InvalidToken, orjson.JSONDecodeError, UnicodeError, ValueError):
            return None
        device, users = data.get("d") if isinstance(data, dict) else None, data.get("u") if isinstance(data, dict) else None
        if not isinstance(device, str) or not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            return None
        return device, tuple(users)

    def device_for(self, request: web.Request, user: str) -> str | None:
        """This browser's id if `user` logged in with it before."""
        known = self.read(request)
        return known[0] if known is not None and user_key(user) in known[1] else None

    def remember(self, request: web.Request, response: web.StreamResponse, user: str, *, secure: bool) -> None:
        """After a successful login: this browser is known for `user` (the newest users kept)."""
        known = self.read(request)
        device, users = known if known is not None else (secrets.token_urlsafe(18), ())
        kept = [u for u in users if u != user_key(user)][-(DEVICE_USERS - 1):] + [user_key(user)]
        token = self.fernet.encrypt(orjson.dumps({"d": device, "u": kept})).decode()
        response.set_cookie(DEVICE_COOKIE, token, max_age=self.max_age, httponly=True, samesite="Strict",
                            path="/", secure=secure)
