"""The Settings page (owners only): the shop's WhatsApp admins, payment numbers, notices, stock,
approvals and chat texts, each saved by its own form through `PATCH /api/shop`'s rules
(actors.messages.UpdateShop: 400 "<key>: why", nothing changed), and the audit of who changed
what. Every form works without JavaScript; settings.js adds the texts' live previews.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping

from aiohttp import web
from aiohttp_session import get_session

from web import chat_texts
from web.routes import panel_of, params, unwrap
from web.routes.pages import FLASH, page, render, texts_of
from web.routes.shop import stock_of, update_shop
from web.security import ApiError, owner

LANGUAGES = ("bn", "en")
SECTIONS = ("admins_add", "admins_remove", "payment", "notices", "stock", "approvals", "text", "text_reset",
            "texts_enabled")
_KEYWORD_SPLIT = re.compile(r"[,\n]+")


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


def _seconds(form: Mapping[str, Any], name: str, high: int) -> int:
    return params.whole_number(_field(form, name).strip(), name, 0, 0, high)


def settings_patch(form: Mapping[str, Any], shop: Mapping[str, Any], t: Any) -> tuple[dict[str, Any], str]:
    """(the shop patch a settings form asks for, the section's anchor); ApiError 400 when a field
    cannot be read."""
    section = form.get("section")
    if section not in SECTIONS:
        raise ApiError(400, f"section: use one of {', '.join(SECTIONS)}")
    admins = [str(a.get("who")) for a in shop.get("admins") or []]
    if section == "admins_add":
        return {"admins": [*admins, _field(form, "phone").strip()]}, "admins"
    if section == "admins_remove":
        who = _field(form, "who").strip()
        if who not in admins:
            raise ApiError(404, t._("%(who)s is not an admin.", who=who[:40]))
        return {"admins": [a for a in admins if a != who]}, "admins"
    if section == "payment":
        keywords = [k.strip() for k in _KEYWORD_SPLIT.split(_field(form, "keywords")) if k.strip()]
        return {"payment": {"enabled": form.get("enabled") is not None, "text": _field(form, "text"),
                            "keywords": keywords, "cooldown": _seconds(form, "cooldown", 86400)}}, "payment"
    if section == "notices":
        return {"notice": _field(form, "notice"), "open_notice": _field(form, "open_notice")}, "notices"
    if section == "stock":
        return {"stock": stock_of(form.get("stock"), t)}, "stock"
    if section == "approvals":
        return {"approvals": {"undo_window": _seconds(form, "undo_window", 3600),
                              "delivery_waits_for_undo": form.get("delivery_waits_for_undo") is not None}}, "approvals"
    lang, name = _field(form, "lang"), _field(form, "name")
    if section == "texts_enabled":
        optional = sorted({n for texts in (shop.get("texts") or {}).values() for n, v in texts.items() if v.get("optional")})
        return {"texts_enabled": {n: form.get(f"on_{n}") is not None for n in optional}}, "optional"
    if lang not in LANGUAGES or name not in ((shop.get("texts") or {}).get(lang) or {}):
        raise ApiError(400, f"name: no text {name[:40]!r} in {lang[:5]!r}")
    anchor = f"t-{lang}-{name}"
    if section == "text_reset":
        return {"texts": {lang: {name: None}}}, anchor
    return {"texts": {lang: {name: _field(form, "text")}}}, anchor


def _who(by: str) -> str:
    kind, _, name = by.partition(":")
    return name if kind == "admin" and name else by


def _texts(shop: Mapping[str, Any], t: Any, samples: Mapping[str, Mapping[str, str]],
           draft: Mapping[str, str] | None) -> dict[str, list[dict[str, Any]]]:
    """The chat texts by language, with their names for people and previews (with the text as
    typed, for the one a refused form sent)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lang in LANGUAGES:
        values = samples[lang]
        rows = []
        for name, entry in ((shop.get("texts") or {}).get(lang) or {}).items():
            text = str(entry.get("text") or "")
            if draft and draft.get("lang") == lang and draft.get("name") == name:
                text = draft["text"]
            rows.append({
                "name": name, "title": chat_texts.title(name, t), "text": text, "default": str(entry.get("default") or ""),
                "changed": text != entry.get("default"), "enabled": bool(entry.get("enabled", True)),
                "optional": bool(entry.get("optional")), "placeholders": list(entry.get("placeholders") or []),
                "preview": chat_texts.preview(text, values), "anchor": f"t-{lang}-{name}",
            })
        out[lang] = rows
    return out


async def _settings_page(request: web.Request, *, error: str | None = None, status: int = 200,
                         draft: Mapping[str, str] | None = None, section: str = "") -> web.Response:
    panel = panel_of(request)
    t = texts_of(request)
    shop = unwrap(await panel.bridge.get_shop())
    today = datetime.now(panel.tz).date()
    samples = {lang: chat_texts.samples(panel.config, lang, today) for lang in LANGUAGES}
    texts = _texts(shop, t, samples, draft)
    optional = {r["name"]: r for rows in texts.values() for r in rows if r["optional"]}
    return await render(request, "settings.html", {
        "title": t._("Settings"), "nav": "settings", "script": "settings.js", "styles": "forms.css", "shop": shop, "texts": texts,
        "optional": list(optional.values()), "error": error, "error_section": section, "samples": samples,
        "open_anchor": f"t-{draft['lang']}-{draft['name']}" if draft else "",
        "audit": [{**a, "by": _who(str(a.get("by") or ""))} for a in shop.get("audit") or []],
        "keywords": ", ".join(str(k) for k in (shop.get("payment") or {}).get("keywords") or []),
        "language_names": {"bn": t._("Bengali"), "en": t._("English")},
        "js_labels": {"settings.unknown": t.gettext("%(name)s is not a placeholder this text offers: the text cannot be saved with it."),
                      "settings.empty": t.gettext("A text cannot be empty.")},
    }, status=status)


@owner
@page
async def settings_page(request: web.Request) -> web.Response:
    """GET /settings: every setting of the shop, and who changed what."""
    return await _settings_page(request)


@owner
@page
async def settings_post(request: web.Request) -> web.StreamResponse:
    """POST /settings (form: section and its fields): save one section."""
    panel = panel_of(request)
    t = texts_of(request)
    form = await request.post()
    shop = unwrap(await panel.bridge.get_shop())
    draft = None
    if form.get("section") == "text":
        draft = {"lang": _field(form, "lang"), "name": _field(form, "name"), "text": _field(form, "text")}
    try:
        patch, anchor = settings_patch(form, shop, t)
        await update_shop(request, patch)
    except ApiError as e:
        if e.status == 503:
            raise
        return await _settings_page(request, error=e.message, status=e.status, draft=draft,
                                    section=str(form.get("section") or ""))
    session = await get_session(request)
    session[FLASH] = t._("Saved. The bot uses it from its next message on.")
    raise web.HTTPSeeOther(f"/settings#{anchor}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/settings", settings_page)
    app.router.add_post("/settings", settings_post)
