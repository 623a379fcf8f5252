"""Actor processes outlive the process that started them (Thespian's admin detaches with
setsid). The watchdog ends them when that owner is gone, so a kill -9 of run.py never leaves a
second writer behind."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from actors.messages import Owner
from storage.lock import process_alive

log = logging.getLogger("diamondbot.watchdog")

_started = False
_lock = threading.Lock()


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
