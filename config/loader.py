"""Load, merge and validate the bot's configuration (defaults < file < environment < command line)."""

import argparse
import difflib
import ipaddress
import json
import math
import os
import re
import string
import tomllib
from dataclasses import dataclass, field, fields
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Callable, Mapping, NamedTuple, Optional
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A duration in seconds; the marker tells the loader to parse "10s"-style text.
Seconds = Annotated[float, "duration"]
# An amount of money that may be left unset ("").
MaybeMoney = Annotated[Optional[Decimal], "money or unset"]

LANGUAGES = ("bn", "en")
TEMPLATE_NAMES = ("received", "recovered", "delivered", "cancelled", "invalid", "invalid_player", "rate_not_set",
                  "rate_missing", "closed_order", "out_of_stock", "shop_closed", "shop_opened", "stock_out",
                  "undone", "auto_approved", "payment_numbers", "due_reminder", "held_due", "duplicate",
                  "edited", "withdrawn", "due", "help", "pending_list", "rate_set", "paid", "command_error",
                  "daily_report")
PLACEHOLDERS = ("diamonds", "amount", "order_id", "player_id", "min", "max", "rate", "due", "limit", "minutes",
                "ago", "stock", "count",
                "list", "method", "reference", "error", "date", "group", "orders", "revenue", "payments")
SYSTEM_BASES = ("multiprocTCPBase", "multiprocQueueBase", "simpleSystemBase")
GATEWAY_KINDS = ("sandbox", "whatsapp")
ENV_PREFIX = "DIAMONDBOT_"
DEFAULT_ORIGIN = "config/default.toml"


class ConfigError(Exception):
    """An unusable configuration; the message names the key and where its value came from."""


@dataclass(frozen=True)
class BotConfig:
    """[bot]"""

    data_dir: Path
    timezone: str
    language: str
    # 0: off. Otherwise the panel, the sandbox and the Thespian admin move together
    # (BASE_PORT_OFFSETS); a port set explicitly still wins.
    base_port: int


@dataclass(frozen=True)
class ActorsConfig:
    """[actors]"""

    system_base: str
    admin_port: int
    convention_address: str
    restart_intensity: int
    restart_period: Seconds
    restart_backoff_min: Seconds
    restart_backoff_max: Seconds
    group_hosts: int = 0  # actors that start and keep the groups; 0: one per core


CLUSTER_ROLES = ("", "leader", "member")


@dataclass(frozen=True)
class ClusterConfig:
    """[cluster]: group hosts on other machines (a Thespian convention). Empty role: one machine."""

    role: str = ""  # "", "leader" or "member" (`run.py member` sets it)
    address: str = "127.0.0.1"  # what this machine's actor system binds and advertises
    shard: str = "leader"  # this machine's shard: the groups placed on it run here
    secret_file: str = ""  # the shared secret every Thespian message is signed with (mode 0600)
    check_in: Seconds = 5.0  # group hosts' heartbeat period; a member is lost after 3 missed
    join_wait: Seconds = 60.0  # at a start, how long a placed group waits for its member


@dataclass(frozen=True)
class OrdersConfig:
    """[orders]"""

    min_diamonds: int
    max_diamonds: int
    default_rate: MaybeMoney  # None: a new group's rate is unset until the shop sets it
    reply_invalid: bool
    duplicate_window: Seconds
    dot_orders: bool = True  # `.10`
    player_orders: bool = True  # the player's ID on one line, the diamonds on the next


@dataclass(frozen=True)
class ReconciliationConfig:
    """[reconciliation]"""

    interval: Seconds
    jitter: float
    first_cycle_within: Seconds
    pending_stuck_after: Seconds
    processing_timeout: Seconds
    delivery_confirm_after: Seconds
    checkpoint_interval: Seconds
    keep_cycles: int


@dataclass(frozen=True)
class HistoryConfig:
    """[history]"""

    replay_limit: int
    max_age: Seconds


@dataclass(frozen=True)
class DeliveryConfig:
    """[delivery]"""

    max_attempts: int
    retry_backoff: Seconds


@dataclass(frozen=True)
class OutboxConfig:
    """[outbox]"""

    min_gap: Seconds
    jitter: Seconds
    per_group_gap: Seconds
    hourly_cap: int
    backlog_threshold: int
    rate_limit_pause: Seconds


@dataclass(frozen=True)
class PersistenceConfig:
    """[persistence]"""

    commit_delay: Seconds
    compact_after_bytes: int


