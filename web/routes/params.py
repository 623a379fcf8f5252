"""Reading query and form parameters, the same way for the JSON API and the pages: text fields,
whole numbers, dates and date ranges. Each raises ApiError 400 naming the parameter; a page
catches it, says what it ignored and goes on without it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Callable, Iterable, TypeVar

from aiohttp import web
from multidict import MultiMapping

from web.security import ApiError

T = TypeVar("T")

MAX_OFFSET = 10_000_000
# Far-off years are typos, and would overflow time conversions further in (a day of 9999-12-31
# once reached the actors and overflowed there).
EARLIEST_DAY = date(1970, 1, 2)
LATEST_DAY = date(2199, 12, 31)
_EARLIEST = 0.0
_LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc).timestamp()


def text(query: MultiMapping[str], name: str, max_len: int = 200) -> str:
    """A text parameter given at most once, trimmed, at most `max_len` characters ("" if absent)."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, f"{name}: give it once")
    value = values[0].strip() if values and isinstance(values[0], str) else ""
    if len(value) > max_len:
        raise ApiError(400, f"{name}: at most {max_len} characters")
    return value


def whole_number(value: str, name: str, default: int, low: int, high: int) -> int:
    """A whole number written in ASCII digits within [low, high]; `default` when empty."""
    if not value:
        return default
    # isdigit alone accepts "²"; int() alone accepts "+5", " 5" and "5_0".
    if not (value.isascii() and value.isdigit()):
        raise ApiError(400, f"{name}: must be a whole number, not {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise ApiError(400, f"{name}: must be between {low} and {high}")
    return number


def count(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    """A whole-number parameter (limit, offset, skip)."""
    return whole_number(text(query, name, 20), name, default, low, high)


def check_params(request: web.Request, allowed: Iterable[str]) -> None:
    """ApiError 400 for a parameter the endpoint does not know (a typo would silently filter nothing)."""
    allowed = tuple(allowed)
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown parameter {', '.join(unknown)}; use {', '.join(allowed)}")


def parse_bound(name: str, value: str, tz: tzinfo, *, end: bool) -> float | None:
    """since/until as epoch seconds. A date is a whole day in the shop's time zone: `since` its
    first midnight, `until` the next (so since=until=a day gives that day). A datetime without
    offset is read in the shop's time zone."""
    if not value:
        return None
    try:
        if len(value) <= 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(0), tz)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
        ts = moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise ApiError(400, f"{name}: not an ISO 8601 date or time: {value!r} "
                            "(e.g. 2025-11-24 or 2025-11-24T18:30+06:00)") from None
    if not _EARLIEST <= ts <= _LATEST:
        raise ApiError(400, f"{name}: {value!r} is outside 1970–2199")
    return ts


def date_range(query: MultiMapping[str], tz: tzinfo) -> tuple[float | None, float | None]:
    """since/until as the orders list reads them (a date is a whole day in the shop's time zone)."""
    since = parse_bound("since", text(query, "since", 40), tz, end=False)
    until = parse_bound("until", text(query, "until", 40), tz, end=True)
    if since is not None and until is not None and since >= until:
        raise ApiError(400, "since: must be before until")
    return since, until


def check_day(value: str) -> str:
    """A report's day: "" (today) or YYYY-MM-DD within the years the ledger's dates accept."""
    if not value:
        return ""
    try:
        if len(value) != 10:
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"day: write the date as YYYY-MM-DD (e.g. 2025-11-24), not {value!r}") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ApiError(400, f"day: {value!r} is outside {EARLIEST_DAY.year}–{LATEST_DAY.year}")
    return day.isoformat()


def or_else(errors: list[str], read: Callable[[], T], fallback: T) -> T:
    """For pages, which never answer 400 to a filter: what `read` gives, or `fallback` with the
    reason added to `errors` (the page shows what it ignored)."""
    try:
        return read()
    except ApiError as e:
        errors.append(e.message)
        return fallback
