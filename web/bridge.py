"""The panel's only way into the actor system.

Thespian's ask() blocks, and one ActorSystem handle must never be shared between threads (a
reply can reach the wrong thread). So each worker thread holds its own `asys.private()`
handle, the event loop awaits the worker, and every request carries a request_id: a late
reply to an earlier timed-out ask is recognised and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any, Protocol

from actors.messages import (
    Batch,
    CommandDone,
    GetDailyReport,
    GetGatewayStatus,
    GetShop,
    GetLedger,
    GetOrder,
    GetReport,
    GetStatus,
    ListGroups,
    ListOrders,
    ListPayments,
    ListUsers,
    OrderCommand,
    QueryResult,
    RecordPayment,
    RePair,
    SaveUser,
    SendReminders,
    UpdateGroup,
    MoveGroup,
    UpdateShop,
    VoidPayment,
)

from web.live import Fanout, LiveFeed

log = logging.getLogger("diamondbot.bridge")


class BridgeError(Exception):
    """The actor system did not answer (timeout, or it is not running)."""


class Reply(Protocol):
    status: int
    error: str


class ActorBridge(Protocol):
    """What the web layer needs from the actor system (a fake implements it in tests)."""

    async def command(self, order_id: str, action: str, by: str) -> CommandDone: ...

    async def update_group(self, group_id: str, patch: dict[str, Any], by: str) -> CommandDone: ...

    async def move_group(self, group_id: str, shard: str, by: str) -> CommandDone: ...

    async def list_orders(self, **filters: Any) -> QueryResult: ...

    async def get_order(self, order_id: str) -> QueryResult: ...

    async def list_groups(self) -> QueryResult: ...

    async def report(self) -> QueryResult: ...

    async def record_payment(self, group_id: str, amount: str, method: str, reference: str, note: str,
                             by: str, client_key: str = "", confirm_duplicate: bool = False) -> CommandDone:
        """CommandDone with result {"payment": <stored payment>, "due": "<decimal>"}; a retry with
        the same client_key answers with the payment recorded the first time; a reference the
        group already holds answers 409 with result {"duplicate_of": <that payment>} unless
        confirm_duplicate."""
        ...

    async def void_payment(self, payment_id: str, reason: str, by: str) -> CommandDone:
        """CommandDone: 200 {"payment", "due"}, 400 no reason, 404 unknown, 409 already void."""
        ...

    async def list_payments(self, **filters: Any) -> QueryResult:
        """Filters of ListPayments (group, since, until, limit, offset); data {"payments", "total"}."""
        ...

    async def ledger(self, group_id: str, since: float | None = None, until: float | None = None) -> QueryResult: ...

    async def daily_report(self, day: str = "") -> QueryResult: ...

    async def list_users(self) -> QueryResult:
        """The panel's users with their hashes, and the audit of changes (actors.messages.ListUsers)."""
        ...

    async def save_user(self, username: str, role: str, password_hash: str | None, by: str,
                        remove: bool = False) -> CommandDone:
        """Add, change or remove a panel user (actors.messages.SaveUser)."""
        ...

    async def get_shop(self, timeout: float | None = None) -> QueryResult:
        """The shop's state and settings: a ShopView (README: "A shop's day in the panel");
        `timeout` shorter than the bridge's for pages that can do without it."""
        ...

    async def update_shop(self, patch: dict[str, Any], by: str) -> CommandDone:
        """Change the shop (any subset of the ShopView's keys): 200 the new ShopView, 400 "<key>: why"."""
        ...

    async def send_reminders(self, group_ids: tuple[str, ...], min_due: str, by: str) -> CommandDone:
        """Send groups their due: 200 {"sent": [group ids], "skipped": {group id: why}}."""
        ...

    async def status(self) -> QueryResult: ...

    async def gateway_status(self) -> QueryResult: ...

    async def repair(self) -> QueryResult: ...

    def healthy(self) -> bool: ...

    @property
    def live(self) -> Fanout:
        """Changes pushed by the actor system, for live pages."""
        ...