@dataclass(frozen=True)
class PanelConfig:
    """[panel]"""

    host: str
    port: int
    login_attempts: int
    login_window: Seconds
    allow_remote: bool = False  # panel.host may be an address other machines reach
    allowed_hosts: tuple[str, ...] = ()  # Host header names beside 127.0.0.1, localhost, [::1]
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-For/-Proto are believed
    secure_cookies: bool = False  # mark the session cookie Secure (served over https)


@dataclass(frozen=True)
class GatewayConfig:
    """[gateway]"""

    kind: str


@dataclass(frozen=True)
class SandboxConfig:
    """[sandbox]"""

    url: str
    autostart: bool


@dataclass(frozen=True)
class WhatsAppConfig:
    """[whatsapp]"""

    session_db: str
    pair_phone: str
    admins: tuple[str, ...]


@dataclass(frozen=True)
class GroupsConfig:
    """[groups]"""

    auto_enable: bool


@dataclass(frozen=True)
class ReportsConfig:
    """[reports]"""

    daily_at: str  # "HH:MM" in bot.timezone
    send_to_admins: bool


@dataclass(frozen=True)
class ApprovalsConfig:
    """[approvals]"""

    undo_window: Seconds  # an approval can be undone this long after it ("0s": never)
    delivery_waits_for_undo: bool  # hold the delivery message until the window has passed


@dataclass(frozen=True)
class PaymentNumbersConfig:
    """[payment_numbers]"""

    enabled: bool
    keywords: tuple[str, ...]
    cooldown: Seconds  # one answer per person per this long


@dataclass(frozen=True)
class Config:
    """The whole validated configuration; picklable, so it can be sent to actor processes."""

    bot: BotConfig
    actors: ActorsConfig
    orders: OrdersConfig
    reconciliation: ReconciliationConfig
    history: HistoryConfig
    delivery: DeliveryConfig
    outbox: OutboxConfig
    persistence: PersistenceConfig
    panel: PanelConfig
    gateway: GatewayConfig
    sandbox: SandboxConfig
    whatsapp: WhatsAppConfig
    groups: GroupsConfig
    reports: ReportsConfig
    approvals: ApprovalsConfig
    payment_numbers: PaymentNumbersConfig
    # A plain dict (not a proxy) so it pickles; left out of the hash because dicts have none.
    messages: dict[str, dict[str, str]] = field(hash=False)
    cluster: ClusterConfig = ClusterConfig()

    @property
    def language_messages(self) -> dict[str, str]:
        """The chat templates of `bot.language`."""
        return dict(self.messages[self.bot.language])

    def to_dict(self) -> dict[str, Any]:
        """A nested plain dict for display (seconds as numbers, money and paths as strings)."""
        out: dict[str, Any] = {
            name: {f.name: _plain(getattr(getattr(self, name), f.name)) for f in fields(cls)}
            for name, cls in SECTIONS.items()
        }
        out["messages"] = {lang: dict(texts) for lang, texts in self.messages.items()}
        return out


SECTIONS: dict[str, type] = {f.name: f.type for f in fields(Config) if f.name != "messages"}
SECTION_NAMES = (*SECTIONS, "messages")
KEYS: tuple[str, ...] = tuple(
    [f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in fields(cls)]
    + [f"messages.{lang}.{name}" for lang in LANGUAGES for name in TEMPLATE_NAMES]
)
_TYPES: dict[str, Any] = {f"{name}.{f.name}": f.type for name, cls in SECTIONS.items() for f in fields(cls)}

# Durations where zero is meaningful: no pacing (benchmarks), no group-commit wait.
# What --base-port N / bot.base_port moves, and where to: panel N, sandbox N+1, actor admin N+2.
BASE_PORT_OFFSETS = {"panel.port": 0, "sandbox.url": 1, "actors.admin_port": 2}

_ZERO_DURATIONS = {"outbox.min_gap", "outbox.jitter", "outbox.per_group_gap", "persistence.commit_delay",
                   "orders.duplicate_window", "approvals.undo_window", "payment_numbers.cooldown"}

_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400)}
_DURATION_HINT = 'write e.g. "10s", "30m" (units ms, s, m, h, d; compounds like "1h30m")'
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", re.ASCII)


