"""The panel's words as gettext catalogs: every message marked in the templates and the code is
in the Bengali catalog, translated, with the same placeholders; the committed template
(messages.pot) is what `pybabel extract` finds today; the Bengali words the panel always showed
are still there; and one setting chooses the language of the code and the templates alike."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from web import i18n

REPO = Path(__file__).resolve().parents[1]
POT = i18n.LOCALE_DIR / "messages.pot"


def extracted() -> set[tuple[str | None, str]]:
    """(context, message) of everything `pybabel extract -F babel.cfg` finds in web/."""
    with (REPO / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = set()
    for _, _, message, _, context in extract_from_dir(str(REPO), method_map, options_map):
        found.add((context, message if isinstance(message, str) else message[0]))
    return found


def catalog(path: Path, locale: str | None = None):  # type: ignore[no-untyped-def]
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def test_every_marked_message_is_translated_in_the_bengali_catalog() -> None:
    found = extracted()
    assert len(found) > 250
    bn = catalog(i18n.catalog_path("bn"), "bn")
    entries = {(m.context, m.id): m for m in bn if m.id}
    assert set(entries) == found, (found - set(entries), set(entries) - found)
    untranslated = [key for key, m in entries.items() if not m.string or m.fuzzy]
    assert untranslated == []
    assert not bn.obsolete
    # Placeholders: each translation has exactly the msgid's %(name)s (Babel's own checks).
    problems = [(m.id, [str(e) for e in errors]) for m, errors in bn.check()]
    assert problems == []
    for key, m in entries.items():
        if "%(" in m.id:
            assert "python-format" in m.flags, key


def test_the_committed_template_is_what_extraction_finds() -> None:
    pot = {(m.context, m.id) for m in catalog(POT) if m.id}
    assert pot == extracted(), "run the extract command in README (Translating the panel)"


@pytest.mark.parametrize("context, message, bengali", [
    ("action", "Approve", "অনুমোদন"), ("action", "Delete", "মুছুন"), ("status", "Pending", "অপেক্ষমাণ"),
    ("status", "Processing", "প্রক্রিয়াধীন"), (None, "Processing", "প্রক্রিয়া শুরু"),
    (None, "Diamonds", "ডায়মন্ড"), (None, "Payments", "পেমেন্ট"), (None, "Reports", "রিপোর্ট"),
    ("button", "Void", "বাতিল করুন"), (None, "Void", "বাতিল"), ("reconciliation", "Actions", "পদক্ষেপ"),
    (None, "Actions", "কাজ"), ("method", "bKash", "বিকাশ (bKash)"), ("gateway", "Connected", "সংযুক্ত"),
])
def test_the_bengali_words_the_panel_always_showed(context: str | None, message: str, bengali: str) -> None:
    t = i18n.words("bn")
    assert (t.pgettext(context, message) if context else t._(message)) == bengali
    assert (i18n.words("en").pgettext(context, message) if context else i18n.words("en")._(message)) == message


def test_placeholders_and_percent_signs() -> None:
    bn, en = i18n.words("bn"), i18n.words("en")
    assert bn._("Order %(id)s", id="A1") == "অর্ডার A1"
    assert en._("%(n)s%%", n="12.5") == "12.5%" == bn._("%(n)s%%", n="12.5")
    assert bn.gettext("%(first)s–%(last)s of %(total)s") == "%(total)sটির মধ্যে %(first)s–%(last)s"  # for scripts
    assert bn.label("status", "nonsense") == "nonsense"  # an unknown value shows as it is
    assert i18n.words("xx").language == "en"


def test_templates_and_code_share_one_translation() -> None:
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    t = i18n.words("bn")
    env.install_gettext_translations(t.translations, newstyle=True)  # type: ignore[attr-defined]
    page = env.from_string('{{ _("Order %(id)s", id=o) }} · {{ pgettext("status", "Pending") }}').render(o="<b>")
    assert page == f"{t._('Order %(id)s', id='&lt;b&gt;')} · {t.label('status', 'pending')}" == "অর্ডার &lt;b&gt; · অপেক্ষমাণ"


def test_a_fuzzy_translation_is_shown_in_english_until_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    po = i18n.catalog_path("bn").read_text()
    changed = po.replace('msgid "Log out"\nmsgstr "লগআউট"', '#, fuzzy\nmsgid "Log out"\nmsgstr "লগআউট"')
    assert changed != po
    target = tmp_path / "bn" / "LC_MESSAGES" / "messages.po"
    target.parent.mkdir(parents=True)
    target.write_text(changed)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        t = i18n.Words("bn")
        assert t._("Log out") == "Log out" and t._("Orders") == "অর্ডার"
    finally:
        i18n.translations.cache_clear()
