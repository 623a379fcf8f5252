"""What keeps a group's process small (BENCHMARKS.md, "Group memory (PSS), issue 15"): a forked
group takes the spec and the desks' shared rules from the memory it inherited from its host
instead of a pickled copy of its own; a copy comes only when the news changed the spec since."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import actors.group
import actors.host
from actors.desk_setup import desk_setup, shared_rules
from actors.group import GroupActor
from actors.host import GroupHost
from actors.messages import AdminsChanged, GroupsLoaded, InitGroup, ToGroups
from domain.admins import AdminRoster, Tenure
from tests.harness import ALICE, GROUP, GROUP2, ChatBot, actor_config


def test_desks_of_one_config_share_its_rules(tmp_path: Any) -> None:
    cfg = actor_config(tmp_path)
    a = desk_setup(cfg, GROUP, "P", "Rahim Store")
    b = desk_setup(cfg, GROUP2, "Q", "Karim Telecom")
    assert (a.limits, a.policy, a.texts, a.shop) == (b.limits, b.policy, b.texts, b.shop)
    assert a.texts is b.texts and a.limits is b.limits and shared_rules(cfg).texts is a.texts
    assert (a.group_id, a.code, b.group_id, b.code) == (GROUP, "P", GROUP2, "Q")


def test_another_config_gets_its_own_rules(tmp_path: Any) -> None:
    first = desk_setup(actor_config(tmp_path, **{"orders.max_diamonds": "500"}), GROUP, "P", "x")
    second = desk_setup(actor_config(tmp_path, **{"orders.max_diamonds": "900"}), GROUP, "P", "x")
    assert (first.limits.max_diamonds, second.limits.max_diamonds) == (500, 900)
    assert first.texts is not second.texts


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> list[InitGroup]:
    """The hosts behave as where Thespian forks their groups (simpleSystemBase creates each
    group in this process as the host sets what it forks with, so the inheritance holds here
    too); every InitGroup a group receives is recorded."""
    monkeypatch.setattr(actors.host, "forks_groups", lambda: True)
    received: list[InitGroup] = []
    original = GroupActor.receiveMsg_InitGroup

    def record(self: GroupActor, msg: InitGroup, sender: Any) -> None:
        received.append(msg)
        original(self, msg, sender)

    monkeypatch.setattr(GroupActor, "receiveMsg_InitGroup", record)
    monkeypatch.setattr(actors.group, "_forked_with", None)
    return received


def test_a_forked_group_starts_from_the_spec_it_inherited(make_bot: Callable[..., ChatBot],
                                                          forking: list[InitGroup]) -> None:
    bot = make_bot()
    bot.post(GROUP, ALICE, ".10")
    bot.post(GROUP2, ALICE, ".20")
    assert [o["diamonds"] for o in bot.orders(group=GROUP)] == [10]
    assert [o["diamonds"] for o in bot.orders(group=GROUP2)] == [20]
    assert bot.last_reply(GROUP).startswith("📥")
    assert len(forking) == 2 and all(m.spec is None for m in forking)


def test_a_group_gets_a_copy_of_the_spec_the_news_changed_after_its_fork(
        make_bot: Callable[..., ChatBot], forking: list[InitGroup], monkeypatch: pytest.MonkeyPatch) -> None:
    roster = AdminRoster((Tenure(ALICE, 0.0),))
    loaded = GroupHost.receiveMsg_GroupsLoaded

    def news_first(self: GroupHost, msg: GroupsLoaded, sender: Any) -> None:
        # The admins changed while the host waited for the groups' stored state.
        GroupHost.receiveMessage(self, ToGroups(AdminsChanged(roster)), sender)
        loaded(self, msg, sender)

    monkeypatch.setattr(GroupHost, "receiveMsg_GroupsLoaded", news_first)
    bot = make_bot()
    bot.post(GROUP, ALICE, ".10")
    assert [o["diamonds"] for o in bot.orders(group=GROUP)] == [10]
    assert forking and all(m.spec is not None and m.spec.admins == roster for m in forking)


def test_a_group_without_an_inherited_spec_gets_one_sent(make_bot: Callable[..., ChatBot],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """simpleSystemBase, as it is: nothing is forked, every InitGroup carries the spec."""
    received: list[InitGroup] = []
    original = GroupActor.receiveMsg_InitGroup
    monkeypatch.setattr(GroupActor, "receiveMsg_InitGroup",
                        lambda self, msg, sender: (received.append(msg), original(self, msg, sender)))
    bot = make_bot()
    bot.post(GROUP, ALICE, ".10")
    assert [o["diamonds"] for o in bot.orders(group=GROUP)] == [10]
    assert received and all(m.spec is not None for m in received)
