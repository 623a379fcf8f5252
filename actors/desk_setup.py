"""A desk's rules and the shop's defaults, taken from the config the Supervisor hands on."""

from __future__ import annotations

from config import Config
from domain.admins import AdminRoster
from domain.desk import DeskSetup
from domain.intake import Limits
from domain.parsing import OrderForms
from config.loader import LANGUAGES, TEMPLATE_NAMES
from domain.reconcile import Policy
from domain.shop import ShopSettings, TextRules, from_config
from domain.texts import Texts, offered


def desk_setup(cfg: Config, group_id: str, code: str, name: str, *, floor: float = 0.0,
               admins: AdminRoster = AdminRoster(), own_ids: frozenset[str] = frozenset(),
               shop: ShopSettings | None = None) -> DeskSetup:
    """A desk's rules, from the config the Supervisor handed over."""
    return DeskSetup(
        group_id=group_id,
        code=code,
        name=name,
        limits=Limits(cfg.orders.min_diamonds, cfg.orders.max_diamonds, cfg.history.max_age,
                      cfg.orders.reply_invalid, cfg.orders.duplicate_window,
                      OrderForms(cfg.orders.dot_orders, cfg.orders.player_orders)),
        policy=Policy(
            pending_stuck_after=cfg.reconciliation.pending_stuck_after,
            processing_timeout=cfg.reconciliation.processing_timeout,
            delivery_confirm_after=cfg.reconciliation.delivery_confirm_after,
            max_attempts=cfg.delivery.max_attempts,
            retry_backoff=cfg.delivery.retry_backoff,
        ),
        texts=Texts(cfg.language_messages, cfg.orders.min_diamonds, cfg.orders.max_diamonds, cfg.bot.language),
        default_rate=cfg.orders.default_rate,
        auto_enable=cfg.groups.auto_enable,
        timezone=cfg.bot.timezone,
        floor=floor,
        admins=admins,
        own_ids=own_ids,
        keep_cycles=cfg.reconciliation.keep_cycles,
        checkpoint_interval=cfg.reconciliation.checkpoint_interval,
        max_age=cfg.history.max_age,
        shop=shop if shop is not None else shop_defaults(cfg),
    )


def shop_defaults(cfg: Config) -> ShopSettings:
    """The shop before the panel changed anything: what the config file says."""
    return from_config(cfg.approvals.undo_window, cfg.approvals.delivery_waits_for_undo, cfg.payment_numbers.enabled,
                       cfg.payment_numbers.keywords, cfg.payment_numbers.cooldown)


def text_rules(cfg: Config) -> TextRules:
    """What the shop's own texts may be (the config loader's names and languages) and contain
    (the placeholders each text is filled with)."""
    return TextRules(TEMPLATE_NAMES, {name: offered(name) for name in TEMPLATE_NAMES}, LANGUAGES, cfg.bot.language)
