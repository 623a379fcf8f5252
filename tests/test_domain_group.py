"""Group codes, order ids, group settings (domain/group.py) and intake of chat messages (domain/intake.py)."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from domain.clock import FakeClock
from domain.money import parse_rate
from domain.orders import Action, Delivery, Order, Status, new_order, transition
from domain.group import (
    GroupBook,
    HeldOrder,
    GroupSettings,
    SettingsError,
    apply_settings_patch,
    code_number,
    count_by_status,
    group_code,
    max_order_seq,
    settings_from_record,
    settings_record,
    split_order_id,
)
from domain.intake import (
    AUTO_APPROVER,
    Inbound,
    Limits,
    auto_approve_allowed,
    due_limit_exceeded,
    find_by_message,
    find_duplicate,
    take_in,
)

T0 = 1_764_000_000.0
GID = "120363000000000001@g.us"
LIMITS = Limits(min_diamonds=1, max_diamonds=100_000, max_age=24 * 3600, reply_invalid=True)
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # the alphabet, written independently of the module


# --- group codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "code"),
    [(1, "A"), (2, "B"), (8, "H"), (9, "J"), (13, "N"), (14, "P"), (24, "Z"), (25, "AA"), (26, "AB"),
     (48, "AZ"), (49, "BA"), (24 * 24 + 24, "ZZ"), (24 * 24 + 25, "AAA"), (24**3 + 24**2 + 24, "ZZZ"),
     (24**3 + 24**2 + 25, "AAAA")],
)
def test_group_code_known_values(n: int, code: str) -> None:
    assert group_code(n) == code
    assert code_number(code) == n


def _independent_code(n: int) -> str:
    """Bijective base 24, by enumerating lengths (a different algorithm from the module's)."""
    length, first = 1, 1
    while n >= first + 24**length:
        first += 24**length
        length += 1
    offset = n - first
    out = []
    for _ in range(length):
        offset, r = divmod(offset, 24)
        out.append(LETTERS[r])
    return "".join(reversed(out))


def test_group_code_round_trip_1_to_20000() -> None:
    seen = set()
    for n in range(1, 20_001):
        code = group_code(n)
        assert code == _independent_code(n)
        assert "I" not in code and "O" not in code
        assert code_number(code) == n
        seen.add(code)
    assert len(seen) == 20_000


@pytest.mark.parametrize("n", [0, -1, -100])
def test_group_code_refuses_non_positive(n: int) -> None:
    with pytest.raises(ValueError):
        group_code(n)


@pytest.mark.parametrize("code", ["", "a", "Ab", "I", "O", "AI", "OK", "A1", "1", " A", "A ", "Ä", "-", "AB-"])
def test_code_number_refuses_garbage(code: str) -> None:
    with pytest.raises(ValueError):
        code_number(code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A1", ("A", 1)),
        ("AB17", ("AB", 17)),
        ("ab17", ("AB", 17)),
        ("aB17", ("AB", 17)),
        ("  zz9 ", ("ZZ", 9)),
        ("A001", ("A", 1)),
        ("ZZZ123456", ("ZZZ", 123456)),
        ("", None),
        ("A", None),
        ("17", None),
        ("A-1", None),
        ("A1B", None),
        ("A 1", None),
        ("I1", None),
        ("O1", None),
        ("AO1", None),
        ("A١٢", None),  # Arabic-Indic digits
        ("A²", None),  # superscript: isdigit() but not a number we write
        ("A১", None),  # Bengali digit: our ids are ASCII
        ("Ä1", None),
        ("A1.5", None),
        ("A+1", None),
        ("../etc/passwd", None),
        ("A" + "9" * 5000, None),  # int() of 5000 digits would raise
        ("A" * 100_000 + "1", None),
    ],
    ids=lambda v: v if not isinstance(v, str) or len(v) < 20 else f"{v[:8]}...{len(v)}",
)
def test_split_order_id(text: str, expected: tuple[str, int] | None) -> None:
    assert split_order_id(text) == expected


def test_split_order_id_of_every_generated_id() -> None:
    rng = random.Random(8)
    for _ in range(2000):
        code, seq = group_code(rng.randint(1, 20_000)), rng.randint(1, 10**9)
        assert split_order_id(f"{code}{seq}") == (code, seq)
        assert split_order_id(f"{code}{seq}".lower()) == (code, seq)