def _plain(value: Any) -> Any:
    """One config value as a JSON-friendly value."""
    if isinstance(value, (Decimal, Path)):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "250ms", "10s", "30m", "2h", "7d" or "1h30m"."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty; {_DURATION_HINT}")
    if text.strip().startswith("-"):
        raise ValueError(f"a duration cannot be negative; {_DURATION_HINT}")
    total, pos = Decimal(0), 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"not a duration; {_DURATION_HINT}")
        number, unit = match.groups()
        if not unit:
            raise ValueError(f"number {number} has no unit; {_DURATION_HINT}")
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r}; {_DURATION_HINT}")
        total += Decimal(number) * _UNITS[unit]
        pos = match.end()
    return float(total)


# --- where values come from ---------------------------------------------------------------


class _Raw(NamedTuple):
    """One value before conversion, with its origin."""

    value: Any
    origin: str  # e.g. "environment DIAMONDBOT_PANEL_PORT"
    layer: int  # 0 defaults, 1 file, 2 environment, 3 command line
    text: bool  # True when the value is text to parse (environment, command line)


def _show(raw: _Raw) -> str:
    """A value as the user wrote it (TOML-like for files, quoted text otherwise)."""
    return _show_value(raw.value)


def _show_value(value: Any) -> str:
    """TOML-like rendering of one raw value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_show_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{…}"
    return str(value)


def _error(key: str, raw: _Raw, problem: str) -> ConfigError:
    """The one-line error for a bad value."""
    return ConfigError(f"{key} = {_show(raw)} (from {raw.origin}): {problem}")


def _suggest(word: str, choices: list[str], fmt: Callable[[str], str] = str) -> str:
    """'; did you mean X?' for the closest choice, or a list of the choices."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {fmt(close[0])}?"
    return "; known: " + ", ".join(fmt(choice) for choice in choices)


@cache
def _default_flat() -> Mapping[str, _Raw]:
    """The embedded default.toml, parsed once."""
    text = resources.files(__package__).joinpath("default.toml").read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{DEFAULT_ORIGIN}: not valid TOML: {exc}") from None
    flat = _flatten_file(data, DEFAULT_ORIGIN, layer=0)
    missing = [key for key in KEYS if key not in flat]
    if missing:
        raise ConfigError(f"{DEFAULT_ORIGIN}: missing keys {', '.join(missing)}")
    return MappingProxyType(flat)


def _read_file(path: str | os.PathLike[str]) -> dict[str, _Raw]:
    """The values set by a config file."""
    origin = f"file {os.fspath(path)}"
    try:
        # utf-8-sig: Windows editors often prepend a byte-order mark.
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"config file {os.fspath(path)}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {os.fspath(path)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {os.fspath(path)}: not valid TOML: {exc}") from None
    return _flatten_file(data, origin, layer=1)


def _flatten_file(data: dict[str, Any], origin: str, layer: int) -> dict[str, _Raw]:
    """TOML tables as dotted keys, rejecting unknown sections and keys."""
    flat: dict[str, _Raw] = {}
    for section, table in data.items():
        if section not in SECTION_NAMES:
            # A key written above every section header lands here: point to its section.
            homes = [key for key in KEYS if key.rpartition(".")[2] == section]
            if homes:
                home = homes[0].rpartition(".")[0]
                raise ConfigError(f"{section} (from {origin}): key outside any section; put it under [{home}] ({homes[0]})")
            raise ConfigError(f"[{section}] (from {origin}): unknown section"
                              + _suggest(section, list(SECTION_NAMES), lambda name: f"[{name}]"))
        if not isinstance(table, dict):
            raise ConfigError(f"{section} (from {origin}): must be a table [{section}], not a value")
        if section == "messages":
            _flatten_messages(table, origin, layer, flat)
            continue
        known = [f.name for f in fields(SECTIONS[section])]
        for key, value in table.items():
            if key not in known:
                raise ConfigError(
                    f"{section}.{key} (from {origin}): unknown key"
                    + _suggest(key, known, lambda name: f"{section}.{name}"))
            flat[f"{section}.{key}"] = _Raw(value, origin, layer, text=False)
    return flat


