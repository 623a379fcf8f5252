"""When the daily report is due and who gets it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from domain.reports import admin_chats, report_day, seconds_until

DHAKA = ZoneInfo("Asia/Dhaka")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(("now", "daily_at", "expected"), [
    ("2026-11-25T23:00:00+06:00", "23:30", 1800),  # later today
    ("2026-11-25T23:30:00+06:00", "23:30", 86400),  # exactly now: tomorrow's
    ("2026-11-25T23:45:00+06:00", "23:30", 86400 - 900),  # passed: tomorrow
    ("2026-11-25T17:40:00+00:00", "00:05", 1500),  # 23:40 in Dhaka, due 00:05 Dhaka
])
def test_seconds_until_the_next_report_in_local_time(now: str, daily_at: str, expected: float) -> None:
    assert seconds_until(daily_at, at(now), DHAKA) == pytest.approx(expected)


def test_the_reports_day_is_the_local_day() -> None:
    assert report_day(at("2026-11-25T20:00:00+00:00"), DHAKA) == "2026-11-26"  # 02:00 in Dhaka


def test_admins_are_written_to_at_their_chat_ids() -> None:
    assert admin_chats(["8801711111111", "99999999999999@lid", "8801722222222@s.whatsapp.net"]) == [
        "8801711111111@s.whatsapp.net", "99999999999999@lid", "8801722222222@s.whatsapp.net"]
