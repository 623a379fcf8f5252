"""The shop's settings and their panel patches (domain/shop.py), and the stock derived from
the orders (storage/database.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.desk_setup import text_rules
from config import load_config
from config.loader import LANGUAGES, TEMPLATE_NAMES
from domain.admins import AdminRoster
from domain.records import OrderRecord, ShopRecord
from domain.shop import (
    OFF_BY_DEFAULT,
    ShopError,
    ShopSettings,
    TextRules,
    apply_patch,
    check_admins,
    patch_shop,
    from_config,
    reminder_targets,
    shop_view,
    stored,
    with_stored,
)
from domain.texts import offered
from storage.database import Database

RULES = TextRules(TEMPLATE_NAMES, {name: offered(name) for name in TEMPLATE_NAMES}, LANGUAGES, "bn")
T0 = 1_764_000_000.0
DEFAULTS = from_config(120.0, False, False, ("bkash", "nagad"), 300.0)


def test_a_patch_changes_what_it_names_and_says_what() -> None:
    s, what = apply_patch(DEFAULTS, {"open": False, "notice": "আজ বন্ধ, কাল সকাল ১০টায় খুলবে", "stock": 5000,
                                      "payment": {"enabled": True, "keywords": ["bkash", "বিকাশ"], "cooldown": 600,
                                                  "text": "বিকাশ: 01711111111"},
                                      "approvals": {"undo_window": 300, "delivery_waits_for_undo": True},
                                      "texts": {"en": {"received": "got {order_id}"}},
                                      "texts_enabled": {"auto_approved": True, "received": False}}, RULES, T0)
    assert (s.open, s.stock, s.stock_set_at) == (False, 5000, T0)
    assert s.texts == {"bn": {"shop_closed": "আজ বন্ধ, কাল সকাল ১০টায় খুলবে", "payment_numbers": "বিকাশ: 01711111111"},
                       "en": {"received": "got {order_id}"}}
    assert (s.payment_numbers, s.keywords, s.cooldown) == (True, ("bkash", "বিকাশ"), 600.0)
    assert (s.undo_window, s.delivery_waits_for_undo) == (300.0, True)
    assert s.texts_off == frozenset({"received"})
    assert "closed the shop" in what and "stock 5000" in what
    assert with_stored(DEFAULTS, stored(s)) == s  # what the journal keeps reads back the same


def test_a_text_reset_goes_back_to_the_config_and_null_stock_stops_counting() -> None:
    s, _ = apply_patch(DEFAULTS, {"texts": {"bn": {"received": "x {order_id}"}}, "stock": 10}, RULES, T0)
    s, _ = apply_patch(s, {"texts": {"bn": {"received": None}}, "stock": None}, RULES, T0)
    assert s.texts == {} and s.stock is None and s.stock_set_at is None


@pytest.mark.parametrize(("patch", "says"), [
    ({}, "nothing to change"),
    ({"open": "no"}, "open: true or false"),
    ({"stock": -1}, "stock:"),
    ({"stock": 2.5}, "stock:"),
    ({"stock": True}, "stock:"),
    ({"notice": ""}, "notice: write the text"),  # named as the panel sent it
    ({"open_notice": " "}, "open_notice: write the text"),
    ({"payment": {"text": "{order_id}"}}, "payment.text: {order_id} is not a placeholder this text offers"),
    ({"notice": "x" * 1001}, "at most 1000"),
    ({"notice": "bad \x07 bell"}, "control"),
    ({"texts": {"fr": {"received": "x"}}}, "not a language"),
    ({"texts": {"bn": {"nonsense": "x"}}}, "not a text the bot writes"),
    ({"texts": {"bn": {"received": "{secret}"}}}, "texts.bn.received: {secret} is not a placeholder"),
    # a placeholder the text is not filled with would only ever be empty in the chat
    ({"texts": {"bn": {"closed_order": "বন্ধ {amount}"}}}, "{amount} is not a placeholder this text offers (use {min}"),
    ({"texts": {"en": {"out_of_stock": "{diamonds} left"}}}, "(use {stock}, {min}, {max})"),
    # a format spec would fail each time the bot writes the text
    ({"texts": {"bn": {"delivered": "✅ {amount:d}"}}}, "write {amount} plainly"),
    ({"texts": {"bn": {"delivered": "✅ {order_id!r}"}}}, "write {order_id} plainly"),
    ({"texts": {"bn": {"received": "{order_id"}}}, "literal brace"),
    ({"texts_enabled": {"delivered": False}}, "cannot be switched off"),
    ({"texts_enabled": {"received": "off"}}, "true or false"),
    ({"payment": {"keywords": []}}, "payment.keywords"),
    ({"payment": {"keywords": ["two words"]}}, "payment.keywords"),
    ({"payment": {"cooldown": -5}}, "payment.cooldown"),
    ({"payment": {"color": "red"}}, "payment.color"),
    ({"approvals": {"undo_window": 7200}}, "approvals.undo_window"),
    ({"approvals": {"delivery_waits_for_undo": 1}}, "true or false"),
    ({"theme": "dark"}, "theme: not a shop setting"),
])
def test_bad_patches_are_refused_naming_the_field(patch: dict[str, Any], says: str) -> None:
    with pytest.raises(ShopError, match=None) as e:
        apply_patch(DEFAULTS, patch, RULES, T0)
    assert says in str(e.value)


def test_admins_named_on_the_panel() -> None:
    assert check_admins(["+880 1711-111111", "76210050711676@lid"]) == ["8801711111111", "76210050711676@lid"]
    for bad in (["hello"], ["123"], "8801711111111", [None], ["8801711111111@g.us"]):
        with pytest.raises(ShopError):
            check_admins(bad)


def test_the_view_shows_every_text_with_its_default_and_the_current_admins() -> None:
    config = load_config(env={})
    s, _ = apply_patch(DEFAULTS, {"texts": {"bn": {"received": "👍 {order_id}"}}, "stock": 100}, RULES, T0)
    roster = AdminRoster().with_admins(["8801711111111"], T0, "config").with_admins([], T0 + 5, "admin:x")
    view = shop_view(s, 60, config.messages, roster, [{"at": T0, "by": "admin:x", "what": "stock 100"}],
                     text_rules(config))
    assert (view["open"], view["stock"], view["admins"]) == (True, 60, [])
    received = view["texts"]["bn"]["received"]
    assert received["text"] == "👍 {order_id}" and received["default"] == config.messages["bn"]["received"]
    assert received["optional"] and received["enabled"]
    # every placeholder the text is filled with, also those its default does not use
    assert received["placeholders"] == ["order_id", "diamonds", "amount", "rate", "player_id", "min", "max"]
    assert view["texts"]["en"]["out_of_stock"]["placeholders"] == ["stock", "min", "max"]
    assert view["texts"]["bn"]["delivered"]["optional"] is False
    assert view["texts"]["en"]["auto_approved"]["enabled"] is ("auto_approved" not in OFF_BY_DEFAULT)
    assert view["notice"] == config.messages["bn"]["shop_closed"]
    assert view["audit"][0]["what"] == "stock 100"


def test_a_patch_of_the_admins_changes_the_roster_with_the_rest_or_nothing() -> None:
    roster = AdminRoster().with_admins(["8801711111111"], T0, "config")
    s, after, what = patch_shop(DEFAULTS, roster, {"admins": ["+880 1811-111111"], "open": False}, RULES, T0 + 1,
                                "admin:x")
    assert after.current() == ["8801811111111"] and s.open is False
    assert what == "closed the shop; added admin 8801811111111; removed admin 8801711111111"
    with pytest.raises(ShopError, match="admins:"):
        patch_shop(DEFAULTS, roster, {"admins": ["hello"], "open": False}, RULES, T0 + 1, "admin:x")


def test_the_audit_names_only_what_a_patch_changed() -> None:
    # A settings form sends every field of its section; the audit says what the owner changed.
    section = {"payment": {"enabled": True, "text": "বিকাশ 017", "keywords": ["bkash"], "cooldown": 60},
               "approvals": {"undo_window": 300, "delivery_waits_for_undo": False}, "notice": "বন্ধ",
               "texts": {"en": {"received": "got {order_id}"}}, "texts_enabled": {"received": True, "duplicate": False}}
    s, first = apply_patch(DEFAULTS, section, RULES, T0)
    assert first == ("payment numbers on; payment keywords bkash; payment cooldown 60 s; payment numbers text; "
                     "undo window 300 s; notice: বন্ধ; text en.received; text duplicate off")
    again, what = apply_patch(s, section, RULES, T0 + 1)
    assert (again, what) == (s, "no change")
    _, what = apply_patch(s, {**section, "payment": {**section["payment"], "cooldown": 90},
                              "texts_enabled": {"received": False, "duplicate": False}}, RULES, T0 + 2)
    assert what == "payment cooldown 90 s; text received off"
    roster = AdminRoster().with_admins(["8801711111111"], T0, "config")
    assert patch_shop(s, roster, {"admins": ["8801711111111"]}, RULES, T0, "admin:x")[2] == "no change"


def test_keywords_are_words_of_the_message() -> None:
    s = ShopSettings(payment_numbers=True, keywords=("bkash", "বিকাশ"))
    assert s.keyword_in("bkash number?") and s.keyword_in("বিকাশ নাম্বার") and s.keyword_in("BKASH!")
    assert not s.keyword_in("bkashpay") and not s.keyword_in("hello")
    assert not ShopSettings(payment_numbers=False, keywords=("bkash",)).keyword_in("bkash")


def test_reminders_go_to_groups_over_the_amount_that_the_bot_is_in() -> None:
    groups = [{"group_id": "a", "due": "900.00", "settings": {}}, {"group_id": "b", "due": "100.00", "settings": {}},
              {"group_id": "c", "due": "5000.00", "settings": {"leftAt": "2026-01-01T00:00:00.000+00:00"}}]
    every = reminder_targets(groups, (), Decimal("500"))
    assert [g["group_id"] for g in every.send] == ["a"] and set(every.skipped) == {"b", "c"}
    named = reminder_targets(groups, ("b", "zz"), Decimal("0"))
    assert [g["group_id"] for g in named.send] == ["b"] and named.skipped == {"zz": "no such group"}


# -- the stock, derived from the orders --------------------------------------------------------------


def order(oid: str, status: str, diamonds: int, approved: str | None) -> OrderRecord:
    return OrderRecord("g@g.us", {"id": oid, "status": status, "diamonds": diamonds, "approvedAt": approved})


def shop_record(stock: int | None, set_at: float | None) -> ShopRecord:
    return ShopRecord({**stored(DEFAULTS), "stock": stock, "stockSetAt": set_at}, T0, "admin:x", "stock")


def test_the_stock_left_is_the_stock_set_minus_every_approval_since() -> None:
    db = Database()
    db.apply(order("A1", "completed", 50, "2025-11-24T15:00:00.000+00:00"))  # before the stock was set
    assert db.stock_left() is None  # not counted
    db.apply(shop_record(1000, T0))  # 2025-11-24T16:00:00Z
    assert db.stock_left() == 1000
    db.apply(order("A2", "approved", 100, "2025-11-24T16:05:00.000+00:00"))
    db.apply(order("A3", "pending", 70, None))
    assert db.stock_left() == 900
    db.apply(order("A2", "completed", 100, "2025-11-24T16:05:00.000+00:00"))  # delivered: still taken once
    db.apply(order("A3", "approved", 70, "2025-11-24T16:06:00.000+00:00"))
    assert db.stock_left() == 830
    db.apply(order("A3", "pending", 70, None))  # the approval was undone: the stock follows
    assert db.stock_left() == 900
    again = Database.from_snapshot(db.snapshot())  # a restart derives the same
    assert again.stock_left() == 900 and again.shop_audit == db.shop_audit
    db.apply(shop_record(None, None))
    assert db.stock_left() is None