def _flatten_messages(table: dict[str, Any], origin: str, layer: int, flat: dict[str, _Raw]) -> None:
    """[messages.<lang>] tables as dotted keys."""
    for lang, texts in table.items():
        if lang not in LANGUAGES:
            raise ConfigError(f"[messages.{lang}] (from {origin}): unknown language; languages are {', '.join(LANGUAGES)}")
        if not isinstance(texts, dict):
            raise ConfigError(f"messages.{lang} (from {origin}): must be a table [messages.{lang}], not a value")
        for name, value in texts.items():
            if name not in TEMPLATE_NAMES:
                raise ConfigError(
                    f"messages.{lang}.{name} (from {origin}): unknown template"
                    + _suggest(name, list(TEMPLATE_NAMES), lambda known: f"messages.{lang}.{known}"))
            flat[f"messages.{lang}.{name}"] = _Raw(value, origin, layer, text=False)


def _env_name(key: str) -> str:
    """The environment variable for a dotted key."""
    return ENV_PREFIX + key.replace(".", "_").upper()


def _read_env(env: Mapping[str, str]) -> dict[str, _Raw]:
    """Values from DIAMONDBOT_<SECTION>_<KEY> variables; other DIAMONDBOT_* names are not ours."""
    flat: dict[str, _Raw] = {}
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        # Section names have no underscore, keys may: the first word is the section.
        section, _, rest = upper[len(ENV_PREFIX):].partition("_")
        section = section.lower()
        if section not in SECTION_NAMES:
            continue
        raw = _Raw(env[name], f"environment {name}", 2, text=True)
        key = f"{section}.{rest.lower()}"
        if section == "messages":
            lang, _, template = rest.lower().partition("_")
            key = f"messages.{lang}.{template}"
            if lang not in LANGUAGES:
                raise ConfigError(f"{key} (from {raw.origin}): unknown language; languages are {', '.join(LANGUAGES)}")
        if key not in KEYS:
            known = [_env_name(known_key) for known_key in KEYS if known_key.startswith(section + ".")]
            # rstrip: DIAMONDBOT_PANEL alone names a section but no key.
            raise ConfigError(f"{key.rstrip('.')} (from {raw.origin}): unknown key" + _suggest(_env_name(key), known))
        if key in flat:
            raise ConfigError(f"{key}: set by both {flat[key].origin} and {raw.origin}; keep one")
        flat[key] = raw
    return flat


def _read_overrides(overrides: Mapping[str, tuple[str, str]]) -> dict[str, _Raw]:
    """Command-line values: dotted key -> (text, flag that set it)."""
    flat: dict[str, _Raw] = {}
    for key, (value, flag) in overrides.items():
        dotted = key.strip()
        parts = dotted.split(".")
        if parts[0] == "messages" and len(parts) == 3 and parts[1] not in LANGUAGES:
            raise ConfigError(f"{dotted} (from command line {flag}): unknown language; languages are {', '.join(LANGUAGES)}")
        if dotted not in KEYS:
            raise ConfigError(f"{dotted} (from command line {flag}): unknown key" + _suggest(dotted, list(KEYS)))
        flat[dotted] = _Raw(value if isinstance(value, str) else str(value), f"command line {flag}", 3, text=True)
    return flat


# --- conversion ---------------------------------------------------------------------------

_TOML_TYPES = {bool: "a boolean", str: "a string", int: "an integer", float: "a float", list: "an array", dict: "a table"}


def _type_name(value: Any) -> str:
    """TOML's name for the type of a parsed value."""
    return _TOML_TYPES.get(type(value), "a date/time")


def _wrong_type(expected: str, value: Any, hint: str = "") -> ValueError:
    """A type mismatch in a file."""
    return ValueError(f"expected {expected}, got {_type_name(value)}{hint}")


def _to_str(value: Any, text: bool) -> str:
    """A string setting."""
    if not isinstance(value, str):
        raise _wrong_type("a string", value, "; put it in quotes")
    return value


def _to_int(value: Any, text: bool) -> int:
    """An integer setting."""
    if text:
        if not re.fullmatch(r"\s*[+-]?\d+\s*", value, re.ASCII):
            raise ValueError("not a whole number")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type("an integer", value, "; write it without quotes" if isinstance(value, str) else "")
    return value


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _to_bool(value: Any, text: bool) -> bool:
    """A true/false setting."""
    if text:
        word = value.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ValueError("not a boolean; write true/false, yes/no, on/off or 1/0")
    if not isinstance(value, bool):
        raise _wrong_type("a boolean (true or false, unquoted)", value)
    return value


