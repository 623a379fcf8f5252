"""Every neonize call the WhatsApp transport makes, in one place (tests replace the ones that
would reach WhatsApp), and the session database's file handling."""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

from domain.chat import GroupInfo
from gateway.whatsapp import convert

log = logging.getLogger(__name__)


class NeonizeOps:
    """neonize's calls. None of those that take a client is made before a session set up
    neonize's client table (see gateway.whatsapp.calls), unless its docstring says so."""

    def __init__(self) -> None:
        self._kept: list[Any] = []

    def new_client(self, session_db: str, on_login_status: Callable[[str], None]) -> Any:
        """A client on the session database (no network, no disk until connect) that reports
        the login status of a pairing attempt to `on_login_status` (on a Go thread)."""
        from gateway.whatsapp.client import Client

        return Client(session_db, on_login_status)

    def run(self, client: Any) -> None:
        """One session: connect and block until it ends. Raises at once if the first connection fails."""
        client.connect()

    def end(self, client: Any) -> None:
        """Make a running `run` return (safe without a session)."""
        client.stop()

    def send(self, client: Any, to: Any, message: Any) -> Any:
        """Send a built message; returns neonize's SendResponse, raises SendMessageError. May
        wait for ever: neonize sets no deadline."""
        return client.send_message(to, message)

    def pair_code(self, client: Any, phone: str) -> str:
        """A pairing code for `phone` (after the session's first QR code)."""
        return str(client.PairPhone(phone, show_push_notification=True))

    def joined_groups(self, client: Any) -> list[GroupInfo]:
        """The groups the number is in (after Connected)."""
        return convert.group_infos(client.get_joined_groups())

    def logout(self, client: Any) -> None:
        """Unlink this device from the phone and delete the session's keys (after Connected:
        whatsmeow tells the server, which needs a connection)."""
        client.logout()

    def has_session(self, session_db: str) -> bool | None:
        """Whether the session database holds a linked device; None if it cannot tell. Safe any time.

        Reads the SQLite file itself, read-only, and closes it again: neonize's
        `ClientFactory.get_all_devices_from_db` opens a new handle to the database on every call
        and never closes it, and splits each device's fields on commas, so a push name with a
        comma breaks it. A postgres:// session cannot be read here: None (whatsmeow pairs at
        connect if it holds no device)."""
        if "://" in session_db:
            return None
        path = Path(session_db)
        if not path.exists():
            return False
        try:
            with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)) as db:
                table = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'whatsmeow_device'")
                if table.fetchone() is None:
                    return False  # whatsmeow has not set the database up yet
                return db.execute("SELECT 1 FROM whatsmeow_device LIMIT 1").fetchone() is not None
        except sqlite3.Error as e:
            log.warning("cannot read the WhatsApp session database %s: %s", session_db, e)
            return None

    def discard_session(self, session_db: str) -> None:
        """Move a session database aside (kept as a backup), so the next session pairs afresh."""
        if "://" in session_db:
            log.error("cannot discard a session kept at %s: delete its device rows by hand", session_db)
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = Path(session_db + suffix)
            if path.exists():
                path.rename(path.with_name(f"{path.name}.old-{stamp}"))
                log.warning("WhatsApp session file moved aside: %s.old-%s", path, stamp)

    def abandon(self, client: Any) -> None:
        """A session that does not end: after a pairing attempt ends, neonize 0.5.2's Go side
        waits for a device id that never comes and ignores stop() (goneonize main.go, FetchMe).
        Its worker is a daemon thread (gateway.whatsapp.client), so it holds up no exit; its Go
        side still holds the callbacks of that connect(): keep them from being freed when the
        next connect() replaces them."""
        self._kept.append(getattr(client, "_connect_refs", None))


def restrict(session_db: str) -> None:
    """The session database holds the link's keys: readable by the bot's user only."""
    if "://" in session_db:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            Path(session_db + suffix).chmod(0o600)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cannot restrict %s%s to its owner: %s", session_db, suffix, e)