# --- intake --------------------------------------------------------------------------------


def make_book(**settings: Any) -> GroupBook:
    s = GroupSettings(group_id=GID, name="Shop", code="AB", rate=parse_rate("100"))
    return GroupBook(settings=replace(s, **settings))


_counter = iter(range(10**9))


def msg(text: str = ".10", *, mid: str | None = None, ts: float = T0, **kw: Any) -> Inbound:
    fields: dict[str, Any] = dict(message_id=mid or f"3EB{next(_counter)}", sender="76210050711676@lid",
                                  sender_alt="8801712345678@s.whatsapp.net", sender_name="Rahim", text=text,
                                  timestamp=ts)
    fields.update(kw)
    return Inbound(**fields)


def test_each_order_message_becomes_one_order_with_sequential_ids() -> None:
    book = make_book()
    clock = FakeClock(T0 + 5)
    r = take_in(book, [msg(".10", mid="m1"), msg(".২৫", mid="m2", ts=T0 + 1), msg(".7", mid="m3", ts=T0 + 2)],
                now=clock.now(), limits=LIMITS)
    assert [o.id for o in r.new_orders] == ["AB1", "AB2", "AB3"]
    assert [o.diamonds for o in r.new_orders] == [10, 25, 7]
    assert [str(o.amount) for o in r.new_orders] == ["1000.00", "2500.00", "700.00"]
    first = r.new_orders[0]
    assert (first.group_id, first.group_name, first.user_id, first.user_alt, first.user_name, first.message_id,
            first.text, first.created_at, first.received_at, first.status, first.recovered) == (
        GID, "Shop", "76210050711676@lid", "8801712345678@s.whatsapp.net", "Rahim", "m1", ".10", T0, T0 + 5,
        Status.PENDING, False)
    assert book.next_seq == 4
    assert set(book.orders) == {"AB1", "AB2", "AB3"}
    assert r.seen == {"m1": T0, "m2": T0 + 1, "m3": T0 + 2}
    assert book.seen == r.seen
    assert r.invalid == [] and r.ignored == {}
    # the next batch continues the sequence
    r2 = take_in(book, [msg(".1", ts=T0 + 3)], now=clock.advance(5), limits=LIMITS)
    assert [o.id for o in r2.new_orders] == ["AB4"]


def test_each_order_uses_the_rate_at_order_time() -> None:
    book = make_book()
    a = take_in(book, [msg(".3")], now=T0, limits=LIMITS).new_orders[0]
    book.settings = apply_settings_patch(book.settings, {"rate": "0.335"})
    b = take_in(book, [msg(".3")], now=T0, limits=LIMITS).new_orders[0]
    assert (a.rate, a.amount) == (Decimal("100"), Decimal("300"))
    assert (b.rate, b.amount) == (Decimal("0.335"), Decimal("1.01"))
    assert book.orders["AB1"].amount == Decimal("300")


def test_exactly_once_per_message_id_within_and_across_batches() -> None:
    book = make_book()
    batch = [msg(".10", mid="dup"), msg(".10", mid="dup"), msg(".20", mid="dup")]
    r = take_in(book, batch, now=T0, limits=LIMITS)
    assert len(r.new_orders) == 1 and r.ignored == {"duplicate": 2}
    for _ in range(3):  # redelivery, replay, inbox recovery
        again = take_in(book, [msg(".10", mid="dup", recovered=True, check_watermark=True)], now=T0 + 60,
                        limits=LIMITS)
        assert again.new_orders == [] and again.invalid == [] and again.ignored == {"duplicate": 1}
    assert len(book.orders) == 1 and book.next_seq == 2


def test_seeded_random_redeliveries_create_one_order_per_message() -> None:
    rng = random.Random(42)
    book = make_book()
    messages = [msg(f".{rng.randint(1, 500)}", mid=f"id{i}", ts=T0 + i) for i in range(300)]
    stream = [m for m in messages for _ in range(rng.randint(1, 4))]
    rng.shuffle(stream)
    created = []
    for start in range(0, len(stream), 17):
        created += take_in(book, stream[start:start + 17], now=T0 + 400, limits=LIMITS).new_orders
    assert sorted(o.message_id for o in created) == sorted(m.message_id for m in messages)
    assert sorted(o.id for o in created) == sorted(f"AB{i}" for i in range(1, 301))
    by_mid = {m.message_id: m for m in messages}
    assert all(o.diamonds == int(by_mid[o.message_id].text[1:]) for o in created)