def _to_float(value: Any, text: bool) -> float:
    """A plain number setting."""
    if text:
        try:
            number = float(value)
        except ValueError:
            raise ValueError("not a number") from None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type("a number", value, "; write it without quotes" if isinstance(value, str) else "")
    else:
        number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _to_duration(value: Any, text: bool) -> float:
    """A duration setting, in seconds."""
    if not isinstance(value, str):
        raise _wrong_type('a duration in quotes such as "10s"', value, "; durations need a unit")
    return parse_duration(value)


def _to_money(value: Any, text: bool) -> Decimal:
    """An amount of money, kept exact."""
    if isinstance(value, float):
        raise ValueError(f'a TOML float loses money; quote it, e.g. "{value}"')
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _wrong_type('an amount in quotes such as "2.30"', value)
    digits = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+(?:\.\d+)?", digits, re.ASCII):
        raise ValueError('not an amount; write digits with up to 4 decimals, e.g. "100" or "2.30"')
    amount = Decimal(digits)
    if amount <= 0:
        raise ValueError("must be greater than 0")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ValueError("more than 4 decimal places")
    return amount


def _to_maybe_money(value: Any, text: bool) -> Decimal | None:
    """An amount of money, or "" for none."""
    if isinstance(value, str) and not value.strip():
        return None
    return _to_money(value, text)


def _to_path(value: Any, text: bool) -> Path:
    """A filesystem path, as given."""
    if not isinstance(value, str):
        raise _wrong_type("a path in quotes", value)
    if not value.strip():
        raise ValueError("empty; give a directory")
    return Path(value)


def _to_str_tuple(value: Any, text: bool) -> tuple[str, ...]:
    """A list of strings; comma-separated when it comes from text."""
    if text:
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if not isinstance(value, list):
        raise _wrong_type('an array of strings such as ["8801712345678"]', value)
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"entry {_show_value(item)} is {_type_name(item)}; put each entry in quotes")
    return tuple(value)


_CONVERTERS: dict[Any, Callable[[Any, bool], Any]] = {
    str: _to_str,
    int: _to_int,
    bool: _to_bool,
    float: _to_float,
    Seconds: _to_duration,
    Decimal: _to_money,
    MaybeMoney: _to_maybe_money,
    Path: _to_path,
    tuple[str, ...]: _to_str_tuple,
}


# --- validation ---------------------------------------------------------------------------


def _one_of(*allowed: str) -> Callable[[str], str]:
    """A check that the value is one of `allowed`."""

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError("must be one of " + ", ".join(f'"{choice}"' for choice in allowed))
        return value

    return check


def _between(low: int, high: int | None = None) -> Callable[[int], int]:
    """A check that low <= value (<= high)."""

    def check(value: int) -> int:
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be at least {low}" if high is None else f"must be between {low} and {high}")
        return value

    return check


_port = _between(1, 65535)


def _base_port(value: int) -> int:
    """0 (off), or a port low enough for every offset of BASE_PORT_OFFSETS."""
    return value if value == 0 else _between(1, 65535 - max(BASE_PORT_OFFSETS.values()))(value)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)", re.ASCII)


def _is_host(text: str) -> bool:
    """Whether text is an IP address or a DNS host name."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    labels = text.removesuffix(".").split(".")
    # An all-digit last label is a mistyped IPv4 address ("999.1.1.1"), not a name.
    return 0 < len(text) <= 253 and all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def _host(value: str) -> str:
    """A check for an IP address or host name."""
    if not _is_host(value):
        raise ValueError('not an IP address or host name, e.g. "127.0.0.1" or "localhost"')
    return value


def _is_loopback(host: str) -> bool:
    """Whether binding `host` keeps a server on this machine."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_names(value: tuple[str, ...]) -> tuple[str, ...]:
    """A check for host names or addresses, each with an optional :port."""
    for item in value:
        host, _, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not host or (port and not port.isdigit()):
            host, port = item, ""
        if not _is_host(host.removeprefix("[").removesuffix("]")) or (port and not 0 < int(port) < 65536):
            raise ValueError(f'{_show_value(item)} is not a host name or address, e.g. "panel.example.com" '
                             'or "panel.example.com:443"')
    return tuple(item.lower() for item in value)


def _networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """A check for IP addresses or networks ("10.0.0.5", "10.0.0.0/24")."""
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f'{_show_value(item)} is not an IP address or network, e.g. "127.0.0.1" '
                             'or "10.0.0.0/24"') from None
    return value


