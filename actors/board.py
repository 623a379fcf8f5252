"""The board: every group's recent reconciliation cycles in shared memory, so the panel's
figures are at most one cycle old without a message or a disk write per cycle — and, in slot 0,
whether the shop is open and how many diamonds are left, which every group reads for each
order it takes in.

The Supervisor maps an anonymous shared region before it creates any actor; every actor
process is forked from it (or from one of its children) and inherits the mapping. A
GroupActor writes its slot after each cycle (a few hundred bytes, no system call); the
PersistenceActor reads the slots when the panel asks. A slot is written by one process only
(its group's current incarnation) and read under a sequence lock. Where no board was inherited
(another machine, a test without a Supervisor) nothing is written and the panel falls back to
the checkpoints.
"""

from __future__ import annotations

import mmap
import struct

from domain.reconcile import CycleSummary, DayTally, LiveCycles
from domain.shop import ShopNow

RING = 128  # cycles kept per group: 21 minutes at 10 s, longer than a checkpoint interval
_HEAD = struct.Struct("<QQIIQ")  # sequence, cycles written, day (yyyymmdd), cycles today, checks today
_SEQ_TOTAL = struct.Struct("<QQ")  # the head's first two
_SEQ = struct.Struct("<Q")
_CYCLE = struct.Struct("<dfIIHHI")  # started_at, duration, checked, open, new, cleared, actions
_CYCLE_SIZE = 32
SLOT = _HEAD.size + RING * _CYCLE_SIZE
DEFAULT_CAPACITY = 4096  # groups; pages of slots never written cost no memory
_NOT_COUNTED = -(2**63)  # the stock's value when the shop does not count it
_OPEN_AT = 8  # slot 0: the stock left (8 bytes), then open and "written" (a byte each)

_inherited: Board | None = None


class Board:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.memory = mmap.mmap(-1, SLOT * (capacity + 1), flags=mmap.MAP_SHARED)

    # -- the shop (slot 0): the Supervisor writes whether it is open, the PersistenceActor the stock

    def set_open(self, is_open: bool) -> None:
        struct.pack_into("<BB", self.memory, _OPEN_AT, 1 if is_open else 0, 1)

    def set_stock(self, left: int | None) -> None:
        struct.pack_into("<q", self.memory, 0, _NOT_COUNTED if left is None else left)

    def shop_now(self) -> ShopNow | None:
        """The shop as it is this moment (None: nobody has written it yet)."""
        is_open, known = struct.unpack_from("<BB", self.memory, _OPEN_AT)
        if not known:
            return None
        (left,) = struct.unpack_from("<q", self.memory, 0)
        return ShopNow(bool(is_open), None if left == _NOT_COUNTED else left)

    # -- writing (a GroupActor, its own slot only) ------------------------------------------

    def reset(self, slot: int) -> None:
        """A new incarnation starts counting its cycles from nothing."""
        if 0 < slot <= self.capacity:
            seq = self._begin(slot)
            _HEAD.pack_into(self.memory, slot * SLOT, seq + 1, 0, 0, 0, 0)

    def record(self, slot: int, cycle: CycleSummary, tally: DayTally) -> None:
        """One cycle more, and the day's tally after it."""
        if not 0 < slot <= self.capacity:
            return
        # As _begin, and the head read once: this runs every 10 s in each group, all of it cold.
        memory, base = self.memory, slot * SLOT
        seq, total = _SEQ_TOTAL.unpack_from(memory, base)
        _SEQ.pack_into(memory, base, seq + 1)  # odd: being written
        _CYCLE.pack_into(memory, base + _HEAD.size + (total % RING) * _CYCLE_SIZE,
                         cycle.started_at, cycle.duration, cycle.checked, cycle.open_issues,
                         min(cycle.new_issues, 0xFFFF), min(cycle.cleared_issues, 0xFFFF), cycle.actions)
        _HEAD.pack_into(memory, base, seq + 2, total + 1, _day_number(tally.day), tally.cycles, tally.checks)

    def _begin(self, slot: int) -> int:
        """Mark the slot as being written (an odd sequence); returns that sequence."""
        seq = _HEAD.unpack_from(self.memory, slot * SLOT)[0] + 1
        struct.pack_into("<Q", self.memory, slot * SLOT, seq)
        return seq

    # -- reading (the PersistenceActor) --------------------------------------------------------

    def read(self, slot: int, group_id: str) -> LiveCycles | None:
        """The group's recent cycles, oldest first; None when it has written none."""
        if not 0 < slot <= self.capacity:
            return None
        base = slot * SLOT
        for _ in range(100):  # a writer is never in the middle for long
            seq, total, day, cycles_today, checks_today = _HEAD.unpack_from(self.memory, base)
            if seq % 2:
                continue
            first = max(total - RING, 0)
            cycles = []
            for n in range(first, total):
                started, duration, checked, open_issues, new, cleared, actions = _CYCLE.unpack_from(
                    self.memory, base + _HEAD.size + (n % RING) * _CYCLE_SIZE)
                cycles.append(CycleSummary(group_id, started, checked, open_issues, new, cleared, actions, duration))
            if _HEAD.unpack_from(self.memory, base)[0] == seq:
                if total == 0:
                    return None
                return LiveCycles(tuple(cycles), DayTally(_day_text(day), checks_today, cycles_today))
        return None


def create(capacity: int = DEFAULT_CAPACITY) -> Board:
    """The Supervisor's board, inherited by every actor process forked after this."""
    global _inherited
    _inherited = Board(capacity)
    return _inherited


def inherited() -> Board | None:
    """The board this process inherited (None: there is none here)."""
    return _inherited


_last_day: tuple[str, int] = ("", 0)


def _day_number(day: str) -> int:
    global _last_day
    if day == _last_day[0]:  # the same day as the last cycle's, nearly always
        return _last_day[1]
    number = int(day.replace("-", "")) if len(day) == 10 else 0
    _last_day = (day, number)
    return number


def _day_text(number: int) -> str:
    text = f"{number:08d}"
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if number else ""