def test_own_messages_are_ignored() -> None:
    book = make_book()
    r = take_in(book, [msg(".10", from_me=True), msg(".10", sender="bot@lid"), msg(".10", sender="me@lid")],
                now=T0, limits=LIMITS, own_ids=frozenset({"bot@lid", "me@lid"}))
    assert r.new_orders == [] and r.invalid == [] and r.seen == {}
    assert r.ignored == {"own message": 3}
    assert book.next_seq == 1 and book.watermark == 0.0


@pytest.mark.parametrize("text", ["hello", "10", "done", "", "..10", ".", "ok 👍", ".١٠", ".１０"])
def test_chat_is_ignored_without_reply(text: str) -> None:
    book = make_book()
    r = take_in(book, [msg(text, mid="c1")], now=T0, limits=LIMITS)
    assert r.new_orders == [] and r.invalid == []
    assert r.ignored == {"chat": 1}
    assert "c1" not in book.seen and book.watermark == 0.0


@pytest.mark.parametrize(("text", "reason"), [(".0", "below_min"), (".-5", "malformed"), (".1e3", "malformed"),
                                              (".99999999999", "above_max"), (".10 pls", "malformed"),
                                              (".100001", "above_max")])
def test_invalid_order_text_is_answered_once(text: str, reason: str) -> None:
    book = make_book()
    m = msg(text, mid="bad1")
    r = take_in(book, [m, m], now=T0, limits=LIMITS)
    assert r.new_orders == []
    assert [(m2, why.reason) for m2, why in r.invalid] == [(m, reason)]
    assert r.seen == {"bad1": T0}
    again = take_in(book, [m], now=T0 + 30, limits=LIMITS)  # redelivered after a restart
    assert again.invalid == [] and again.ignored == {"duplicate": 1}
    assert book.next_seq == 1


def test_invalid_reply_can_be_turned_off() -> None:
    book = make_book()
    r = take_in(book, [msg(".0", mid="z")], now=T0, limits=replace(LIMITS, reply_invalid=False))
    assert r.invalid == [] and r.new_orders == []
    assert "z" in book.seen  # still handled: not answered later either


def test_custom_limits_apply() -> None:
    book = make_book()
    limits = replace(LIMITS, min_diamonds=50, max_diamonds=500)
    r = take_in(book, [msg(".49"), msg(".50"), msg(".500"), msg(".501")], now=T0, limits=limits)
    assert [o.diamonds for o in r.new_orders] == [50, 500]
    assert [why.reason for _, why in r.invalid] == ["below_min", "above_max"]


@pytest.mark.parametrize(("age", "taken"), [(0, True), (3600, True), (86400, True), (86400.5, False),
                                            (30 * 86400, False)])
def test_messages_older_than_max_age_are_ignored(age: float, taken: bool) -> None:
    book = make_book()
    now = T0 + 10 * 86400
    r = take_in(book, [msg(".10", ts=now - age), msg(".0", ts=now - age)], now=now, limits=LIMITS)
    assert len(r.new_orders) == int(taken)
    assert len(r.invalid) == int(taken)
    if not taken:
        assert r.ignored == {"too old": 2} and book.seen == {}


def test_history_before_the_watermark_is_ignored_but_live_messages_are_not() -> None:
    book = make_book(name="Shop")
    book.watermark = T0
    hist_old = msg(".10", ts=T0 - 60, check_watermark=True, recovered=True)
    hist_same = msg(".11", ts=T0, check_watermark=True, recovered=True)
    hist_new = msg(".12", ts=T0 + 60, check_watermark=True, recovered=True)
    live_late = msg(".13", ts=T0 - 120)  # live or inbox message that arrived late
    r = take_in(book, [hist_old, hist_same, hist_new, live_late], now=T0 + 120, limits=LIMITS)
    assert [o.diamonds for o in r.new_orders] == [11, 12, 13]
    assert r.ignored == {"before watermark": 1}
    assert [o.recovered for o in r.new_orders] == [True, True, False]
    assert r.new_orders[0].audit[0].note == "recovered after downtime"
    assert book.watermark == T0 + 60  # advanced to the newest handled, never backwards


