"""When the daily report is due, and who receives it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Iterable, Mapping

from domain.texts import Texts


@dataclass(frozen=True, slots=True)
class ReportKey:
    """What a daily report message is (its send key): the day and the chat it goes to."""

    day: str
    chat: str


def seconds_until(daily_at: str, now: float, tz: tzinfo) -> float:
    """Seconds from `now` to the next "HH:MM" in `tz` (tomorrow's if today's has passed)."""
    hour, minute = (int(part) for part in daily_at.split(":"))
    local = datetime.fromtimestamp(now, tz)
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due <= local:
        due = (due + timedelta(days=1)).replace(hour=hour, minute=minute)
    return due.timestamp() - now


def report_day(now: float, tz: tzinfo) -> str:
    """The local day a report sent at `now` sums up (YYYY-MM-DD)."""
    return datetime.fromtimestamp(now, tz).date().isoformat()


def admin_chats(admins: Iterable[str]) -> list[str]:
    """The chat id to message each admin in: phone digits become a phone JID, JIDs stay."""
    return [a if "@" in a else f"{a}@s.whatsapp.net" for a in admins]


def daily_report_text(texts: Texts, report: Mapping[str, Any]) -> str:
    """The daily report (as the PersistenceActor computes it) as one chat message: a part per
    group; "" when no group had anything."""
    day = report["day"]
    return "\n\n".join(
        texts.daily_report(day, g["name"] or g["group_id"], g["orders"], g["diamonds"], Decimal(g["revenue"]),
                           Decimal(g["payments"]), Decimal(g["due"]))
        for g in report["groups"])
