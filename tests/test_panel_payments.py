"""The Payments, Ledger and Reports pages over the in-memory bridge: the record form works without
JavaScript (CSRF, redirect with a one-time message, the page again with the error and what was
typed), a form sent twice records once, dues show on the Payments and Groups pages, the ledger's
running due, the daily report and its export links, escaping, page weight.

(Rendering in both languages, login, CSRF tokens in every form, labels and the 503 page are
checked for these pages with all the others in test_panel_pages.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from domain.orders import Action
from tests.fake_bridge import (
    PASSWORD,
    FakeBridge,
    bridge_error,
    login,
    login_leads_back_to,
    make_config,
    panel_client,
)
from tests.test_panel_pages import Page, assert_safe_markup, get_page
from web import i18n
from web.routes import accounts

NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24 22:00 in Dhaka
DAY = 86400
ALPHA = "120363000000000001@g.us"
BETA = "120363000000000002@g.us"
EVIL = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"


pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_group("Alpha Resellers", rate="100", group_id=ALPHA)
    b.add_group("বিটা স্টোর", rate="2.30", group_id=BETA)
    b.add_order(ALPHA, 10, created_at=NOW - 3600, actions=(Action.APPROVE, Action.COMPLETE))  # A1: 1000.00
    b.add_order(ALPHA, 25, created_at=NOW - 1800)  # A2: pending
    b.add_order(BETA, 7, created_at=NOW - 600, actions=(Action.APPROVE,))  # B1: 16.10
    return b


async def make_client(tmp_path: Path, bridge: FakeBridge, language: str) -> Any:
    config = make_config(tmp_path / "data", **{"bot.language": language})
    bridge.add_user("admin", PASSWORD)
    return panel_client(config, bridge)


@pytest.fixture
async def en(tmp_path: Path, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    async with await make_client(tmp_path, bridge, "en") as c:
        yield c


@pytest.fixture
async def bn(tmp_path: Path, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    async with await make_client(tmp_path, bridge, "bn") as c:
        yield c


async def post_payment(client: TestClient[Any, Any], token: str, **fields: str) -> Any:
    return await client.post("/payments", data={"csrf_token": token, **fields}, allow_redirects=False)


def due_cell(page: Page, html: str, table: str, group: str) -> str:
    """The text of a group's row's due cell (the last `data-due` cell of the row)."""
    start = html.index(f'data-id="{group}"', html.index(f'id="{table}"'))
    row = html[start:html.index("</tr>", start)]
    cell = row[row.rindex("data-due="):]
    return Page(cell[cell.index(">") + 1:]).text[0] if cell else ""


def flash(page: Page, html: str) -> str | None:
    if 'class="flash"' not in html:
        return None
    start = html.index('class="flash"')
    return html[html.index(">", start) + 1:html.index("<", start)]


# --- the payments page ------------------------------------------------------------------------


async def test_payments_page_shows_the_form_and_each_groups_due(en: TestClient[Any, Any],
                                                               bridge: FakeBridge) -> None:
    bridge.add_payment(ALPHA, "250", "bkash", reference="8N7A6S5D", at=NOW - 60)
    token = await login(en)
    html, page = await get_page(en, "/payments")
    assert_safe_markup("/payments", html, page)
    [form] = page.all("form", id="pay")
    assert form["method"] == "post" and form["action"] == "/payments"
    assert page.all("input", name="csrf_token", value=token)
    assert len(page.all("input", name="nonce")[0]["value"]) >= 16
    assert [o["value"] for o in page.all("option") if o.get("value") in {"bkash", "nagad", "rocket", "bank",
                                                                          "cash", "other"}] == \
        ["bkash", "nagad", "rocket", "bank", "cash", "other"]
    assert page.all("option", value="bkash")[0].get("selected") == ""
    group_options = [o for o in page.all("option") if o.get("data-fill") is not None]
    assert [(o["value"], o["data-fill"], o["data-due-text"]) for o in group_options] == [
        (ALPHA, "750", "৳750"), (BETA, "16.10", "৳16.10")]
    assert [o.get("selected") for o in group_options] == [None, None]
    assert page.all("select", name="group_id")[0].get("required") == ""
    assert page.all("input", name="amount")[0].get("required") == ""
    # Dues per group: billed, paid, due; the total owed.
    assert due_cell(page, html, "dues", ALPHA) == "৳750" and due_cell(page, html, "dues", BETA) == "৳16.10"
    assert "৳766.10" in html
    assert page.all("a", href=f"/groups/{ALPHA.replace('@', '%40')}/ledger")
    # The payments received.
    rows = [r for r in page.all("tr") if r.get("data-id", "").startswith("P")]
    assert [r["data-id"] for r in rows] == ["PA1"]
    assert "8N7A6S5D" in html and "2025-11-24 21:59" in html and "bKash" in html
    assert page.all("script")[0]["src"].startswith("/static/payments.js?v=")


async def test_large_amounts_read_in_lakh_and_crore(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(en)
    bridge.add_order(ALPHA, 100_000, actions=(Action.APPROVE,))  # ৳1,00,00,000 more billed
    html, page = await get_page(en, "/payments")
    assert due_cell(page, html, "dues", ALPHA) == "৳1,00,01,000"
    option = next(o for o in page.all("option") if o.get("value") == ALPHA and o.get("data-fill") is not None)
    # The form's "fill in the whole due" puts a bare number in the amount field.
    assert option["data-fill"] == "10001000" and option["data-due-text"] == "৳1,00,01,000"


async def test_a_group_link_presets_the_form(en: TestClient[Any, Any]) -> None:
    await login(en)
    _, page = await get_page(en, f"/payments?group={BETA}")
    assert page.all("option", value=BETA)[0].get("selected") == ""
    assert page.all("option", value=BETA)[-1].get("selected") == ""  # the list's filter too (the last)


async def test_record_by_form_then_a_one_time_message(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(en)
    resp = await post_payment(en, token, group_id=ALPHA, amount="1,000", method="bkash", reference=" TRX77 ",
                              note="full", nonce="n-1")
    assert resp.status == 303 and resp.headers["Location"] == "/payments"
    # The form's id travels to the bot as the payment's client key: a resent form is recorded once.
    assert bridge.calls[-1] == ("record_payment", ALPHA, "1000", "bkash", "TRX77", "full", "admin:admin",
                                "form:admin:n-1", False)
    assert bridge.due(ALPHA) == 0
    html, page = await get_page(en, "/payments")
    assert flash(page, html) == "Payment PA1 recorded: ৳1000 by bKash from Alpha Resellers. Due now: ৳0."
    assert due_cell(page, html, "dues", ALPHA) == "৳0"
    html, page = await get_page(en, "/payments")
    assert flash(page, html) is None  # shown once
    # Taka signs and spaces as people type them; an advance reads as such.
    resp = await post_payment(en, token, group_id=BETA, amount="৳ 20.00", method="cash", nonce="n-2")
    assert resp.status == 303
    html, page = await get_page(en, "/payments")
    assert flash(page, html) == "Payment PB1 recorded: ৳20 by Cash from বিটা স্টোর. Due now: ৳3.90 advance."
    assert due_cell(page, html, "dues", BETA) == "৳3.90 advance"


async def test_the_form_in_bengali(bn: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(bn)
    html, page = await get_page(bn, "/payments")
    for text in ("পেমেন্ট লিখুন", "বিকাশ (bKash)", "নগদ (Nagad)", "রেফারেন্স / TrxID", "গ্রুপভিত্তিক বাকি",
                 "পেমেন্ট সংরক্ষণ"):
        assert text in html, text
    resp = await post_payment(bn, token, group_id=ALPHA, amount="৫০০", method="nagad", nonce="x")
    assert resp.status == 303 and bridge.due(ALPHA) == 500
    html, page = await get_page(bn, "/payments")
    assert flash(page, html) == "পেমেন্ট PA1 সংরক্ষিত: Alpha Resellers থেকে নগদ (Nagad)-এ ৳500। এখন বাকি: ৳500।"


async def test_a_refused_form_comes_back_with_the_error_and_what_was_typed(en: TestClient[Any, Any],
                                                                          bridge: FakeBridge) -> None:
    token = await login(en)
    before = bridge.snapshot()
    for fields, mentions in [({"amount": "12.345"}, "amount"), ({"amount": "abc"}, "amount"),
                             ({"amount": "0"}, "amount"), ({"amount": ""}, "amount"),
                             ({"method": "paypal"}, "method"), ({"group_id": ""}, "group_id"),
                             ({"reference": "R" * 101}, "reference")]:
        form = {"group_id": ALPHA, "amount": "500", "method": "nagad", "reference": "TRX <b>", "note": EVIL,
                "nonce": "same", **fields}
        resp = await post_payment(en, token, **form)
        html = await resp.text()
        assert resp.status == 400, fields
        page = Page(html)
        error = page.all("p", **{"class": "error"})
        assert error and f"Not recorded: {mentions}" in html, fields
        # What was typed is still there (escaped), ready to correct.
        if fields.get("group_id") != "":
            assert page.all("option", value=ALPHA)[0].get("selected") == ""
        assert page.all("option", value=form["method"]) == [] or \
            page.all("option", value=form["method"])[0].get("selected") == ""
        assert page.all("input", name="reference")[0]["value"] == form["reference"]
        assert page.all("input", name="note")[0]["value"] == EVIL and EVIL not in html
        assert page.all("input", name="csrf_token", value=token)
    assert bridge.snapshot() == before
    resp = await post_payment(en, token, group_id="nope@g.us", amount="5", method="cash", nonce="same")
    assert resp.status == 404 and "Not recorded: no group nope@g.us" in await resp.text()
    # The refused forms did not use up the one-time id.
    resp = await post_payment(en, token, group_id=ALPHA, amount="5", method="cash", nonce="same")
    assert resp.status == 303 and len(bridge.db.payments) == 1


async def test_a_reference_recorded_before_is_warned_about_and_can_be_recorded_anyway(
        en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(en)
    bridge.add_payment(ALPHA, "300", "nagad", reference="TRX55")  # PA1
    form = {"group_id": ALPHA, "amount": "500", "method": "bkash", "reference": "trx55", "note": EVIL,
            "nonce": "n-dup"}
    resp = await post_payment(en, token, **form)
    html = await resp.text()
    assert resp.status == 409 and len(bridge.db.payments) == 1
    warning = html[html.index('id="duplicate"'):]
    warning = warning[:warning.index("</div>")]
    assert "Reference TRX55 is already recorded: payment PA1, ৳300 by Nagad on 2025-11-24 22:00 (admin:setup)" in warning
    page = Page(warning)
    # "Record it anyway" sends the same form again, confirmed, with the same one-time id and token.
    hidden = {i["name"]: i["value"] for i in page.all("input", type="hidden")}
    assert hidden == {"csrf_token": token, "nonce": "n-dup", "group_id": ALPHA, "amount": "500", "method": "bkash",
                      "reference": "trx55", "note": EVIL, "confirm_duplicate": "1"}
    assert page.all("button", type="submit") and EVIL not in html
    # The form below keeps what was typed and the same id, to correct it instead.
    assert Page(html).all("input", name="nonce")[-1]["value"] == "n-dup"
    assert Page(html).all("input", name="reference")[-1]["value"] == "trx55"
    resp = await post_payment(en, token, **hidden)
    assert resp.status == 303 and len(bridge.db.payments) == 2
    assert bridge.calls[-1][-2:] == ("form:admin:n-dup", True)
    html, page = await get_page(en, "/payments")
    assert flash(page, html) == "Payment PA2 recorded: ৳500 by bKash from Alpha Resellers. Due now: ৳200."
    # Sent once more (the back button): still once.
    assert (await post_payment(en, token, **hidden)).status == 303 and len(bridge.db.payments) == 2


async def test_the_duplicate_warning_in_bengali(bn: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(bn)
    bridge.add_payment(ALPHA, "300", "bkash", reference="TRX55")
    resp = await post_payment(bn, token, group_id=ALPHA, amount="500", method="bkash", reference="TRX55", nonce="b")
    html = await resp.text()
    assert resp.status == 409 and "রেফারেন্স TRX55 আগেই লেখা আছে: পেমেন্ট PA1" in html and "তবুও লিখুন" in html


async def test_a_form_sent_twice_records_once(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(en)
    form = {"group_id": ALPHA, "amount": "100", "method": "bkash", "nonce": "double-click"}
    bridge.delay = 0.05  # both posts are in flight together
    first, second = await asyncio.gather(post_payment(en, token, **form), post_payment(en, token, **form))
    assert first.status == second.status == 303
    assert len(bridge.db.payments) == 1 and bridge.due(ALPHA) == 900
    html, page = await get_page(en, "/payments")
    assert flash(page, html) in ("This form was already sent once: check the payments below before recording it again.",
                                 "Payment PA1 recorded: ৳100 by bKash from Alpha Resellers. Due now: ৳900.")
    # Sent again later (the back button): still once. A new form (new id) records again.
    assert (await post_payment(en, token, **form)).status == 303 and len(bridge.db.payments) == 1
    assert (await post_payment(en, token, **{**form, "nonce": "another"})).status == 303
    assert len(bridge.db.payments) == 2



async def test_no_answer_keeps_the_form_marked(en: TestClient[Any, Any], bridge: FakeBridge,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A timeout may come after the payment was recorded: the same form is not recorded again
    blindly, the page says to look at the list first."""
    token = await login(en)
    real = bridge.record_payment

    async def recorded_then_timeout(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise bridge_error()

    monkeypatch.setattr(bridge, "record_payment", recorded_then_timeout)
    form = {"group_id": ALPHA, "amount": "100", "method": "bkash", "nonce": "slow"}
    resp = await post_payment(en, token, **form)
    assert resp.status == 503 and "The bot is not answering right now. The page will work again once it is back." in await resp.text()
    monkeypatch.setattr(bridge, "record_payment", real)
    resp = await post_payment(en, token, **form)
    assert resp.status == 303 and len(bridge.db.payments) == 1
    html, page = await get_page(en, "/payments")
    assert flash(page, html) == "This form was already sent once: check the payments below before recording it again."


def test_recent_forms_are_bounded() -> None:
    forms = accounts.RecentForms(size=3)
    assert forms.claim(("a", "1")) and not forms.claim(("a", "1"))
    assert forms.claim(("b", "1"))  # another user's form
    forms.release(("a", "1"))
    assert forms.claim(("a", "1"))
    for n in range(5):
        forms.claim(("a", str(n + 10)))
    assert forms.claim(("b", "1"))  # forgotten: only the newest three are kept


async def test_payment_list_filters_and_pages(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    for i in range(30):
        bridge.add_payment(ALPHA if i % 2 else BETA, f"{i + 1}", "cash", at=NOW - DAY * (i // 10) - i)
    await login(en)
    html, page = await get_page(en, "/payments")
    rows = [r["data-id"] for r in page.all("tr") if r.get("data-id", "").startswith("P")]
    assert len(rows) == 25 and "1–25 of 30" in html
    [next_link] = page.all("a", rel="next")
    html, page = await get_page(en, next_link["href"])
    assert "26–30 of 30" in html and page.all("a", rel="prev")
    html, page = await get_page(en, f"/payments?group={ALPHA}&since=2025-11-24")
    assert "1–5 of 5" in html
    assert [c for c in bridge.calls if c[0] == "list_payments"][-1][1] == {
        "group": ALPHA, "since": NOW - 22 * 3600, "until": None, "limit": 25, "offset": 0}
    html, page = await get_page(en, "/payments?group=nope&since=never&offset=-1")
    assert html.count('class="error"') == 3
    assert [c for c in bridge.calls if c[0] == "list_payments"][-1][1] == {
        "group": "", "since": None, "until": None, "limit": 25, "offset": 0}


async def test_user_text_is_escaped(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    bridge.add_payment(ALPHA, "5", "other", reference=EVIL[:30], note=EVIL)
    await bridge.update_group(BETA, {"name": f"Beta {EVIL}"}, "admin:setup")
    await login(en)
    for path in ("/payments", f"/groups/{ALPHA}/ledger", f"/groups/{BETA}/ledger", "/reports", "/groups"):
        html, page = await get_page(en, path)
        assert EVIL not in html and "<script>alert" not in html, path
        assert_safe_markup(path, html, page)
    html, _ = await get_page(en, "/payments")
    assert ESCAPED in html and f"Beta {ESCAPED}" in html


async def test_anonymous_visitors_are_sent_to_log_in(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    for path in ("/payments", f"/groups/{ALPHA}/ledger", "/reports"):
        resp = await en.get(path, allow_redirects=False)
        assert resp.status == 303 and login_leads_back_to(resp.headers["Location"]) == path, path
    resp = await en.post("/payments", data={"group_id": ALPHA, "amount": "5", "method": "cash"},
                         allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert not bridge.db.payments


async def test_a_post_without_the_csrf_token_is_refused(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(en)
    resp = await en.post("/payments", data={"group_id": ALPHA, "amount": "5", "method": "cash"},
                         allow_redirects=False)
    assert resp.status == 403 and not bridge.db.payments


# --- groups and ledger ------------------------------------------------------------------------


async def test_groups_page_shows_the_due_and_links_the_ledger(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    bridge.add_payment(BETA, "20", "bkash")
    await login(en)
    html, page = await get_page(en, "/groups")
    assert due_cell(page, html, "groups", ALPHA) == "৳1000"
    assert due_cell(page, html, "groups", BETA) == "৳3.90 advance"
    assert page.all("a", href=f"/groups/{ALPHA.replace('@', '%40')}/ledger")


async def test_ledger_page(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    bridge.add_payment(ALPHA, "300", "bkash", reference="TRX1", at=NOW - 1200)
    bridge.add_payment(ALPHA, "200.50", "nagad", at=NOW + 60)
    await login(en)
    html, page = await get_page(en, f"/groups/{ALPHA}/ledger")
    assert_safe_markup("ledger", html, page)
    assert "Ledger: Alpha Resellers" in html
    rows = [r for r in page.all("tr") if r.get("data-ref")]
    assert [r["data-ref"] for r in rows] == ["PA1", "A1", "PA2"]
    # The opening balance, each line's, the closing balance.
    assert [c["data-balance"] for c in page.all("td") if c.get("data-balance")] == \
        ["0.00", "-300.00", "700.00", "499.50", "499.50"]
    assert "৳300 advance" in html and "৳499.50" in html and "bKash TRX1" in html
    assert page.all("a", href="/orders/A1")
    assert page.all("a", href=f"/payments?group={ALPHA.replace('@', '%40')}#record")
    exports = [a["href"] for a in page.all("a") if a["href"].startswith("/api/export/")]
    assert exports == [f"/api/export/{k}.csv?group={ALPHA.replace('@', '%40')}" for k in ("orders", "payments")]
    # A date range: the opening balance carries what came before.
    html, page = await get_page(en, f"/groups/{ALPHA}/ledger?since=2025-11-24T21:50&until=2025-11-25")
    assert [r["data-ref"] for r in page.all("tr") if r.get("data-ref")] == ["A1", "PA2"]
    assert bridge.calls[-1] == ("ledger", ALPHA, NOW - 600, NOW + 26 * 3600)
    assert "৳300 advance" in html  # the opening balance
    assert page.all("input", name="since")[0]["value"] == "2025-11-24T21:50"
    html, _ = await get_page(en, f"/groups/{ALPHA}/ledger?since=bad")
    assert "Ignored a filter: since" in html
    html, _ = await get_page(en, "/groups/nope@g.us/ledger", status=404)
    assert "There is no group nope@g.us." in html


async def test_a_long_ledger_pages_back_from_its_newest_lines(en: TestClient[Any, Any], bridge: FakeBridge,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "LEDGER_MAX_LINES", 2)
    bridge.add_payment(ALPHA, "300", "bkash", at=NOW - 1200)  # -300, then A1: 700
    bridge.add_payment(ALPHA, "100", "cash", at=NOW + 60)  # 600
    await login(en)
    html, page = await get_page(en, f"/groups/{ALPHA}/ledger?since=2025-11-01")
    assert [r["data-ref"] for r in page.all("tr") if r.get("data-ref")] == ["A1", "PA2"]
    assert "Lines 2–3 of 3" in html
    balances = [c["data-balance"] for c in page.all("td") if c.get("data-balance")]
    assert balances == ["-300.00", "700.00", "600.00", "600.00"]  # opening: the due before A1
    assert not page.all("a", rel="next")
    [earlier] = page.all("a", rel="prev")
    assert earlier["href"] == f"/groups/{ALPHA.replace('@', '%40')}/ledger?since=2025-11-01&skip=2"
    html, page = await get_page(en, earlier["href"])
    assert [r["data-ref"] for r in page.all("tr") if r.get("data-ref")] == ["PA1"]
    assert [c["data-balance"] for c in page.all("td") if c.get("data-balance")] == ["0.00", "-300.00", "-300.00"]
    assert "Lines 1–1 of 3" in html and not page.all("a", rel="prev")
    assert page.all("a", rel="next")[0]["href"] == f"/groups/{ALPHA.replace('@', '%40')}/ledger?since=2025-11-01"
    # The totals of the dates stay those of all their lines.
    assert "৳1400" not in html and "৳1000" in html and "৳400" in html
    html, page = await get_page(en, f"/groups/{ALPHA}/ledger?skip=99")
    assert not [r for r in page.all("tr") if r.get("data-ref")] and page.all("a", rel="next")
    html, _ = await get_page(en, f"/groups/{ALPHA}/ledger?skip=-1")
    assert "Ignored a filter: skip" in html


# --- reports ----------------------------------------------------------------------------------


async def test_reports_page(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    bridge.add_payment(ALPHA, "400", "bkash")
    await login(en)
    html, page = await get_page(en, "/reports")
    assert_safe_markup("/reports", html, page)
    assert bridge.calls[-1] == ("daily_report", "")
    assert page.all("input", name="day")[0]["value"] == "2025-11-24"
    rows = {r["data-id"]: r for r in page.all("tr") if r.get("data-id")}
    assert list(rows) == [ALPHA, BETA, "totals"]
    alpha = html[html.index(f'data-id="{ALPHA}"', html.index('id="report"')):]
    alpha = alpha[:alpha.index("</tr>")]
    assert [c for c in Page(alpha).text if c.strip()][-5:] == ["2", "10", "৳1000", "৳400", "৳600"]
    totals = html[html.index('data-id="totals"'):]
    totals = totals[:totals.index("</tr>")]
    assert [c for c in Page(totals).text if c.strip()][-5:] == ["3", "17", "৳1016.10", "৳400", "৳616.10"]
    assert page.all("a", rel="prev")[0]["href"] == "/reports?day=2025-11-23"
    # The CSV exports, from the first of the month to the day.
    [export] = page.all("form", id="export")
    assert export["method"] == "get" and export["action"] == "/api/export/orders.csv"
    assert page.all("button", formaction="/api/export/payments.csv")
    assert page.all("input", name="since")[0]["value"] == "2025-11-01"
    assert page.all("input", name="until")[0]["value"] == "2025-11-24"

    html, page = await get_page(en, "/reports?day=2025-11-20")
    assert bridge.calls[-1] == ("daily_report", "2025-11-20")
    assert page.all("a", rel="next")[0]["href"] == "/reports?day=2025-11-21"
    assert page.all("a", href="/reports", **{"class": "button"})  # back to today
    html, page = await get_page(en, "/reports?day=someday", status=400)
    assert "Ignored the day: day:" in html and bridge.calls[-1] == ("daily_report", "")
    # A day far outside the ledger's years is refused at once: the actors never see it.
    for far in ("9999-12-31", "0001-01-01", "1969-12-31"):
        html, page = await get_page(en, f"/reports?day={far}", status=400)
        assert "outside 1970–2199" in html and bridge.calls[-1] == ("daily_report", ""), far


async def test_reports_in_bengali(bn: TestClient[Any, Any]) -> None:
    await login(bn)
    html, _ = await get_page(bn, "/reports")
    for text in ("দৈনিক রিপোর্ট", "আয়", "এখন বাকি", "CSV ডাউনলোড", "অর্ডার (CSV)", "পেমেন্ট (CSV)", "বিটা স্টোর"):
        assert text in html, text


# --- navigation, weight -----------------------------------------------------------------------


async def test_navigation_has_the_new_pages(bn: TestClient[Any, Any]) -> None:
    await login(bn)
    html, page = await get_page(bn, "/payments")
    assert [a["href"] for a in page.all("a") if a.get("aria-current") == "page"] == ["/payments"]
    assert ">পেমেন্ট<" in html and ">রিপোর্ট<" in html
    _, page = await get_page(bn, "/reports")
    assert [a["href"] for a in page.all("a") if a.get("aria-current") == "page"] == ["/reports"]
    _, page = await get_page(bn, f"/groups/{ALPHA}/ledger")
    assert [a["href"] for a in page.all("a") if a.get("aria-current") == "page"] == ["/groups"]
    assert i18n.words("bn")._("Payments") == "পেমেন্ট" and i18n.words("bn")._("Reports") == "রিপোর্ট"


async def test_full_pages_weigh_under_55_kb(bn: TestClient[Any, Any], bridge: FakeBridge) -> None:
    """A full page of payments, and a ledger page full of lines, in Bengali, with their assets
    (55 KB since the Orders and Groups tables became cards on a phone; 50 KB before)."""
    for i in range(10):
        bridge.add_group(f"রিসেলার গ্রুপ নম্বর {i} ঢাকা", rate="1.25")
    gid = ALPHA
    for i in range(accounts.LEDGER_MAX_LINES + 10):
        bridge.add_payment(gid, f"{i + 1}.25", "bkash", reference=f"TRX{i:08d}AB", note="বিকাশে পাঠানো হয়েছে",
                           at=NOW - i * 60)
    await login(bn)
    for path in ("/payments", f"/groups/{gid}/ledger", "/reports", "/groups"):
        html, page = await get_page(bn, path)
        total = len(html.encode())
        assets = [a["href"] for t, a in page.tags if t == "link"] + [a["src"] for a in page.all("script")]
        for url in set(assets):
            total += len(await (await bn.get(url)).read())
        assert total < 55 * 1024, (path, total)