def test_watermark_advances_with_handled_messages_only() -> None:
    book = make_book()
    take_in(book, [msg(".10", ts=T0 + 5), msg(".0", ts=T0 + 9), msg(".10", ts=T0 + 7)], now=T0 + 10,
            limits=LIMITS)
    assert book.watermark == T0 + 9
    take_in(book, [msg("chat", ts=T0 + 10), msg(".10", ts=T0 + 11, from_me=True)], now=T0 + 12, limits=LIMITS)
    assert book.watermark == T0 + 9


def test_disabled_group_ignores_orders_for_good() -> None:
    book = make_book(enabled=False)
    m = msg(".10", mid="x1")
    r = take_in(book, [m, msg(".0", mid="x2")], now=T0, limits=LIMITS)
    assert r.new_orders == [] and r.invalid == [] and r.ignored == {"group disabled": 2}
    assert set(book.seen) == {"x1", "x2"} and book.next_seq == 1
    # Enabling the group later does not turn a replay of the old message into an order.
    book.settings = apply_settings_patch(book.settings, {"enabled": True})
    assert take_in(book, [m], now=T0 + 1, limits=LIMITS).new_orders == []
    assert [o.message_id for o in take_in(book, [msg(".10", mid="x3")], now=T0 + 2, limits=LIMITS).new_orders] \
        == ["x3"]


def test_group_rename_is_picked_up() -> None:
    book = make_book(name="Old name")
    r = take_in(book, [msg(".10", group_name="New name")], now=T0, limits=LIMITS)
    assert r.settings_changed
    assert book.settings.name == "New name"
    assert r.new_orders[0].group_name == "New name"
    r2 = take_in(book, [msg(".10", group_name="New name"), msg(".10", group_name="")], now=T0, limits=LIMITS)
    assert not r2.settings_changed and book.settings.name == "New name"


def test_prune_forgets_old_archived_orders_and_seen_ids() -> None:
    book = make_book()
    day = 86400.0
    r = take_in(book, [msg(".10", mid=f"m{i}", ts=T0 + i) for i in range(4)], now=T0 + 10, limits=LIMITS)
    a1, a2, a3, a4 = r.new_orders
    book.put(transition(a1, Action.CANCEL, by="admin", now=T0 + 20))  # archived long ago
    book.put(transition(a2, Action.DELETE, by="admin", now=T0 + 2 * day))  # archived recently
    # a3 stays pending (open: never pruned however old); a4 completed long ago
    book.put(transition(transition(a4, Action.APPROVE, by="admin", now=T0 + 30), Action.COMPLETE,
                        by="system", now=T0 + 40))
    book.seen["fresh"] = T0 + 2 * day
    dropped = book.prune(now=T0 + 2 * day + 100, max_age=day)
    assert dropped == 2
    assert set(book.orders) == {"AB2", "AB3"}
    assert set(book.seen) == {"fresh"}
    assert [o.id for o in book.open_orders()] == ["AB3"]
    assert book.prune(now=T0 + 2 * day + 100, max_age=day) == 0


def test_pruned_seen_ids_cannot_come_back_as_orders() -> None:
    book = make_book()
    m = msg(".10", mid="old", ts=T0)
    assert len(take_in(book, [m], now=T0, limits=LIMITS).new_orders) == 1
    later = T0 + LIMITS.max_age + 1
    book.prune(now=later, max_age=LIMITS.max_age)
    assert "old" not in book.seen
    r = take_in(book, [m], now=later, limits=LIMITS)
    assert r.new_orders == [] and r.ignored == {"too old": 1}


