"""The patches actors/system.py applies to Thespian before the system starts."""

from __future__ import annotations

from typing import Any

from thespian.system.transport import ReceiveEnvelope, TransmitIntent

from actors.system import describe_messages_lazily


class Costly:
    """A message whose description is expensive, and counted."""

    described = 0

    def __str__(self) -> str:
        Costly.described += 1
        return "costly message"


def test_messages_are_described_only_when_a_log_line_needs_it() -> None:
    describe_messages_lazily()
    describe_messages_lazily()  # twice is once
    envelope: Any = ReceiveEnvelope("sender-address", Costly())
    intent: Any = TransmitIntent("target-address", Costly())
    Costly.described = 0
    lazy = [envelope.identify(), intent.identify()]  # what Thespian hands to its debug log
    assert Costly.described == 0
    # Written out, they read as before (the log, str() of an envelope or intent).
    received, sent = str(lazy[0]), "%s" % lazy[1]
    assert "costly message" in received and "sender-address" in received
    assert "costly message" in sent and "target-address" in sent
    assert "costly message" in str(envelope) and "target-address" in str(intent)
    assert Costly.described == 4
