"""The panel's pages over the in-memory bridge: every page renders in Bengali and English, needs
a login, carries the CSRF token in its forms, escapes what users wrote, applies filters and
pagination; the form posts work without JavaScript; the dashboard's JSON and charts; page weight;
process metrics from /proc."""

from __future__ import annotations

import os
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient

from actors.messages import QueryResult
from domain.orders import Action, Issue
from tests.fake_bridge import (
    PASSWORD,
    FakeBridge,
    bridge_error,
    login,
    login_leads_back_to,
    make_config,
    panel_client,
)
from web import i18n
from web.metrics import ProcessSampler, pss_bytes
from web.routes import pages
from web.security import safe_next
from web.routes.dashboard import bar_chart, compact, nice_ceiling
from web.serialize import report_json

NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24 22:00 in Dhaka
ALPHA = "120363000000000001@g.us"
BETA = "120363000000000002@g.us"
EVIL = '<script>alert("x")</script>'
PAGES = ["/", "/orders", "/orders/A1", "/reconciliation", "/groups", "/whatsapp", "/payments", "/reports",
         f"/groups/{ALPHA}/ledger"]
STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
TEMPLATES = Path(__file__).resolve().parents[1] / "web" / "templates"


pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_group("Alpha Resellers", rate="100", group_id=ALPHA)
    b.add_group(f"Beta {EVIL}", rate="2.30", group_id=BETA)
    b.add_order(ALPHA, 10, user_name="Rahim", created_at=NOW - 3600)  # A1
    b.add_order(ALPHA, 25, user_name="Karim", created_at=NOW - 1800, actions=(Action.PROCESS,),
                issues=(Issue.PROCESSING_TIMEOUT,))  # A2
    b.add_order(BETA, 5, user_name=EVIL, user_id="8801700000000@lid", created_at=NOW - 600)  # B1
    b.add_order(BETA, 7, user_name="Sumi", created_at=NOW - 86400 * 2, recovered=True,
                actions=(Action.APPROVE, Action.COMPLETE))  # B2
    b.set_check("A1", 12, NOW - 5, "pending")
    b.add_cycle(ALPHA, checked=2, open_issues=1, duration=0.0004)
    return b


async def make_client(tmp_path: Path, bridge: FakeBridge, **overrides: str) -> Any:
    config = make_config(tmp_path / "data", **overrides)
    bridge.add_user("admin", PASSWORD)
    return panel_client(config, bridge)