def test_max_order_seq_and_count_by_status() -> None:
    book = make_book()
    r = take_in(book, [msg(".10") for _ in range(12)], now=T0, limits=LIMITS)
    foreign = replace(r.new_orders[0], id="ZZ99")
    broken = replace(r.new_orders[0], id="garbage")
    orders = r.new_orders + [foreign, broken]
    assert max_order_seq(orders, "AB") == 12
    assert max_order_seq(orders, "ZZ") == 99
    assert max_order_seq(orders, "Q") == 0
    counts = count_by_status([transition(r.new_orders[0], Action.PROCESS, by="a", now=T0)] + r.new_orders[1:])
    assert counts == {"pending": 11, "processing": 1, "approved": 0, "completed": 0, "cancelled": 0,
                      "deleted": 0}


# --- settings ------------------------------------------------------------------------------


def test_settings_record_round_trip() -> None:
    book = make_book(rate=parse_rate("2.30"), enabled=False, auto_approve=True, auto_approve_max=50,
                     due_limit=Decimal("5000.00"))
    book.next_seq, book.watermark = 18, T0
    record = settings_record(book)
    assert record == {"groupName": "Shop", "code": "AB", "rate": "2.30", "enabled": False, "autoApprove": True,
                      "autoApproveMax": 50, "dueLimit": "5000.00", "nextSeq": 18, "watermark": T0,
                      "nextPaymentSeq": 1, "joinedAt": None, "leftAt": None}
    assert settings_from_record(GID, record, Decimal("100")) == book.settings
    # A group whose rate nobody set, which the bot joined and then left: all kept as they are.
    book.settings = replace(book.settings, rate=None, joined_at=T0, left_at=T0 + 60)
    record = settings_record(book)
    assert (record["rate"], record["joinedAt"], record["leftAt"]) == (
        None, "2025-11-24T16:00:00.000+00:00", "2025-11-24T16:01:00.000+00:00")
    assert settings_from_record(GID, record, Decimal("100")) == book.settings


def test_a_group_without_a_stored_rate_takes_the_default_rate_which_may_be_none() -> None:
    assert settings_from_record(GID, {"groupName": "Old"}, None).rate is None
    assert settings_from_record(GID, {"groupName": "Old", "rate": None}, Decimal("2.30")).rate is None


def test_settings_from_record_defaults() -> None:
    s = settings_from_record(GID, {"groupName": "Seed group"}, parse_rate("100"))
    assert (s.name, s.code, s.rate, s.enabled, s.auto_approve, s.auto_approve_max, s.due_limit) == (
        "Seed group", "", Decimal("100"), True, False, 0, None)
    assert settings_from_record(GID, {"rate": "2.5"}, parse_rate("100")).rate == Decimal("2.50")
    assert settings_from_record(GID, {"rate": 3}, parse_rate("100")).rate == Decimal("3")


