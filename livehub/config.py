"""Settings from defaults, a TOML file, ``LIVEHUB_*`` environment variables and flags.

Precedence, lowest first: built-in defaults < TOML file (``--config`` / ``LIVEHUB_CONFIG``) <
environment < command-line flags.  Every server setting ``name`` has the environment variable
``LIVEHUB_<NAME>`` and the flag ``--<name>`` (booleans: ``--name`` / ``--no-name``; lists:
comma-separated).  The default channel options use ``LIVEHUB_<OPTION>`` and ``--<option>`` too
(``history_size``, ``history_ttl``, ``client_publish``...); namespaces live in the TOML file::

    [server]
    port = 8000
    api_key = "secret"
    allowed_origins = ["https://example.com"]

    [channels]            # channels without a namespace
    history_size = 100

    [namespaces.chat]     # chat:room1, chat:room2...
    client_publish = true

    [broker]              # livehub.backend.BrokerSettings
    broker = "redis"      # "memory" (default, one process) or "redis"
    redis_url = "rediss://redis.internal:6380/0"   # rediss:// = TLS
    redis_password = "secret"                      # or in the URL
    redis_tls_ca = "/etc/ssl/redis-ca.pem"         # also redis_tls_cert, redis_tls_key
    workers = 4           # processes sharing the port (SO_REUSEPORT); needs broker = "redis"

The ``[broker]`` settings follow the same rule: ``LIVEHUB_BROKER``, ``LIVEHUB_REDIS_URL``,
``LIVEHUB_REDIS_PASSWORD``, ``LIVEHUB_WORKERS``... and ``--broker``, ``--redis-url``,
``--workers``...

    [auth]                # client tokens, every protocol (livehub.core.auth.AuthSettings)
    token_hmac_secret = "..."   # env LIVEHUB_TOKEN_HMAC_SECRET; also accepted in [centrifugo]

    [centrifugo]          # Centrifugo client protocol (livehub.protocols.centrifugo)
    client_anonymous = true

    [limits]              # budgets against abuse (livehub.core.limits; table: docs/limits.md)
    max_publication_size = 1048576

    [mercure]             # the Mercure hub (livehub.protocols.mercure; docs/mercure.md)
    mercure_topics = ["books=https://example.com/books/"]   # https://example.com/books/1 = books:1
    mercure_publisher_jwt_key = "..."   # env LIVEHUB_MERCURE_PUBLISHER_JWT_KEY (.tokens)
    mercure_subscriber_jwt_key = "..."
    mercure_anonymous = true

The ``[limits]`` settings follow the same rule (``LIVEHUB_MAX_PUBLICATION_SIZE``,
``--max-publication-size``...).

    [admin]               # the dashboard at /admin (livehub.admin; off without a secret)
    admin_password = "..."      # env LIVEHUB_ADMIN_PASSWORD, flag --admin-password

Every setting, its variable, flag and default: docs/settings.md (``livehub settings
--markdown``).

The development preset ``--dev`` / ``LIVEHUB_DEV=1`` sits between the defaults and the file: it
turns on insecure client mode, presence, join/leave, history with recovery, client publish and
the emulation and unidirectional transports, and is announced by a loud warning.  The production
preset ``--production`` / ``LIVEHUB_PRODUCTION=1`` sits there too: it turns off the echo and
clock examples and demo mode (``demos``: the demo pages, their namespaces and simulated
feeds, also off by default when the file configures namespaces), and refuses to start without an API
key, with ``insecure_api`` or with ``client_insecure``.  Either way, configurations that open a
hole (``livehub.app.check_settings``) are refused, and the start-up log warns about each open
door that is left (``describe``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from livehub.admin import AdminSettings
from livehub.app import check_settings, is_loopback
from livehub.backend import BrokerSettings
from livehub.core.auth import AuthSettings
from livehub.core.channels import PUBLIC_READ, ChannelOptions, Namespaces
from livehub.core.limits import Limits
from livehub.demos.namespaces import DEMO_NAMESPACES
from livehub.errors import ConfigError
from livehub.protocols.centrifugo.settings import CentrifugoSettings
from livehub.protocols.mercure.settings import MercureSettings
from livehub.protocols.mercure.tokens import MercureAuthSettings
from livehub.transports.context import ServerSettings

ENV_PREFIX = "LIVEHUB_"
DEFAULT_NAMESPACES: dict[str, ChannelOptions] = DEMO_NAMESPACES
"""The demo namespaces (``/demo/...``: chat, whiteboard, ticker...): open to anonymous clients,
so added only in demo mode (``demos``: on unless ``--production`` or the file configures its
own namespaces; a namespace of the file wins)."""
MERCURE_NAMESPACES: dict[str, ChannelOptions] = {
    # Mercure topics no rule maps, and the Mercure journal (docs/mercure.md)
    "mercure": ChannelOptions(history_size=1000, history_ttl=3600,
                              namespace_history_bytes=64 * 1024 * 1024, **PUBLIC_READ),
}
"""The Mercure hub's namespace (anyone may read), added in demo mode (the quick start) like the
demo namespaces; otherwise configure it to serve the hub."""


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerSettings = field(default_factory=ServerSettings)
    namespaces: Namespaces = field(default_factory=Namespaces)
    log_level: str = "INFO"
    api_key_generated: bool = False
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    centrifugo: CentrifugoSettings = field(default_factory=CentrifugoSettings)
    dev: bool = False
    limits: Limits = field(default_factory=Limits)
    # -- authorization (issue 9) --
    auth: AuthSettings = field(default_factory=AuthSettings)
    production: bool = False
    # -- Mercure authorization (issue 11) --
    mercure_auth: MercureAuthSettings = field(default_factory=MercureAuthSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    demo_secret: str | None = None
    """The secret the demo login signs with when the server has no token keys (demo mode)."""
    mercure: MercureSettings = field(default_factory=MercureSettings)


_SERVER_FIELDS = {f.name: f for f in dataclasses.fields(ServerSettings)}
_CHANNEL_FIELDS = {f.name: f for f in dataclasses.fields(ChannelOptions)}
_BROKER_FIELDS = {f.name: f for f in dataclasses.fields(BrokerSettings)}
_CF_FIELDS = {f.name: f for f in dataclasses.fields(CentrifugoSettings)}
_LIMIT_FIELDS = {f.name: f for f in dataclasses.fields(Limits)}
_AUTH_FIELDS = {f.name: f for f in dataclasses.fields(AuthSettings)}
_MERCURE_AUTH_FIELDS = {f.name: f for f in dataclasses.fields(MercureAuthSettings)}
_ADMIN_FIELDS = {f.name: f for f in dataclasses.fields(AdminSettings)}
_MERCURE_FIELDS = {f.name: f for f in dataclasses.fields(MercureSettings)}
AUTH_ALIASES = {"token_hmac_secret_key": "token_hmac_secret",
                "token_jwks_public_endpoint": "token_jwks_url"}
"""Centrifugo's own names of the token settings, accepted in ``[auth]`` and ``[centrifugo]``."""