@pytest.fixture(params=["bn", "en"])
async def client(request: pytest.FixtureRequest, tmp_path: Path,
                 bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    async with await make_client(tmp_path, bridge, **{"bot.language": request.param}) as c:
        c.language = request.param  # type: ignore[attr-defined]
        yield c


@pytest.fixture
async def en(tmp_path: Path, bridge: FakeBridge) -> AsyncIterator[TestClient[Any, Any]]:
    async with await make_client(tmp_path, bridge, **{"bot.language": "en"}) as c:
        yield c


class Page(HTMLParser):
    """The tags of a page with their attributes, and its text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


async def get_page(client: TestClient[Any, Any], path: str, status: int = 200) -> tuple[str, Page]:
    resp = await client.get(path, allow_redirects=False)
    body = await resp.text()
    assert resp.status == status, (path, resp.status, body[:500])
    assert resp.content_type == "text/html"
    return body, Page(body)


def assert_safe_markup(path: str, html: str, page: Page) -> None:
    """No inline script or style, no event handler attributes (CSP forbids them anyway)."""
    for tag, attrs in page.tags:
        assert not any(k.startswith("on") for k in attrs), (path, tag, attrs)
        assert "style" not in attrs, (path, tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), (path, attrs)
    assert "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), path


# --- every page -------------------------------------------------------------------------------


async def test_every_page_renders_in_the_panels_language(client: TestClient[Any, Any]) -> None:
    token = await login(client)
    lang = client.language  # type: ignore[attr-defined]
    t = i18n.words(lang)
    for path in PAGES:
        html, page = await get_page(client, path)
        assert page.all("html")[0]["lang"] == lang
        assert f">{t._('Orders')}<" in html and f">{t._('Log out')}<" in html, path
        assert_safe_markup(path, html, page)
        # Every form that posts carries the session's CSRF token; a GET form needs none.
        posting = html.count('method="post"')
        assert posting >= 1 and html.count(f'name="csrf_token" value="{token}"') == posting, path
        assert page.all("meta", name="csrf-token")[0]["content"] == token
        # Every input is labelled.
        labelled = {a.get("for") for a in page.all("label")}
        for attrs in page.all("input") + page.all("select"):
            if attrs.get("type") in ("hidden", "submit"):
                continue
            assert attrs.get("id") in labelled or attrs.get("aria-label"), (path, attrs)
    wrong = "Wrong username" if lang == "en" else "ভুল"
    assert wrong in i18n.words(lang)._("Wrong username or password.")


async def test_pages_refuse_anonymous_visitors(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    for path in [*PAGES, "/orders?status=pending"]:
        resp = await en.get(path, allow_redirects=False)
        assert resp.status == 303 and login_leads_back_to(resp.headers["Location"]) == path, path
    for path in ("/orders/A1", "/groups/" + ALPHA):
        resp = await en.post(path, data={"action": "approve", "settings": "1", "rate": "9"}, allow_redirects=False)
        assert resp.status in (303, 403), path
    assert (await en.get("/api/dashboard")).status == 401
    assert bridge.record("A1")["status"] == "pending"


async def test_login_page_in_both_languages(client: TestClient[Any, Any]) -> None:
    html, page = await get_page(client, "/login")
    t = i18n.words(client.language)  # type: ignore[attr-defined]
    assert t._("Password") in html and "<script" not in html and "style=" not in html
    assert page.all("input", name="csrf_token")


async def test_user_text_is_escaped_everywhere(en: TestClient[Any, Any]) -> None:
    await login(en)
    for path in PAGES + ["/orders/B1", f"/orders?q={EVIL}"]:
        html, _ = await get_page(en, path)
        assert EVIL not in html and "<script>alert" not in html, path
    html, _ = await get_page(en, "/orders/B1")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    html, _ = await get_page(en, "/groups")
    assert "Beta &lt;script&gt;" in html


# --- dashboard --------------------------------------------------------------------------------


async def test_dashboard_shows_both_seed_dashboards_and_charts(en: TestClient[Any, Any]) -> None:
    await login(en)
    html, page = await get_page(en, "/")
    data = await (await en.get("/api/dashboard")).json()
    # Every figure the page shows is in the JSON answer the page refreshes from.
    keys = {a["data-k"] for _, a in page.tags if "data-k" in a}
    assert keys <= data["display"].keys()
    assert {"orders.pending", "orders.deleted", "buckets.never", "buckets.gte10", "issues_found", "last_check",
            "gateway", "cycle_time", "orders_tracked", "cycles_per_hour", "checks_today", "memory", "cpu",
            "database", "uptime"} <= keys
    for key in keys - {"updated"}:  # the time of the answer
        shown = re.search(f'data-k="{re.escape(key)}"[^>]*>([^<]*)<', html)
        assert shown and unescape(shown.group(1)) == data["display"][key], key
    assert data["orders"] == {"pending": 2, "processing": 1, "approved": 0, "completed": 1, "cancelled": 0,
                              "deleted": 0, "total": 4, "open": 3}
    assert data["buckets"] == {"never": 3, "lt5": 0, "lt10": 0, "gte10": 1}
    assert data["issues_found"] == 1 and data["gateway"]["state"] == "connected"
    assert data["display"]["gateway"] == "Connected (sandbox)"
    assert data["processes"] >= 1 and data["memory_bytes"] > 0  # the panel's own process at least
    assert data["display"]["uptime"] == "2 min 5 s"
    # Two server-rendered SVG charts: 24 hours and 14 days of bars.
    charts = page.all("svg")
    assert [c["data-chart"] for c in charts] == ["orders", "revenue"]
    assert all(c["role"] == "img" for c in charts)
    rects = [a for t, a in page.tags if t == "rect"]
    assert len(rects) == 24 + 14
    hour_bars = rects[:24]
    assert [float(r["height"]) > 0 for r in hour_bars].count(True) == 1  # A1, A2, B1: all 21:xx
    assert "3 orders in the last 24 hours; busiest hour 21:00 with 3" in html
    assert len(data["chart_view"]["orders"]["bars"]) == 24 and len(data["charts"]["revenue_per_day"]) == 14
    assert page.all("script")[0]["src"].startswith("/static/dashboard.js?v=")


async def test_dashboard_counts_the_actor_process_group(en: TestClient[Any, Any], bridge: FakeBridge,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The status's pgid selects the actors' processes (here: this test process's own group)."""
    real = bridge.status

    async def with_pgid() -> QueryResult:
        result = await real()
        return QueryResult(result.request_id, 200, {**result.data, "pgid": os.getpgid(0)})

    monkeypatch.setattr(bridge, "status", with_pgid)
    await login(en)
    data = await (await en.get("/api/dashboard")).json()
    assert data["processes"] >= 1 and data["memory_bytes"] > 0 and data["cpu_percent"] is not None


async def test_pages_say_when_the_bot_is_not_answering(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(en)
    bridge.fail = bridge_error()
    for path in PAGES:
        html, page = await get_page(en, path, status=503)
        assert "The bot is not answering right now. The page will work again once it is back." in html and page.all("nav"), path
    assert (await en.get("/api/dashboard")).status == 503


# --- orders -----------------------------------------------------------------------------------


def last_filters(bridge: FakeBridge) -> dict[str, Any]:
    return [c for c in bridge.calls if c[0] == "list_orders"][-1][1]


async def test_orders_table_filters_and_live_setup(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(en)
    html, page = await get_page(en, "/orders")
    assert [r["data-id"] for r in page.all("tr") if r.get("data-id")] == ["B1", "A2", "A1", "B2"]
    table = page.all("table", id="orders")[0]
    assert table["data-offset"] == "0" and table["data-total"] == "4" and table["data-limit"] == "25"
    assert page.all("p", id="live")
    assert page.all("template", id="row-tpl")
    # Only the buttons the state machine allows: A1 pending; B2 completed, approved just now, so
    # only an Undo within the shop's undo window (2 min).
    a1 = html[html.index('data-id="A1"'):html.index("</tr>", html.index('data-id="A1"'))]
    assert [v for v in re.findall(r'value="(\w+)"', a1)] == ["process", "approve", "cancel", "delete"]
    b2 = html[html.index('data-id="B2"'):html.index("</tr>", html.index('data-id="B2"'))]
    assert re.findall(r'<button[^>]*value="(\w+)"', b2) == ["undo"]
    assert "Recovered" in b2

    html, page = await get_page(en, f"/orders?status=pending&group={ALPHA}&q=rah&since=2025-11-24&until=2025-11-24")
    assert last_filters(bridge) == {"status": "pending", "group": ALPHA, "q": "rah", "since": NOW - 22 * 3600,
                                    "until": NOW + 2 * 3600, "limit": 25, "offset": 0}
    assert [r["data-id"] for r in page.all("tr") if r.get("data-id")] == ["A1"]
    assert page.all("option", value="pending")[0].get("selected") == ""
    assert page.all("input", name="q")[0]["value"] == "rah"
    table = page.all("table", id="orders")[0]
    assert (table["data-status"], table["data-group"], table["data-since"]) == ("pending", ALPHA, "2025-11-24")


async def test_bad_filters_are_shown_and_ignored(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(en)
    html, page = await get_page(en, "/orders?status=shipped&since=yesterday&offset=-3&limit=9999")
    assert html.count('class="error"') == 4
    assert last_filters(bridge) == {"status": "", "group": "", "q": "", "since": None, "until": None,
                                    "limit": 25, "offset": 0}
    assert len([r for r in page.all("tr") if r.get("data-id")]) == 4


async def test_pagination_keeps_the_filters(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    for i in range(60):
        bridge.add_order(ALPHA, 1 + i, user_name=f"Bulk {i}", created_at=NOW - 7200 - i)
    await login(en)
    html, page = await get_page(en, f"/orders?group={ALPHA}")
    assert len([r for r in page.all("tr") if r.get("data-id")]) == 25
    assert "1–25 of 62" in html
    [next_link] = page.all("a", rel="next")
    assert not page.all("a", rel="prev")
    assert next_link["href"] == f"/orders?group={ALPHA.replace('@', '%40')}&offset=25"
    html, page = await get_page(en, next_link["href"])
    assert "26–50 of 62" in html and last_filters(bridge)["offset"] == 25
    assert page.all("a", rel="prev")[0]["href"] == f"/orders?group={ALPHA.replace('@', '%40')}"
    html, page = await get_page(en, f"/orders?group={ALPHA}&offset=50&limit=10")
    assert "51–60 of 62" in html and page.all("a", rel="next")[0]["href"].endswith("limit=10&offset=60")


async def test_order_detail_shows_every_field(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    await login(en)
    html, page = await get_page(en, "/orders/A2")
    for text in ("Order A2", "Processing", "Processing too long", "processing_timeout", "Audit trail",
                 "Check log", "Delivery message", "Receipt message", "Alpha Resellers", ALPHA, "Karim",
                 "76210050711676@lid", "8801712345678@s.whatsapp.net", "৳100", "৳2500", ".25",
                 "21:30:00", "admin:setup"):
        assert text in html, text
    html, _ = await get_page(en, "/orders/A1")
    assert "21:59:55" in html  # the last check
    html, _ = await get_page(en, "/orders/Z9", status=404)
    assert "There is no order Z9" in html


NOTES = ["recovered after downtime; held: the due limit was reached", "edited in WhatsApp: .10 → .100",
         "issue raised: stuck_pending", "issue raised: delivery_failed (timeout after 5 s)",
         "issue cleared: stuck_pending", "delivery message sent", "the due is within the limit again",
         "imported from the seed's database.json (id 17)", "a note nobody knows"]


@pytest.mark.parametrize("language, shown", [
    ("bn", ["বট বন্ধ থাকার পর উদ্ধার করা; আটকে রাখা: বকেয়ার সীমা পূর্ণ", "হোয়াটসঅ্যাপে বদলানো: .10 → .100",
            "সমস্যা ধরা পড়েছে: অনেকক্ষণ অপেক্ষমাণ", "সমস্যা ধরা পড়েছে: ডেলিভারি বার্তা যায়নি (timeout after 5 s)",
            "সমস্যা মিটেছে: অনেকক্ষণ অপেক্ষমাণ", "ডেলিভারি বার্তা পাঠানো হয়েছে", "বকেয়া আবার সীমার মধ্যে",
            "পুরোনো বটের database.json থেকে আনা (আইডি 17)", "a note nobody knows"]),
    ("en", ["recovered after downtime; held: the due limit was reached", "edited in WhatsApp: .10 → .100",
            "issue raised: Pending too long", "issue raised: Delivery failed (timeout after 5 s)",
            "issue cleared: Pending too long", "delivery message sent", "the due is within the limit again",
            "imported from the seed's database.json (id 17)", "a note nobody knows"]),
])
async def test_audit_notes_read_in_the_panels_language(tmp_path: Path, bridge: FakeBridge, language: str,
                                                       shown: list[str]) -> None:
    record = bridge.record("A1")
    entry = record["audit"][0]
    record["audit"] = [{**entry, "note": note} for note in NOTES]
    stored = orjson.dumps(record)
    async with await make_client(tmp_path, bridge, **{"bot.language": language}) as c:
        await login(c)
        html, page = await get_page(c, "/orders/A1")
    audit = html[html.index("<tbody", html.rindex('scope="col"')):]
    cells = [Page(row).text[-1] for row in audit.split("</tr>")[:len(NOTES)]]
    assert cells == shown
    assert orjson.dumps(bridge.record("A1")) == stored  # the stored notes stay as they are


async def test_phone_cards_are_labelled_in_the_panels_language(tmp_path: Path, bridge: FakeBridge) -> None:
    async with await make_client(tmp_path, bridge, **{"bot.language": "bn"}) as c:
        assert (await c.get("/labels.css", allow_redirects=False)).status == 303  # a logged-in page's
        await login(c)
        html, page = await get_page(c, "/orders")
        assert page.all("link", rel="stylesheet", href="/labels.css")
        resp = await c.get("/labels.css")
        css = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/css"
    assert '.orders td:nth-child(5) { --label: "প্লেয়ার আইডি"; }' in css
    assert '.orders td:nth-child(6) { --label: "ডায়মন্ড"; }' in css
    assert '.groups td:nth-child(3) { --label: "রেট (প্রতি ডায়মন্ড ৳)"; }' in css
    assert ".groups td:nth-child(1)" not in css  # the group's name heads its card
    assert pages.css_string('a"b\\c\nd') == '"a\\22 b\\5c c\\a d"'


# --- actions without JavaScript ---------------------------------------------------------------


async def post_form(client: TestClient[Any, Any], path: str, token: str, **fields: str) -> Any:
    return await client.post(path, data={"csrf_token": token, **fields}, allow_redirects=False)


async def test_approve_by_form_then_flash(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(en)
    resp = await post_form(en, "/orders/A1", token, action="approve", next="/orders?status=pending")
    assert resp.status == 303 and resp.headers["Location"] == "/orders?status=pending"
    assert bridge.record("A1")["status"] == "completed"  # the fake transport delivered at once
    assert ("command", "A1", "approve", "admin:admin") in bridge.calls
    html, _ = await get_page(en, "/orders?status=pending")
    assert "Order A1 approved" in html
    html, _ = await get_page(en, "/orders")
    assert "Order A1 approved" not in html  # shown once


async def test_cancel_and_delete_ask_first(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(en)
    for action in ("cancel", "delete"):
        resp = await post_form(en, "/orders/A1", token, action=action, next="/orders")
        html = await resp.text()
        assert resp.status == 200 and "Please confirm" in html, action
        page = Page(html)
        assert page.all("input", name="confirm")[0]["value"] == "yes"
        assert page.all("input", name="action")[0]["value"] == action
        assert page.all("input", name="csrf_token")[0]["value"] == token
        assert bridge.record("A1")["status"] == "pending"
    resp = await post_form(en, "/orders/A1", token, action="cancel", confirm="yes", next="/orders")
    assert resp.status == 303 and bridge.record("A1")["status"] == "cancelled"


async def test_refused_actions_say_why(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(en)
    resp = await post_form(en, "/orders/B2", token, action="approve")
    assert resp.status == 409 and "Not done" in await resp.text()
    assert bridge.record("B2")["status"] == "completed"
    assert (await post_form(en, "/orders/Z9", token, action="approve")).status == 404
    assert (await post_form(en, "/orders/A1", token, action="explode")).status == 400
    assert (await post_form(en, "/orders/A1", token)).status == 400
    # `next` never leads to another site.
    resp = await post_form(en, "/orders/A1", token, action="process", next="//evil.example/x")
    assert resp.status == 303 and resp.headers["Location"] == "/orders/A1"
    app = en.server.app  # type: ignore[union-attr]
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "orders", "/x\r\nSet-Cookie: a=b",
                 "/\t/evil.example", "/\t/\t/evil.example", "/ /evil.example", "/\x0b/evil.example",
                 "/\u2028/evil.example", "/%09/evil.example", "/nowhere", "/api/orders", "/static/panel.css",
                 "/orders/A1/../../x", "http:/orders", "/orders#\tx"):
        assert safe_next(app, evil, "/orders") == "/orders", evil
    for ok in ("/orders?status=pending&offset=25", "/orders/A1", "/", "/groups/120363000000000001@g.us/ledger",
               "/reports?day=2025-11-24"):
        assert safe_next(app, ok, "/") == ok, ok
    # A tab in `next`, after a confirmation and on the confirmation page's links.
    for evil in ("/\t/evil.example", "/%09/evil.example", "/nowhere"):
        resp = await post_form(en, "/orders/A1", token, action="cancel", next=evil)
        html = await resp.text()
        assert resp.status == 200 and 'href="/orders/A1"' in html and "evil" not in html, evil
        assert 'name="next" value="/orders/A1"' in html
        resp = await post_form(en, "/orders/B1", token, action="process", next=evil)
        # The first processes B1 (303 back to it), the next are refused (409, a link back to it).
        assert resp.status in (303, 409) and "evil" not in resp.headers.get("Location", ""), evil
        assert "evil" not in await resp.text() and resp.headers.get("Location", "/orders/B1") == "/orders/B1"


async def test_group_settings_by_form(en: TestClient[Any, Any], bridge: FakeBridge) -> None:
    token = await login(en)
    html, page = await get_page(en, "/groups")
    assert page.all("input", name="rate")[0]["value"] == "100.00"
    assert page.all("input", name="rate")[1]["value"] == "2.30"
    resp = await post_form(en, f"/groups/{ALPHA}", token, settings="1", rate="2.5", enabled="on",
                           auto_approve="on", auto_approve_max="50")
    assert resp.status == 303 and resp.headers["Location"] == "/groups#g-A"
    settings = bridge.db.groups[ALPHA].settings
    assert (settings["rate"], settings["enabled"], settings["autoApprove"], settings["autoApproveMax"]) == \
        ("2.50", True, True, 50)
    resp = await post_form(en, f"/groups/{ALPHA}", token, settings="1", rate="2.50")  # boxes unticked
    assert resp.status == 303 and bridge.db.groups[ALPHA].settings["enabled"] is False
    # The due limit: set, shown, and emptied again (no limit).
    resp = await post_form(en, f"/groups/{ALPHA}", token, settings="1", rate="2.50", due_limit="5000")
    assert resp.status == 303 and bridge.db.groups[ALPHA].settings["dueLimit"] == "5000.00"
    html, page = await get_page(en, "/groups")
    assert page.all("input", name="due_limit")[0]["value"] == "5000.00"
    assert page.all("input", name="due_limit")[1]["value"] == ""
    resp = await post_form(en, f"/groups/{ALPHA}", token, settings="1", rate="2.50", due_limit="")
    assert resp.status == 303 and bridge.db.groups[ALPHA].settings["dueLimit"] is None
    before = bridge.snapshot()
    for fields in ({"rate": "abc"}, {"rate": "-1"}, {"rate": "1.23456"}, {"rate": "5", "auto_approve_max": "x"},
                   {"rate": "5", "due_limit": "1e3"}, {"rate": "5", "due_limit": "-5"},
                   {"rate": "5", "auto_approve": "on", "auto_approve_max": "0"}):
        resp = await post_form(en, f"/groups/{ALPHA}", token, settings="1", **fields)
        assert resp.status == 400 and "Not done" in await resp.text(), fields
    assert (await post_form(en, f"/groups/{ALPHA}", token, rate="5")).status == 400  # not the settings form
    assert (await post_form(en, "/groups/nope@g.us", token, settings="1", rate="5")).status == 404
    assert bridge.snapshot() == before


# --- reconciliation, groups, whatsapp ---------------------------------------------------------


async def test_reconciliation_page_links_issues_and_lists_cycles(en: TestClient[Any, Any]) -> None:
    await login(en)
    html, page = await get_page(en, "/reconciliation")
    assert page.all("a", href="/orders/A2")
    assert "Processing too long" in html
    assert "Alpha Resellers" in html and "0.4 ms" in html


async def test_groups_page_counts_orders(en: TestClient[Any, Any]) -> None:
    await login(en)
    html, page = await get_page(en, "/groups")
    rows = [a for a in page.all("tr") if a.get("data-id")]
    assert [r["data-id"] for r in rows] == [ALPHA, BETA]
    assert "2 open" in html and "1 open" in html
    assert page.all("a", href=f"/orders?group={ALPHA.replace('@', '%40')}")


async def test_whatsapp_page_for_the_sandbox(tmp_path: Path, bridge: FakeBridge) -> None:
    async with await make_client(tmp_path, bridge, **{"bot.language": "en",
                                                       "sandbox.url": "http://127.0.0.1:8111"}) as c:
        await login(c)
        html, page = await get_page(c, "/whatsapp")
        assert "Connected" in html and "Sandbox" in html
        assert page.all("a", href="http://127.0.0.1:8111/")
        assert "http://127.0.0.1:8111" in html
        assert not page.all("img", id="qr")


async def test_whatsapp_page_for_whatsapp(en: TestClient[Any, Any], bridge: FakeBridge,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real = bridge.status

    async def whatsapp_status() -> QueryResult:
        result = await real()
        gateway = {**result.data["gateway"], "kind": "whatsapp", "state": "pairing",
                   "detail": '{"qr": "2@secret-payload", "expires_at": 1764000060}'}
        return QueryResult(result.request_id, 200, {**result.data, "gateway": gateway})

    monkeypatch.setattr(bridge, "status", whatsapp_status)
    # The transport's panel routes (GET /api/whatsapp, its QR, POST re-pair) by contract only.
    monkeypatch.setattr(pages, "has_route", lambda *a: True)
    token = await login(en)
    html, page = await get_page(en, "/whatsapp")
    assert "Waiting for pairing" in html and "secret-payload" not in html  # the QR is an image, not text
    box = page.all("section", id="wa")[0]
    assert box["data-kind"] == "whatsapp" and box["data-api"] == "/api/whatsapp"
    assert box["data-qr"] == "/api/whatsapp/qr.svg"
    assert page.all("img", id="qr") and page.all("form", id="repair")[0]["action"] == "/api/whatsapp/repair"
    assert page.all("input", name="csrf_token", value=token)
    # Without the transport's panel routes the page says so instead of showing dead controls.
    monkeypatch.setattr(pages, "has_route", lambda *a: False)
    html, page = await get_page(en, "/whatsapp")
    assert "The WhatsApp controls are not available in this version of the bot." in html and not page.all("form", id="repair")


# --- weight, scripts, words -------------------------------------------------------------------


async def test_every_page_weighs_under_55_kb(tmp_path: Path, bridge: FakeBridge) -> None:
    """A full page of orders in Bengali, with its stylesheet, script and icon (cheap phones,
    poor connections). 55 KB since the tables became cards on a phone (their layout and column
    labels); the page was at 49.4 KB before."""
    for i in range(30):  # orders with players to top up: phone numbers, the longest kind
        bridge.add_order(ALPHA, 10 + i, user_name=f"রহিম স্টোর {i}", created_at=NOW - 60 * i,
                         issues=(Issue.STUCK_PENDING,) if i % 5 == 0 else (), player_id=f"+88017123456{i:02d}")
    async with await make_client(tmp_path, bridge, **{"bot.language": "bn"}) as c:
        await login(c)
        for path in PAGES:
            html, page = await get_page(c, path)
            assets = [a["href"] for t, a in page.tags if t == "link"] + [a["src"] for a in page.all("script")]
            assets += [a["src"] for a in page.all("img") if a.get("src", "").startswith("/static/")]
            total = len(html.encode())
            for url in set(assets):
                resp = await c.get(url)
                assert resp.status == 200, url
                total += len(await resp.read())
            assert total < 55 * 1024, (path, total)


def test_scripts_never_write_html() -> None:
    """Scripts set text and attributes only; user text can never become markup."""
    for script in STATIC.glob("*.js"):
        text = script.read_text()
        for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert risky not in text, (script.name, risky)


def test_formats() -> None:
    t = i18n.words("en")
    assert (i18n.taka("1000.00"), i18n.taka("23.50"), i18n.taka(None)) == ("৳1000", "৳23.50", "—")
    # Large amounts in the lakh/crore grouping the shops read; four digits as the chat writes them.
    assert [i18n.taka(v) for v in ("10000000.00", "150000", "12345.50", "9999", "-100000")] == [
        "৳1,00,00,000", "৳1,50,000", "৳12,345.50", "৳9999", "৳-1,00,000"]
    assert (i18n.size(812), i18n.size(49_300), i18n.size(3_250_000)) == ("812 B", "48.1 KB", "3.1 MB")
    assert i18n.duration(3 * 86400 + 4 * 3600 + 5, t) == "3 d 4 h"
    assert i18n.duration(65, i18n.words("bn")) == "1 মিনিট 5 সেকেন্ড"
    from zoneinfo import ZoneInfo
    dhaka = ZoneInfo("Asia/Dhaka")
    assert i18n.when("2025-11-24T16:00:00.000+00:00", dhaka) == "2025-11-24 22:00"
    assert i18n.when(None, dhaka) == "—"
    assert (nice_ceiling(0, 2), nice_ceiling(7, 2), nice_ceiling(34_685, 100)) == (2, 10, 50_000)
    assert (compact(0), compact(1.5), compact(25_000), compact(1_200_000)) == ("0", "1.5", "25k", "1.2M")
    chart = bar_chart([0, 5, 10], ["a", "", "c"], ["x", "y", "z"], minimum=2, tick_text=compact)
    assert [b["h"] for b in chart["bars"]] == [0.0, 80.0, 160.0]
    assert [k["label"] for k in chart["ticks"]] == ["0", "5", "10"]


def test_report_json_keeps_the_dashboard_fields() -> None:
    from zoneinfo import ZoneInfo
    raw = {"counts": {"pending": 1}, "total": 1, "open_orders": 1, "checks_today": 8640, "cycles_today": 360,
           "cycles_per_hour": 360, "cycle_time_ms": 0.42,
           "charts": {"orders_per_hour": [{"hour": "2025-11-24T16:00:00+00:00", "orders": 3}],
                      "revenue_per_day": [{"day": "2025-11-24", "amount": "1000.00"}]},
           "storage": {"journal_bytes": 100, "snapshot_bytes": 50, "orders": 1, "groups": 1, "commits": 9}}
    out = report_json(raw, ZoneInfo("Asia/Dhaka"))
    assert (out["open_orders"], out["checks_today"], out["cycles_today"], out["cycles_per_hour"],
            out["cycle_time_ms"]) == (1, 8640, 360, 360, 0.42)
    assert out["charts"]["orders_per_hour"] == [{"hour": "2025-11-24T22:00:00.000+06:00", "orders": 3}]
    assert out["charts"]["revenue_per_day"] == [{"day": "2025-11-24", "amount": "1000.00"}]
    assert out["storage"] == {"journal_bytes": 100, "snapshot_bytes": 50, "orders": 1, "groups": 1}
    assert report_json({}, ZoneInfo("Asia/Dhaka"))["charts"] == {"orders_per_hour": [], "revenue_per_day": []}


# --- process metrics --------------------------------------------------------------------------


def fake_proc(root: Path, processes: dict[int, tuple[int, int, int, int]], uptime: float = 1000.0) -> None:
    """/proc with processes {pid: (pgid, cpu ticks, start ticks, pss kB)}."""
    root.mkdir(exist_ok=True)
    (root / "uptime").write_text(f"{uptime} 0\n")
    for pid, (pgid, ticks, start, pss) in processes.items():
        d = root / str(pid)
        d.mkdir(exist_ok=True)
        fields = ["S", "1", str(pgid), "0", "0", "0", "0", "0", "0", "0", "0", str(ticks), "0", "0", "0",
                  "20", "0", "1", "0", str(start), "0"]
        (d / "stat").write_text(f"{pid} (py (actor) x) " + " ".join(fields) + "\n")
        (d / "smaps_rollup").write_text(f"00400000-7fff [rollup]\nRss:    9000 kB\nPss:  {pss} kB\n")


def test_sampler_sums_pss_and_measures_cpu_since_the_last_sample(tmp_path: Path) -> None:
    from web.metrics import CLOCK_TICKS
    proc = tmp_path / "proc"
    fake_proc(proc, {10: (10, 0, 100, 4000), 11: (10, 0, 100, 1000), 12: (99, 0, 100, 7777), 50: (50, 0, 100, 2000)})
    now = [100.0]
    sampler = ProcessSampler(proc=proc, clock=lambda: now[0], min_interval=2.0)
    first = sampler.sample(10, [50])
    assert first.memory_bytes == (4000 + 1000 + 2000) * 1024 and first.processes == 3  # not pid 12
    # One second of wall time, half a second of CPU in the group's processes: 50 %.
    fake_proc(proc, {10: (10, CLOCK_TICKS // 4, 100, 4000), 11: (10, CLOCK_TICKS // 4, 100, 1000),
                     12: (99, 10 * CLOCK_TICKS, 100, 7777), 50: (50, 0, 100, 2000)})
    now[0] += 1.0
    assert sampler.sample(10, [50]) == first  # within min_interval: the last answer
    now[0] += 1.0
    assert sampler.sample(10, [50]).cpu_percent == 25.0  # over the 2 s since the first sample
    # A reused pid (a new start time) counts from zero, not from the old process's ticks.
    fake_proc(proc, {10: (10, CLOCK_TICKS, 999, 4000)})
    (proc / "11" / "stat").unlink()
    now[0] += 2.0
    usage = sampler.sample(10, [])
    assert usage.cpu_percent == 50.0 and usage.processes == 1  # 11 is gone, 50 no longer asked for


def test_real_processes_are_readable() -> None:
    usage = ProcessSampler(min_interval=0).sample(None, [os.getpid()])
    assert usage.processes == 1 and usage.memory_bytes and usage.memory_bytes > 1_000_000
    assert pss_bytes(2**22 + 12345) is None  # no such process