@pytest.mark.parametrize(
    ("record", "key"),
    [
        ({"rate": "abc"}, "rate"),
        ({"rate": 2.3}, "rate"),  # never silently the default: someone's money
        ({"rate": "0"}, "rate"),
        ({"rate": "-1"}, "rate"),
        ({"rate": ""}, "rate"),
        ({"joinedAt": "yesterday"}, "joinedAt"),
        ({"rate": True}, "rate"),
        ({"dueLimit": "-5"}, "dueLimit"),
        ({"dueLimit": 5.5}, "dueLimit"),
        ({"autoApproveMax": "ten"}, "autoApproveMax"),
        ({"autoApproveMax": -1}, "autoApproveMax"),
        ({"autoApproveMax": 2.7}, "autoApproveMax"),
        ({"enabled": "false"}, "enabled"),
        ({"autoApprove": 1}, "autoApprove"),
    ],
)
def test_settings_from_record_raises_on_bad_values(record: dict[str, Any], key: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_from_record(GID, record, parse_rate("100"))
    assert GID in str(info.value) and key in str(info.value)


def test_apply_settings_patch() -> None:
    s = make_book().settings
    out = apply_settings_patch(s, {"rate": "2.3", "enabled": False, "auto_approve": True, "auto_approve_max": 100,
                                   "due_limit": "1500.5", "name": "  New  "})
    assert (out.rate, out.enabled, out.auto_approve, out.auto_approve_max, out.due_limit, out.name) == (
        Decimal("2.30"), False, True, 100, Decimal("1500.50"), "New")
    assert str(out.rate) == "2.30"
    assert s.rate == Decimal("100")  # the original is untouched
    assert apply_settings_patch(out, {"due_limit": None}).due_limit is None
    assert apply_settings_patch(out, {"due_limit": ""}).due_limit is None
    assert apply_settings_patch(out, {"rate": 5}).rate == Decimal("5")
    assert apply_settings_patch(out, {}) == out


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"rate": 2.3}, "rate"),
        ({"rate": "0"}, "rate"),
        ({"rate": "-2"}, "rate"),
        ({"rate": "abc"}, "rate"),
        ({"rate": None}, "rate"),
        ({"rate": True}, "rate"),
        ({"rate": [1]}, "rate"),
        ({"rate": "1.00001"}, "rate"),
        ({"rate": 10**5000}, "rate"),
        ({"rate": "9" * 5000}, "rate"),
        ({"enabled": "yes"}, "enabled"),
        ({"enabled": 1}, "enabled"),
        ({"auto_approve": None}, "auto_approve"),
        ({"name": "Shop\u200bOne"}, "name"),
        ({"name": "Shop\nOne"}, "name"),
        ({"auto_approve_max": -1}, "auto_approve_max"),
        ({"auto_approve_max": "5"}, "auto_approve_max"),
        ({"auto_approve_max": 5.0}, "auto_approve_max"),
        ({"auto_approve_max": True}, "auto_approve_max"),
        ({"due_limit": -1}, "due_limit"),
        ({"due_limit": 10.5}, "due_limit"),
        ({"due_limit": "lots"}, "due_limit"),
        ({"due_limit": "1e30"}, "due_limit"),
        ({"due_limit": {"a": 1}}, "due_limit"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"colour": "red"}, "colour"),
        ({"autoApprove": True}, "autoApprove"),  # the stored (camelCase) key is not the API's
        ({"code": "ZZ"}, "code"),  # codes are assigned, never edited
        ({"group_id": "x"}, "group_id"),
    ],
    ids=lambda v: (repr(v)[:30] if not isinstance(v, dict) else ",".join(v)),
)
def test_apply_settings_patch_refuses(patch: dict[str, Any], field: str) -> None:
    s = make_book().settings
    with pytest.raises(SettingsError) as info:
        apply_settings_patch(s, patch)
    assert str(info.value).startswith(field)
    assert len(str(info.value)) < 300


def test_apply_settings_patch_is_all_or_nothing() -> None:
    s = make_book().settings
    with pytest.raises(SettingsError):
        apply_settings_patch(s, {"rate": "5", "enabled": "no"})
    assert s.rate == Decimal("100") and s.enabled is True


# --- guards: duplicates, the due limit, auto-approval ----------------------------------------

LID, PHONE = "76210050711676@lid", "8801712345678@s.whatsapp.net"
WINDOW = 300.0


def placed(oid: str, diamonds: int = 10, *, at: float = T0, user: str = LID, alt: str = PHONE,
           status: Status = Status.PENDING) -> Order:
    o = new_order(order_id=oid, group_id=GID, group_name="Shop", user_id=user, user_alt=alt, user_name="Rahim",
                  message_id=f"m-{oid}", text=f".{diamonds}", diamonds=diamonds, rate=parse_rate("100"),
                  created_at=at, now=at, recovered=False)
    return o if status is Status.PENDING else replace(o, status=status)


def dup(orders: list[Order], *, user: str = LID, alt: str = "", diamonds: int = 10, now: float = T0 + 60,
        window: float = WINDOW) -> str | None:
    found = find_duplicate(orders, user_id=user, user_alt=alt, diamonds=diamonds, now=now, window=window)
    return None if found is None else found.id


def test_duplicate_same_person_same_diamonds_within_the_window() -> None:
    orders = [placed("AB1")]
    assert dup(orders) == "AB1"
    assert dup(orders, now=T0 + WINDOW) == "AB1"  # the window is inclusive
    assert dup(orders, now=T0 + WINDOW + 1) is None
    assert dup(orders, diamonds=100) is None
    assert dup(orders, user="11111111111111@lid") is None


