"""Actor processes outlive the process that started them (Thespian's admin detaches with
setsid). The watchdog ends them when that owner is gone, so a kill -9 of run.py never leaves a
second writer behind.

Two layers: the Supervisor watches run.py (a thread polling it, and killing the whole process
group when it is gone); every actor process dies with the actor that forked it
(`die_with_parent`, the kernel's PR_SET_PDEATHSIG: no thread, no CPU). So the death of run.py
ends the Supervisor's group, and the death of any actor (a GroupHost, the Supervisor itself)
ends every actor under it — a GroupActor never outlives its host to become a second writer."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time

from actors.messages import Owner
from storage.lock import process_alive

log = logging.getLogger("diamondbot.watchdog")

_started = False
_lock = threading.Lock()

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_tied_in = 0  # the pid of the process die_with_parent last armed (forks inherit this variable)


def die_with_parent(parent: int | None = None) -> bool:
    """Have the kernel SIGKILL this process when its parent dies (once per process; Linux only).

    `parent` is the pid that forked this process; by default the one multiprocessing recorded
    for it, which is how Thespian starts every actor. A process that multiprocessing did not
    start (the owner itself, simpleSystemBase in a test) is left alone. The signal comes when
    the parent *thread* that forked exits: Thespian forks a child from the actor's main thread
    (the one running its handlers), never from a helper thread, so this is the parent's death.
    If the parent died before the kernel was told, the process was already re-parented: it
    exits here, as the signal would have made it."""
    global _tied_in
    pid = os.getpid()
    if _tied_in == pid:
        return False
    if parent is None:
        known = multiprocessing.parent_process()
        if known is None or known.pid is None:
            return False
        parent = known.pid
    _tied_in = pid
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:
        os.kill(pid, signal.SIGKILL)
    return True


def start_watchdog(owner: Owner, *, interval: float = 0.5, kill_system: bool = False) -> bool:
    """Start (once per process) a thread that exits this process when the owner dies.

    With kill_system, it kills the whole Thespian session instead (admin, logger, every actor):
    the admin is not our code and would otherwise linger. Does nothing in the owner's own
    session (simpleSystemBase, tests): there it would kill the owner itself."""
    global _started
    if os.getsid(0) == owner.sid:
        return False
    with _lock:
        if _started:
            return False
        _started = True

    def watch() -> None:
        while process_alive(owner.pid, owner.start_time):
            time.sleep(interval)
        if kill_system:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os._exit(0)

    threading.Thread(target=watch, name="owner-watchdog", daemon=True).start()
    return True
