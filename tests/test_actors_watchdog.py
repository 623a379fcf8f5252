"""An actor's process dies with the process that forked it (PR_SET_PDEATHSIG), at no CPU cost:
checked here with plain forks, and on the production base in tests/test_e2e_system.py."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from actors.watchdog import die_with_parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie, waiting for init to reap it, is dead)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2:].split()[0] != b"Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def parent_with_child(tie: bool) -> tuple[int, int]:
    """Fork a parent that forks a sleeping child (tied to it or not); returns both pids."""
    r, w = os.pipe()
    parent = os.fork()
    if parent == 0:  # the parent
        os.close(r)
        child = os.fork()
        if child == 0:  # the child
            try:
                if tie:
                    die_with_parent(os.getppid())
                os.write(w, f"{os.getpid()}\n".encode())
                time.sleep(30)
            finally:
                os._exit(0)
        time.sleep(30)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        child = int(f.readline())
    return parent, child


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.parametrize("tie", [True, False])
def test_a_child_dies_with_its_parent_only_when_tied(tie: bool) -> None:
    parent, child = parent_with_child(tie)
    try:
        assert alive(child)
        os.kill(parent, signal.SIGKILL)
        os.waitpid(parent, 0)
        if tie:
            assert wait_gone(child, 2), "the tied child outlived its parent"
        else:  # the control: without the tie the orphan lives on (what the tie is for)
            time.sleep(0.3)
            assert alive(child)
    finally:
        kill(parent)
        kill(child)


def test_a_child_whose_parent_died_before_the_tie_exits_at_once() -> None:
    pid = os.fork()
    if pid == 0:
        try:
            die_with_parent(os.getppid() + 1_000_000)  # not its parent: as if the parent were gone
        finally:
            os._exit(0)  # not reached when the tie ends the process
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_a_process_not_forked_by_multiprocessing_is_left_alone() -> None:
    """The test process itself (actors run in it on simpleSystemBase): nothing armed."""
    assert die_with_parent() is False