DEV_CENTRIFUGO: dict[str, object] = {"emulation": True, "uni": True}
DEV_AUTH: dict[str, object] = {"client_insecure": True}
PRODUCTION_SERVER: dict[str, object] = {"echo": False, "clock": False, "demos": False,
                                        "drain_delay": 5.0, "drain_window": 10.0,
                                        "drain_timeout": 30.0}
PRODUCTION_MERCURE: dict[str, object] = {"mercure": False}
"""``--production`` serves the Mercure hub only when asked (``mercure = true``)."""
DEV_CHANNELS: dict[str, object] = {
    "presence": True, "join_leave": True, "force_push_join_leave": True, "client_publish": True,
    "allow_presence_for_client": True, "allow_history_for_client": True,
    "force_recovery": True}
"""The development preset (``--dev``, ``LIVEHUB_DEV=1``), for the SDKs' own test setups."""


def _field_kind(f: dataclasses.Field[Any]) -> str:
    text = str(f.type)
    if text.startswith("bool"):
        return "bool"
    if text.startswith("int"):
        return "int"
    if text.startswith("float"):
        return "float"
    if text.startswith("Sequence"):
        return "list"
    return "str"


def _convert(kind: str, value: object, where: str) -> object:
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError("not an integer")
            return int(str(value))
        if kind == "float":
            return float(str(value))
        if kind == "list":
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, list):
                return tuple(str(v) for v in value)
            raise ValueError(f"not a list: {value!r}")
        return None if value is None else str(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _apply(target: dict[str, object], fields: Mapping[str, dataclasses.Field[Any]],
           values: Mapping[str, object], where: str) -> None:
    for key, value in values.items():
        f = fields.get(key)
        if f is None:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        target[key] = _convert(_field_kind(f), value, f"{where}.{key}")


def _table(data: Mapping[str, object], name: str) -> dict[str, object]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for every setting (all default to None: unset)."""
    parser.add_argument("--config", help="TOML config file (env LIVEHUB_CONFIG)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (env LIVEHUB_LOG_LEVEL)")
    parser.add_argument("--dev", action="store_true", default=None,
                        help="development preset: insecure clients, presence, history, "
                             "emulation (env LIVEHUB_DEV=1); never use in production")
    parser.add_argument("--production", action="store_true", default=None,
                        help="production preset: no echo/clock examples or demo namespace; "
                             "refuses to start without an API key (env LIVEHUB_PRODUCTION=1)")
    seen: set[str] = set()
    for fields in (_SERVER_FIELDS, _CHANNEL_FIELDS, _BROKER_FIELDS, _CF_FIELDS, _LIMIT_FIELDS,
                   _AUTH_FIELDS, _MERCURE_AUTH_FIELDS, _ADMIN_FIELDS, _MERCURE_FIELDS):
        for name, f in fields.items():
            if name in seen:
                continue  # one flag sets a server setting and the channel option of that name
            seen.add(name)
            flag = "--" + name.replace("_", "-")
            kind = _field_kind(f)
            help_text = f"env {ENV_PREFIX}{name.upper()}"
            if kind == "bool":
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                    help=help_text)
            else:
                parser.add_argument(flag, default=None, help=help_text)


S = TypeVar("S")


def _settings(kind: Callable[..., S], values: Mapping[str, object], what: str) -> S:
    """``kind(**values)``; an unknown or missing setting is a ``ConfigError`` naming ``what``."""
    try:
        return kind(**values)
    except TypeError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def load(args: argparse.Namespace | None = None,
         environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration; raise ``ConfigError`` with what is wrong and where."""
    env = os.environ if environ is None else environ
    flags = vars(args) if args is not None else {}
    path = flags.get("config") or env.get(ENV_PREFIX + "CONFIG")
    data: dict[str, object] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        unknown = set(data) - {"server", "channels", "namespaces", "log", "broker", "centrifugo",
                               "limits", "auth", "mercure", "admin"}
        if unknown:
            raise ConfigError(f"{path}: unknown sections {sorted(unknown)}")
    dev = bool(flags.get("dev")) or _convert(
        "bool", env.get(ENV_PREFIX + "DEV", "0"), "environment LIVEHUB_DEV") is True
    production = bool(flags.get("production")) or _convert(
        "bool", env.get(ENV_PREFIX + "PRODUCTION", "0"), "environment LIVEHUB_PRODUCTION") is True
    if dev and production:
        raise ConfigError("--dev and --production exclude each other")
    server: dict[str, object] = dict(PRODUCTION_SERVER) if production else {}
    channels: dict[str, object] = {**PUBLIC_READ, **(DEV_CHANNELS if dev else {})}
    centrifugo: dict[str, object] = dict(DEV_CENTRIFUGO) if dev else {}
    _apply(server, _SERVER_FIELDS, _table(data, "server"), "[server]")
    _apply(channels, _CHANNEL_FIELDS, _table(data, "channels"), "[channels]")
    broker: dict[str, object] = {}
    _apply(broker, _BROKER_FIELDS, _table(data, "broker"), "[broker]")
    limits: dict[str, object] = {}
    _apply(limits, _LIMIT_FIELDS, _table(data, "limits"), "[limits]")
    admin: dict[str, object] = {}
    _apply(admin, _ADMIN_FIELDS, _table(data, "admin"), "[admin]")
    auth, cf_table = _auth_tables(data, dev)
    mercure_auth: dict[str, object] = {}
    _apply(mercure_auth, _MERCURE_AUTH_FIELDS, _mercure_auth_table(data), "[mercure]")
    _apply(centrifugo, _CF_FIELDS, cf_table, "[centrifugo]")
    mercure: dict[str, object] = dict(PRODUCTION_MERCURE) if production else {}
    _apply(mercure, _MERCURE_FIELDS, {k: v for k, v in _table(data, "mercure").items()
                                      if k in _MERCURE_FIELDS}, "[mercure]")
    for name, fields, target in (("server", _SERVER_FIELDS, server),
                                 ("channels", _CHANNEL_FIELDS, channels),
                                 ("broker", _BROKER_FIELDS, broker),
                                 ("centrifugo", _CF_FIELDS, centrifugo),
                                 ("limits", _LIMIT_FIELDS, limits),
                                 ("auth", _AUTH_FIELDS, auth),
                                 ("mercure", _MERCURE_AUTH_FIELDS, mercure_auth),
                                 ("admin", _ADMIN_FIELDS, admin),
                                 ("mercure", _MERCURE_FIELDS, mercure)):
        from_env = {k: env[ENV_PREFIX + k.upper()] for k in fields
                    if ENV_PREFIX + k.upper() in env}
        _apply(target, fields, from_env, "environment")
        from_flags = {k: flags[k] for k in fields if flags.get(k) is not None}
        _apply(target, fields, from_flags, "flags")
        del name
    server.setdefault("demos", not production and "namespaces" not in data)
    if broker.get("broker", "memory") != "memory":
        # one simulated market per hub, not one per node or worker: with Redis the feeds
        # run only where they are asked for explicitly
        server.setdefault("demo_market_interval", 0)
        server.setdefault("demo_match_minute", 0)
    namespaces: dict[str, ChannelOptions] = dict(DEFAULT_NAMESPACES) if server["demos"] else {}
    if server["demos"]:
        namespaces.update(MERCURE_NAMESPACES)
    for ns, values in _table(data, "namespaces").items():
        if not isinstance(values, dict):
            raise ConfigError(f"[namespaces.{ns}] must be a table")
        opts: dict[str, object] = {}
        _apply(opts, _CHANNEL_FIELDS, values, f"[namespaces.{ns}]")
        namespaces[ns] = _options(opts, f"[namespaces.{ns}]")
    log_level = str(flags.get("log_level") or env.get(ENV_PREFIX + "LOG_LEVEL")
                    or _table(data, "log").get("level", "INFO")).upper()
    generated = False
    if not server.get("api_key") and not server.get("insecure_api"):
        server["api_key"] = os.urandom(16).hex()
        generated = True
    settings = _settings(ServerSettings, server, "server settings")
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port must be 0-65535, not {settings.port}")
    broker_settings = _settings(BrokerSettings, broker, "broker settings")
    cf_settings = _settings(CentrifugoSettings, centrifugo, "centrifugo settings")
    limit_settings = _settings(Limits, limits, "limits")
    auth_settings = _settings(AuthSettings, auth, "auth settings")
    mercure_auth_settings = _settings(MercureAuthSettings, mercure_auth,
                                      "mercure authorization settings")
    admin_settings = _settings(AdminSettings, admin, "admin settings")
    # one demo login secret for every worker of this server (never used with keys of its own)
    demo_secret = secrets.token_urlsafe(32) if settings.demos else None
    mercure_settings = _settings(MercureSettings, mercure, "mercure settings")
    missing = sorted(mercure_settings.namespaces() - set(namespaces))
    if "mercure" not in mercure:
        # not asked either way: serve the hub when its namespaces are configured (the
        # configuration without [namespaces] tables has them), as livehub serve's default
        mercure_settings = dataclasses.replace(mercure_settings, mercure=not missing)
    elif mercure_settings.mercure and missing:
        raise ConfigError(f"mercure: the hub needs namespaces {missing}, which are not "
                          "configured (add [namespaces.<name>] tables)")
    check_settings(settings)
    if production:
        _check_production(settings, auth_settings, generated)
    return Config(settings, Namespaces(_options(channels, "[channels]"), namespaces),
                  log_level, generated, broker=broker_settings, centrifugo=cf_settings,
                  dev=dev, limits=limit_settings, auth=auth_settings, production=production,
                  mercure_auth=mercure_auth_settings, admin=admin_settings,
                  demo_secret=demo_secret, mercure=mercure_settings)


# -- authorization settings (issue 9) ---------------------------------------------------------


def _auth_tables(data: Mapping[str, object], dev: bool
                 ) -> tuple[dict[str, object], dict[str, object]]:
    """The ``[auth]`` settings (with the dev preset, Centrifugo's names, and the old place of
    the keys in ``[centrifugo]``, which ``[auth]`` overrides) and the rest of ``[centrifugo]``."""
    auth: dict[str, object] = dict(DEV_AUTH) if dev else {}
    cf_table = dict(_table(data, "centrifugo"))
    old = {k: cf_table.pop(k) for k in list(cf_table) if AUTH_ALIASES.get(k, k) in _AUTH_FIELDS}
    for where, table in (("[centrifugo]", old), ("[auth]", _table(data, "auth"))):
        _apply(auth, _AUTH_FIELDS, {AUTH_ALIASES.get(k, k): v for k, v in table.items()}, where)
    return auth, cf_table


def _mercure_auth_table(data: Mapping[str, object]) -> dict[str, object]:
    """The authorization keys of ``[mercure]`` (``MercureAuthSettings``); the other keys of the
    table belong to the protocol's own settings, and a key known to neither is refused."""
    table = _table(data, "mercure")
    return {k: v for k, v in table.items() if k not in _MERCURE_OTHER_FIELDS}


_MERCURE_OTHER_FIELDS: frozenset[str] = frozenset(_MERCURE_FIELDS)
"""Keys of ``[mercure]`` that belong to the protocol plug-in's settings (``MercureSettings``)."""


def _check_production(server: ServerSettings, auth: AuthSettings, generated: bool) -> None:
    """What ``--production`` refuses (besides what ``check_settings`` always refuses)."""
    if generated or not server.api_key:
        raise ConfigError("--production needs an API key: set api_key (LIVEHUB_API_KEY)")
    if server.insecure_api:
        raise ConfigError("--production refuses insecure_api (the server API needs its key)")
    if auth.client_insecure:
        raise ConfigError("--production refuses client_insecure (every client could do "
                          "anything)")


def configured_secrets(config: Config) -> list[str]:
    """The configured secrets, which the log never shows (``livehub.ops.logs``); a key
    generated for this run is not one of them (the start-up log shows it once)."""
    values = [config.server.metrics_token, config.broker.redis_password,
              config.auth.token_hmac_secret, config.demo_secret, config.admin.admin_password,
              config.admin.admin_token]
    if not config.api_key_generated:
        values.append(config.server.api_key)
    return [v for v in values if v]


def _options(values: Mapping[str, object], where: str) -> ChannelOptions:
    try:
        return ChannelOptions(**values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def describe(config: Config) -> Sequence[str]:
    """Human lines about the effective configuration (for the start-up log)."""
    s = config.server
    scheme = "https" if s.tls_cert else "http"
    lines = [f"listening on {scheme}://{s.host}:{s.port}/",
             f"namespaces: {', '.join(sorted(config.namespaces.namespaces)) or '(none)'}",
             config.broker.describe()]
    m = config.mercure
    lines.append(f"Mercure hub: /.well-known/mercure (journal {m.mercure_journal})" if m.mercure
                 else "Mercure hub: off (set mercure = true and configure its namespaces)")
    if config.dev:
        lines.append("WARNING: " + "!" * 60)
        lines.append("WARNING: DEVELOPMENT PRESET (--dev / LIVEHUB_DEV=1) IS ON: any client may "
                     "connect, subscribe, publish and read presence and history.")
        lines.append("WARNING: never run this in production.")
        lines.append("WARNING: " + "!" * 60)
    elif config.auth.client_insecure:
        lines.append("WARNING: client_insecure is on: any client may connect, subscribe and "
                     "publish without a token (development only)")
    if s.insecure_api:
        lines.append("WARNING: insecure_api is on: the server API accepts calls without a key")
    elif config.api_key_generated:
        lines.append(f"server API key for this run (set LIVEHUB_API_KEY to choose one): "
                     f"{s.api_key}")
    if config.admin.enabled:
        lines.append("admin dashboard at /admin (a password or token is configured)")
    if s.metrics_token is None and (config.production or not is_loopback(s.host)):
        lines.append("/metrics answers 401 without the API key: set metrics_token "
                     "(LIVEHUB_METRICS_TOKEN) to let Prometheus scrape it")
    lines.extend(f"WARNING: {door}" for door in open_doors(config))
    return lines


def open_doors(config: Config) -> list[str]:
    """Each thing left open that a production deployment usually closes (logged loudly at
    start-up; ``--production`` closes the first four)."""
    s = config.server
    doors: list[str] = []
    if s.echo:
        doors.append("the /echo example is on (--no-echo or --production turns it off)")
    if s.clock:
        doors.append(f"the clock example publishes to {s.clock_channel!r} every second "
                     "(--no-clock or --production turns it off)")
    demo_open: list[str] = []
    for name, options in config.namespaces.namespaces.items():
        if options.client_publish and options.anonymous_subscribe:
            if s.demos and DEFAULT_NAMESPACES.get(name) == options:
                demo_open.append(repr(name))  # said once, in the demo mode line
            else:
                doors.append(f"namespace {name!r}: anonymous clients may publish")
    if s.demos:
        doors.append("demo mode is on: the /demo/ pages, simulated feeds and namespaces where "
                     f"anonymous clients may publish ({', '.join(demo_open) or 'none'}) "
                     "(--no-demos or --production turns it off)")
    if config.namespaces.default.client_publish:
        doors.append("channels without a namespace: any client may publish")
    if "*" in s.allowed_origins:
        doors.append("allowed_origins is *: pages of any site may subscribe to public "
                     "channels and open WebSockets (list your origins)")
    if config.centrifugo.client_anonymous:
        doors.append("client_anonymous is on: Centrifugo clients may connect without a token")
    if config.mercure_auth.mercure_anonymous:
        doors.append("mercure_anonymous is on: Mercure subscribers may connect without a token "
                     "(public updates only)")
    return doors
