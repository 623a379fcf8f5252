"""The admin panel's aiohttp application: state, security, routes and static files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from aiohttp import web

from config import Config
from web.auth import UserDirectory, session_key
from web.bridge import ActorBridge
from web.i18n import words
from web.routes import PANEL, Panel
from web.routes import accounts as account_routes
from web.routes import auth as auth_routes
from web.routes import dashboard as dashboard_routes
from web.routes import groups as group_routes
from web.routes import live as live_routes
from web.routes import orders as order_routes
from web.routes import pages as page_routes
from web.routes import payments as payment_routes
from web.routes import settings as settings_routes
from web.routes import shop as shop_routes
from web.routes import status as status_routes
from web.routes import users as user_routes
from web.routes import whatsapp as whatsapp_routes
from web.network import NetworkPolicy
from web.security import SESSION_MAX_AGE, setup_security
from web.sessions import SessionRegistry
from web.throttle import LoginThrottle

STATIC = Path(__file__).resolve().parent / "static"
# Every request body is a small JSON object or a login form; anything bigger is refused (413).
CLIENT_MAX_SIZE = 64 * 1024


def create_app(config: Config, bridge: ActorBridge, *, started_at: float | None = None,
               clock: Callable[[], float] = time.time) -> web.Application:
    """The panel for a running actor system. Creates the session key in the data dir on first
    use; the first-start admin is the caller's job (web.auth.ensure_admin, before serving)."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    users = UserDirectory(bridge)
    app[PANEL] = Panel(
        config=config,
        bridge=bridge,
        tz=ZoneInfo(config.bot.timezone),
        started_at=time.time() if started_at is None else started_at,
        users=users,
        throttle=LoginThrottle(config.panel.login_attempts, config.panel.login_window),
        words=words(config.bot.language),
        clock=clock,
    )
    setup_security(app, session_key(config.bot.data_dir), SessionRegistry(config.bot.data_dir, SESSION_MAX_AGE),
                   users, NetworkPolicy.from_config(config))
    page_routes.setup_templates(app)
    auth_routes.add_routes(app)
    page_routes.add_routes(app)
    dashboard_routes.add_routes(app)
    order_routes.add_routes(app)
    group_routes.add_routes(app)
    payment_routes.add_routes(app)
    account_routes.add_routes(app)
    status_routes.add_routes(app)
    whatsapp_routes.add_routes(app)
    user_routes.add_routes(app)
    shop_routes.add_routes(app)
    settings_routes.add_routes(app)
    live_routes.add_routes(app)
    app.router.add_static("/static", STATIC, name="static", follow_symlinks=False, show_index=False)
    return app
