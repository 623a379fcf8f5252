"""Who the shop's admins are, and who they were: authority is judged when a message was sent.

A message replayed after a restart, re-read from history or delivered late must never gain
rights its sender did not have when it was written. So the roster keeps every admin's time
span (`since`, `until`), and `is_admin` asks about a moment, not about today's list.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

_PHONE_SERVERS = ("s.whatsapp.net", "c.us")


def identity(jid: str) -> tuple[str, str] | None:
    """("lid" | "phone", digits) of a sender JID; a device suffix ("…:12@…") is dropped."""
    user, at, server = jid.strip().partition("@")
    user = user.partition(":")[0]
    if not at or not user.isdigit() or not user.isascii():
        return None
    server = server.lower()
    if server == "lid":
        return "lid", user
    if server in _PHONE_SERVERS:
        return "phone", user
    return None


def entry_identity(entry: str) -> tuple[str, str] | None:
    """An admins entry as ("lid" | "phone", digits): bare digits (a leading + or spaces allowed) are a phone."""
    if "@" in entry:
        return identity(entry)
    digits = re.sub(r"[\s+\-()]", "", entry)
    return ("phone", digits) if digits.isdigit() and digits.isascii() else None


def same_admin(a: str, b: str) -> bool:
    """Whether two admins entries name the same person ("+880 1711…" and "8801711…")."""
    ia, ib = entry_identity(a), entry_identity(b)
    return ia is not None and ia == ib


@dataclass(frozen=True, slots=True)
class Tenure:
    """One admin's time as an admin: from `since` until `until` (None: still one)."""

    who: str  # as written where it was set: phone digits, "<digits>@lid", …
    since: float
    until: float | None = None
    by: str = ""  # "config", "admin:<name>"

    def covers(self, at: float) -> bool:
        return self.since <= at and (self.until is None or at < self.until)


@dataclass(frozen=True, slots=True)
class AdminRoster:
    """Every admin the shop had, with when; LIDs match LID entries only, phones phone entries."""

    tenures: tuple[Tenure, ...] = ()

    def is_admin(self, sender: str, sender_alt: str, at: float) -> bool:
        """Whether the sender (or its other form) was an admin at `at` (the message's own time)."""
        senders = {i for i in map(identity, (sender, sender_alt)) if i is not None}
        if not senders:
            return False
        return any(t.covers(at) and entry_identity(t.who) in senders for t in self.tenures)

    def current(self) -> list[str]:
        """The admins now, as written."""
        return [t.who for t in self.tenures if t.until is None]

    def with_admins(self, wanted: Iterable[str], now: float, by: str) -> AdminRoster:
        """The roster after making `wanted` the admins from `now` on: new ones start, missing ones end."""
        wanted = list(dict.fromkeys(w for w in wanted if entry_identity(w) is not None))
        tenures = []
        for t in self.tenures:
            if t.until is None and not any(same_admin(t.who, w) for w in wanted):
                t = replace(t, until=now)
            tenures.append(t)
        for w in wanted:
            if not any(t.until is None and same_admin(t.who, w) for t in tenures):
                tenures.append(Tenure(w, now, None, by))
        return AdminRoster(tuple(tenures))

    # -- stored form: {"admins": [{"who", "since", "until", "by"}]} ----------------------------

    def to_record(self) -> list[dict[str, Any]]:
        return [{"who": t.who, "since": t.since, "until": t.until, "by": t.by} for t in self.tenures]

    @classmethod
    def from_record(cls, records: object) -> AdminRoster:
        """Read a stored roster; ValueError naming what is wrong (a roster is never guessed)."""
        if not isinstance(records, list):
            raise ValueError("admins: not a list")
        tenures = []
        for i, r in enumerate(records):
            if not isinstance(r, Mapping) or not isinstance(r.get("who"), str):
                raise ValueError(f"admins[{i}]: not an admin entry")
            since, until = r.get("since"), r.get("until")
            if not _time(since) or not (until is None or _time(until)):
                raise ValueError(f"admins[{i}]: since/until must be times in seconds")
            tenures.append(Tenure(r["who"], float(since), None if until is None else float(until),  # type: ignore[arg-type]
                                  str(r.get("by") or "")))
        return cls(tuple(tenures))


def _time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