def _timezone(value: str) -> str:
    """A check for an IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError('not a time zone; use an IANA name such as "Asia/Dhaka" or "UTC"') from None
    return value


def _check_in(value: float) -> float:
    """A check for the heartbeat period: a beat is one small message per host."""
    if value < 0.5:
        raise ValueError('must be at least "500ms" (each host of each member sends one heartbeat per period)')
    return value


def _shard_name(value: str) -> str:
    """A check for a shard's name: it is an actor capability and appears in the panel."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", value, re.ASCII):
        raise ValueError('must be 1–32 letters, digits, "-" or "_", e.g. "b" or "dhaka-2"')
    return value


def _convention_address(value: str) -> str:
    """A check for empty (single machine) or "host:port"."""
    if value == "":
        return value
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # IPv6 written as [::1]:1900
    if not sep or not _is_host(host) or not re.fullmatch(r"\d{1,5}", port) or not 1 <= int(port) <= 65535:
        raise ValueError('must be empty or "host:port", e.g. "10.0.0.5:1900"')
    return value


def _http_url(value: str) -> str:
    """A check for http(s)://host:port."""
    problem = 'must be an http:// or https:// URL with host and port, e.g. "http://127.0.0.1:8090"'
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None or not 1 <= port <= 65535:
        raise ValueError(problem)
    return value


def _phone_digits(value: str) -> str | None:
    """8–15 digits after dropping spaces, dashes and a leading +; None if not a phone number."""
    digits = re.sub(r"[\s-]", "", value).removeprefix("+")
    return digits if re.fullmatch(r"\d{8,15}", digits, re.ASCII) else None


def _pair_phone(value: str) -> str:
    """A check for empty or a phone number, stored as digits."""
    if value.strip() == "":
        return ""
    digits = _phone_digits(value)
    if digits is None:
        raise ValueError('not a phone number; write 8–15 digits with country code, e.g. "8801712345678"')
    return digits


def _admins(value: tuple[str, ...]) -> tuple[str, ...]:
    """A check that each admin is phone digits, <digits>@lid or <digits>@s.whatsapp.net."""
    out: list[str] = []
    for entry in value:
        user, at, server = entry.strip().partition("@")
        if at:
            ok = server.lower() in ("lid", "s.whatsapp.net") and re.fullmatch(r"\d+", user, re.ASCII)
            normal = f"{user}@{server.lower()}" if ok else None
        else:
            normal = _phone_digits(entry)
        if normal is None:
            raise ValueError(
                f'entry {_show_value(entry)} is not a phone number (8–15 digits) or an id like "76210050711676@lid"')
        if normal not in out:
            out.append(normal)
    return tuple(out)


def _not_empty(value: str) -> str:
    """A check for a non-blank string."""
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _clock_time(value: str) -> str:
    """A check for a time of day "HH:MM" (24 h), stored as given."""
    parts = value.strip().split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts) \
            or int(parts[0]) > 23 or int(parts[1]) > 59:
        raise ValueError('not a time of day; write "HH:MM" on a 24-hour clock, e.g. "23:30"')
    return value.strip()


def _fraction(value: float) -> float:
    """A check for 0 <= value <= 0.5."""
    if not 0 <= value <= 0.5:
        raise ValueError("must be between 0 and 0.5 (a fraction of the interval)")
    return value


def _template(value: str) -> str:
    """A check that a chat template only uses the known placeholders."""
    allowed = " ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    if not value.strip():
        raise ValueError("empty; a chat reply needs text")
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}); write a literal brace as {{{{ or }}}}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {allowed}")
        # Values are formatted by other code (amounts may be strings): only plain fields are safe.
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} must be plain, without ! or :")
    return value


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "reports.daily_at": _clock_time,
    "bot.base_port": _base_port,
    "bot.timezone": _timezone,
    "bot.language": _one_of(*LANGUAGES),
    "actors.system_base": _one_of(*SYSTEM_BASES),
    "actors.admin_port": _port,
    "actors.convention_address": _convention_address,
    "actors.restart_intensity": _between(0),
    "actors.group_hosts": _between(0, 64),
    "orders.min_diamonds": _between(1),
    "orders.max_diamonds": _between(1),
    "reconciliation.jitter": _fraction,
    "reconciliation.keep_cycles": _between(1),
    "history.replay_limit": _between(0, 1000),
    "delivery.max_attempts": _between(1),
    "outbox.hourly_cap": _between(1),
    "outbox.backlog_threshold": _between(1),
    "persistence.compact_after_bytes": _between(1),
    "panel.host": _host,
    "panel.port": _port,
    "panel.login_attempts": _between(1),
    "panel.allowed_hosts": _host_names,
    "panel.trusted_proxies": _networks,
    "gateway.kind": _one_of(*GATEWAY_KINDS),
    "cluster.role": _one_of(*CLUSTER_ROLES),
    "cluster.address": _host,
    "cluster.shard": _shard_name,
    "cluster.check_in": _check_in,
    "sandbox.url": _http_url,
    "whatsapp.session_db": _not_empty,
    "whatsapp.pair_phone": _pair_phone,
    "whatsapp.admins": _admins,
}

