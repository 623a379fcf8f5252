"""The shop as the actors keep it, for the panel's tests: the ShopView of issue 13's contract
(/work/helpers/CONTRACT-13.md), its patch rules (all or nothing, 400 "<key>: why"), the audit, and
the chat texts with their defaults from the configuration.

This is the panel's model of the contract until the actors' side lands; it decides nothing the
panel relies on beyond what the contract says.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from config import Config
from config.loader import TEMPLATE_NAMES
from domain.clock import to_iso

# The texts issue 13 adds, with defaults in both languages (the lead's actors own the real ones).
NEW_TEXTS = {
    "bn": {
        "closed": "🔒 দোকান এখন বন্ধ — অর্ডার নেওয়া হচ্ছে না।",
        "out_of_stock": "⚠️ এত ডায়মন্ড এখন নেই (বাকি {stock})। অর্ডার নেওয়া হয়নি।",
        "undone": "↩️ অর্ডার {order_id} এর অনুমোদন ভুল ছিল — আবার অপেক্ষমাণ।",
        "payment_numbers": "💳 বিকাশ: 01711111111 (পার্সোনাল)\nনগদ: 01811111111",
        "due_reminder": "💳 মনে করিয়ে দিচ্ছি: বকেয়া ৳{due}",
    },
    "en": {
        "closed": "🔒 The shop is closed now — no orders are taken.",
        "out_of_stock": "⚠️ Not that many diamonds left ({stock} left). No order was taken.",
        "undone": "↩️ The approval of order {order_id} was a mistake — it is pending again.",
        "payment_numbers": "💳 bKash: 01711111111 (personal)\nNagad: 01811111111",
        "due_reminder": "💳 A reminder: ৳{due} is due",
    },
}
TEXT_NAMES = (*TEMPLATE_NAMES, *NEW_TEXTS["en"])
OPTIONAL = ("received", "recovered", "cancelled", "auto_approved", "duplicate", "invalid", "invalid_player",
            "payment_numbers")
# Placeholders a text offers besides those its default uses.
EXTRA_PLACEHOLDERS = {"out_of_stock": ("diamonds",), "due_reminder": ("group",)}
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
_PHONE = re.compile(r"\+?[0-9][0-9 \-]{6,18}[0-9]")
_LID = re.compile(r"[0-9]{5,20}@lid")


class ShopRefused(ValueError):
    """A patch the shop refuses: 400 with "<key>: why"; nothing changed."""


def placeholders_of(text: str) -> list[str]:
    return list(dict.fromkeys(_PLACEHOLDER.findall(text)))


@dataclass
class FakeShop:
    """The shop's state and settings, changed by patches as the contract says."""

    config: Config
    open: bool = True
    notice: str = "আজ ডায়মন্ড বন্ধ, কাল সকাল ১০টায় খুলবে"
    open_notice: str = "✅ দোকান খোলা — অর্ডার দিন"
    stock: int | None = None
    admins: list[dict[str, Any]] = field(default_factory=list)
    payment: dict[str, Any] = field(default_factory=lambda: {
        "enabled": True, "text": "💳 বিকাশ: 01711111111\nনগদ: 01811111111",
        "keywords": ["bkash", "বিকাশ", "nagad", "নগদ", "rocket", "number", "নাম্বার"], "cooldown": 300})
    approvals: dict[str, Any] = field(default_factory=lambda: {"undo_window": 120, "delivery_waits_for_undo": False})
    texts: dict[str, dict[str, str]] = field(default_factory=lambda: {"bn": {}, "en": {}})  # changed texts only
    disabled: set[str] = field(default_factory=set)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def defaults(self, lang: str) -> dict[str, str]:
        return {**self.config.messages[lang], **NEW_TEXTS[lang]}

    def view(self) -> dict[str, Any]:
        """The ShopView."""
        texts: dict[str, dict[str, Any]] = {}
        for lang in ("bn", "en"):
            defaults = self.defaults(lang)
            texts[lang] = {name: {"text": self.texts[lang].get(name, defaults[name]), "default": defaults[name],
                                  "enabled": name not in self.disabled, "optional": name in OPTIONAL,
                                  "placeholders": self.offered(name)}
                           for name in TEXT_NAMES if name in defaults}
        return copy.deepcopy({
            "open": self.open, "notice": self.notice, "open_notice": self.open_notice, "stock": self.stock,
            "admins": self.admins, "payment": self.payment, "approvals": self.approvals, "texts": texts,
            "audit": self.audit[:100],
        })

    def offered(self, name: str) -> list[str]:
        found = placeholders_of(self.defaults("en").get(name, "")) + placeholders_of(self.defaults("bn").get(name, ""))
        return list(dict.fromkeys([*found, *EXTRA_PLACEHOLDERS.get(name, ())]))

    # -- patches -------------------------------------------------------------------------------

    def update(self, patch: Any, by: str, now: float) -> list[str]:
        """Apply a patch, all or nothing; the audit lines it wrote. ShopRefused when refused."""
        if not isinstance(patch, dict) or not patch:
            raise ShopRefused("patch: send an object with the settings to change")
        trial = copy.deepcopy(self)
        what: list[str] = []
        for key, value in patch.items():
            apply = getattr(trial, f"_set_{key}", None)
            if apply is None:
                raise ShopRefused(f"{key}: unknown setting")
            what.extend(apply(value, by, now))
        for name in ("open", "notice", "open_notice", "stock", "admins", "payment", "approvals", "texts", "disabled"):
            setattr(self, name, getattr(trial, name))
        for line in what:
            self.audit.insert(0, {"at": to_iso(now), "by": by, "what": line})
        del self.audit[100:]
        return what

    def _set_open(self, value: Any, by: str, now: float) -> list[str]:
        if not isinstance(value, bool):
            raise ShopRefused("open: true or false")
        changed = value != self.open
        self.open = value
        return [("opened the shop" if value else "closed the shop")] if changed else []

    def _notice(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise ShopRefused(f"{key}: 1 to 500 characters")
        if any(not c.isprintable() and c not in "\n\r" for c in value):
            raise ShopRefused(f"{key}: printable characters and line breaks only")
        return value.strip()

    def _set_notice(self, value: Any, by: str, now: float) -> list[str]:
        self.notice = self._notice("notice", value)
        return ["changed the closing notice"]

    def _set_open_notice(self, value: Any, by: str, now: float) -> list[str]:
        self.open_notice = self._notice("open_notice", value)
        return ["changed the opening notice"]

    def _set_stock(self, value: Any, by: str, now: float) -> list[str]:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ShopRefused("stock: a whole number of diamonds, 0 or more, or null (not counted)")
        self.stock = value
        return [f"stock: {value if value is not None else 'not counted'}"]

    def _set_admins(self, value: Any, by: str, now: float) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ShopRefused("admins: a list of phone numbers")
        wanted = []
        for entry in value:
            entry = entry.strip()
            if _LID.fullmatch(entry):
                wanted.append(entry)
            elif _PHONE.fullmatch(entry):
                digits = re.sub(r"\D", "", entry)
                if not 8 <= len(digits) <= 15:
                    raise ShopRefused(f"admins: {entry} is not a phone number with its country code")
                wanted.append(digits)
            else:
                raise ShopRefused(f"admins: {entry[:40]} is not a phone number with its country code (+880…)")
        kept = [a for a in self.admins if a["who"] in wanted]
        added = [w for w in dict.fromkeys(wanted) if w not in {a["who"] for a in kept}]
        removed = [a["who"] for a in self.admins if a["who"] not in wanted]
        self.admins = kept + [{"who": w, "since": to_iso(now), "by": by} for w in added]
        return [f"added admin {w}" for w in added] + [f"removed admin {w}" for w in removed]

    def _set_payment(self, value: Any, by: str, now: float) -> list[str]:
        if not isinstance(value, dict):
            raise ShopRefused("payment: an object")
        payment = dict(self.payment)
        for key, v in value.items():
            if key == "enabled":
                if not isinstance(v, bool):
                    raise ShopRefused("payment.enabled: true or false")
            elif key == "text":
                if not isinstance(v, str) or not v.strip() or len(v) > 1000:
                    raise ShopRefused("payment.text: 1 to 1000 characters")
            elif key == "keywords":
                if (not isinstance(v, list) or not 1 <= len(v) <= 30
                        or not all(isinstance(k, str) and k.strip() and len(k) <= 30 for k in v)):
                    raise ShopRefused("payment.keywords: 1 to 30 words of at most 30 characters")
                v = [k.strip() for k in v]
            elif key == "cooldown":
                if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 86400:
                    raise ShopRefused("payment.cooldown: seconds, 0 to 86400")
            else:
                raise ShopRefused(f"payment.{key}: unknown setting")
            payment[key] = v
        self.payment = payment
        return [f"payment.{k}" for k in value]

    def _set_approvals(self, value: Any, by: str, now: float) -> list[str]:
        if not isinstance(value, dict):
            raise ShopRefused("approvals: an object")
        approvals = dict(self.approvals)
        for key, v in value.items():
            if key == "undo_window":
                if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 3600:
                    raise ShopRefused("approvals.undo_window: seconds, 0 to 3600")
            elif key == "delivery_waits_for_undo":
                if not isinstance(v, bool):
                    raise ShopRefused("approvals.delivery_waits_for_undo: true or false")
            else:
                raise ShopRefused(f"approvals.{key}: unknown setting")
            approvals[key] = v
        self.approvals = approvals
        return [f"approvals.{k}: {v}" for k, v in value.items()]

    def _set_texts(self, value: Any, by: str, now: float) -> list[str]:
        if not isinstance(value, dict):
            raise ShopRefused("texts: an object by language")
        lines = []
        for lang, names in value.items():
            if lang not in ("bn", "en") or not isinstance(names, dict):
                raise ShopRefused(f"texts.{lang}: a language (bn or en) with its texts")
            for name, text in names.items():
                if name not in TEXT_NAMES:
                    raise ShopRefused(f"texts.{lang}.{name}: unknown text")
                if text is None:
                    self.texts[lang].pop(name, None)
                    lines.append(f"texts.{lang}.{name}: back to the default")
                    continue
                if not isinstance(text, str) or not text.strip() or len(text) > 1000:
                    raise ShopRefused(f"texts.{lang}.{name}: 1 to 1000 characters")
                try:
                    text.format_map({p: "" for p in placeholders_of(text)})
                except (ValueError, IndexError, KeyError):
                    raise ShopRefused(f"texts.{lang}.{name}: braces must pair as {{placeholder}}") from None
                for p in placeholders_of(text):
                    if p not in self.offered(name):
                        raise ShopRefused(f"texts.{lang}.{name}: {{{p}}} is not a placeholder this text offers "
                                          f"({', '.join('{' + o + '}' for o in self.offered(name)) or 'none'})")
                self.texts[lang][name] = text
                lines.append(f"texts.{lang}.{name} changed")
        return lines

    def _set_texts_enabled(self, value: Any, by: str, now: float) -> list[str]:
        if not isinstance(value, dict):
            raise ShopRefused("texts_enabled: an object {name: true or false}")
        for name, on in value.items():
            if name not in OPTIONAL:
                raise ShopRefused(f"texts_enabled.{name}: only optional texts can be switched off")
            if not isinstance(on, bool):
                raise ShopRefused(f"texts_enabled.{name}: true or false")
            (self.disabled.discard if on else self.disabled.add)(name)
        return [f"{name} {'on' if on else 'off'}" for name, on in value.items()]
