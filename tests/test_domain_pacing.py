"""The outbound queue: priorities, replacement, and every pacing rule against WhatsApp bans.

The Outbox is pure (the caller passes `now`), so these tests run a simulated clock: no sleeps.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

import pytest

from domain.chat import Quote
from domain.pacing import Item, Outbox, Pacing

G1, G2, G3 = "111@g.us", "222@g.us", "333@g.us"
HOUR = 3600.0
BIG = 10**9


def item(key: str, group: str = G1, priority: int = 2, text: str | None = None) -> Item:
    return Item(key, group, text if text is not None else f"text of {key}", None, priority)


class FixedRng(random.Random):
    """uniform(a, b) returns the point at `fraction` of the way from a to b, and records its calls."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return a + (b - a) * self.fraction


class RecordingRng(random.Random):
    """A seeded Random that remembers what uniform returned."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.drawn: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        value = super().uniform(a, b)
        self.drawn.append(value)
        return value


def take_all(box: Outbox, now: float) -> list[str]:
    keys = []
    while (it := box.take(now)) is not None:
        keys.append(it.key)
    return keys


def before(t: float) -> float:
    """The largest float below t."""
    return math.nextafter(t, -math.inf)


# -- order -----------------------------------------------------------------------------------


def test_priorities_then_fifo_within_each_priority() -> None:
    box = Outbox(Pacing.off())
    pushes = [("o1", 2), ("r1", 1), ("d1", 0), ("o2", 2), ("r2", 1), ("d2", 0), ("o3", 2), ("d3", 0)]
    for key, prio in pushes:
        assert box.push(item(key, priority=prio)) is False
    assert len(box) == len(pushes)
    assert take_all(box, 0.0) == ["d1", "d2", "d3", "r1", "r2", "o1", "o2", "o3"]
    assert len(box) == 0
    assert box.take(0.0) is None


def test_a_late_delivery_message_overtakes_waiting_others() -> None:
    box = Outbox(Pacing.off())
    for i in range(5):
        box.push(item(f"o{i}"))
    assert box.take(0.0).key == "o0"
    box.push(item("delivery", priority=0))
    box.push(item("receipt", priority=1))
    assert take_all(box, 0.0) == ["delivery", "receipt", "o1", "o2", "o3", "o4"]


def test_take_returns_the_item_as_pushed() -> None:
    box = Outbox(Pacing.off())
    quote = Quote("MSGID", "555@lid", ".10 diamonds")
    sentinel = object()
    box.push(Item("k", G2, "hello", quote, 1, reply_to=sentinel, enqueued_at=12.5))
    got = box.take(13.0)
    assert (got.key, got.group_id, got.text, got.quote, got.priority, got.reply_to, got.enqueued_at) == (
        "k", G2, "hello", quote, 1, sentinel, 12.5)


# -- replacement -------------------------------------------------------------------------------


def test_newer_item_with_same_key_replaces_waiting_one_and_is_sent_once() -> None:
    box = Outbox(Pacing.off())
    assert box.push(item("a")) is False
    assert box.push(item("status", text="v1")) is False
    assert box.push(item("status", text="v2")) is True
    assert box.push(item("status", text="v3")) is True
    assert box.push(item("b")) is False
    assert len(box) == 3
    sent = []
    while (it := box.take(0.0)) is not None:
        sent.append((it.key, it.text))
    assert [k for k, _ in sent].count("status") == 1
    assert ("status", "v3") in sent
    assert {k for k, _ in sent} == {"a", "status", "b"}
    assert len(box) == 0 and box.due_at(0.0) is None


def test_a_waiting_item_can_be_withdrawn_a_taken_one_cannot() -> None:
    box = Outbox(Pacing.off())
    box.push(item("a"))
    box.push(item("b"))
    box.push(item("c"))
    assert box.withdraw("b").key == "b" and len(box) == 2
    assert box.withdraw("b") is None and box.withdraw("never") is None
    assert take_all(box, 0.0) == ["a", "c"]
    assert box.withdraw("a") is None  # already handed over


def test_replacement_takes_the_new_priority_and_group() -> None:
    box = Outbox(Pacing(0.0, 0.0, 10.0, BIG))
    box.push(item("x", group=G1))
    box.push(item("k", group=G1, priority=2, text="old"))
    box.push(item("k", group=G2, priority=0, text="new"))
    first = box.take(0.0)
    assert (first.key, first.group_id, first.priority, first.text) == ("k", G2, 0, "new")
    assert box.take(0.0).key == "x"  # G1 was never sent to: the stale G1 entry did not count
    assert box.take(0.0) is None and len(box) == 0


def test_a_replacement_demoted_to_a_lower_priority_waits_its_turn() -> None:
    box = Outbox(Pacing.off())
    box.push(item("k", priority=0, text="urgent"))
    box.push(item("r", priority=1))
    box.push(item("k", priority=2, text="not urgent any more"))
    sent = []
    while (it := box.take(0.0)) is not None:
        sent.append((it.key, it.text))
    assert sent == [("r", "text of r"), ("k", "not urgent any more")]


def test_same_key_after_the_first_was_taken_is_a_new_send() -> None:
    box = Outbox(Pacing.off())
    box.push(item("k", text="one"))
    assert box.take(0.0).text == "one"
    assert box.push(item("k", text="two")) is False
    assert box.take(0.0).text == "two"
    assert box.take(0.0) is None


# -- global gap and jitter ----------------------------------------------------------------------


@pytest.mark.parametrize("fraction, gap", [(0.0, 1.0), (0.5, 1.25), (1.0, 1.5)])
def test_global_gap_is_min_gap_plus_jitter(fraction: float, gap: float) -> None:
    rng = FixedRng(fraction)
    box = Outbox(Pacing(1.0, 0.5, 0.0, BIG), rng=rng)
    # Different groups: the global gap applies between any two sends.
    box.push(item("a", group=G1))
    box.push(item("b", group=G2))
    box.push(item("c", group=G3))
    assert box.due_at(100.0) == 100.0
    assert box.take(100.0).key == "a"
    assert rng.calls == [(0, 0.5)]
    assert box.due_at(100.0) == 100.0 + gap
    assert box.due_at(100.3) == 100.0 + gap
    assert box.take(100.0) is None
    assert box.take(before(100.0 + gap)) is None
    assert box.take(100.0 + gap).key == "b"
    # The gap counts from the last send, not from when take was called.
    assert box.due_at(200.0) == 200.0
    assert box.take(200.0).key == "c"


def test_jitter_is_drawn_per_send_within_range() -> None:
    rng = RecordingRng(1234)
    box = Outbox(Pacing(1.0, 0.5, 0.0, BIG), rng=rng)
    for i in range(200):
        box.push(item(f"m{i}", group=(G1, G2, G3)[i % 3]))
    now, last, gaps = 0.0, None, []
    while len(box):
        t = box.due_at(now)
        if last is not None:
            gaps.append(t - last)
        assert box.take(t) is not None
        now = last = t
    assert len(gaps) == 199
    # backlog_threshold defaults to 20: the gap is doubled while more than 20 wait.
    doubled, normal = gaps[:179], gaps[179:]
    assert all(2.0 <= g <= 3.0 + 1e-9 for g in doubled)
    assert all(1.0 <= g <= 1.5 + 1e-9 for g in normal)
    assert all(0.0 <= d <= 0.5 for d in rng.drawn)
    assert len({round(g, 9) for g in gaps}) > 100  # the jitter really varies


# -- per-group gap -----------------------------------------------------------------------------


def test_per_group_gap_lets_other_groups_go_in_between() -> None:
    box = Outbox(Pacing(1.0, 0.0, 3.0, BIG), rng=FixedRng(0.0))
    box.push(item("a1", G1))
    box.push(item("a2", G1))
    box.push(item("b1", G2))
    box.push(item("b2", G2))
    assert box.take(0.0).key == "a1"
    assert box.due_at(0.0) == 1.0
    assert box.take(1.0).key == "b1"  # a2 is older but its group waits for 3 s
    assert box.due_at(1.0) == 3.0  # G1 ready at 3, G2 at 4; the global gap allows 2
    assert box.take(2.0) is None
    assert box.take(before(3.0)) is None
    assert box.take(3.0).key == "a2"
    assert box.due_at(3.0) == 4.0
    assert box.take(before(4.0)) is None
    assert box.take(4.0).key == "b2"
    assert box.due_at(4.0) is None


def test_a_blocked_delivery_does_not_hold_back_other_groups() -> None:
    box = Outbox(Pacing(0.0, 0.0, 5.0, BIG))
    box.push(item("first", G1, priority=2))
    assert box.take(0.0).key == "first"
    box.push(item("delivery", G1, priority=0))
    box.push(item("other", G2, priority=2))
    assert box.take(1.0).key == "other"
    assert box.take(1.0) is None
    assert box.due_at(1.0) == 5.0
    assert box.take(5.0).key == "delivery"


def test_per_group_gap_is_kept_for_one_group_alone() -> None:
    box = Outbox(Pacing(0.5, 0.0, 3.0, BIG))
    for i in range(5):
        box.push(item(f"m{i}", G1))
    times = []
    now = 10.0
    while len(box):
        now = box.due_at(now)
        assert box.take(now) is not None
        times.append(now)
    assert times == [10.0, 13.0, 16.0, 19.0, 22.0]


# -- hourly cap --------------------------------------------------------------------------------


def test_hourly_cap_the_601st_send_waits_for_the_first_to_leave_the_window() -> None:
    box = Outbox(Pacing(0.0, 0.0, 0.0, 600))
    for i in range(602):
        box.push(item(f"m{i}", group=(G1, G2)[i % 2]))
    first = 0.1  # not a whole number on purpose: `first + 3600 - 3600 != first` in floats
    times = [first + i * 0.5 for i in range(600)]
    for t in times:
        assert box.take(t) is not None
    last = times[-1]
    assert box.sent_last_hour(last) == 600
    assert box.take(last) is None
    assert box.due_at(last) == first + HOUR
    assert box.take(1000.0) is None
    assert box.take(before(first + HOUR)) is None
    assert box.sent_last_hour(before(first + HOUR)) == 600
    # Exactly an hour after the first send it has left the window.
    assert box.sent_last_hour(first + HOUR) == 599
    assert box.take(first + HOUR).key == "m600"
    assert box.sent_last_hour(first + HOUR) == 600
    # Zero gap, same instant: the second send of the hour window (at 0.6) still counts.
    assert box.take(first + HOUR) is None
    assert box.due_at(first + HOUR) == times[1] + HOUR
    assert box.take(times[1] + HOUR).key == "m601"
    assert box.sent_last_hour(times[1] + HOUR) == 600


def test_hourly_cap_counts_every_group_and_priority() -> None:
    box = Outbox(Pacing(0.0, 0.0, 0.0, 3))
    box.push(item("o", G1, 2))
    box.push(item("r", G2, 1))
    box.push(item("d", G3, 0))
    box.push(item("late", G2, 2))
    assert take_all(box, 50.0) == ["d", "r", "o"]
    assert box.due_at(50.0) == 50.0 + HOUR
    assert box.take(50.0 + HOUR - 1) is None
    assert box.take(50.0 + HOUR).key == "late"
    assert box.sent_last_hour(50.0 + HOUR) == 1


# -- backlog -----------------------------------------------------------------------------------


def test_backlog_above_threshold_doubles_the_gap() -> None:
    box = Outbox(Pacing(1.0, 0.0, 0.0, BIG, backlog_threshold=3), rng=FixedRng(0.0))
    for i in range(6):
        box.push(item(f"m{i}", group=(G1, G2, G3)[i % 3]))
    now = 0.0
    assert box.take(now).key == "m0"  # 5 left: above 3
    times = [now]
    while len(box):
        waiting = len(box)
        due = box.due_at(now)
        assert due == now + (2.0 if waiting > 3 else 1.0), (waiting, due - now)
        assert box.take(before(due)) is None
        assert box.take(due) is not None
        now = due
        times.append(now)
    assert times == [0.0, 2.0, 4.0, 5.0, 6.0, 7.0]


def test_backlog_doubles_the_jitter_too() -> None:
    box = Outbox(Pacing(1.0, 0.5, 0.0, BIG, backlog_threshold=1), rng=FixedRng(1.0))
    for i in range(3):
        box.push(item(f"m{i}", group=(G1, G2, G3)[i]))
    assert box.take(0.0) is not None
    assert box.due_at(0.0) == 3.0  # 2 waiting > 1: 2 * (1 + 0.5)
    assert box.take(3.0) is not None
    assert box.due_at(3.0) == 4.5  # 1 waiting: not above the threshold


def test_a_backlog_arriving_after_a_send_slows_the_next_one() -> None:
    box = Outbox(Pacing(1.0, 0.0, 0.0, BIG, backlog_threshold=2), rng=FixedRng(0.0))
    box.push(item("a", G1))
    assert box.take(0.0).key == "a"
    box.push(item("b", G2))
    assert box.due_at(0.0) == 1.0
    box.push(item("c", G3))
    box.push(item("d", G1))
    assert box.due_at(0.0) == 2.0
    assert box.take(1.5) is None
    assert box.take(2.0).key == "b"


# -- pause -------------------------------------------------------------------------------------


def test_pause_stops_everything_until_then_and_clears_itself() -> None:
    box = Outbox(Pacing.off())
    box.push(item("d", G1, priority=0))
    box.push(item("o", G2, priority=2))
    box.pause(100.0, "rate limited")
    assert (box.paused_until, box.pause_reason) == (100.0, "rate limited")
    assert box.take(0.0) is None
    assert box.take(99.0) is None
    assert box.take(before(100.0)) is None
    assert box.due_at(5.0) == 100.0
    assert (box.paused_until, box.pause_reason) == (100.0, "rate limited")
    assert take_all(box, 100.0) == ["d", "o"]
    assert (box.paused_until, box.pause_reason) == (None, "")
    # Cleared: new items go at once.
    box.push(item("n", G3))
    assert box.due_at(100.0) == 100.0
    assert box.take(100.0).key == "n"


def test_a_longer_pause_is_not_shortened_by_a_later_shorter_one() -> None:
    box = Outbox(Pacing.off())
    box.push(item("a"))
    box.pause(200.0, "ban")
    box.pause(50.0, "slow down")
    assert box.paused_until == 200.0
    assert box.take(60.0) is None
    assert box.due_at(60.0) == 200.0
    box.pause(300.0, "ban again")
    assert box.paused_until == 300.0
    assert box.take(250.0) is None
    assert box.take(300.0).key == "a"
    assert box.paused_until is None


def test_an_expired_pause_does_not_block_and_a_new_one_starts_fresh() -> None:
    box = Outbox(Pacing.off())
    box.pause(10.0, "first")
    box.push(item("a"))
    assert box.take(20.0).key == "a"
    assert box.paused_until is None
    box.pause(30.0, "second")
    box.push(item("b"))
    assert box.due_at(20.0) == 30.0
    assert box.take(29.0) is None
    assert box.take(30.0).key == "b"


def test_pause_combines_with_the_gaps() -> None:
    box = Outbox(Pacing(10.0, 0.0, 0.0, BIG), rng=FixedRng(0.0))
    box.push(item("a", G1))
    box.push(item("b", G2))
    box.push(item("c", G3))
    assert box.take(0.0).key == "a"
    box.pause(4.0, "short")
    assert box.due_at(1.0) == 10.0  # the gap outlasts the pause
    assert box.take(10.0).key == "b"
    box.pause(50.0, "long")
    assert box.due_at(11.0) == 50.0  # the pause outlasts the gap
    assert box.take(49.0) is None
    assert box.take(50.0).key == "c"


# -- due_at ------------------------------------------------------------------------------------


def test_due_at_is_none_when_empty_and_now_when_ready() -> None:
    box = Outbox(Pacing(1.0, 0.5, 3.0, 600))
    assert box.due_at(0.0) is None
    box.push(item("a"))
    assert box.due_at(7.0) == 7.0
    assert box.take(7.0).key == "a"
    assert box.due_at(7.0) is None
    assert box.take(100.0) is None


def test_due_at_matches_take_over_a_simulated_timeline() -> None:
    """At every step: take is None just before due_at and returns something exactly at it."""
    gen = random.Random(99)
    box = Outbox(Pacing(1.0, 0.5, 3.0, 25, backlog_threshold=6), rng=random.Random(5))
    groups = [G1, G2, G3, "444@g.us"]
    now, takes, sent = 0.0, 0, []
    waiting: dict[str, int] = {}  # key -> how many pushes of it are waiting (at most 1)
    arrivals = sorted(gen.uniform(0, 4000) for _ in range(120))
    pauses = {30: (2.0, "rate limited"), 70: (600.0, "temporary ban")}
    while arrivals or len(box):
        due = box.due_at(now)
        if arrivals and (due is None or arrivals[0] <= due):
            # New items arrive before the next send would happen.
            now = max(now, arrivals.pop(0))
            for _ in range(gen.randint(1, 3)):
                key = f"k{gen.randint(0, 150)}"  # some keys repeat: replacements
                replaced = box.push(item(key, gen.choice(groups), gen.choice([0, 1, 2, 2])))
                assert replaced == (key in waiting)
                waiting[key] = 1
            assert len(box) == len(waiting)
            continue
        assert due is not None and due >= now
        if due > now:
            assert box.due_at(before(due)) == due
            # Nothing is allowed anywhere before `due` (the rules only relax with time).
            assert box.take(before(due)) is None
        got = box.take(due)
        assert got is not None, f"due_at said {due} but take returned nothing"
        takes += 1
        assert waiting.pop(got.key) == 1  # never a key that is not waiting: no double send
        now = due
        if takes in pauses:
            length, reason = pauses[takes]
            box.pause(now + length, reason)
            box.put_back(got)
            waiting[got.key] = 1
            assert box.due_at(now) >= now + length
        else:
            sent.append((due, got))
        assert len(box) == len(waiting)
    assert len(box) == 0 and not waiting
    assert box.due_at(now) is None
    # The timeline exercised the hourly cap of 25: it spans several hours.
    assert len(sent) > 100
    assert sent[-1][0] > 3 * HOUR
    times = [t for t, _ in sent]
    assert all(sum(1 for u in times if t < u + HOUR and u <= t) <= 25 for t in times)


def test_take_at_a_later_time_than_due_at_still_sends() -> None:
    box = Outbox(Pacing(1.0, 0.5, 3.0, 600), rng=FixedRng(1.0))
    box.push(item("a", G1))
    box.push(item("b", G1))
    assert box.take(0.0).key == "a"
    assert box.due_at(0.0) == 3.0
    assert box.due_at(10.0) == 10.0
    assert box.take(10.0).key == "b"


# -- put_back ----------------------------------------------------------------------------------


def test_put_back_returns_to_the_front_of_its_priority() -> None:
    box = Outbox(Pacing.off())
    box.push(item("a"))
    box.push(item("b"))
    box.push(item("r", priority=1))
    assert box.take(0.0).key == "r"
    a = box.take(0.0)
    assert a.key == "a"
    box.push(item("c"))
    box.put_back(a)
    assert len(box) == 3
    assert take_all(box, 0.0) == ["a", "b", "c"]


def test_put_back_of_a_delivery_goes_before_receipts() -> None:
    box = Outbox(Pacing.off())
    box.push(item("d", priority=0))
    d = box.take(0.0)
    box.push(item("r", priority=1))
    box.push(item("d2", priority=0))
    box.put_back(d)
    assert take_all(box, 0.0) == ["d", "d2", "r"]


def test_several_put_backs_keep_their_original_order() -> None:
    box = Outbox(Pacing.off())
    for k in "abcd":
        box.push(item(k))
    a, b = box.take(0.0), box.take(0.0)
    box.put_back(b)
    box.put_back(a)
    assert take_all(box, 0.0) == ["a", "b", "c", "d"]


def test_put_back_does_not_duplicate_a_newer_item_with_the_same_key() -> None:
    box = Outbox(Pacing.off())
    box.push(item("k", text="old"))
    box.push(item("z"))
    old = box.take(0.0)
    assert old.text == "old"
    box.push(item("k", text="new"))
    box.put_back(old)
    assert len(box) == 2
    sent = []
    while (it := box.take(0.0)) is not None:
        sent.append((it.key, it.text))
    assert sorted(sent) == [("k", "new"), ("z", "text of z")]


def test_an_item_put_back_is_replaced_by_a_newer_push() -> None:
    box = Outbox(Pacing.off())
    box.push(item("k", text="old"))
    old = box.take(0.0)
    box.put_back(old)
    assert box.push(item("k", text="new")) is True
    assert len(box) == 1
    got = box.take(0.0)
    assert got.text == "new"
    assert box.take(0.0) is None


def test_put_back_twice_keeps_one_copy() -> None:
    box = Outbox(Pacing.off())
    box.push(item("k"))
    k = box.take(0.0)
    box.put_back(k)
    box.put_back(k)
    assert len(box) == 1
    assert take_all(box, 0.0) == ["k"]


def test_rate_limited_send_pauses_and_retries_the_same_item_first() -> None:
    """The gateway's flow: take, the server says slow down, pause and put back."""
    box = Outbox(Pacing(1.0, 0.5, 3.0, 600), rng=FixedRng(0.5))
    box.push(item("first", G1, priority=1))
    box.push(item("second", G2, priority=1))
    got = box.take(10.0)
    assert got.key == "first"
    box.pause(70.0, "rate-overlimit")
    box.put_back(got)
    assert len(box) == 2
    assert box.due_at(10.0) == 70.0
    assert box.take(69.0) is None
    assert box.take(70.0).key == "first"
    assert box.pause_reason == ""
    assert box.due_at(70.0) == 71.25
    assert box.take(71.25).key == "second"