# (a, b, relation): a >= b, or a != b. The key set by the higher layer takes the blame.
_PAIRS = (
    ("orders.max_diamonds", "orders.min_diamonds", ">="),
    ("actors.restart_backoff_max", "actors.restart_backoff_min", ">="),
    ("panel.port", "actors.admin_port", "!="),
)


def _value(key: str, raw: _Raw) -> Any:
    """One raw value converted and checked."""
    try:
        if key.startswith("messages."):
            text = _to_str(raw.value, raw.text)
            # "\n" typed in a shell or an env file means a line break in a chat message.
            return _template(text.replace("\\n", "\n") if raw.text else text)
        value = _CONVERTERS[_TYPES[key]](raw.value, raw.text)
        if _TYPES[key] is Seconds and value == 0 and key not in _ZERO_DURATIONS:
            raise ValueError("must be longer than 0")
        check = _CHECKS.get(key)
        return check(value) if check else value
    except ValueError as exc:
        raise _error(key, raw, str(exc)) from None


def _check_pairs(values: Mapping[str, Any], flat: Mapping[str, _Raw]) -> None:
    """Rules that relate two keys."""
    for a, b, relation in _PAIRS:
        if (values[a] >= values[b]) if relation == ">=" else (values[a] != values[b]):
            continue
        blame, other = (b, a) if flat[b].layer > flat[a].layer else (a, b)
        if relation == "!=":
            problem = "must differ from"
        else:
            problem = "must be at least" if blame == a else "must be at most"
        raise _error(blame, flat[blame], f"{problem} {other} = {_show(flat[other])} (from {flat[other].origin})")


def _check_panel_host(values: Mapping[str, Any], flat: Mapping[str, _Raw]) -> None:
    """The panel on an address other machines reach only when asked for by name."""
    if not values["panel.allow_remote"] and not _is_loopback(values["panel.host"]):
        raise _error("panel.host", flat["panel.host"], (
            "is reachable from other machines; bind 127.0.0.1 and put a TLS reverse proxy in front, "
            "or set panel.allow_remote = true on a network you trust"))


def _check_cluster(values: Mapping[str, Any], flat: Mapping[str, _Raw]) -> None:
    """Nothing of Thespian beyond loopback unless a role is configured; a role needs its secret."""
    role = values["cluster.role"]
    if not role:
        if not _is_loopback(values["cluster.address"]):
            raise _error("cluster.address", flat["cluster.address"], (
                "is reachable from other machines, but cluster.role is not set: on one machine the actor "
                'system stays on 127.0.0.1; set cluster.role = "leader" (or run `run.py member`) for several'))
        if values["actors.convention_address"]:
            raise _error("actors.convention_address", flat["actors.convention_address"], (
                'joins a convention, but cluster.role is not set: start a member with `run.py member --leader '
                'HOST:PORT --shard NAME`'))
        return
    if not values["cluster.secret_file"]:
        raise _error("cluster.secret_file", flat["cluster.secret_file"], (
            f"must name the shared secret's file when cluster.role = {_show(flat['cluster.role'])}: every "
            "message between machines is signed with it (README: Running on several machines)"))
    if values["actors.system_base"] != "multiprocTCPBase":
        raise _error("actors.system_base", flat["actors.system_base"],
                     "must be \"multiprocTCPBase\" for several machines (a convention is TCP)")
    if role == "member" and not values["actors.convention_address"]:
        raise _error("actors.convention_address", flat["actors.convention_address"],
                     'must be the leader\'s "host:port" on a member (run.py member --leader HOST:PORT)')
    if role == "member" and values["cluster.shard"] == "leader":
        # The default name is the leader's own shard: the leader ignores a member calling itself
        # that, so the member would run and never be given a group.
        raise _error("cluster.shard", flat["cluster.shard"], (
            'is the leader\'s own shard; a member needs a name of its own: run.py member --leader '
            'HOST:PORT --shard NAME (e.g. "b")'))
    if role == "leader" and values["actors.convention_address"]:
        raise _error("actors.convention_address", flat["actors.convention_address"], (
            "must be empty on the leader: the convention is led from cluster.address and actors.admin_port"))


