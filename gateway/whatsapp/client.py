"""neonize's NewClient, adapted where 0.5.2 leaves the transport blind or stuck. Imports neonize:
import this module only inside the gateway's process (NeonizeOps.new_client does).

* The login status. While pairing, whatsmeow reports how the QR attempt ended ("success",
  "timeout", "err-client-outdated", ...) on its QR channel; goneonize passes it to the callback
  `NewClient.__onLoginStatus`, which only print()s the pointer it gets. No event follows: after
  that channel closes the Go side waits for a device id (FetchMe) and delivers nothing more. The
  client here reads the status and hands it to `on_login_status`.
* The session's worker thread. `connect()` runs the Go session on a non-daemon thread; a session
  that cannot end (the FetchMe wait ignores stop()) would hold up the interpreter's exit, and so
  the gateway process's. Python 3.13 joins non-daemon threads through thread handles that no
  code can take back, so the worker is made a daemon when neonize creates it.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any, Callable

import neonize.client as neonize_client
from neonize.client import NewClient

log = logging.getLogger(__name__)


class DaemonThread(threading.Thread):
    """A thread that is always a daemon, whatever its creator asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["daemon"] = True
        super().__init__(*args, **kwargs)


# connect() looks `Thread` up in its module at each call: from now on its worker is a daemon.
neonize_client.Thread = DaemonThread  # type: ignore[attr-defined,misc]


class Client(NewClient):
    """A NewClient that passes the login status on instead of printing it."""

    def __init__(self, name: str, on_login_status: Callable[[str], None]) -> None:
        super().__init__(name)
        self.on_login_status = on_login_status

    # connect() hands `self.__onLoginStatus` (mangled to this name) to the Go side; Go calls it
    # with two C strings, the client's uuid and the status.
    def _NewClient__onLoginStatus(self, uuid: int, status: int) -> None:  # noqa: N802
        text = ctypes.string_at(status).decode("utf-8", "replace") if status else ""
        try:
            self.on_login_status(text)
        except Exception:  # called from Go: an exception here would vanish
            log.exception("handling the WhatsApp login status %r failed", text)
