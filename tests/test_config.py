"""Tests for the configuration loader (config/loader.py)."""

import argparse
import dataclasses
import json
import pickle
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import config
from config import (
    Config,
    ConfigError,
    PanelConfig,
    add_config_arguments,
    config_from_args,
    load_config,
    parse_duration,
)
from config.loader import KEYS, LANGUAGES, SECTIONS, TEMPLATE_NAMES

DEFAULT_TOML = Path(config.__file__).with_name("default.toml")
SAMPLE = {"diamonds": 10, "amount": "1000", "order_id": "A1", "player_id": "576515275", "stock": 40, "min": 1, "max": 100, "rate": "100", "due": "500",
          "limit": "5000", "minutes": 2, "ago": "2 minutes ago", "count": 3, "list": "A1 .10", "method": "bKash", "reference": "TRX1",
          "error": "no", "date": "2026-11-25", "group": "Shop", "orders": 4, "revenue": "4000", "payments": "500"}


def get(cfg: Config, key: str) -> Any:
    """A value by dotted key, messages included."""
    parts = key.split(".")
    if parts[0] == "messages":
        return cfg.messages[parts[1]][parts[2]]
    return getattr(getattr(cfg, parts[0]), parts[1])


def env_name(key: str) -> str:
    """The environment variable for a dotted key."""
    return "DIAMONDBOT_" + key.replace(".", "_").upper()