# -- no pacing ---------------------------------------------------------------------------------


def test_pacing_off_sends_everything_at_once() -> None:
    box = Outbox(Pacing.off())
    for i in range(3000):
        box.push(item(f"m{i}", group=(G1, G2, G3)[i % 3], priority=i % 3))
    assert box.due_at(5.0) == 5.0
    keys = take_all(box, 5.0)
    assert len(keys) == 3000 and len(set(keys)) == 3000
    assert box.due_at(5.0) is None
    assert box.sent_last_hour(5.0) == 3000


# -- a realistic run ---------------------------------------------------------------------------


def test_simulation_three_groups_twenty_items_each() -> None:
    pacing = Pacing(1.0, 0.5, 3.0, 600)
    rng = RecordingRng(2024)
    box = Outbox(pacing, rng=rng)
    groups = [G1, G2, G3]
    expected: dict[str, list[str]] = defaultdict(list)
    for i in range(20):
        for g in groups:
            key = f"{g}:{i}"
            box.push(item(key, g))
            expected[g].append(key)
    now = 0.0
    sends: list[tuple[float, Item, int]] = []  # (time, item, items waiting before the send)
    while len(box):
        due = box.due_at(now)
        assert due is not None and due >= now
        waiting = len(box)
        if due > now:
            assert box.take(before(due)) is None
        got = box.take(due)
        assert got is not None
        sends.append((due, got, waiting))
        now = due

    # Every item exactly once, and FIFO within each group.
    keys = [it.key for _, it, _ in sends]
    assert len(keys) == 60 and len(set(keys)) == 60
    for g in groups:
        assert [it.key for _, it, _ in sends if it.group_id == g] == expected[g]

    # The global gap: at least min_gap + the jitter drawn at the previous send, doubled in a backlog.
    assert len(rng.drawn) == 60
    assert all(0.0 <= d <= pacing.jitter for d in rng.drawn)
    for k in range(1, len(sends)):
        t_prev, t, waiting = sends[k - 1][0], sends[k][0], sends[k][2]
        required = (pacing.min_gap + rng.drawn[k - 1]) * (2 if waiting > pacing.backlog_threshold else 1)
        assert t - t_prev >= required - 1e-9, (k, t - t_prev, required)
        assert t - t_prev >= pacing.min_gap
        # The queue never idles: each send happens as soon as some rule allows it.
        group_ready = max((s[0] for s in sends[:k] if s[1].group_id == sends[k][1].group_id),
                          default=-math.inf) + pacing.per_group_gap
        assert t == pytest.approx(max(t_prev + required, group_ready))

    # The per-group gap, on the recorded send times.
    for g in groups:
        times = [t for t, it, _ in sends if it.group_id == g]
        assert len(times) == 20
        assert all(b - a >= pacing.per_group_gap for a, b in zip(times, times[1:]))

    # The hourly cap: no hour-long window holds more than 600 sends (there are only 60 here).
    times = [t for t, _, _ in sends]
    assert all(sum(1 for u in times if t < u + HOUR and u <= t) <= pacing.hourly_cap for t in times)
    # Groups interleave: with a 3 s group gap and a 1-3 s global gap, a group never sends twice in a row.
    assert all(a[1].group_id != b[1].group_id for a, b in zip(sends, sends[1:]))
    # Sanity: the whole backlog takes a realistic time (doubled gaps while more than 20 wait).
    assert 60.0 < times[-1] - times[0] < 180.0
