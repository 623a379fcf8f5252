"""The panel's words and how it writes numbers, sizes, durations, money and times for people.

The words are gettext messages: English is the source, written where it is used — `_("Orders")`
in the templates (jinja2's i18n extension) and `t._("Orders")` in the code — and Bengali is the
catalog `web/locale/bn/LC_MESSAGES/messages.po`, which a translator edits with ordinary tools
(README: "Translating the panel"). The catalog is compiled in memory when the panel starts.
`bot.language` chooses the language of the whole panel, once: `Words` for the code and the
same translations installed in the templates. Placeholders are `%(name)s`; a message without
any is still %-formatted, so a literal percent sign is written `%%`. Where one English word
needs two translations, a context tells them apart (`pgettext("status", "Processing")`).
Digits stay Western in both languages, as in the bot's own chat messages (`💎 10 ডায়মন্ড`).
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from domain import money

LANGUAGES = ("bn", "en")
SOURCE_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of `language` (English, the source language, needs none)."""
    if language == SOURCE_LANGUAGE or language not in LANGUAGES:
        return NullTranslations()
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: they show in English until checked
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


class Words:
    """The panel's words in one language, for the code (the templates get the same translations)."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else SOURCE_LANGUAGE
        self.translations = translations(self.language)

    def _(self, message: str, **values: Any) -> str:
        """The translation of `message`, its %(name)s placeholders filled."""
        return self.translations.gettext(message) % values

    def gettext(self, message: str) -> str:
        """The translation of `message` as it is, placeholders unfilled (for the pages' scripts)."""
        return self.translations.gettext(message)

    def pgettext(self, context: str, message: str, **values: Any) -> str:
        """Like `_`, for a message that needs a context to be translated."""
        return self.translations.pgettext(context, message) % values

    @functools.cached_property
    def labels(self) -> dict[str, dict[str, str]]:
        return _labels(self)

    def label(self, kind: str, value: str) -> str:
        """`status`, `action`, `issue`, `gateway`, `method`, `role`, `bucket` labels; the raw value if unknown."""
        return self.labels.get(kind, {}).get(value, value)


@functools.cache
def words(language: str) -> Words:
    return Words(language)


def _labels(t: Words) -> dict[str, dict[str, str]]:
    """The name of each value the panel shows by kind (an order's status, a gateway state …)."""
    return {
        "status": {
            "pending": t.pgettext("status", "Pending"),
            "processing": t.pgettext("status", "Processing"),
            "approved": t.pgettext("status", "Approved"),
            "completed": t.pgettext("status", "Completed"),
            "cancelled": t.pgettext("status", "Cancelled"),
            "deleted": t.pgettext("status", "Deleted"),
        },
        "action": {
            "process": t.pgettext("action", "Process"),
            "approve": t.pgettext("action", "Approve"),
            "cancel": t.pgettext("action", "Cancel"),
            "delete": t.pgettext("action", "Delete"),
            "undo": t.pgettext("action", "Undo"),
        },
        "issue": {
            "invalid": t.pgettext("issue", "Invalid record"),
            "stuck_pending": t.pgettext("issue", "Pending too long"),
            "processing_timeout": t.pgettext("issue", "Processing too long"),
            "delivery_failed": t.pgettext("issue", "Delivery failed"),
        },
        "gateway": {
            "stopped": t.pgettext("gateway", "Stopped"),
            "connecting": t.pgettext("gateway", "Connecting"),
            "connected": t.pgettext("gateway", "Connected"),
            "reconnecting": t.pgettext("gateway", "Reconnecting"),
            "pairing": t.pgettext("gateway", "Waiting for pairing"),
            "logged_out": t.pgettext("gateway", "Logged out"),
            "banned": t.pgettext("gateway", "Temporarily banned"),
        },
        "method": {
            "bkash": t.pgettext("method", "bKash"),
            "nagad": t.pgettext("method", "Nagad"),
            "rocket": t.pgettext("method", "Rocket"),
            "bank": t.pgettext("method", "Bank"),
            "cash": t.pgettext("method", "Cash"),
            "other": t.pgettext("method", "Other"),
        },
        "role": {
            "owner": t.pgettext("role", "Owner"),
            "staff": t.pgettext("role", "Staff"),
        },
        "bucket": {
            "never": t.pgettext("bucket", "Never checked"),
            "lt5": t.pgettext("bucket", "Fewer than 5"),
            "lt10": t.pgettext("bucket", "Fewer than 10"),
            "gte10": t.pgettext("bucket", "10 or more"),
        },
    }


def script_words(t: Words) -> dict[str, str]:
    """The words the pages' scripts need, by the names they use (web/static/*.js), their
    %(name)s placeholders left for the script to fill."""
    return {
        **{f"{kind}.{value}": name for kind in ("status", "issue", "gateway") for value, name in t.labels[kind].items()},
        "confirm.cancel": t.gettext("Cancel order %(id)s? The reseller is told in the group."),
        "confirm.delete": t.gettext("Delete order %(id)s? It is no longer billed or checked; it stays in the audit trail and under the Deleted filter."),
        "orders.live": t.gettext("Live"),
        "orders.connecting": t.gettext("Connecting…"),
        "orders.reconnecting": t.gettext("Reconnecting…"),
        "orders.count": t.gettext("%(total)s orders"),
        "orders.range": t.gettext("%(first)s–%(last)s of %(total)s"),
        "error.network": t.gettext("No connection to the panel. Check the network and try again."),
        "error.refused": t.gettext("Not done: %(reason)s"),
        "action.done.process": t.gettext("Order %(id)s is now processing."),
        "action.done.approve": t.gettext("Order %(id)s approved; the delivery message is on its way."),
        "action.done.cancel": t.gettext("Order %(id)s cancelled; the reseller is told."),
        "action.done.delete": t.gettext("Order %(id)s deleted."),
        "action.done.undo": t.gettext("Order %(id)s: approval undone."),
        "groups.saving": t.gettext("Saving…"),
        "groups.saved": t.gettext("Saved"),
        "groups.invalid": t.gettext("Not saved: %(reason)s"),
        "wa.pair.expires": t.gettext("Code valid until"),
        "wa.pair.waiting": t.gettext("Waiting for the next code…"),
        "wa.unreachable": t.gettext("Cannot reach the WhatsApp status right now."),
        "wa.repair.confirm": t.gettext("Log this WhatsApp session out and pair again? The bot stops answering until the new pairing is done."),
        "wa.repair.started": t.gettext("Pairing started again."),
        "pay.due_now": t.gettext("Due now: %(amount)s"),
        "pay.saving": t.gettext("Saving…"),
    }


def script_word(t: Words, name: str, **values: Any) -> str:
    """One of the scripts' words, filled in on the server (the same message either way)."""
    return script_words(t)[name] % values


def js_labels(t: Words, *prefixes: str) -> dict[str, str]:
    """The words a page's script needs (passed in a data-labels attribute, JSON)."""
    return {k: v for k, v in script_words(t).items() if k.startswith(prefixes)}


GATEWAY_TONE = {
    "connected": "ok",
    "connecting": "warn",
    "reconnecting": "warn",
    "pairing": "warn",
    "stopped": "bad",
    "logged_out": "bad",
    "banned": "bad",
}


# --- audit notes ------------------------------------------------------------------------------


def N_(message: str) -> str:
    """Mark a message for the catalog where it is translated later (`pybabel extract` finds it)."""
    return message


# The notes the system writes into an order's audit trail (in English, in the stored record),
# shown in the panel's language. The stored note is never changed; an unknown note shows as is.
_EXACT_NOTES = frozenset({
    N_("recovered after downtime"),
    N_("held: the due limit was reached"),
    N_("the due is within the limit again"),
    N_("delivery message sent"),
    N_("delivery was confirmed earlier"),
    N_("the order message was deleted in WhatsApp"),
})
_PATTERN_NOTES = (
    (re.compile(r"edited in WhatsApp: \.(?P<before>\d+) → \.(?P<after>\d+)"),
     N_("edited in WhatsApp: .%(before)s → .%(after)s")),
    (re.compile(r"issue raised: (?P<issue>[a-z_]+)(?P<detail> \(.*\))?", re.S), N_("issue raised: %(issue)s")),
    (re.compile(r"issue cleared: (?P<issue>[a-z_]+)"), N_("issue cleared: %(issue)s")),
    (re.compile(r"imported from the seed's database\.json \(id (?P<id>.*)\)", re.S),
     N_("imported from the seed's database.json (id %(id)s)")),
    (re.compile(r"import: (?P<details>.*)", re.S), N_("import: %(details)s")),
)


def _note_part(part: str, t: Words) -> str:
    if part in _EXACT_NOTES:
        return t._(part.replace("%", "%%"))
    for pattern, message in _PATTERN_NOTES:
        match = pattern.fullmatch(part)
        if match is not None:
            values = {k: v or "" for k, v in match.groupdict().items()}
            if "issue" in values:
                values["issue"] = t.label("issue", values["issue"])
            detail = values.pop("detail", "")
            return t._(message, **values) + detail
    return part


def audit_note(note: str | None, t: Words) -> str:
    """A stored audit note in the panel's language ("; " joins several)."""
    if not note:
        return ""
    return "; ".join(_note_part(part, t) for part in note.split("; "))


# --- how things are written -------------------------------------------------------------------


def number(value: int | float | None) -> str:
    """1234567 → "1,234,567"; None → "—"."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def taka(amount: str | Decimal | None) -> str:
    """"1000.00" → "৳1000", "23.50" → "৳23.50", "10000000" → "৳1,00,00,000": as the bot writes
    money in the chat (domain.money.taka)."""
    if amount is None or amount == "":
        return "—"
    try:
        d = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    return "৳" + money.taka(d) if d.is_finite() else str(amount)


def _amount(value: str | Decimal | None) -> Decimal | None:
    try:
        d = Decimal(str(value)) if value is not None and value != "" else None
    except InvalidOperation:
        return None
    return d if d is not None and d.is_finite() else None


def due_tone(amount: str | Decimal | None) -> str:
    """How a due reads at a glance: "owes" (more than 0), "credit" (an advance), "zero"."""
    d = _amount(amount)
    if d is None or d == 0:
        return "zero"
    return "owes" if d > 0 else "credit"


def due_text(amount: str | Decimal | None, t: Words) -> str:
    """A due for people: "৳1000", or "৳500 advance" when the group paid more than it was billed."""
    d = _amount(amount)
    if d is None:
        return "—"
    return t._("%(amount)s advance", amount=taka(-d)) if d < 0 else taka(d)


def size(n: int | None) -> str:
    """Bytes for people: "812 B", "48.2 KB", "3.1 MB"."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def duration(seconds: float | None, t: Words) -> str:
    """The two largest units: "3 d 4 h", "12 min 5 s"."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    parts = [(s // 86400, t._("d")), (s % 86400 // 3600, t._("h")), (s % 3600 // 60, t._("min")),
             (s % 60, t._("s"))]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n} {unit}" for n, unit in parts[:2])


def _moment(value: str | None, tz: tzinfo) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(tz) if moment.tzinfo is not None else moment


def when(value: str | None, tz: tzinfo) -> str:
    """An API time (ISO 8601 with offset) as "2025-11-24 21:00" in the shop's time zone."""
    moment = _moment(value, tz)
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def when_exact(value: str | None, tz: tzinfo, now: datetime | None = None) -> str:
    """With seconds; the date only when it is not today: "21:59:55" or "2025-11-23 21:59:55"."""
    moment = _moment(value, tz)
    if moment is None:
        return "—"
    today = (now or datetime.now(tz)).astimezone(tz).date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M:%S")
