"""The whole actor system on simpleSystemBase with a fake transport and a fake clock.

Tests read like a chat:

    bot.post(GROUP, ALICE, ".10")
    assert bot.replies(GROUP)[-1].startswith("📥")
    assert bot.command("A1", "approve").status == 200
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from thespian.actors import ActorSystem

from actors.messages import (
    CommandDone,
    GetOrder,
    GetReport,
    GetStatus,
    ListGroups,
    ListOrders,
    Locate,
    OrderCommand,
    QueryResult,
    StartSystem,
    StopSystem,
    SystemStarted,
    UpdateGroup,
)
from actors.supervisor import Supervisor
from actors.system import quiet_log_config
from config import Config, load_config
from domain.clock import FakeClock
from domain.chat import ChatMessage, Source
from gateway.fake import FakeTransport

GROUP = "120363000000000001@g.us"
GROUP2 = "120363000000000002@g.us"
ALICE = "76210050711676@lid"
BOB = "76210050711677@lid"
T = timedelta(seconds=5)


def actor_config(data_dir: Path, **overrides: str) -> Config:
    """A config for actor tests: fast commits, no pacing, timers that never fire by themselves."""
    values = {
        "bot.data_dir": str(data_dir),
        "actors.system_base": "simpleSystemBase",
        "persistence.commit_delay": "0s",
        "outbox.min_gap": "0s",
        "outbox.jitter": "0s",
        "outbox.per_group_gap": "0s",
        "reconciliation.interval": "1h",
        "reconciliation.first_cycle_within": "1h",
        # The duplicate guard is on by default; tests of other things order freely.
        "orders.duplicate_window": "0s",
        # A new group has no rate by default; tests of other things price at ৳100 a diamond.
        "orders.default_rate": "100",
    }
    values.update(overrides)
    return load_config(env={}, overrides=values)


class ChatBot:
    def __init__(self, config: Config, clock: FakeClock | None = None,
                 fake: FakeTransport | None = None, supervisor: type = Supervisor) -> None:
        self.config = config
        self.clock = clock or FakeClock()
        self.fake = fake or FakeTransport(groups={GROUP: "Rahim Store", GROUP2: "Karim Telecom"})
        self.fake.clock_now = self.clock.now()
        self.asys = ActorSystem("simpleSystemBase", logDefs=quiet_log_config())
        self.supervisor = self.asys.createActor(supervisor)
        self.started: Any = None

    def start(self) -> Any:
        reply = self.asys.ask(self.supervisor, StartSystem(self.config, clock=self.clock,
                                                            transport=self.fake), T)
        self.started = reply
        if isinstance(reply, SystemStarted):
            self.pump()
        return reply

    def pump(self, seconds: float = 0.05) -> list[Any]:
        """Let the actors run for `seconds` (timers fire as they fall due); returns whatever
        was sent to the test meanwhile (listen() returns at the first such message)."""
        received = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            msg = self.asys.listen(timedelta(seconds=left))
            if msg is not None:
                received.append(msg)
        return received

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.fake.clock_now = self.clock.now()

    # -- chat ---------------------------------------------------------------------------------

    def post(self, group: str, sender: str, text: str, **kw: Any) -> ChatMessage:
        kw.setdefault("timestamp", self.clock.now())
        msg = self.fake.post(group, sender, text, **kw)
        self.pump()
        return msg

    def deliver(self, *messages: ChatMessage) -> None:
        self.fake.deliver(list(messages))
        self.pump()

    def message(self, group: str, sender: str, text: str, *, source: Source = Source.LIVE,
                timestamp: float | None = None, message_id: str | None = None, sender_alt: str = "",
                quoted_id: str = "", edits: str = "", revokes: str = "") -> ChatMessage:
        return ChatMessage(group_id=group, group_name=self.fake.groups.get(group, group),
                           message_id=message_id or f"M{uuid.uuid4().hex[:12].upper()}",
                           sender=sender, sender_alt=sender_alt, sender_name=sender.split("@")[0], text=text,
                           timestamp=self.clock.now() if timestamp is None else timestamp, source=source,
                           quoted_id=quoted_id, edits=edits, revokes=revokes)

    def say(self, group: str, sender: str, text: str, **kw: Any) -> ChatMessage:
        """Post a message built with `message` (replies, edits, deletes) and let it be handled."""
        msg = self.message(group, sender, text, **kw)
        self.deliver(msg)
        return msg

    def last_reply(self, group: str) -> str:
        texts = self.replies(group)
        return texts[-1] if texts else ""

    def bot_message_id(self, text_start: str) -> str:
        """The chat id of the newest message the bot sent starting with `text_start`."""
        for request, message_id in zip(reversed(self.fake.sent), reversed(self.fake.sent_ids)):
            if request.text.startswith(text_start):
                return message_id
        raise AssertionError(f"the bot sent nothing starting with {text_start!r}")

    def replies(self, group: str) -> list[str]:
        return self.fake.texts_to(group)

    # -- panel --------------------------------------------------------------------------------

    def command(self, order_id: str, action: str, by: str = "admin:test") -> CommandDone:
        reply = self.asys.ask(self.supervisor, OrderCommand(uuid.uuid4().hex, order_id, action, by), T)
        self.pump()
        return reply

    def update_group(self, group: str, **patch: Any) -> CommandDone:
        reply = self.asys.ask(self.supervisor, UpdateGroup(uuid.uuid4().hex, group, patch, "admin:test"), T)
        self.pump()
        return reply

    def query(self, msg: Any) -> QueryResult:
        return self.asys.ask(self.started.persistence, msg, T)

    def orders(self, **filters: Any) -> list[dict[str, Any]]:
        result = self.query(ListOrders(uuid.uuid4().hex, limit=500, **filters))
        assert result.status == 200, result.error
        return [v["record"] for v in result.data["orders"]]

    def order(self, order_id: str) -> dict[str, Any]:
        result = self.query(GetOrder(uuid.uuid4().hex, order_id))
        assert result.status == 200, result.error
        return result.data

    def groups(self) -> list[dict[str, Any]]:
        return self.query(ListGroups(uuid.uuid4().hex)).data

    def report(self) -> dict[str, Any]:
        return self.query(GetReport(uuid.uuid4().hex)).data

    def status(self) -> dict[str, Any]:
        return self.asys.ask(self.supervisor, GetStatus(uuid.uuid4().hex), T).data

    def locate(self, group: str) -> Any:
        return self.asys.ask(self.supervisor, Locate(uuid.uuid4().hex, group), T).data

    def stop(self) -> None:
        try:
            self.asys.ask(self.supervisor, StopSystem(), T)
        finally:
            self.asys.shutdown()
