"""The panel's pages with issue 12's data, over the in-memory bridge, in Bengali and English: the
player to top up in the orders table (also the live row template and the phone cards' labels),
on the order page and in the search; the Groups page with a group that has no rate yet (an empty
field and a clear mark), one the bot left, one without orders, their joined and left times; the
rate of a group without orders set by the row's form; and every other page still rendering
with such groups about."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from domain.orders import Action
from tests.fake_bridge import FakeBridge, login
from tests.test_panel_pages import get_page, make_client, post_form
from web import i18n

NOW = 1_764_000_000.0  # FakeClock's start: 2025-11-24 22:00 in Dhaka
HOUR = 3600
ALPHA = "120363000000000001@g.us"
FRESH = "120363000000000002@g.us"  # no rate, no order
GONE = "120363000000000003@g.us"  # the bot left it
GAME_ID = "576515275"
PHONE = "+8801712345678"
PAGES = ["/", "/orders", "/orders/A1", "/reconciliation", "/groups", "/payments", "/reports",
         f"/groups/{FRESH}/ledger", f"/groups/{GONE}/ledger", f"/orders?group={FRESH}", f"/payments?group={FRESH}"]

pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.fixture
def bridge() -> FakeBridge:
    b = FakeBridge()
    b.add_group("Alpha Resellers", rate="2.30", group_id=ALPHA, joined_at=NOW - 48 * HOUR)
    b.add_group("নতুন গ্রুপ", rate=None, group_id=FRESH, joined_at=NOW - HOUR)
    b.add_group("Gone Shop", rate="3", group_id=GONE, joined_at=NOW - 72 * HOUR)
    b.add_order(ALPHA, 50, user_name="Rahim", created_at=NOW - 600, player_id=GAME_ID)  # A1
    b.add_order(ALPHA, 100, user_name="Karim", created_at=NOW - 300, player_id=PHONE)  # A2
    b.add_order(ALPHA, 10, user_name="Sumi", created_at=NOW - 200)  # A3: `.10`, no player
    b.add_order(GONE, 10, created_at=NOW - 50 * HOUR, actions=(Action.APPROVE, Action.COMPLETE))  # C1
    b.leave_group(GONE, at=NOW - 30 * HOUR)
    return b


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


class Table(HTMLParser):
    """The header and the rows (cell texts) of the table with `id`, and the page's <template> row."""

    def __init__(self, html: str, table_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id = table_id
        self.inside = self.in_body = self.in_template = False
        self.head: list[str] = []
        self.rows: list[list[str]] = []
        self.template: list[str] = []
        self.cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif tag == "template":
            self.in_template = True
        elif tag == "tbody" and self.inside:
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append([])
        elif tag in ("td", "th") and (self.inside or self.in_template):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            text = " ".join("".join(self.cell).split())
            (self.template if self.in_template else self.rows[-1] if self.in_body else self.head).append(text)
            self.cell = None
        elif tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.inside = False
        elif tag == "template":
            self.in_template = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def column(self, name: str) -> list[str]:
        at = self.head.index(name)
        return [row[at] for row in self.rows]


# --- the player ------------------------------------------------------------------------------


async def test_the_orders_table_has_a_player_column(client: TestClient[Any, Any]) -> None:
    await login(client)
    t = i18n.words(client.language)  # type: ignore[attr-defined]
    html, _ = await get_page(client, "/orders")
    table = Table(html, "orders")
    player = t._("Player")
    assert player == ("Player" if client.language == "en" else "প্লেয়ার আইডি")  # type: ignore[attr-defined]
    assert table.head.index(player) == table.head.index(t._("Reseller")) + 1
    assert table.column(player) == ["—", PHONE, GAME_ID, "—"]  # A3, A2, A1, C1: newest first
    assert table.column(t._("Diamonds")) == ["10", "100", "50", "10"]
    assert all(len(row) == len(table.head) for row in table.rows)
    # The live rows' template has the same cells (orders.js fills them by position).
    assert len(table.template) == len(table.head)
    # On a phone each cell of the card is labelled with its column's name.
    css = await (await client.get("/labels.css")).text()
    at = table.head.index(player) + 1
    assert f'.orders td:nth-child({at}) {{ --label: "{player}"; }}' in css


async def test_the_search_finds_the_player(en: TestClient[Any, Any]) -> None:
    await login(en)
    html, page = await get_page(en, f"/orders?q={GAME_ID}")
    assert Table(html, "orders").column("Player") == [GAME_ID]
    assert page.all("input", name="q")[0]["placeholder"] == "User, name, phone, player ID, order or message id"
    assert page.all("table", id="orders")[0]["data-q"] == GAME_ID  # the live rows are filtered the same way
    html, _ = await get_page(en, "/orders?q=%2B88017123")
    assert Table(html, "orders").column("Player") == [PHONE]


async def test_the_order_page_shows_the_player(client: TestClient[Any, Any]) -> None:
    await login(client)
    t = i18n.words(client.language)  # type: ignore[attr-defined]
    label = t._("Player ID")
    assert label == ("Player ID" if client.language == "en" else "প্লেয়ার আইডি")  # type: ignore[attr-defined]
    html, _ = await get_page(client, "/orders/A1")
    assert f"<dt>{label}</dt><dd>{GAME_ID}</dd>" in html
    html, _ = await get_page(client, "/orders/A3")
    assert f"<dt>{label}</dt><dd>{t._('—')}</dd>" in html


# --- the groups page -------------------------------------------------------------------------


async def test_the_groups_page_lists_every_known_group(client: TestClient[Any, Any]) -> None:
    await login(client)
    lang = client.language  # type: ignore[attr-defined]
    t = i18n.words(lang)
    html, page = await get_page(client, "/groups")
    rows = [a for a in page.all("tr") if a.get("data-id")]
    assert [r["data-id"] for r in rows] == [ALPHA, FRESH, GONE]  # also the one without orders
    assert [r["data-rate-set"] for r in rows] == ["1", "0", "1"]
    rates = page.all("input", name="rate")
    # No rate: an empty field, not required (the rest of the row can be saved), and the mark.
    assert rates[1]["value"] == "" and "required" not in rates[1]
    assert "required" in rates[0] and "required" in rates[2] and rates[0]["value"] == "2.30"
    mark = t._("Rate not set — orders are refused until you set it")
    assert mark == {"en": "Rate not set — orders are refused until you set it",
                    "bn": "রেট দেওয়া হয়নি — রেট না দেওয়া পর্যন্ত অর্ডার নেওয়া হবে না"}[lang]
    assert html.count(mark) == 1
    described = page.all("small", **{"class": "unset"})[0]["id"]
    assert rates[1]["aria-describedby"] == described
    assert t._("Groups without a rate: %(n)s. Their orders are refused until you set the rate below.", n=1) in html
    assert page.all("input", name="rate_set", value="0") and len(page.all("input", name="rate_set")) == 1
    # The group the bot left stays, marked, its inputs still there; joined and left times.
    left = t._("Left the group")
    assert left == {"en": "Left the group", "bn": "গ্রুপ ছেড়েছে"}[lang]
    heads = Table(html, "groups").rows
    assert left in heads[2][0] and left not in heads[0][0] and left not in heads[1][0]
    assert t._("Joined %(time)s", time="2025-11-21 22:00") in heads[2][0]
    assert t._("Left %(time)s", time="2025-11-23 16:00") in heads[2][0]
    assert t._("Joined %(time)s", time="2025-11-24 21:00") in heads[1][0]
    assert len(page.all("input", name="enabled")) == 3


async def test_no_mark_when_every_group_has_a_rate(tmp_path: Path) -> None:
    bridge = FakeBridge()
    bridge.add_group("Alpha", rate="2.30", group_id=ALPHA, old_record=True)
    async with await make_client(tmp_path, bridge, **{"bot.language": "en"}) as c:
        await login(c)
        html, page = await get_page(c, "/groups")
    assert "Rate not set" not in html and "Groups without a rate" not in html and not page.all("input", name="rate_set")
    assert "Joined" not in html and "Left" not in html  # an old record says neither


async def test_the_rate_of_a_group_without_orders_is_set_by_its_form(en: TestClient[Any, Any],
                                                                     bridge: FakeBridge) -> None:
    token = await login(en)
    # Other settings first, the rate field left empty: saved, the rate stays unset.
    resp = await post_form(en, f"/groups/{FRESH}", token, settings="1", rate_set="0", rate="", due_limit="4000")
    assert resp.status == 303 and resp.headers["Location"] == "/groups#g-B"
    settings = bridge.db.groups[FRESH].settings
    assert (settings["rate"], settings["enabled"], settings["dueLimit"]) == (None, False, "4000.00")
    assert bridge.calls[-1][2] == {"enabled": False, "auto_approve": False, "due_limit": "4000"}
    # An empty rate from anywhere else is refused, and changes nothing.
    before = bridge.snapshot()
    resp = await post_form(en, f"/groups/{FRESH}", token, settings="1", rate="", enabled="on")
    assert resp.status == 400 and "rate: required" in await resp.text()
    resp = await post_form(en, f"/groups/{FRESH}", token, settings="1", rate_set="0", rate="0", enabled="on")
    assert resp.status == 400 and "Not done" in await resp.text()
    assert bridge.snapshot() == before
    # The rate: set, and the mark is gone.
    resp = await post_form(en, f"/groups/{FRESH}", token, settings="1", rate_set="0", rate="2.5", enabled="on")
    assert resp.status == 303
    assert bridge.db.groups[FRESH].settings["rate"] == "2.50"
    html, page = await get_page(en, "/groups")
    assert "Rate not set" not in html and "Groups without a rate" not in html
    assert page.all("input", name="rate")[1]["value"] == "2.50" and "required" in page.all("input", name="rate")[1]
    assert "Group নতুন গ্রুপ saved." in html
    # A left group's form works too.
    resp = await post_form(en, f"/groups/{GONE}", token, settings="1", rate="3.10", enabled="on")
    assert resp.status == 303 and bridge.db.groups[GONE].settings["rate"] == "3.10"


# --- every other page --------------------------------------------------------------------------


async def test_every_page_renders_with_groups_without_rate_orders_or_membership(client: TestClient[Any, Any]) -> None:
    await login(client)
    t = i18n.words(client.language)  # type: ignore[attr-defined]
    for path in PAGES:
        html, page = await get_page(client, path)
        assert page.all("h1"), path
        assert t._("Something went wrong") not in html, path
    # The group without orders is offered wherever groups are picked.
    for path in ("/orders", "/payments", "/reports"):
        html, page = await get_page(client, path)
        assert page.all("option", value=FRESH), path
    html, _ = await get_page(client, f"/groups/{FRESH}/ledger")
    assert "নতুন গ্রুপ" in html
