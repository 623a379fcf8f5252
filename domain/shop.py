"""The shop's own settings, which the panel changes while the bot runs: open or closed, the
diamond stock, undoing approvals, the payment-number replies, and the chat texts.

Defaults come from the config file; what the panel sets overrides them and is kept in the
journal (`ShopRecord`), with who changed what. Pure: the Supervisor owns one `ShopSettings`,
validates a panel patch here, and tells the groups.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Iterable, Mapping

from domain.admins import AdminRoster, entry_identity
from domain.clock import to_iso

# Texts a shop may switch off: what the bot would otherwise say of its own accord.
OPTIONAL_TEXTS = frozenset({"received", "recovered", "cancelled", "auto_approved", "duplicate", "invalid",
                            "invalid_player", "payment_numbers"})
OFF_BY_DEFAULT = frozenset({"auto_approved"})
MAX_TEXT = 1000
MAX_UNDO_WINDOW = 3600.0
MAX_COOLDOWN = 86400.0


@dataclass(frozen=True, slots=True)
class ShopNow:
    """What changes from minute to minute: whether the shop is open, and the diamonds left
    (None: not counted) — read fresh for every message a group takes in."""

    open: bool = True
    stock_left: int | None = None


class ShopError(ValueError):
    """A patch the shop refuses; the message names the field."""


@dataclass(frozen=True)
class ShopSettings:
    """The shop as it runs now (config defaults with the panel's changes on top)."""

    open: bool = True
    stock: int | None = None  # diamonds left when last set; None: not counted
    stock_set_at: float | None = None  # approvals after this time take from the stock
    undo_window: float = 120.0
    delivery_waits_for_undo: bool = False
    payment_numbers: bool = False
    keywords: tuple[str, ...] = ()
    cooldown: float = 300.0
    # The panel's texts per language (name -> template), over the config file's.
    texts: dict[str, dict[str, str]] = field(default_factory=dict)
    texts_off: frozenset[str] = OFF_BY_DEFAULT

    def templates(self, language: str, defaults: Mapping[str, str]) -> dict[str, str]:
        """The templates of a language: the config's, with the panel's on top."""
        return {**defaults, **self.texts.get(language, {})}

    def keyword_in(self, text: str) -> bool:
        """Whether a message asks for the payment numbers (a keyword as a word of it)."""
        if not self.payment_numbers or not self.keywords or len(text) > 500:
            return False
        words = {w.strip(".,!?।:;()'\"").casefold() for w in text.split()}
        return any(k.casefold() in words for k in self.keywords)


def from_config(undo_window: float, delivery_waits_for_undo: bool, payment_numbers: bool,
                keywords: Iterable[str], cooldown: float) -> ShopSettings:
    """The shop before the panel changed anything."""
    return ShopSettings(undo_window=undo_window, delivery_waits_for_undo=delivery_waits_for_undo,
                        payment_numbers=payment_numbers, keywords=tuple(keywords), cooldown=cooldown)


def with_stored(defaults: ShopSettings, stored: Mapping[str, Any]) -> ShopSettings:
    """The defaults with what the panel set (read leniently: a value of the wrong shape is
    ignored — the shop falls back to the default, which the panel shows)."""
    s = defaults
    if isinstance(stored.get("open"), bool):
        s = replace(s, open=stored["open"])
    if "stock" in stored and (stored["stock"] is None or _count(stored["stock"])):
        s = replace(s, stock=stored["stock"], stock_set_at=_number(stored.get("stockSetAt")))
    if _number(stored.get("undoWindow")) is not None:
        s = replace(s, undo_window=float(stored["undoWindow"]))
    if isinstance(stored.get("deliveryWaitsForUndo"), bool):
        s = replace(s, delivery_waits_for_undo=stored["deliveryWaitsForUndo"])
    if isinstance(stored.get("paymentNumbers"), bool):
        s = replace(s, payment_numbers=stored["paymentNumbers"])
    if isinstance(stored.get("keywords"), list):
        s = replace(s, keywords=tuple(str(k) for k in stored["keywords"]))
    if _number(stored.get("cooldown")) is not None:
        s = replace(s, cooldown=float(stored["cooldown"]))
    if isinstance(stored.get("texts"), Mapping):
        s = replace(s, texts={str(lang): {str(k): str(v) for k, v in t.items()}
                              for lang, t in stored["texts"].items() if isinstance(t, Mapping)})
    if isinstance(stored.get("textsOff"), list):
        s = replace(s, texts_off=frozenset(str(n) for n in stored["textsOff"]))
    return s


def with_stock_left(s: ShopSettings, left: int | None) -> ShopSettings:
    """The settings with the stock as it is now (None when not counted)."""
    return s if s.stock is None else replace(s, stock=left)


def stored(s: ShopSettings) -> dict[str, Any]:
    """The settings as the journal keeps them (every key the panel may set)."""
    return {"open": s.open, "stock": s.stock, "stockSetAt": s.stock_set_at, "undoWindow": s.undo_window,
            "deliveryWaitsForUndo": s.delivery_waits_for_undo, "paymentNumbers": s.payment_numbers,
            "keywords": list(s.keywords), "cooldown": s.cooldown, "texts": s.texts,
            "textsOff": sorted(s.texts_off)}


@dataclass(frozen=True)
class TextRules:
    """What a text may contain: the known names and languages (from the config loader), and the
    placeholders each text is filled with (domain.texts.offered)."""

    names: tuple[str, ...]
    offers: Mapping[str, tuple[str, ...]]
    languages: tuple[str, ...]
    language: str  # the chat's: the one `notice` and `open_notice` write


def apply_patch(s: ShopSettings, patch: Mapping[str, Any], rules: TextRules, now: float) -> tuple[ShopSettings, str]:
    """The settings after a panel patch, and what it changed in words (a value set to what it
    was is not a change: a settings form sends every field of its section); ShopError naming the field."""
    if not isinstance(patch, Mapping) or not patch:
        raise ShopError("nothing to change")
    what: list[str] = []
    for key, value in patch.items():
        if key == "open":
            _bool(key, value)
            if value != s.open:
                s = replace(s, open=value)
                what.append("opened the shop" if value else "closed the shop")
        elif key in ("notice", "open_notice"):
            name = "shop_closed" if key == "notice" else "shop_opened"
            before = s.texts.get(rules.language, {}).get(name)
            s = _set_text(s, rules, rules.language, name, value, where=key)
            if s.texts.get(rules.language, {}).get(name) != before:
                what.append(f"{key}: {_short(value)}")
        elif key == "stock":
            if value is not None and not _count(value):
                raise ShopError("stock: a whole number of diamonds, 0 or more, or null (not counted)")
            s = replace(s, stock=value, stock_set_at=None if value is None else now)
            what.append(f"stock {value if value is not None else 'not counted'}")
        elif key == "admins":
            continue  # the admin roster is kept on its own (domain.admins); the caller applies it
        elif key == "payment":
            s, said = _payment(s, value)
            what.extend(said)
            if isinstance(value, Mapping) and "text" in value:
                before = s.texts.get(rules.language, {}).get("payment_numbers")
                s = _set_text(s, rules, rules.language, "payment_numbers", value["text"], where="payment.text")
                if s.texts.get(rules.language, {}).get("payment_numbers") != before:
                    what.append("payment numbers text")
        elif key == "approvals":
            s, said = _approvals(s, value)
            what.extend(said)
        elif key == "texts":
            if not isinstance(value, Mapping):
                raise ShopError('texts: {"bn": {"received": "…" | null}, …}')
            for lang, texts in value.items():
                if lang not in rules.languages or not isinstance(texts, Mapping):
                    raise ShopError(f"texts: {str(lang)[:10]!r} is not a language ({', '.join(rules.languages)})")
                for name, text in texts.items():
                    before = s.texts.get(lang, {}).get(name) if isinstance(name, str) else None
                    s = _set_text(s, rules, lang, name, text)
                    if s.texts.get(lang, {}).get(name) != before:
                        what.append(f"text {lang}.{name}" + (" reset" if text is None else ""))
        elif key == "texts_enabled":
            if not isinstance(value, Mapping):
                raise ShopError('texts_enabled: {"received": true, …}')
            off = set(s.texts_off)
            for name, on in value.items():
                if name not in OPTIONAL_TEXTS:
                    raise ShopError(f"texts_enabled: {str(name)[:30]!r} cannot be switched off "
                                    f"(optional: {', '.join(sorted(OPTIONAL_TEXTS))})")
                _bool(f"texts_enabled.{name}", on)
                if on == (name in off):
                    what.append(f"text {name} {'on' if on else 'off'}")
                (off.discard if on else off.add)(name)
            s = replace(s, texts_off=frozenset(off))
        else:
            raise ShopError(f"{str(key)[:40]}: not a shop setting")
    return s, "; ".join(what) or "no change"


def _set_text(s: ShopSettings, rules: TextRules, lang: str, name: Any, text: Any, where: str = "") -> ShopSettings:
    """The settings with one text of one language set (None: back to the default); `where`
    names the patch's key in a refusal (the texts' own place when not given)."""
    if name not in rules.names:
        raise ShopError(f"texts: {str(name)[:40]!r} is not a text the bot writes")
    texts = {k: dict(v) for k, v in s.texts.items()}
    if text is None:
        texts.get(lang, {}).pop(name, None)
    else:
        texts.setdefault(lang, {})[name] = check_template(where or f"texts.{lang}.{name}", text,
                                                          rules.offers.get(name, ()))
    return replace(s, texts={k: v for k, v in texts.items() if v})


def check_template(where: str, text: Any, placeholders: Iterable[str]) -> str:
    """A chat text as the shop wrote it: 1–1000 characters, only the {placeholders} this text
    is filled with, each plain (a format spec such as {amount:d} would fail when the bot writes)."""
    if not isinstance(text, str) or not text.strip():
        raise ShopError(f"{where}: write the text (an empty text would say nothing)")
    if len(text) > MAX_TEXT:
        raise ShopError(f"{where}: at most {MAX_TEXT} characters")
    if not text.replace("\n", " ").isprintable():
        raise ShopError(f"{where}: no control or invisible characters (line breaks are fine)")
    try:
        fields = [(f, spec, conversion) for _, f, spec, conversion in string.Formatter().parse(text) if f is not None]
    except ValueError as e:
        raise ShopError(f"{where}: {e}; write a literal brace as {{{{ or }}}}") from None
    offered = tuple(placeholders)
    for f, spec, conversion in fields:
        if f not in offered:
            use = ", ".join("{" + p + "}" for p in offered)
            raise ShopError(f"{where}: {{{f[:30]}}} is not a placeholder this text offers (use {use})")
        if spec or conversion:
            raise ShopError(f"{where}: write {{{f}}} plainly, without ! or :")
    return text


def _payment(s: ShopSettings, value: Any) -> tuple[ShopSettings, list[str]]:
    if not isinstance(value, Mapping):
        raise ShopError('payment: {"enabled", "keywords", "cooldown", "text"}')
    what = []
    for key, v in value.items():
        if key == "enabled":
            _bool("payment.enabled", v)
            if v != s.payment_numbers:
                what.append(f"payment numbers {'on' if v else 'off'}")
            s = replace(s, payment_numbers=v)
        elif key == "keywords":
            if (not isinstance(v, list) or not 1 <= len(v) <= 30
                    or not all(isinstance(k, str) and 0 < len(k.strip()) <= 30 and " " not in k.strip() for k in v)):
                raise ShopError("payment.keywords: 1 to 30 single words of at most 30 characters")
            keywords = tuple(dict.fromkeys(k.strip() for k in v))
            if keywords != s.keywords:
                what.append(f"payment keywords {', '.join(keywords)}")
            s = replace(s, keywords=keywords)
        elif key == "cooldown":
            if _number(v) is None or not 0 <= v <= MAX_COOLDOWN:
                raise ShopError(f"payment.cooldown: seconds, 0 to {MAX_COOLDOWN:.0f}")
            if float(v) != s.cooldown:
                what.append(f"payment cooldown {v:.0f} s")
            s = replace(s, cooldown=float(v))
        elif key == "text":
            continue  # the payment_numbers text: set with texts (the caller maps it)
        else:
            raise ShopError(f"payment.{str(key)[:30]}: not a setting")
    return s, what


def _approvals(s: ShopSettings, value: Any) -> tuple[ShopSettings, list[str]]:
    if not isinstance(value, Mapping):
        raise ShopError('approvals: {"undo_window", "delivery_waits_for_undo"}')
    what = []
    for key, v in value.items():
        if key == "undo_window":
            if _number(v) is None or not 0 <= v <= MAX_UNDO_WINDOW:
                raise ShopError(f"approvals.undo_window: seconds, 0 to {MAX_UNDO_WINDOW:.0f}")
            if float(v) != s.undo_window:
                what.append(f"undo window {v:.0f} s")
            s = replace(s, undo_window=float(v))
        elif key == "delivery_waits_for_undo":
            _bool("approvals.delivery_waits_for_undo", v)
            if v != s.delivery_waits_for_undo:
                what.append("delivery waits for the undo window" if v else "delivery goes at once")
            s = replace(s, delivery_waits_for_undo=v)
        else:
            raise ShopError(f"approvals.{str(key)[:30]}: not a setting")
    return s, what


def _bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ShopError(f"{key}: true or false")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**9


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and value >= 0
    return float(value) if ok else None


def _short(text: Any) -> str:
    return (str(text)[:40] + "…") if len(str(text)) > 40 else str(text)


# ---------------------------------------------------------------------------------------------
# What the Supervisor does with the settings: keys of its messages, admins, reminders, the view.

SYSTEM_STOCK = "system:stock"  # who closed the shop when the stock ran out


@dataclass(frozen=True, slots=True)
class ShopNoticeKey:
    """A shop notice's send key: opening or closing, to which chat, when."""

    opened: bool
    chat: str
    at: float


@dataclass(frozen=True, slots=True)
class ReminderKey:
    """A dues reminder's send key."""

    group_id: str
    at: float


def patch_shop(s: ShopSettings, roster: AdminRoster, patch: Mapping[str, Any], rules: TextRules, now: float,
               by: str) -> tuple[ShopSettings, AdminRoster, str]:
    """A panel patch applied to the settings and to the admin roster (all or nothing: ShopError
    naming the field), with what changed in words."""
    settings, what = apply_patch(s, patch, rules, now)
    if "admins" in patch:
        before = roster.current()
        roster = roster.with_admins(check_admins(patch["admins"]), now, by)
        after = roster.current()
        said = [f"added admin {a}" for a in after if a not in before] + \
               [f"removed admin {a}" for a in before if a not in after]
        what = "; ".join(x for x in (what if what != "no change" else "", *said) if x) or "no change"
    return settings, roster, what


def check_admins(value: Any) -> list[str]:
    """The admins a panel patch names: phone numbers ("+880 1711-111111") or "<digits>@lid"."""
    if not isinstance(value, list) or len(value) > 50:
        raise ShopError("admins: a list of at most 50 phone numbers or …@lid ids")
    out = []
    for item in value:
        if not isinstance(item, str) or entry_identity(item) is None:
            raise ShopError(f"admins: {str(item)[:40]!r} is no phone number (with country code) or …@lid id")
        identity = entry_identity(item)
        assert identity is not None
        kind, digits = identity
        if kind == "phone" and not 8 <= len(digits) <= 15:
            raise ShopError(f"admins: {str(item)[:40]!r}: a phone number has 8 to 15 digits with the country code")
        out.append(digits if kind == "phone" and "@" not in item else item.strip())
    return out


@dataclass(frozen=True)
class ReminderTargets:
    send: list[dict[str, Any]]  # the groups (as ListGroups returns them) to remind
    skipped: dict[str, str]  # group id -> why not


def reminder_targets(groups: Iterable[Mapping[str, Any]], group_ids: Iterable[str], min_due: Decimal) -> ReminderTargets:
    """Which groups a dues reminder goes to: the ones named (or all) whose due is over min_due,
    that take orders and that the bot is still in."""
    wanted = set(group_ids)
    send, skipped = [], {}
    known = set()
    for g in groups:
        gid = str(g["group_id"])
        known.add(gid)
        if wanted and gid not in wanted:
            continue
        due = Decimal(str(g.get("due", "0")))
        settings = g.get("settings") or {}
        if settings.get("leftAt"):
            skipped[gid] = "the bot is no longer in the group"
        elif due <= min_due:
            skipped[gid] = f"due ৳{due} is not over ৳{min_due}"
        else:
            send.append(dict(g))
    for gid in wanted - known:
        skipped[gid] = "no such group"
    return ReminderTargets(send, skipped)


def shop_view(s: ShopSettings, stock_left: int | None, defaults: Mapping[str, Mapping[str, str]], roster: AdminRoster,
              audit: Iterable[Mapping[str, Any]], rules: TextRules) -> dict[str, Any]:
    """The shop as the panel shows it (GET /api/shop)."""
    texts = {}
    for lang, base in defaults.items():
        own = s.texts.get(lang, {})
        texts[lang] = {name: {"text": own.get(name, text), "default": text, "enabled": name not in s.texts_off,
                              "optional": name in OPTIONAL_TEXTS, "placeholders": list(rules.offers.get(name, ()))}
                       for name, text in base.items()}
    chat_texts = texts.get(rules.language) or next(iter(texts.values()), {})
    return {
        "open": s.open,
        "notice": chat_texts.get("shop_closed", {}).get("text", ""),
        "open_notice": chat_texts.get("shop_opened", {}).get("text", ""),
        "stock": stock_left if s.stock is not None else None,
        "admins": [{"who": t.who, "since": to_iso(t.since), "by": t.by} for t in roster.tenures if t.until is None],
        "payment": {"enabled": s.payment_numbers, "text": chat_texts.get("payment_numbers", {}).get("text", ""),
                    "keywords": list(s.keywords), "cooldown": int(s.cooldown)},
        "approvals": {"undo_window": int(s.undo_window), "delivery_waits_for_undo": s.delivery_waits_for_undo},
        "texts": texts,
        "audit": [{"at": to_iso(float(a.get("at") or 0)), "by": str(a.get("by", "")), "what": str(a.get("what", ""))}
                  for a in reversed(list(audit))][:100],
    }
