"""Pairing a number: the current QR code or pairing code, and when it stops working (pure).

whatsmeow shows six QR codes per pairing attempt, the first for 60 s and the others for 20 s
each, then gives up and disconnects (whatsmeow qrchan.go). neonize 0.5.2 passes each code to
Python but says nothing when the attempt ends, so the expiry is computed here from the codes'
arrival and the transport starts a new attempt when it has passed. Imports no neonize: the panel
uses it too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

import segno

from domain.chat import ConnectionDetail

QR_FIRST = 60.0  # the first code of an attempt
QR_NEXT = 20.0  # each later one
QR_CODES = 6
EXPIRY_GRACE = 5.0  # a late code still counts: whatsmeow's timers run on another machine's clock
QR_ROUNDS = 5  # attempts without a scan (~14 min) before pairing waits for the re-pair button


@dataclass
class Pairing:
    """The pairing attempt in progress ("round"): its codes, their expiry, rounds without a scan."""

    qr: str = ""
    pair_code: str = ""
    code_expires_at: float | None = None  # the QR code shown now
    round_ends_at: float | None = None  # the last QR code of this attempt (and its pairing code)
    codes: int = 0  # QR codes seen in this attempt
    rounds: int = 0  # attempts that ended without a scan
    note: str = ""  # something the operator should know while pairing (the old device left linked)

    def new_round(self) -> None:
        """A new attempt starts (a new connection): nothing shown until its first code arrives."""
        self.qr, self.pair_code = "", ""
        self.code_expires_at = self.round_ends_at = None
        self.codes = 0

    def reset(self) -> None:
        """Paired, or the operator asked to pair again: forget the attempts so far."""
        self.new_round()
        self.rounds = 0
        self.note = ""

    def qr_received(self, payload: str, now: float) -> bool:
        """Record a QR code from whatsmeow; True if it is a new one."""
        if not payload or payload == self.qr:
            return False
        first = self.codes == 0
        self.codes += 1
        self.qr = payload
        self.code_expires_at = now + (QR_FIRST if first else QR_NEXT)
        if first:
            self.round_ends_at = now + QR_FIRST + (QR_CODES - 1) * QR_NEXT
        return True

    @property
    def showing(self) -> bool:
        return bool(self.qr)

    @property
    def expires_at(self) -> float | None:
        """When what the operator sees stops working: the pairing code lasts the whole attempt."""
        return self.round_ends_at if self.pair_code else self.code_expires_at

    def check_at(self) -> float | None:
        """When to check whether the attempt ended: the current code's expiry plus a grace."""
        return None if self.code_expires_at is None else self.code_expires_at + EXPIRY_GRACE

    def expired(self, now: float) -> bool:
        """Whether the current code expired with no newer one: whatsmeow gave up on this attempt."""
        at = self.check_at()
        return at is not None and now >= at

    @property
    def exhausted(self) -> bool:
        return self.rounds >= QR_ROUNDS

    def detail(self) -> ConnectionDetail:
        """What the PAIRING state shows."""
        if self.exhausted and not self.qr:
            given_up = f"nobody scanned the QR code in {self.rounds} attempts; press re-pair to show a new one"
            return ConnectionDetail(f"{given_up}. {self.note}" if self.note else given_up, expired=True)
        return ConnectionDetail(self.note, qr=self.qr, pair_code=self.pair_code, expires_at=self.expires_at)


def print_qr(payload: str, expires_in: float, out: TextIO | None = None) -> None:
    """Show a QR code in the terminal, for the operator's eyes (not a log line)."""
    out = out or sys.stderr
    try:
        segno.make_qr(payload).terminal(out=out, compact=True)
        out.write(f"WhatsApp → Settings → Linked devices → Link a device: scan this code "
                  f"(valid {expires_in:.0f} s; a new one follows).\n")
        out.flush()
    except (OSError, ValueError):
        pass  # no terminal to show it on; the panel shows it too


def print_pair_code(code: str, phone: str, out: TextIO | None = None) -> None:
    """Show a pairing code in the terminal."""
    out = out or sys.stderr
    try:
        out.write(f"\nWhatsApp pairing code for +{phone}: {code}\n"
                  f"On that phone: WhatsApp → Settings → Linked devices → Link a device → "
                  f"Link with phone number instead, then enter the code.\n\n")
        out.flush()
    except (OSError, ValueError):
        pass