class ThespianBridge:
    """ActorBridge over a running actor system."""

    def __init__(self, asys: Any, supervisor: Any, *, workers: int = 4, timeout: float = 10.0) -> None:
        self._asys = asys
        self.supervisor = supervisor
        self.timeout = timeout
        self._local = threading.local()
        self._contexts: list[Any] = []
        self._contexts_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bridge",
                                        initializer=self._open_handle)
        self._closed = False
        self.last_ok = 0.0
        self._live = LiveFeed(asys, supervisor)

    @property
    def live(self) -> Fanout:
        return self._live

    def _open_handle(self) -> None:
        context = self._asys.private()
        self._local.handle = context.__enter__()
        with self._contexts_lock:
            self._contexts.append(context)

    def _ask_blocking(self, target: Any, msg: Any, timeout: float, deadline: float) -> Any:
        # The deadline runs from the request, not from when a worker took it: with the actor
        # system stalled, requests queued behind others must not wait their turn and then 10 s.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BridgeError(f"no answer from the actor system within {timeout:.0f} s")
        handle = self._local.handle
        reply = self._answer(handle.ask(target, msg, timedelta(seconds=remaining)), msg.request_id)
        # Skip replies to earlier requests that timed out on this thread.
        while reply is not None and getattr(reply, "request_id", None) != msg.request_id:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reply = None
                break
            reply = self._answer(handle.listen(timedelta(seconds=remaining)), msg.request_id)
        if reply is None:
            raise BridgeError(f"no answer from the actor system within {timeout:.0f} s")
        self.last_ok = time.monotonic()
        return reply

    @staticmethod
    def _answer(reply: Any, request_id: str) -> Any:
        """The reply to request_id, also from inside a Batch (answers sent after a write come
        merged with others for the same address)."""
        if isinstance(reply, Batch):
            return next((r for r in reply.items if getattr(r, "request_id", None) == request_id),
                        reply.items[0] if reply.items else None)
        return reply

    async def ask(self, target: Any, msg: Any, timeout: float | None = None) -> Any:
        if self._closed:
            raise BridgeError("the actor system is shutting down")
        loop = asyncio.get_running_loop()
        timeout = timeout or self.timeout
        return await loop.run_in_executor(self._pool, self._ask_blocking, target, msg, timeout,
                                          time.monotonic() + timeout)

    @staticmethod
    def _rid() -> str:
        return uuid.uuid4().hex

    async def command(self, order_id: str, action: str, by: str) -> CommandDone:
        return await self.ask(self.supervisor, OrderCommand(self._rid(), order_id, action, by))

    async def update_group(self, group_id: str, patch: dict[str, Any], by: str) -> CommandDone:
        return await self.ask(self.supervisor, UpdateGroup(self._rid(), group_id, patch, by))

    async def move_group(self, group_id: str, shard: str, by: str) -> CommandDone:
        return await self.ask(self.supervisor, MoveGroup(self._rid(), group_id, shard, by))

    # Everything goes through the Supervisor: it always knows the current PersistenceActor and
    # GatewayActor, even after one of them was restarted with a new address.

    async def list_orders(self, **filters: Any) -> QueryResult:
        return await self.ask(self.supervisor, replace(ListOrders(self._rid()), **filters))

    async def get_order(self, order_id: str) -> QueryResult:
        return await self.ask(self.supervisor, GetOrder(self._rid(), order_id))

    async def list_groups(self) -> QueryResult:
        return await self.ask(self.supervisor, ListGroups(self._rid()))

    async def report(self) -> QueryResult:
        return await self.ask(self.supervisor, GetReport(self._rid()))

    async def record_payment(self, group_id: str, amount: str, method: str, reference: str, note: str,
                             by: str, client_key: str = "", confirm_duplicate: bool = False) -> CommandDone:
        return await self.ask(self.supervisor, RecordPayment(self._rid(), group_id, amount, method,
                                                             reference, note, by, client_key=client_key,
                                                             confirm_duplicate=confirm_duplicate))

    async def void_payment(self, payment_id: str, reason: str, by: str) -> CommandDone:
        return await self.ask(self.supervisor, VoidPayment(self._rid(), "", payment_id, reason, by))

    async def list_payments(self, **filters: Any) -> QueryResult:
        return await self.ask(self.supervisor, replace(ListPayments(self._rid()), **filters))

    async def ledger(self, group_id: str, since: float | None = None, until: float | None = None) -> QueryResult:
        return await self.ask(self.supervisor, GetLedger(self._rid(), group_id, since, until))

    async def daily_report(self, day: str = "") -> QueryResult:
        return await self.ask(self.supervisor, GetDailyReport(self._rid(), day))

    async def list_users(self) -> QueryResult:
        return await self.ask(self.supervisor, ListUsers(self._rid()))

    async def save_user(self, username: str, role: str, password_hash: str | None, by: str,
                        remove: bool = False) -> CommandDone:
        return await self.ask(self.supervisor, SaveUser(self._rid(), username, role, password_hash, by, remove))

    async def get_shop(self, timeout: float | None = None) -> QueryResult:
        return await self.ask(self.supervisor, GetShop(self._rid()), timeout)

    async def update_shop(self, patch: dict[str, Any], by: str) -> CommandDone:
        return await self.ask(self.supervisor, UpdateShop(self._rid(), patch, by))

    async def send_reminders(self, group_ids: tuple[str, ...], min_due: str, by: str) -> CommandDone:
        return await self.ask(self.supervisor, SendReminders(self._rid(), tuple(group_ids), min_due, by))

    async def status(self) -> QueryResult:
        return await self.ask(self.supervisor, GetStatus(self._rid()))

    async def gateway_status(self) -> QueryResult:
        return await self.ask(self.supervisor, GetGatewayStatus(self._rid()))

    async def repair(self) -> QueryResult:
        return await self.ask(self.supervisor, RePair(self._rid()))

    def healthy(self) -> bool:
        return not self._closed

    def close(self) -> None:
        """Stop the workers and release their handles (before the actor system shuts down)."""
        self._closed = True
        self._live.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._contexts_lock:
            for context in self._contexts:
                try:
                    context.__exit__(None, None, None)
                except Exception:  # a handle that failed to open has nothing to release
                    pass
            self._contexts.clear()