def _apply_base_port(flat: dict[str, _Raw], base: int) -> None:
    """Move the ports BASE_PORT_OFFSETS names to base + offset, unless one was set explicitly."""
    for key, offset in BASE_PORT_OFFSETS.items():
        if flat[key].layer > 0:
            continue  # set in a file, the environment or on the command line: that wins
        port = base + offset
        if key == "sandbox.url":
            parts = urlsplit(str(flat[key].value))
            host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
            value: Any = f"{parts.scheme}://{host}:{port}"
        else:
            value = port
        origin = f"bot.base_port {base} + {offset}, {flat['bot.base_port'].origin}"
        flat[key] = _Raw(value, origin, 0, False)


def _build(config_file: str | os.PathLike[str] | None, env: Mapping[str, str],
           overrides: Mapping[str, tuple[str, str]]) -> Config:
    """Merge the layers and turn them into a Config."""
    flat = dict(_default_flat())
    if config_file is not None:
        flat.update(_read_file(config_file))
    flat.update(_read_env(env))
    flat.update(_read_overrides(overrides))
    base = _value("bot.base_port", flat["bot.base_port"])
    if base:
        _apply_base_port(flat, base)
    values = {key: _value(key, flat[key]) for key in KEYS}
    _check_pairs(values, flat)
    _check_panel_host(values, flat)
    _check_cluster(values, flat)
    sections = {
        name: cls(**{f.name: values[f"{name}.{f.name}"] for f in fields(cls)}) for name, cls in SECTIONS.items()
    }
    messages = {lang: {name: values[f"messages.{lang}.{name}"] for name in TEMPLATE_NAMES} for lang in LANGUAGES}
    return Config(**sections, messages=messages)


_NO_OVERRIDES: Mapping[str, str] = MappingProxyType({})


def load_config(config_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ,
                overrides: Mapping[str, str] = _NO_OVERRIDES) -> Config:
    """Load defaults < config_file < DIAMONDBOT_* environment < overrides ({"panel.port": "9090"})."""
    return _build(config_file, env, {key: (value, f"--set {key}") for key, value in overrides.items()})


# --- command line -------------------------------------------------------------------------

_SHORTCUTS = {"data_dir": ("bot.data_dir", "--data-dir"), "port": ("panel.port", "--port"),
              "base_port": ("bot.base_port", "--base-port"), "gateway": ("gateway.kind", "--gateway")}


def _key_value(text: str) -> tuple[str, str]:
    """argparse type for --set KEY=VALUE."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as panel.port=9090, got {text!r}")
    return key.strip(), value


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --config, --set and the shortcuts --data-dir, --port, --base-port, --gateway."""
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", metavar="FILE", help="TOML file with settings over the defaults")
    group.add_argument("--set", metavar="KEY=VALUE", action="append", type=_key_value, default=[],
                       help="set one key, e.g. --set reconciliation.interval=5s (repeatable)")
    group.add_argument("--data-dir", metavar="DIR", help="same as --set bot.data_dir=DIR")
    group.add_argument("--port", metavar="N", help="panel port; same as --set panel.port=N")
    group.add_argument("--base-port", metavar="N",
                       help="move the panel (N), the sandbox (N+1) and the actor system's admin port (N+2) "
                            "together; same as --set bot.base_port=N (ports set explicitly still win)")
    group.add_argument("--gateway", metavar="KIND", choices=GATEWAY_KINDS,
                       help="sandbox or whatsapp; same as --set gateway.kind=KIND")


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> Config:
    """The Config for parsed arguments from a parser set up by add_config_arguments."""
    overrides: dict[str, tuple[str, str]] = {}
    for key, value in getattr(args, "set", None) or []:
        overrides[key] = (value, f"--set {key}")  # a later --set of the same key wins
    for dest, (key, flag) in _SHORTCUTS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if key in overrides:
            raise ConfigError(f"{key} (from command line {flag}): also given as --set {key}; keep one")
        overrides[key] = (str(value), flag)
    return _build(getattr(args, "config", None), env, overrides)
