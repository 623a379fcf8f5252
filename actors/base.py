"""What every Diamond Bot actor shares."""

from __future__ import annotations

import ctypes
from typing import Any

from thespian.actors import ActorTypeDispatcher

from actors.messages import Batch, Owner
from actors.watchdog import die_with_parent, start_watchdog
from domain.clock import Clock, SystemClock


class BotActor(ActorTypeDispatcher):
    """An actor that understands Batch: each item is handled as if it had arrived alone."""

    clock: Clock = SystemClock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An actor's process ends with the actor that forked it (actors/watchdog.py); a no-op in
        # a process Thespian did not fork (simpleSystemBase runs actors in the caller).
        die_with_parent()

    def adopt(self, owner: Owner | None, clock: Clock | None, *, kill_system: bool = False) -> None:
        """What every actor does first: take the clock it is given (tests inject one) and watch
        its owner (run.py), so this process ends with it (actors/watchdog.py)."""
        if clock is not None:
            self.clock = clock
        if owner is not None:
            start_watchdog(owner, kill_system=kill_system)

    def receiveMsg_Batch(self, msg: Batch, sender: Any) -> None:
        for item in msg.items:
            # The dispatcher's own receiveMessage: a subclass wrapping receiveMessage (to act
            # once per arriving message) sees the whole Batch as one message.
            ActorTypeDispatcher.receiveMessage(self, item, sender)


def batched(messages: list[Any]) -> Any:
    """One message as it is, several as a Batch."""
    return messages[0] if len(messages) == 1 else Batch(tuple(messages))


def by_address(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, list[Any]]]:
    """(address, message) pairs grouped per address, in first-seen order. ActorAddress is not
    hashable, and an actor sends to few addresses at a time: a list scan it is."""
    grouped: list[tuple[Any, list[Any]]] = []
    for address, message in pairs:
        for known, messages in grouped:
            if known == address:
                messages.append(message)
                break
        else:
            grouped.append((address, [message]))
    return grouped


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


# Looked up once, in the process that imports this module (the host, before it forks its groups):
# each CDLL made in a group would be a new class and a new object there, in every group.
_trim = _malloc_trim()


def release_memory() -> None:
    """Hand freed memory back to the system (a group's loaded records, once in its desk) with
    glibc's malloc_trim where there is one. ctypes is imported with this module, in the host
    before it forks its groups: imported in each group it would cost more than the trim gives
    back. No gc.collect: the records are freed by their counts, and a collection gives nothing."""
    if _trim is not None:
        _trim(0)
