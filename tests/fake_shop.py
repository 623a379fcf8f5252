"""The shop for the panel's tests over the in-memory bridge, with the real rules: the settings,
a patch's validation and the view are domain.shop's, held as the Supervisor holds them, and the
stock is counted down by approvals (and back up by undos) as the PersistenceActor derives it.

So a web test sees what the running bot answers: the same ShopView, the same 400 "<key>: why",
the same audit lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from actors.desk_setup import shop_defaults, text_rules
from config import Config
from domain.admins import AdminRoster
from domain.shop import SYSTEM_STOCK, ShopError, ShopSettings, patch_shop, shop_view

ShopRefused = ShopError  # what a refused patch raises (400 with its message)


@dataclass
class FakeShop:
    """The shop's settings, admins, audit and stock left, changed as the Supervisor changes them."""

    config: Config
    settings: ShopSettings = field(init=False)
    roster: AdminRoster = field(default_factory=AdminRoster)
    audit: list[dict[str, Any]] = field(default_factory=list)  # oldest first, as the Supervisor keeps it
    stock_left: int | None = None

    def __post_init__(self) -> None:
        self.settings = shop_defaults(self.config)

    def view(self) -> dict[str, Any]:
        """The ShopView (GET /api/shop)."""
        return shop_view(self.settings, self.stock_left, self.config.messages, self.roster, self.audit,
                         text_rules(self.config))

    def update(self, patch: Any, by: str, now: float) -> None:
        """A panel patch, all or nothing; ShopError (400) when refused."""
        settings, roster, what = patch_shop(self.settings, self.roster, patch, text_rules(self.config), now, by)
        self.settings, self.roster = settings, roster
        if "stock" in patch:
            self.stock_left = settings.stock
        self.audit.append({"at": now, "by": by, "what": what})

    def approved(self, diamonds: int, now: float) -> None:
        """An approval takes its diamonds off the stock; the last of them closes the shop."""
        if self.stock_left is None:
            return
        self.stock_left = max(0, self.stock_left - diamonds)
        if self.stock_left == 0 and self.settings.open:
            self.settings = replace(self.settings, open=False)
            self.audit.append({"at": now, "by": SYSTEM_STOCK, "what": "stock out: closed the shop"})

    def undone(self, diamonds: int) -> None:
        """An undone approval gives its diamonds back."""
        if self.stock_left is not None:
            self.stock_left += diamonds

    @property
    def open(self) -> bool:
        return self.settings.open

    @property
    def notice(self) -> str:
        return str(self.view()["notice"])

    @property
    def stock(self) -> int | None:
        return self.stock_left

    @property
    def admins(self) -> list[dict[str, Any]]:
        return list(self.view()["admins"])
