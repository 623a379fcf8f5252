"""What every route module shares: the panel's state (one typed app key) and small JSON helpers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Callable, Mapping

import orjson
from aiohttp import web

from actors.messages import CommandDone, QueryResult
from config import Config
from domain.users import Role
from web.auth import UserDirectory
from web.bridge import ActorBridge
from web.i18n import Words
from web.security import ROLE, USER, ApiError
from web.throttle import LoginThrottle

# The lifecycle actions an admin may take on an order (the state machine's COMPLETE is the system's).
ACTIONS = ("process", "approve", "cancel", "delete")
# Statuses an actor may answer with that mean the same to an API client.
_PASS_THROUGH = frozenset({400, 404, 409, 503})


@dataclass(frozen=True, kw_only=True)
class Panel:
    """The panel's state, built once by create_app."""

    config: Config
    bridge: ActorBridge
    tz: tzinfo
    started_at: float
    users: UserDirectory  # the panel's users, from the actor system
    throttle: LoginThrottle
    words: Words  # the panel's language (bot.language), for the code and the templates alike
    clock: Callable[[], float] = field(default=time.time)  # wall time: is an undo window still open


PANEL = web.AppKey("panel", Panel)


def panel_of(request: web.Request) -> Panel:
    return request.app[PANEL]


def user_of(request: web.Request) -> str:
    """The logged-in user (the login middleware guarantees one on non-public routes)."""
    return request[USER]


def role_of(request: web.Request) -> Role:
    """The logged-in user's role."""
    return request[ROLE]


def is_owner(request: web.Request) -> bool:
    return request.get(ROLE) is Role.OWNER


def actor_by(request: web.Request) -> str:
    """Who a command is by, as the audit trail records it."""
    return f"admin:{user_of(request)}"


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON via orjson (callers convert money and times to strings first)."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError 400 saying what is wrong with it."""
    raw = await request.read()  # over client_max_size raises 413
    if not raw.strip():
        raise ApiError(400, "send a JSON object in the request body")
    try:
        data = orjson.loads(raw)  # strict: no NaN or Infinity (integers past 64 bits become floats)
    except orjson.JSONDecodeError as e:
        raise ApiError(400, f"malformed JSON: {e}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def unwrap(result: QueryResult) -> Any:
    """The data of a query answer, or ApiError with the actor's status and reason."""
    if result.status == 200:
        return result.data
    raise _answer_error(result.status, result.error)


def command_result(done: CommandDone) -> Mapping[str, Any]:
    """The result of a command answer, or ApiError with the actor's status and reason."""
    if done.status == 200 and done.result is not None:
        return done.result
    raise _answer_error(done.status, done.error)


def _answer_error(status: int, error: str) -> Exception:
    if status in _PASS_THROUGH:
        return ApiError(status, error or "refused")
    # Anything else is a fault inside the bot: the error middleware logs it and answers 500.
    return RuntimeError(f"the actor system answered {status}: {error}")
