"""What the WhatsApp transport's supervisor thread is told: commands from neonize's handlers and
from the bot, its own timers, and what follows the end of a session. One class per command,
so the supervisor dispatches on type, never on a name."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Timer(enum.Enum):
    """The supervisor's timers (at most one of each runs)."""

    END_WAIT = "end_wait"  # look again whether the session asked to end has ended
    RETRY = "retry"  # connect again after a failure
    BAN = "ban"  # the ban should be over
    QR = "qr"  # the QR code's time is up
    QR_LOGIN = "qr_login"  # the login after a last-moment scan should be done
    SILENT = "silent"  # a new session should have shown a QR code or connected by now
    REPAIR = "repair"  # re-pair gives up connecting to log the old device out


class After(enum.Enum):
    """What follows the end of a session."""

    IDLE = "idle"  # nothing: wait for the re-pair button or a restart
    BAN = "ban"  # wait out the ban, then connect
    RELINK = "relink"  # forget the session and pair again
    RETRY = "retry"  # connect again after the backoff
    RESTART = "restart"  # connect again at once


@dataclass(frozen=True, slots=True)
class Stop:
    """The transport stops: end the session and the supervisor."""


@dataclass(frozen=True, slots=True)
class Repair:
    """The panel's re-pair button."""


@dataclass(frozen=True, slots=True)
class QrCode:
    """whatsmeow shows a new QR code."""

    payload: str


@dataclass(frozen=True, slots=True)
class LoginStatus:
    """How whatsmeow's QR channel ended ("success", "timeout", "err-client-outdated", ...)."""

    status: str


@dataclass(frozen=True, slots=True)
class Paired:
    """A pairing attempt ended."""

    ok: bool
    error: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The session is connected (again)."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection dropped; whatsmeow reconnects by itself."""


@dataclass(frozen=True, slots=True)
class ConnectFailure:
    """WhatsApp refused the connection; whatsmeow does not reconnect from this."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class SinkFailed:
    """The bot could not record received messages."""

    error: str


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """WhatsApp unlinked this device."""

    reason: str


@dataclass(frozen=True, slots=True)
class Banned:
    """A temporary ban; `expire` in seconds from now, 0 when WhatsApp did not say."""

    expire: float
    reason: str


@dataclass(frozen=True, slots=True)
class Replaced:
    """Another instance connected with this session."""


@dataclass(frozen=True, slots=True)
class Outdated:
    """WhatsApp refuses this client version."""


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """A session thread returned (`error`: why its first connect failed)."""

    number: int
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class TimerDue:
    """One of the supervisor's timers is due."""

    timer: Timer


Command = (Stop | Repair | QrCode | LoginStatus | Paired | Connected | Disconnected | ConnectFailure | SinkFailed
           | LoggedOut | Banned | Replaced | Outdated | SessionEnded | TimerDue)