@pytest.mark.parametrize(
    ("user", "alt", "found"),
    [
        (LID, "", True),
        ("", PHONE, True),  # matched by the other form
        ("99999999999999@lid", PHONE, True),
        (PHONE, LID, True),  # forms swapped
        ("99999999999999@lid", "", False),
        ("", "", False),  # empty ids never match (orders with an empty alt exist)
    ],
)
def test_duplicate_matches_user_or_alt_never_empty(user: str, alt: str, found: bool) -> None:
    orders = [placed("AB1", alt=""), placed("AB2", user=LID, alt=PHONE, at=T0 - 10)]
    expected = {True: "AB1" if LID in (user, alt) else "AB2", False: None}[found]
    assert dup(orders, user=user, alt=alt) == expected


def test_duplicate_is_the_newest_and_skips_cancelled_and_deleted() -> None:
    orders = [placed("AB1", at=T0 - 100), placed("AB2", at=T0 - 10), placed("AB3", at=T0 - 50),
              placed("AB4", at=T0, status=Status.CANCELLED), placed("AB5", at=T0, status=Status.DELETED)]
    assert dup(orders, now=T0) == "AB2"
    # approved and completed orders still count: the reseller may not know it was a repeat
    assert dup([placed("AB6", status=Status.APPROVED)]) == "AB6"
    assert dup([placed("AB7", status=Status.COMPLETED)]) == "AB7"
    assert dup([placed("AB4", status=Status.CANCELLED), placed("AB5", status=Status.DELETED)]) is None


def test_duplicate_window_zero_is_off() -> None:
    orders = [placed("AB1", at=T0 + 60)]
    assert dup(orders, window=0) is None
    assert dup(orders, window=-5) is None
    assert dup([], window=WINDOW) is None


def test_duplicate_tolerates_message_times_slightly_ahead() -> None:
    assert dup([placed("AB1", at=T0 + 61)], now=T0 + 60) == "AB1"
    assert dup([placed("AB1", at=T0 + 60 + WINDOW + 1)], now=T0 + 60) is None


def test_duplicate_without_a_message_time_uses_the_receipt_time() -> None:
    o = replace(placed("AB1"), created_at=None, received_at=T0 + 30)
    assert dup([o], now=T0 + 30 + WINDOW) == "AB1"
    assert dup([o], now=T0 + 31 + WINDOW) is None


@pytest.mark.parametrize(
    ("limit", "due_after", "exceeded"),
    [(None, "99999999", False), ("5000", "4999.99", False), ("5000", "5000", False), ("5000", "5000.01", True),
     ("0", "0.01", True), ("0", "0", False), ("0", "-10", False), ("100", "-5", False)],
)
def test_due_limit_exceeded(limit: str | None, due_after: str, exceeded: bool) -> None:
    settings = make_book(due_limit=None if limit is None else Decimal(limit)).settings
    assert due_limit_exceeded(settings, Decimal(due_after)) is exceeded


@pytest.mark.parametrize(
    ("auto", "maximum", "diamonds", "limit", "due_after", "allowed"),
    [
        (False, 100, 10, None, "0", False),  # off by default
        (True, 100, 10, None, "0", True),
        (True, 100, 100, None, "0", True),  # at the limit
        (True, 100, 101, None, "0", False),
        (True, 0, 1, None, "0", False),  # a limit of 0 approves nothing
        (True, 100, 10, "5000", "5000", True),
        (True, 100, 10, "5000", "5000.01", False),  # over the due limit: held for an admin
        (True, 100, 10, "0", "-1", True),  # in credit
    ],
)
def test_auto_approve_allowed(auto: bool, maximum: int, diamonds: int, limit: str | None, due_after: str,
                              allowed: bool) -> None:
    settings = make_book(auto_approve=auto, auto_approve_max=maximum,
                         due_limit=None if limit is None else Decimal(limit)).settings
    assert auto_approve_allowed(settings, placed("AB1", diamonds), Decimal(due_after)) is allowed


def test_auto_approval_is_off_by_default_and_audited_as_the_system() -> None:
    settings = make_book().settings
    assert settings.auto_approve is False
    assert not auto_approve_allowed(settings, placed("AB1", 1), Decimal(0))
    assert AUTO_APPROVER == "system:auto-approve"
    approved = transition(placed("AB1"), Action.APPROVE, by=AUTO_APPROVER, now=T0)
    assert approved.audit[-1].by == "system:auto-approve"