def toml_file(tmp_path: Path, text: str, name: str = "bot.toml") -> Path:
    """Write a config file and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def toml_for(key: str, literal: str) -> str:
    """A TOML document setting one dotted key to a TOML literal."""
    table, _, field = key.rpartition(".")
    return f"[{table}]\n{field} = {literal}\n"


def error_of(**kwargs: Any) -> str:
    """The message of the ConfigError that loading raises."""
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load_config(**kwargs)
    message = str(info.value)
    assert "\n" not in message, "one message, one line"
    return message


def parser() -> argparse.ArgumentParser:
    """A parser with the config arguments."""
    result = argparse.ArgumentParser(prog="run.py")
    add_config_arguments(result)
    return result


# --- defaults ------------------------------------------------------------------------------


def test_schema_and_default_toml_have_the_same_keys() -> None:
    raw = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
    in_file = {f"{section}.{key}" for section, table in raw.items() if section != "messages" for key in table}
    in_file |= {f"messages.{lang}.{name}" for lang, texts in raw["messages"].items() for name in texts}
    assert in_file == set(KEYS)
    assert set(raw) == set(SECTIONS) | {"messages"}


def test_defaults_match_default_toml() -> None:
    raw = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
    cfg = load_config(env={})
    for section in SECTIONS:
        for key, written in raw[section].items():
            actual = get(cfg, f"{section}.{key}")
            if isinstance(actual, Decimal):
                assert actual == Decimal(written)
            elif actual is None:
                assert written == "", key  # an optional amount left unset
            elif isinstance(actual, Path):
                assert actual == Path(written)
            elif isinstance(actual, tuple):
                assert actual == tuple(written)
            elif isinstance(actual, float) and isinstance(written, str):
                assert actual == parse_duration(written), key
            else:
                assert type(actual) is type(written) and actual == written, key
    assert cfg.messages == raw["messages"]


def test_default_types_and_values() -> None:
    cfg = load_config(env={})
    assert cfg.bot.data_dir == Path("./data") and isinstance(cfg.bot.data_dir, Path)
    assert (cfg.bot.timezone, cfg.bot.language) == ("Asia/Dhaka", "bn")
    assert cfg.actors.system_base == "multiprocTCPBase"
    assert cfg.actors.restart_backoff_min == 0.1
    assert cfg.reconciliation.interval == 10.0 and isinstance(cfg.reconciliation.interval, float)
    assert cfg.reconciliation.jitter == 0.2
    assert cfg.outbox.jitter == 0.5 and cfg.outbox.per_group_gap == 3.0
    assert cfg.persistence.commit_delay == pytest.approx(0.002)
    assert cfg.history.max_age == 86400.0
    assert cfg.orders.default_rate is None  # a new group has no rate until the shop sets one
    assert cfg.orders.reply_invalid is True
    assert cfg.whatsapp.admins == ()
    assert (cfg.panel.host, cfg.panel.port, cfg.gateway.kind) == ("127.0.0.1", 8080, "sandbox")
    assert cfg.sandbox.url == "http://127.0.0.1:8090"


def test_default_templates_format_with_every_placeholder() -> None:
    cfg = load_config(env={})
    assert set(cfg.messages) == set(LANGUAGES)
    for texts in cfg.messages.values():
        assert set(texts) == set(TEMPLATE_NAMES)
        for text in texts.values():
            assert "{" not in text.format(**SAMPLE)


def test_language_messages_follow_bot_language() -> None:
    assert "আপনার অর্ডার সম্পন্ন" in load_config(env={}).language_messages["delivered"]
    english = load_config(env={"DIAMONDBOT_BOT_LANGUAGE": "en"})
    assert english.language_messages == english.messages["en"]
    english.language_messages["delivered"] = "changed"
    assert english.messages["en"]["delivered"] != "changed", "a copy, not the config's own dict"


def test_default_env_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in __import__("os").environ if name.upper().startswith("DIAMONDBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DIAMONDBOT_PANEL_PORT", "9191")
    assert load_config().panel.port == 9191


# --- precedence ----------------------------------------------------------------------------

# key, file literal, expected from file, env text, expected from env, command-line text, expected from it
LAYERS = [
    ("panel.port", "1111", 1111, "2222", 2222, "3333", 3333),
    ("reconciliation.interval", '"5s"', 5.0, "1m", 60.0, "250ms", 0.25),
    ("orders.default_rate", '"2.30"', Decimal("2.30"), "3", Decimal(3), "4.5", Decimal("4.5")),
    ("orders.min_diamonds", "2", 2, "3", 3, "4", 4),
    ("bot.data_dir", '"/srv/file"', Path("/srv/file"), "/srv/env", Path("/srv/env"), "cli", Path("cli")),
    ("sandbox.autostart", "false", False, "yes", True, "off", False),
    ("reconciliation.jitter", "0.1", 0.1, "0.3", 0.3, "0", 0.0),
    ("whatsapp.admins", '["8801700000001"]', ("8801700000001",), "8801700000002,1@lid",
     ("8801700000002", "1@lid"), "", ()),
    ("messages.en.delivered", '"file {diamonds}"', "file {diamonds}", "env {amount}", "env {amount}",
     "cli {rate}", "cli {rate}"),
]


@pytest.mark.parametrize("key, literal, from_file, env_text, from_env, cli_text, from_cli", LAYERS)
def test_each_layer_overrides_the_one_below(
    tmp_path: Path, key: str, literal: str, from_file: Any, env_text: str, from_env: Any, cli_text: str, from_cli: Any
) -> None:
    path = toml_file(tmp_path, toml_for(key, literal))
    env = {env_name(key): env_text}
    default = get(load_config(env={}), key)
    assert default != from_file
    assert get(load_config(path, env={}), key) == from_file
    assert get(load_config(path, env=env), key) == from_env
    assert get(load_config(path, env=env, overrides={key: cli_text}), key) == from_cli
    assert get(load_config(None, env=env), key) == from_env
    assert get(load_config(path, env={}, overrides={key: cli_text}), key) == from_cli
    assert get(load_config(env={}, overrides={key: cli_text}), key) == from_cli


def test_file_sets_a_subset_and_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = toml_file(tmp_path, "[panel]\nport = 9000\n[messages.en]\ndelivered = \"done {order_id}\"\n")
    default, cfg = load_config(env={}), load_config(path, env={})
    assert cfg.panel.port == 9000
    assert cfg.panel.host == default.panel.host
    assert cfg.messages["en"]["delivered"] == "done {order_id}"
    assert cfg.messages["en"]["received"] == default.messages["en"]["received"]
    assert cfg.messages["bn"] == default.messages["bn"]
    assert dataclasses.replace(cfg, panel=default.panel, messages=default.messages) == default


def test_config_file_accepts_str_and_dotted_keys(tmp_path: Path) -> None:
    path = toml_file(tmp_path, 'panel.port = 9001\nbot.language = "en"\n')
    cfg = load_config(str(path), env={})
    assert (cfg.panel.port, cfg.bot.language) == (9001, "en")


def test_config_file_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff[panel]\nport = 9002\n".encode())
    assert load_config(path, env={}).panel.port == 9002


def test_env_key_with_underscore_and_case_insensitive_messages() -> None:
    cfg = load_config(env={
        "DIAMONDBOT_ORDERS_MIN_DIAMONDS": "2",
        "DIAMONDBOT_MESSAGES_en_Delivered": "ok {diamonds}",
        "DIAMONDBOT_MESSAGES_BN_CANCELLED": "বাতিল {order_id}",
    })
    assert cfg.orders.min_diamonds == 2
    assert cfg.messages["en"]["delivered"] == "ok {diamonds}"
    assert cfg.messages["bn"]["cancelled"] == "বাতিল {order_id}"


def test_backslash_n_in_env_and_cli_templates_is_a_line_break() -> None:
    cfg = load_config(env={"DIAMONDBOT_MESSAGES_EN_RECEIVED": r"got\n{diamonds}"},
                      overrides={"messages.en.delivered": r"done\n{amount}"})
    assert cfg.messages["en"]["received"] == "got\n{diamonds}"
    assert cfg.messages["en"]["delivered"] == "done\n{amount}"


def test_other_diamondbot_variables_are_ignored() -> None:
    env = {"DIAMONDBOT_ADMIN_PASSWORD": "secret", "DIAMONDBOT_": "x", "DIAMONDBOT_FOO_BAR": "1",
           "PATH": "/bin", "PANEL_PORT": "1"}
    assert load_config(env=env) == load_config(env={})


# --- validation: every rule, from every text source ------------------------------------------

# key, text (from environment or command line), fragment of the reason
BAD = [
    ("bot.language", "fr", '"bn", "en"'),
    ("bot.timezone", "Mars/Olympus", "time zone"),
    ("bot.timezone", "Asia", "time zone"),
    ("bot.timezone", "", "time zone"),
    ("bot.timezone", "../../etc/passwd", "time zone"),
    ("bot.data_dir", " ", "empty"),
    ("actors.system_base", "multiprocUDPBase", "simpleSystemBase"),
    ("actors.admin_port", "0", "between 1 and 65535"),
    ("actors.admin_port", "65536", "between 1 and 65535"),
    ("actors.admin_port", "abc", "whole number"),
    ("actors.convention_address", "10.0.0.5", "host:port"),
    ("actors.convention_address", "10.0.0.5:", "host:port"),
    ("actors.convention_address", "10.0.0.5:99999", "host:port"),
    ("actors.convention_address", "bad host!:1900", "host:port"),
    ("actors.restart_intensity", "-1", "at least 0"),
    ("actors.restart_period", "0s", "longer than 0"),
    ("actors.restart_backoff_min", "0ms", "longer than 0"),
    ("orders.min_diamonds", "0", "at least 1"),
    ("orders.max_diamonds", "0", "at least 1"),
    ("orders.default_rate", "0", "greater than 0"),
    ("orders.default_rate", "-1", "greater than 0"),
    ("orders.default_rate", "1.23456", "4 decimal places"),
    ("orders.default_rate", "abc", "not an amount"),
    ("orders.default_rate", "1e3", "not an amount"),
    ("orders.default_rate", "NaN", "not an amount"),
    ("orders.reply_invalid", "yesno", "true/false"),
    ("reconciliation.interval", "ten", 'write e.g. "10s", "30m"'),
    ("reconciliation.interval", "0s", "longer than 0"),
    ("reconciliation.interval", "10", "no unit"),
    ("reconciliation.interval", "10 minutes", "unknown unit"),
    ("reconciliation.jitter", "0.6", "between 0 and 0.5"),
    ("reconciliation.jitter", "-0.1", "between 0 and 0.5"),
    ("reconciliation.jitter", "nan", "finite"),
    ("reconciliation.jitter", "x", "not a number"),
    ("reconciliation.pending_stuck_after", "0m", "longer than 0"),
    ("reconciliation.processing_timeout", "0s", "longer than 0"),
    ("reconciliation.delivery_confirm_after", "0s", "longer than 0"),
    ("reconciliation.checkpoint_interval", "0ms", "longer than 0"),
    ("reconciliation.keep_cycles", "0", "at least 1"),
    ("history.replay_limit", "-1", "between 0 and 1000"),
    ("history.replay_limit", "1001", "between 0 and 1000"),
    ("history.max_age", "0h", "longer than 0"),
    ("delivery.max_attempts", "0", "at least 1"),
    ("delivery.retry_backoff", "0s", "longer than 0"),
    ("outbox.min_gap", "-1s", "negative"),
    ("outbox.hourly_cap", "0", "at least 1"),
    ("outbox.backlog_threshold", "0", "at least 1"),
    ("persistence.commit_delay", "soon", "not a duration"),
    ("persistence.compact_after_bytes", "0", "at least 1"),
    ("panel.host", "not a host!", "host name"),
    ("panel.host", "", "host name"),
    ("panel.host", "-bad.example", "host name"),
    ("panel.host", "999.1.1.1", "host name"),
    ("panel.port", "0", "between 1 and 65535"),
    ("panel.port", "65536", "between 1 and 65535"),
    ("panel.port", "8080.5", "whole number"),
    ("panel.login_attempts", "0", "at least 1"),
    ("panel.login_window", "0s", "longer than 0"),
    ("gateway.kind", "telegram", '"sandbox", "whatsapp"'),
    ("sandbox.url", "ftp://127.0.0.1:8090", "http://"),
    ("sandbox.url", "http://127.0.0.1", "port"),
    ("sandbox.url", "127.0.0.1:8090", "http://"),
    ("sandbox.url", "http://:8090", "host"),
    ("sandbox.url", "http://127.0.0.1:99999", "port"),
    ("sandbox.autostart", "maybe", "true/false"),
    ("groups.auto_enable", "2", "true/false"),
    ("whatsapp.session_db", "", "empty"),
    ("whatsapp.pair_phone", "12345", "8–15 digits"),
    ("whatsapp.pair_phone", "phone", "8–15 digits"),
    ("whatsapp.pair_phone", "1234567890123456", "8–15 digits"),
    ("whatsapp.admins", "abc", 'entry "abc"'),
    ("whatsapp.admins", "8801712345678@g.us", 'entry "8801712345678@g.us"'),
    ("whatsapp.admins", "1@lid, 12", 'entry "12"'),
    ("whatsapp.admins", "@lid", 'entry "@lid"'),
    ("messages.bn.delivered", "{foo}", "unknown placeholder {foo}"),
    ("messages.bn.delivered", "{diamonds", "not a valid template"),
    ("messages.bn.delivered", "}", "not a valid template"),
    ("messages.bn.delivered", "{0}", "unknown placeholder {0}"),
    ("messages.bn.delivered", "{}", "unknown placeholder {}"),
    ("messages.en.received", "{amount!r}", "plain"),
    ("messages.en.received", "{amount:>10}", "plain"),
    ("messages.en.invalid", "{diamonds.real}", "unknown placeholder"),
    ("messages.en.invalid", "{order_id[0]}", "unknown placeholder"),
    ("messages.en.cancelled", "   ", "empty"),
]


@pytest.mark.parametrize("key, text, reason", BAD)
def test_bad_value_from_command_line_names_key_and_flag(key: str, text: str, reason: str) -> None:
    message = error_of(overrides={key: text})
    assert message.startswith(f"{key} = ")
    assert f"(from command line --set {key})" in message
    assert reason in message


@pytest.mark.parametrize("key, text, reason", BAD)
def test_bad_value_from_environment_names_key_and_variable(key: str, text: str, reason: str) -> None:
    message = error_of(env={env_name(key): text})
    assert message.startswith(f"{key} = {json.dumps(text, ensure_ascii=False)}")
    assert f"(from environment {env_name(key)})" in message
    assert reason in message


def test_example_message_from_the_brief() -> None:
    assert error_of(env={"DIAMONDBOT_RECONCILIATION_INTERVAL": "ten"}).startswith(
        'reconciliation.interval = "ten" (from environment DIAMONDBOT_RECONCILIATION_INTERVAL): '
        'not a duration; write e.g. "10s", "30m"')


# key, TOML literal, fragment of the reason
BAD_IN_FILE = [
    ("panel.port", '"8080"', "expected an integer, got a string"),
    ("panel.port", "true", "expected an integer, got a boolean"),
    ("orders.reply_invalid", '"yes"', "expected a boolean"),
    ("reconciliation.interval", "10", "durations need a unit"),
    ("reconciliation.interval", '"ten"', "not a duration"),
    ("reconciliation.jitter", '"0.2"', "expected a number"),
    ("reconciliation.jitter", "0.75", "between 0 and 0.5"),
    ("bot.language", "5", "expected a string"),
    ("bot.data_dir", "1", "expected a path"),
    ("whatsapp.admins", '"8801712345678"', "expected an array"),
    ("whatsapp.admins", "[8801712345678]", "in quotes"),
    ("orders.default_rate", "2.3", 'quote it, e.g. "2.3"'),
    ("orders.default_rate", "true", "expected an amount"),
    ("orders.default_rate", "-4", "greater than 0"),
    ("orders.min_diamonds", "0", "at least 1"),
    ("panel.port", "{ a = 1 }", "got a table"),
    ("history.max_age", "1979-05-27", "got a date/time"),
    ("messages.bn.delivered", "5", "expected a string"),
    ("messages.bn.delivered", '"{nope}"', "unknown placeholder"),
]


@pytest.mark.parametrize("key, literal, reason", BAD_IN_FILE)
def test_bad_value_in_file_names_key_and_file(tmp_path: Path, key: str, literal: str, reason: str) -> None:
    path = toml_file(tmp_path, toml_for(key, literal))
    message = error_of(config_file=path)
    assert message.startswith(f"{key} = ")
    assert f"(from file {path})" in message
    assert reason in message


# key, text, expected value
GOOD = [
    ("persistence.commit_delay", "0s", 0.0),
    ("outbox.min_gap", "0s", 0.0),
    ("outbox.jitter", "0ms", 0.0),
    ("outbox.per_group_gap", "0s", 0.0),
    ("reconciliation.jitter", "0.5", 0.5),
    ("history.replay_limit", "0", 0),
    ("history.replay_limit", "1000", 1000),
    ("actors.restart_intensity", "0", 0),
    # actors.convention_address's good values need a member role: tests/test_cluster_security.py
    ("actors.system_base", "simpleSystemBase", "simpleSystemBase"),
    ("panel.host", "::1", "::1"),
    ("panel.host", "localhost", "localhost"),
    ("panel.host", "127.0.0.2", "127.0.0.2"),
    ("panel.allowed_hosts", "Panel.Example.com, shop.example:8443,[::1]:8080",
     ("panel.example.com", "shop.example:8443", "[::1]:8080")),
    ("panel.trusted_proxies", "127.0.0.1,10.0.0.0/24,fd00::/8", ("127.0.0.1", "10.0.0.0/24", "fd00::/8")),
    ("panel.port", " 65535 ", 65535),
    ("bot.timezone", "UTC", "UTC"),
    ("bot.data_dir", "~/bot data", Path("~/bot data")),
    ("whatsapp.pair_phone", "+880 1712-345678", "8801712345678"),
    ("whatsapp.pair_phone", "", ""),
    ("orders.default_rate", " 7 ", Decimal(7)),
    ("orders.default_rate", "0.0001", Decimal("0.0001")),
    ("sandbox.url", "https://sandbox.example:443", "https://sandbox.example:443"),
    ("gateway.kind", "whatsapp", "whatsapp"),
    ("messages.bn.invalid", "{{literal}} {min}-{max} at {rate}", "{{literal}} {min}-{max} at {rate}"),
]


@pytest.mark.parametrize("key, text, expected", GOOD)
def test_good_edge_values_are_accepted(key: str, text: str, expected: Any) -> None:
    assert get(load_config(env={}, overrides={key: text}), key) == expected
    assert get(load_config(env={env_name(key): text}), key) == expected


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "bot-1.example.com"])
def test_a_panel_other_machines_reach_needs_allow_remote(host: str) -> None:
    with pytest.raises(ConfigError, match=r'panel.host = "[^"]+" \(from command line --set panel.host\): '
                                          r"is reachable from other machines.*panel.allow_remote = true"):
        load_config(env={}, overrides={"panel.host": host})
    config = load_config(env={}, overrides={"panel.host": host, "panel.allow_remote": "true"})
    assert config.panel.host == host and config.panel.allow_remote is True


@pytest.mark.parametrize("key, text", [
    ("panel.allowed_hosts", "panel example"), ("panel.allowed_hosts", "panel.example.com:http"),
    ("panel.allowed_hosts", "panel.example.com:70000"), ("panel.trusted_proxies", "proxy.lan"),
    ("panel.trusted_proxies", "10.0.0.0/33"),
])
def test_bad_panel_network_settings_name_the_key(key: str, text: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)} = "):
        load_config(env={}, overrides={key: text})


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("false", False), ("1", True), ("0", False), ("yes", True), ("no", False),
    ("on", True), ("off", False), ("TRUE", True), (" On ", True), ("No", False),
])
def test_bool_text(text: str, expected: bool) -> None:
    assert load_config(env={"DIAMONDBOT_GROUPS_AUTO_ENABLE": text}).groups.auto_enable is expected


def test_money_keeps_the_written_decimals(tmp_path: Path) -> None:
    assert str(load_config(toml_file(tmp_path, '[orders]\ndefault_rate = "2.30"\n'), env={}).orders.default_rate) == "2.30"
    assert load_config(env={}).orders.default_rate is None  # no placeholder price for a new group
    assert load_config(env={}, overrides={"orders.default_rate": " "}).orders.default_rate is None
    integer = load_config(toml_file(tmp_path, "[orders]\ndefault_rate = 3\n"), env={}).orders.default_rate
    assert integer == Decimal(3) and isinstance(integer, Decimal)


def test_min_above_max_blames_the_key_set_later(tmp_path: Path) -> None:
    message = error_of(env={"DIAMONDBOT_ORDERS_MIN_DIAMONDS": "200000"})
    assert message.startswith('orders.min_diamonds = "200000" (from environment DIAMONDBOT_ORDERS_MIN_DIAMONDS)')
    assert "must be at most orders.max_diamonds = 100000 (from config/default.toml)" in message
    path = toml_file(tmp_path, "[orders]\nmin_diamonds = 10\n")
    message = error_of(config_file=path, overrides={"orders.max_diamonds": "5"})
    assert message.startswith('orders.max_diamonds = "5" (from command line --set orders.max_diamonds)')
    assert f"must be at least orders.min_diamonds = 10 (from file {path})" in message
    assert load_config(env={}, overrides={"orders.min_diamonds": "7", "orders.max_diamonds": "7"}).orders.max_diamonds == 7


def test_restart_backoff_max_below_min() -> None:
    message = error_of(env={"DIAMONDBOT_ACTORS_RESTART_BACKOFF_MAX": "50ms"})
    assert "actors.restart_backoff_max" in message and "actors.restart_backoff_min" in message
    assert "DIAMONDBOT_ACTORS_RESTART_BACKOFF_MAX" in message


def test_panel_port_equal_to_admin_port() -> None:
    message = error_of(env={"DIAMONDBOT_PANEL_PORT": "19500"})
    assert message.startswith('panel.port = "19500" (from environment DIAMONDBOT_PANEL_PORT): must differ from')
    assert "actors.admin_port = 19500" in message
    message = error_of(overrides={"actors.admin_port": "8080"})
    assert message.startswith('actors.admin_port = "8080" (from command line --set actors.admin_port)')


# --- env lists -----------------------------------------------------------------------------


def test_env_admin_list_is_split_normalised_and_deduplicated() -> None:
    env = {"DIAMONDBOT_WHATSAPP_ADMINS": " 8801712345678, +880 1712-345679 ,76210050711676@LID,,"
                                         "8801712345680@s.whatsapp.net, 880-1712-345678"}
    assert load_config(env=env).whatsapp.admins == (
        "8801712345678", "8801712345679", "76210050711676@lid", "8801712345680@s.whatsapp.net")


def test_env_admin_list_may_be_empty(tmp_path: Path) -> None:
    path = toml_file(tmp_path, '[whatsapp]\nadmins = ["8801712345678"]\n')
    assert load_config(path, env={}).whatsapp.admins == ("8801712345678",)
    assert load_config(path, env={"DIAMONDBOT_WHATSAPP_ADMINS": ""}).whatsapp.admins == ()


def test_file_admin_list_is_normalised(tmp_path: Path) -> None:
    path = toml_file(tmp_path, '[whatsapp]\nadmins = ["+880 1712-345678", "5@lid"]\npair_phone = "+8801712345678"\n')
    cfg = load_config(path, env={})
    assert cfg.whatsapp.admins == ("8801712345678", "5@lid")
    assert cfg.whatsapp.pair_phone == "8801712345678"


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("250ms", 0.25), ("10s", 10.0), ("30m", 1800.0), ("2h", 7200.0), ("7d", 604800.0),
    ("1h30m", 5400.0), (" 1h 30m ", 5400.0), ("10 s", 10.0), ("1.5s", 1.5), ("0s", 0.0),
    ("1d2h3m4s5ms", 93784.005), ("2ms", 0.002),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert isinstance(parse_duration(text), float)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("   ", "empty"), ("-5s", "negative"), ("10", "no unit"), ("1h30", "no unit"),
    ("10x", "unknown unit 'x'"), ("10sec", "unknown unit 'sec'"), ("5S", "unknown unit 'S'"),
    ("ten", "not a duration"), ("s", "not a duration"), ("+5s", "not a duration"), ("5s,", "not a duration"),
    ("1e3s", "unknown unit 'e'"),
])
def test_parse_duration_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert reason in str(info.value)
    assert "ms, s, m, h, d" in str(info.value), "says what is accepted"


# --- unknown names -------------------------------------------------------------------------


def test_unknown_key_in_file_suggests_the_closest(tmp_path: Path) -> None:
    path = toml_file(tmp_path, "[panel]\nprot = 9000\n")
    message = error_of(config_file=path)
    assert f"panel.prot (from file {path}): unknown key; did you mean panel.port?" == message


def test_unknown_section_in_file_suggests_the_closest(tmp_path: Path) -> None:
    path = toml_file(tmp_path, "[pannel]\nport = 9000\n")
    assert "[pannel]" in (message := error_of(config_file=path)) and "did you mean [panel]?" in message
    assert str(path) in message
    message = error_of(config_file=toml_file(tmp_path, "[zzzz]\na = 1\n", "other.toml"))
    assert "unknown section" in message and "[reconciliation]" in message, "lists the sections"


def test_key_outside_any_section(tmp_path: Path) -> None:
    message = error_of(config_file=toml_file(tmp_path, "port = 9000\n"))
    assert "port" in message and "[panel]" in message


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    assert "must be a table [bot]" in error_of(config_file=toml_file(tmp_path, 'bot = "x"\n'))


def test_unknown_message_language_and_template_in_file(tmp_path: Path) -> None:
    path = toml_file(tmp_path, '[messages.fr]\ndelivered = "ok"\n')
    message = error_of(config_file=path)
    assert "[messages.fr]" in message and "unknown language" in message and str(path) in message
    message = error_of(config_file=toml_file(tmp_path, '[messages.bn]\ndeliverd = "ok"\n', "b.toml"))
    assert "messages.bn.deliverd" in message and "did you mean messages.bn.delivered?" in message


def test_unknown_key_in_known_env_section_is_an_error() -> None:
    message = error_of(env={"DIAMONDBOT_PANEL_PROT": "9000"})
    assert message == ("panel.prot (from environment DIAMONDBOT_PANEL_PROT): unknown key; "
                       "did you mean DIAMONDBOT_PANEL_PORT?")
    assert error_of(env={"DIAMONDBOT_PANEL": "9000"}).startswith("panel (from environment DIAMONDBOT_PANEL): unknown key")
    assert error_of(env={"DIAMONDBOT_MESSAGES_BN": "x"}).startswith("messages.bn (from environment DIAMONDBOT_MESSAGES_BN)")


def test_unknown_message_language_and_template_in_env() -> None:
    assert "unknown language" in error_of(env={"DIAMONDBOT_MESSAGES_FR_DELIVERED": "x"})
    message = error_of(env={"DIAMONDBOT_MESSAGES_BN_DELIVERD": "x"})
    assert "DIAMONDBOT_MESSAGES_BN_DELIVERD" in message and "DIAMONDBOT_MESSAGES_BN_DELIVERED?" in message


def test_same_key_twice_in_env_is_an_error() -> None:
    message = error_of(env={"DIAMONDBOT_PANEL_PORT": "1", "diamondbot_panel_port": "2"})
    assert "panel.port" in message and "keep one" in message


@pytest.mark.parametrize("key, hint", [
    ("panel.prot", "did you mean panel.port?"),
    ("panelport", "did you mean panel.port?"),
    ("messages.bn.deliverd", "did you mean messages.bn.delivered?"),
    ("messages.fr.delivered", "unknown language"),
])
def test_unknown_override_key(key: str, hint: str) -> None:
    message = error_of(overrides={key: "1"})
    assert message.startswith(f"{key} (from command line --set {key})") and hint in message


# --- files ---------------------------------------------------------------------------------


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    message = error_of(config_file=path)
    assert str(path) in message and "cannot read" in message


def test_directory_as_config_file(tmp_path: Path) -> None:
    assert str(tmp_path) in error_of(config_file=tmp_path)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = toml_file(tmp_path, "[bot]\nlanguage = \"en\"\nport = = 1\n")
    message = error_of(config_file=path)
    assert str(path) in message and "line 3" in message and "TOML" in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[bot]\nlanguage = "é"\n'.encode("latin-1"))
    message = error_of(config_file=path)
    assert str(path) in message and "UTF-8" in message


# --- the result ----------------------------------------------------------------------------


def test_pickle_round_trip() -> None:
    cfg = load_config(env={"DIAMONDBOT_WHATSAPP_ADMINS": "8801712345678,1@lid"},
                      overrides={"orders.default_rate": "2.30", "messages.en.delivered": "x {amount}"})
    copy = pickle.loads(pickle.dumps(cfg))
    assert copy == cfg and copy is not cfg
    assert copy.orders.default_rate == Decimal("2.30") and str(copy.orders.default_rate) == "2.30"
    assert copy.whatsapp.admins == ("8801712345678", "1@lid")
    assert type(copy.messages) is dict and all(type(texts) is dict for texts in copy.messages.values())
    assert hash(copy) == hash(cfg)


def test_config_is_frozen() -> None:
    cfg = load_config(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.panel.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.panel = PanelConfig(host="x", port=1, login_attempts=1, login_window=1.0)  # type: ignore[misc]


def test_to_dict_is_plain_and_json_ready() -> None:
    cfg = load_config(env={"DIAMONDBOT_WHATSAPP_ADMINS": "1@lid"})
    data = cfg.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["reconciliation"]["interval"] == 10.0
    assert data["persistence"]["commit_delay"] == pytest.approx(0.002)
    assert data["orders"]["default_rate"] is None  # unset by default
    assert load_config(env={}, overrides={"orders.default_rate": "2.30"}).to_dict()["orders"]["default_rate"] == "2.30"
    assert data["bot"]["data_dir"] == str(Path("./data"))
    assert data["whatsapp"]["admins"] == ["1@lid"]
    assert data["messages"] == cfg.messages and data["messages"] is not cfg.messages
    assert set(data) == set(SECTIONS) | {"messages"}


# --- command line --------------------------------------------------------------------------


def test_cli_without_flags_gives_defaults() -> None:
    assert config_from_args(parser().parse_args([]), env={}) == load_config(env={})


def test_cli_flags(tmp_path: Path) -> None:
    path = toml_file(tmp_path, "[panel]\nport = 9000\n[history]\nreplay_limit = 7\n")
    args = parser().parse_args([
        "--config", str(path), "--set", "reconciliation.interval=5s", "--set", "messages.en.delivered=a=b {diamonds}",
        "--data-dir", "/srv/bot", "--gateway", "whatsapp",
    ])
    cfg = config_from_args(args, env={"DIAMONDBOT_PANEL_PORT": "9100"})
    assert cfg.history.replay_limit == 7
    assert cfg.panel.port == 9100
    assert cfg.reconciliation.interval == 5.0
    assert cfg.messages["en"]["delivered"] == "a=b {diamonds}"
    assert cfg.bot.data_dir == Path("/srv/bot")
    assert cfg.gateway.kind == "whatsapp"


def test_cli_shortcuts_override_env() -> None:
    args = parser().parse_args(["--port", "9200", "--data-dir", "d", "--gateway", "sandbox"])
    cfg = config_from_args(args, env={"DIAMONDBOT_PANEL_PORT": "9100", "DIAMONDBOT_BOT_DATA_DIR": "e",
                                      "DIAMONDBOT_GATEWAY_KIND": "whatsapp"})
    assert (cfg.panel.port, cfg.bot.data_dir, cfg.gateway.kind) == (9200, Path("d"), "sandbox")


def test_cli_repeated_set_last_wins() -> None:
    args = parser().parse_args(["--set", "panel.port=1234", "--set", "panel.port=4321"])
    assert config_from_args(args, env={}).panel.port == 4321


def test_cli_set_without_equals_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["--set", "panel.port"])
    assert info.value.code == 2
    assert "--set" in capsys.readouterr().err


def test_cli_bad_gateway_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--gateway", "telegram"])
    assert "--gateway" in capsys.readouterr().err


def test_cli_bad_shortcut_value_names_key_and_flag() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_args(parser().parse_args(["--port", "80800"]), env={})
    assert str(info.value).startswith('panel.port = "80800" (from command line --port)')


def test_cli_shortcut_and_set_of_same_key_conflict() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_args(parser().parse_args(["--set", "panel.port=1", "--port", "2"]), env={})
    assert "panel.port" in str(info.value) and "--port" in str(info.value)


def test_cli_unknown_set_key_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_args(parser().parse_args(["--set", "panel.prot=1"]), env={})
    assert "did you mean panel.port?" in str(info.value)


def test_cli_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_args(parser().parse_args(["--config", str(tmp_path / "x.toml")]), env={})
    assert "x.toml" in str(info.value)


@pytest.mark.parametrize("value", ["24:00", "7:30", "23:60", "noon", "", "23:30:00"])
def test_daily_report_time_must_be_a_24_hour_clock_time(value: str) -> None:
    with pytest.raises(ConfigError, match=r"reports\.daily_at"):
        load_config(env={}, overrides={"reports.daily_at": value})


def test_duplicate_guard_is_on_by_default_and_zero_turns_it_off() -> None:
    assert load_config(env={}).orders.duplicate_window == 300.0
    assert load_config(env={}, overrides={"orders.duplicate_window": "0s"}).orders.duplicate_window == 0.0
    assert load_config(env={}, overrides={"reports.daily_at": "06:05"}).reports.daily_at == "06:05"


# --- one base port for every port the bot opens ---------------------------------------------


def ports(cfg: Config) -> tuple[int, str, int]:
    return cfg.panel.port, cfg.sandbox.url, cfg.actors.admin_port


def test_base_port_moves_panel_sandbox_and_actor_admin_together(tmp_path: Path) -> None:
    assert load_config(env={}).bot.base_port == 0  # off by default: the documented ports
    expected = (9000, "http://127.0.0.1:9001", 9002)
    assert ports(config_from_args(parser().parse_args(["--base-port", "9000"]), env={})) == expected
    assert ports(load_config(env={"DIAMONDBOT_BOT_BASE_PORT": "9000"})) == expected
    assert ports(load_config(toml_file(tmp_path, "[bot]\nbase_port = 9000\n"), env={})) == expected


def test_a_port_set_explicitly_wins_over_the_base_port(tmp_path: Path) -> None:
    args = parser().parse_args(["--base-port", "9000", "--port", "7000"])
    assert ports(config_from_args(args, env={})) == (7000, "http://127.0.0.1:9001", 9002)
    cfg = load_config(env={"DIAMONDBOT_ACTORS_ADMIN_PORT": "19999"}, overrides={"bot.base_port": "9000"})
    assert ports(cfg) == (9000, "http://127.0.0.1:9001", 19999)
    path = toml_file(tmp_path, '[bot]\nbase_port = 9000\n[sandbox]\nurl = "http://127.0.0.1:8500"\n')
    assert ports(load_config(path, env={})) == (9000, "http://127.0.0.1:8500", 9002)


def test_a_base_port_without_room_for_its_offsets_names_the_key() -> None:
    assert "bot.base_port" in error_of(overrides={"bot.base_port": "65534"})
    assert "must be between 1 and 65533" in error_of(overrides={"bot.base_port": "65534"})
    # A derived port that collides with an explicit one is blamed on the explicit one.
    message = error_of(overrides={"bot.base_port": "9000", "actors.admin_port": "9000"})
    assert message.startswith('actors.admin_port = "9000" (from command line --set actors.admin_port)')
