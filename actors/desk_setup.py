"""A desk's rules and the shop's defaults, taken from the config the Supervisor hands on."""

from __future__ import annotations

from dataclasses import dataclass

from config import Config
from domain.admins import AdminRoster
from domain.desk import DeskSetup
from domain.intake import Limits
from domain.parsing import OrderForms
from config.loader import LANGUAGES, TEMPLATE_NAMES
from domain.reconcile import Policy
from domain.shop import ShopSettings, TextRules, from_config
from domain.texts import Texts, offered


@dataclass(frozen=True)
class SharedRules:
    """What every desk of one config has alike; never changed once made (a shop's own texts make
    a new Texts, Texts.with_shop)."""

    limits: Limits
    policy: Policy
    texts: Texts
    shop: ShopSettings


_shared: tuple[Config, SharedRules] | None = None  # the last config's, by identity


def shared_rules(cfg: Config) -> SharedRules:
    """The rules every desk of this config shares, made once per config object. A host makes
    them before it forks its groups, which then find them in the memory they share with it
    instead of each building its own (BENCHMARKS.md, "Group memory")."""
    global _shared
    if _shared is None or _shared[0] is not cfg:
        _shared = (cfg, SharedRules(
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
            shop=shop_defaults(cfg),
        ))
    return _shared[1]


def desk_setup(cfg: Config, group_id: str, code: str, name: str, *, floor: float = 0.0,
               admins: AdminRoster = AdminRoster(), own_ids: frozenset[str] = frozenset(),
               shop: ShopSettings | None = None) -> DeskSetup:
    """A desk's rules, from the config the Supervisor handed over."""
    rules = shared_rules(cfg)
    return DeskSetup(
        group_id=group_id,
        code=code,
        name=name,
        limits=rules.limits,
        policy=rules.policy,
        texts=rules.texts,
        default_rate=cfg.orders.default_rate,
        auto_enable=cfg.groups.auto_enable,
        timezone=cfg.bot.timezone,
        floor=floor,
        admins=admins,
        own_ids=own_ids,
        keep_cycles=cfg.reconciliation.keep_cycles,
        checkpoint_interval=cfg.reconciliation.checkpoint_interval,
        max_age=cfg.history.max_age,
        shop=shop if shop is not None else rules.shop,
    )


def shop_defaults(cfg: Config) -> ShopSettings:
    """The shop before the panel changed anything: what the config file says."""
    return from_config(cfg.approvals.undo_window, cfg.approvals.delivery_waits_for_undo, cfg.payment_numbers.enabled,
                       cfg.payment_numbers.keywords, cfg.payment_numbers.cooldown)


def text_rules(cfg: Config) -> TextRules:
    """What the shop's own texts may be (the config loader's names and languages) and contain
    (the placeholders each text is filled with)."""
    return TextRules(TEMPLATE_NAMES, {name: offered(name) for name in TEMPLATE_NAMES}, LANGUAGES, cfg.bot.language)