def test_find_by_message_the_order_or_the_bots_receipt_of_it() -> None:
    a = replace(placed("AB1"), receipt=Delivery(message_id="bot-r1"), delivery=Delivery(message_id="bot-d1"))
    b = placed("AB2")
    orders = [a, b]
    assert find_by_message(orders, "m-AB1") is a
    assert find_by_message(orders, "bot-r1") is a
    assert find_by_message(orders, "bot-d1") is a
    assert find_by_message(orders, "m-AB2") is b
    assert find_by_message(orders, "") is None  # b's receipt id is "": never matched
    assert find_by_message(orders, "unknown") is None


def test_the_book_keeps_the_billed_total_in_step_with_each_orders_status() -> None:
    book = make_book()
    result = take_in(book, [msg(".10")], now=T0, limits=LIMITS)
    [order] = result.new_orders
    assert book.billed == Decimal("0.00") and book.due == Decimal("0.00")  # pending is not billed
    approved = transition(order, Action.APPROVE, by="admin:x", now=T0)
    book.put(approved)
    assert book.billed == order.amount
    book.put(transition(approved, Action.COMPLETE, by="system", now=T0))
    assert book.billed == order.amount  # completing does not bill twice
    book.paid = Decimal("250.00")
    assert book.due == order.amount - Decimal("250.00")
    book.put(transition(approved, Action.DELETE, by="admin:x", now=T0))
    assert book.billed == Decimal("0.00")  # a deleted order is owed by nobody


def test_a_held_order_round_trips_its_record() -> None:
    held = HeldOrder("M1", "1@lid", "8801@s.whatsapp.net", "Rahim", ".10", 10, T0, "A3", question_id="BOT9")
    assert HeldOrder.from_record(held.to_record()) == held


def test_the_duplicate_guard_holds_a_repeat_and_lets_a_confirmed_one_through() -> None:
    book = make_book()
    limits = replace(LIMITS, duplicate_window=300.0)
    first = take_in(book, [msg(".10", mid="m1", ts=T0)], now=T0, limits=limits)
    assert [o.id for o in first.new_orders] == ["AB1"]
    again = take_in(book, [msg(".10", mid="m2", ts=T0 + 60)], now=T0 + 60, limits=limits)
    assert again.new_orders == [] and [(m.message_id, d, o.id) for m, d, o in again.held] == [("m2", 10, "AB1")]
    assert "m2" in book.seen  # a redelivery of m2 is a duplicate message, not a new question
    other = take_in(book, [msg(".20", mid="m3", ts=T0 + 61)], now=T0 + 61, limits=limits)
    assert [o.diamonds for o in other.new_orders] == [20]  # another amount is another order
    later = take_in(book, [msg(".10", mid="m4", ts=T0 + 400)], now=T0 + 400, limits=limits)
    assert [o.diamonds for o in later.new_orders] == [10]  # outside the window
    del book.seen["m2"]
    confirmed = take_in(book, [msg(".10", mid="m2", ts=T0 + 60, confirmed=True)], now=T0 + 90, limits=limits)
    assert [o.id for o in confirmed.new_orders] == ["AB4"] and confirmed.held == []
    off = take_in(make_book(), [msg(".10", mid="x1"), msg(".10", mid="x2")], now=T0, limits=LIMITS)
    assert len(off.new_orders) == 2  # window 0: no guard


def test_auto_approval_cannot_be_turned_on_with_a_limit_of_zero() -> None:
    settings = GroupSettings(group_id="1@g.us", name="Shop", code="A", rate=Decimal("100"))
    with pytest.raises(SettingsError, match="auto_approve_max: set how many diamonds"):
        apply_settings_patch(settings, {"auto_approve": True})
    on = apply_settings_patch(settings, {"auto_approve": True, "auto_approve_max": 50})
    assert (on.auto_approve, on.auto_approve_max) == (True, 50)
    with pytest.raises(SettingsError, match="auto_approve_max"):
        apply_settings_patch(on, {"auto_approve_max": 0})
    off = apply_settings_patch(on, {"auto_approve": False, "auto_approve_max": 0})
    assert (off.auto_approve, off.auto_approve_max) == (False, 0)
