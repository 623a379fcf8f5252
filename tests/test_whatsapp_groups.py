"""Issue 12 on WhatsApp: the groups the bot's number is in, as the transport reports them — the
joined-groups list after each connect (through neonize's real get_joined_groups() into a scripted
Go library), and neonize's real JoinedGroup and GroupInfo events through the client's event path."""

from __future__ import annotations

import threading
from typing import Any, Callable

from domain.chat import ConnectionState, GroupInfo, GroupsChange
from tests.sinks import WAIT, wait_for
from tests.test_whatsapp_support import (
    ADMIN_LID,
    BOT_LID,
    BOT_PHONE,
    GROUP,
    GROUP_NAME,
    OTHER,
    OTHER_NAME,
    FakeOps,
    GoGroupsOps,
    Made,
    changed,
    clock,  # noqa: F401  (fixture)
    connect,
    event,
    group_info,
    group_message,
    joined,
    make,  # noqa: F401  (fixture)
    no_threads_left,  # noqa: F401  (autouse fixture)
    push,
)

def up(made: Made, lists: int = 1) -> Made:
    """Connect, and wait for the `lists`-th complete group list."""
    transport, sink, ops = made
    wait_for(lambda: ops.running, "a session")
    connect(transport.client)
    wait_for(lambda: transport.state is ConnectionState.CONNECTED, "connected")
    wait_for(lambda: sum(c.complete for c in sink.groups()) >= lists, "the group list")
    return made


def test_the_joined_groups_after_each_connect_are_the_complete_list(make: Callable[..., Made]) -> None:
    ops = GoGroupsOps(groups={})
    ops.go.joined = [group_info(GROUP, GROUP_NAME), group_info(OTHER, OTHER_NAME)]
    transport, sink, _ = up(make(ops))
    assert sink.groups() == [GroupsChange((GroupInfo(GROUP, GROUP_NAME), GroupInfo(OTHER, OTHER_NAME)), complete=True)]
    assert transport.list_groups() == [GroupInfo(GROUP, GROUP_NAME), GroupInfo(OTHER, OTHER_NAME)]
    assert ops.go.calls.count("GetJoinedGroups") == 1
    # whatsmeow reconnects by itself; meanwhile the bot was removed from a group.
    ops.go.joined = [group_info(GROUP, GROUP_NAME)]
    push(transport.client, event("disconnected"))
    push(transport.client, event("connected"))
    wait_for(lambda: len(sink.groups()) == 2, "the list after the reconnect")
    assert sink.groups()[1] == GroupsChange((GroupInfo(GROUP, GROUP_NAME),), complete=True)
    assert transport.list_groups() == [GroupInfo(GROUP, GROUP_NAME)]


def test_a_list_that_fails_is_asked_for_again(make: Callable[..., Made]) -> None:
    ops = GoGroupsOps(groups={})
    ops.go.joined = [group_info(GROUP, GROUP_NAME)]
    ops.go.joined_errors = ["rate-overlimit 429"]  # neonize raises GetJoinedGroupsError
    transport, sink, _ = make(ops)
    transport.groups_retry = 0.05
    up((transport, sink, ops))
    assert ops.go.calls.count("GetJoinedGroups") == 2
    assert sink.groups() == [GroupsChange((GroupInfo(GROUP, GROUP_NAME),), complete=True)]


def test_joins_renames_and_leaves_are_reported_as_they_come(make: Callable[..., Made]) -> None:
    transport, sink, ops = up(make(FakeOps(groups={GROUP: GROUP_NAME})))
    push(transport.client, joined())  # added to a group
    push(transport.client, changed(name="Karim Telecom 2"))  # renamed
    push(transport.client, changed(leave=(ADMIN_LID,), join=("76210050711691@lid",)))  # others come and go
    push(transport.client, changed(leave=(BOT_LID,)))  # the bot removed (a LID-addressed group)
    push(transport.client, changed(join=(BOT_PHONE,)))  # added again: the name it had
    push(transport.client, changed(leave=(BOT_PHONE,)))  # left it from the phone
    push(transport.client, changed(GROUP, deleted=True))  # a group deleted
    assert sink.groups()[1:] == [
        GroupsChange(present=(GroupInfo(OTHER, OTHER_NAME),)),
        GroupsChange(present=(GroupInfo(OTHER, "Karim Telecom 2"),)),
        GroupsChange(gone=(OTHER,)),
        GroupsChange(present=(GroupInfo(OTHER, "Karim Telecom 2"),)),
        GroupsChange(gone=(OTHER,)),
        GroupsChange(gone=(GROUP,)),
    ]
    assert transport.list_groups() == []
    assert ops.group_calls == 1  # each event named its group: no list was needed
    push(transport.client, group_message(".10", group=OTHER))  # a message still carries its name
    assert sink.messages()[-1].group_name == "Karim Telecom 2"


def test_a_leave_while_the_list_is_fetched_is_not_undone_by_it(make: Callable[..., Made]) -> None:
    class SlowList(FakeOps):
        """WhatsApp answers the list late: it was made before the leave that arrives meanwhile."""

        def __init__(self) -> None:
            super().__init__(groups={GROUP: GROUP_NAME, OTHER: OTHER_NAME})
            self.asked, self.answer = threading.Event(), threading.Event()

        def joined_groups(self, client: Any) -> list[GroupInfo]:
            self.asked.set()
            self.answer.wait(WAIT)
            return super().joined_groups(client)

    transport, sink, ops = make(SlowList())
    wait_for(lambda: ops.running, "a session")
    connect(transport.client)
    assert ops.asked.wait(WAIT)
    push(transport.client, changed(leave=(BOT_LID,)))
    assert sink.groups() == [GroupsChange(gone=(OTHER,))]
    ops.answer.set()
    wait_for(lambda: len(sink.groups()) == 2, "the list")
    assert sink.groups()[1] == GroupsChange((GroupInfo(GROUP, GROUP_NAME),), complete=True)
    assert transport.list_groups() == [GroupInfo(GROUP, GROUP_NAME)]


def test_an_event_of_an_unknown_group_asks_for_the_list(make: Callable[..., Made],
                                                         monkeypatch: Any) -> None:
    from gateway.whatsapp import transport as module

    transport, sink, ops = up(make(FakeOps(groups={GROUP: GROUP_NAME})))
    monkeypatch.setattr(module, "GROUPS_MIN_INTERVAL", 0.0)
    ops.groups[OTHER] = OTHER_NAME  # added while the event that said so was lost
    push(transport.client, changed(leave=(ADMIN_LID,)))  # says nothing of the bot, of a group it never saw
    wait_for(lambda: ops.group_calls == 2, "a list")
    wait_for(lambda: len(sink.groups()) == 2, "the list reported")
    assert sink.groups()[1] == GroupsChange((GroupInfo(GROUP, GROUP_NAME), GroupInfo(OTHER, OTHER_NAME)),
                                            complete=True)
