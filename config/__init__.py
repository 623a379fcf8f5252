"""Configuration: embedded defaults < --config FILE < DIAMONDBOT_* environment < command line."""

from config.loader import (
    ActorsConfig,
    BotConfig,
    ClusterConfig,
    Config,
    ConfigError,
    DeliveryConfig,
    GatewayConfig,
    GroupsConfig,
    HistoryConfig,
    OrdersConfig,
    OutboxConfig,
    PanelConfig,
    PersistenceConfig,
    ReconciliationConfig,
    SandboxConfig,
    WhatsAppConfig,
    add_config_arguments,
    config_from_args,
    load_config,
    parse_duration,
)

__all__ = [
    "ActorsConfig", "BotConfig", "ClusterConfig", "Config", "ConfigError", "DeliveryConfig", "GatewayConfig", "GroupsConfig",
    "HistoryConfig", "OrdersConfig", "OutboxConfig", "PanelConfig", "PersistenceConfig", "ReconciliationConfig",
    "SandboxConfig", "WhatsAppConfig", "add_config_arguments", "config_from_args", "load_config", "parse_duration",
]
