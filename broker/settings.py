"""Settings: the only reader of config/broker.toml and of BROKER_* environment variables.

Every setting is declared once in SCHEMA with its type, default and documentation;
config/broker.example.toml documents each of them (a test keeps the two in step).
Precedence: environment > TOML file > default. A bad value raises ConfigError naming
the key, which the CLI turns into one line on stderr and exit code 2.

Environment names are BROKER_<SECTION>_<KEY> (e.g. BROKER_SAML_CLOCK_SKEW_SECONDS),
plus the short aliases of ALIASES (BROKER_PUBLIC_URL, BROKER_PORT, ...).
Relative paths are resolved against the base directory: the parent of the folder
that holds the TOML file (the install directory for config/broker.toml).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from broker.errors import ConfigError

DEFAULT_CONFIG = Path("config/broker.toml")


def _url(value: Any) -> str:
    text = _str(value).rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL such as https://sso.example.com")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return text


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _nonempty(value: Any) -> str:
    text = _str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError("must be an integer") from None
        if not isinstance(value, int):
            raise ValueError("must be an integer")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    ):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError("must be true or false")


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _str(value).lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return parse


def _list(item: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    def parse(value: Any) -> tuple[Any, ...]:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError("must be a list")
        return tuple(item(v) for v in value)

    return parse


def _network(value: Any) -> str:
    text = _nonempty(value)
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR network") from None
    return text


def _host_port(value: Any) -> str:
    text = _nonempty(value)
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "53"
    try:
        ipaddress.ip_address(host.strip("[]"))
        _int(1, 65535)(port)
    except ValueError:
        raise ValueError(f"{text!r} must be IP or IP:port") from None
    return f"{host}:{port}"


def _hostname(value: Any) -> str:
    return _nonempty(value).lower().rstrip(".")


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str
    path: bool = False  # resolved against the base directory

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return f"BROKER_{self.section}_{self.key}".upper()


REQUIRED = object()

SCHEMA: tuple[Setting, ...] = (
    Setting(
        "server",
        "public_url",
        _url,
        "http://127.0.0.1:8080",
        "External base URL; the OIDC issuer. Must be what browsers and Exec use.",
    ),
    Setting("server", "host", _nonempty, "127.0.0.1", "Address to bind."),
    Setting("server", "port", _int(1, 65535), 8080, "TCP port to bind."),
    Setting("server", "workers", _int(1, 64), 1, "Processes sharing the port (SO_REUSEPORT)."),
    Setting(
        "server",
        "trusted_proxies",
        _list(_network),
        (),
        "Peers whose X-Forwarded-For/-Proto are honoured (CIDRs).",
    ),
    Setting(
        "server", "tls_cert", _str, "", "PEM certificate chain to serve HTTPS directly.", path=True
    ),
    Setting("server", "tls_key", _str, "", "PEM private key for tls_cert.", path=True),
    Setting(
        "server",
        "max_body_bytes",
        _int(1024, 64 * 1024 * 1024),
        2 * 1024 * 1024,
        "Largest request body accepted.",
    ),
    Setting("storage", "database", _nonempty, "data/broker.db", "SQLite database file.", path=True),
    Setting(
        "storage",
        "busy_timeout_ms",
        _int(100, 600_000),
        5000,
        "How long a writer waits for the lock before failing.",
    ),
    Setting("keys", "certs_dir", _nonempty, "certs", "Directory of generated keys.", path=True),
    Setting(
        "keys",
        "rotation_grace_seconds",
        _int(60, 90 * 86400),
        7 * 86400,
        "How long a retired signing key stays in the JWKS.",
    ),
    Setting("log", "level", _choice("debug", "info", "warning", "error"), "info", "Log level."),
    Setting("log", "format", _choice("json", "text"), "json", "Log line format."),
    Setting(
        "dns",
        "resolvers",
        _list(_host_port),
        (),
        "DNS servers for domain verification (IP or IP:port); empty = system resolvers.",
    ),
    Setting("dns", "timeout_seconds", _int(1, 60), 5, "DNS look-up timeout."),
    Setting("oidc", "code_ttl_seconds", _int(10, 600), 60, "Authorization code lifetime."),
    Setting("oidc", "access_token_ttl_seconds", _int(60, 86400), 600, "Access token lifetime."),
    Setting("oidc", "id_token_ttl_seconds", _int(60, 86400), 600, "ID token lifetime."),
    Setting(
        "oidc",
        "refresh_token_ttl_seconds",
        _int(300, 365 * 86400),
        30 * 86400,
        "Refresh token lifetime.",
    ),
    Setting(
        "oidc",
        "session_ttl_seconds",
        _int(300, 30 * 86400),
        8 * 3600,
        "Broker session lifetime (no new IdP round trip within it).",
    ),
    Setting(
        "oidc",
        "flow_ttl_seconds",
        _int(60, 3600),
        600,
        "How long a pending login (authorize request) may take.",
    ),
    Setting(
        "saml",
        "clock_skew_seconds",
        _int(0, 900),
        120,
        "Allowed clock skew for NotBefore/NotOnOrAfter.",
    ),
    Setting(
        "saml",
        "metadata_refresh_seconds",
        _int(300, 7 * 86400),
        86400,
        "How often metadata URLs are re-fetched.",
    ),
    Setting(
        "saml",
        "metadata_max_bytes",
        _int(10_000, 20_000_000),
        2_000_000,
        "Largest metadata document accepted.",
    ),
    Setting("saml", "metadata_timeout_seconds", _int(1, 120), 10, "Metadata fetch timeout."),
    Setting(
        "upstream_oidc",
        "timeout_seconds",
        _int(1, 120),
        10,
        "Timeout of each call to a customer's OIDC IdP (discovery, JWKS, token, userinfo).",
    ),
    Setting(
        "upstream_oidc",
        "max_response_bytes",
        _int(10_000, 20_000_000),
        1_000_000,
        "Largest answer accepted from an upstream OIDC IdP.",
    ),
    Setting(
        "upstream_oidc",
        "discovery_ttl_seconds",
        _int(60, 7 * 86400),
        3600,
        "How long an IdP's discovery document is cached.",
    ),
    Setting(
        "upstream_oidc",
        "jwks_min_refresh_seconds",
        _int(1, 3600),
        10,
        "Least time between two JWKS re-fetches caused by an unknown kid.",
    ),
    Setting(
        "upstream_oidc",
        "clock_skew_seconds",
        _int(0, 900),
        120,
        "Allowed clock skew for upstream ID token exp/iat.",
    ),
    Setting(
        "upstream_oidc",
        "allow_insecure_loopback",
        _bool,
        False,
        "Allow plain http to an IdP on 127.0.0.1/::1 (tests and demos only).",
    ),
    Setting(
        "network",
        "private_hosts_allowlist",
        _list(_hostname),
        (),
        "Hosts allowed to resolve to private addresses (metadata/discovery fetches, webhooks).",
    ),
    Setting("scim", "max_page_size", _int(10, 10_000), 1000, "Largest SCIM list page."),
    Setting(
        "scim",
        "rate_limit_per_second",
        _int(1, 100_000),
        200,
        "Sustained SCIM requests per second per directory (burst 4x).",
    ),
    Setting(
        "scim", "journal_retention_days", _int(1, 3650), 30, "How long SCIM requests are kept."
    ),
    Setting(
        "scim",
        "token_overlap_seconds",
        _int(0, 30 * 86400),
        86400,
        "How long the previous SCIM token keeps working after rotation.",
    ),
    Setting("events", "retention_days", _int(1, 3650), 30, "How long events are kept."),
    Setting(
        "webhooks",
        "timeout_seconds",
        _int(1, 60),
        10,
        "How long one webhook delivery may take before it counts as failed.",
    ),
    Setting(
        "webhooks",
        "retry_base_ms",
        _int(10, 3_600_000),
        5000,
        "First retry delay after a failed delivery; doubles per failure (with jitter).",
    ),
    Setting(
        "webhooks", "retry_max_seconds", _int(1, 86400), 3600, "Longest delay between two retries."
    ),
    Setting(
        "webhooks",
        "failing_after_seconds",
        _int(1, 30 * 86400),
        3 * 86400,
        "How long an event may keep failing before the endpoint is marked failing.",
    ),
    Setting(
        "webhooks",
        "poll_interval_ms",
        _int(10, 60_000),
        200,
        "How often the delivery worker looks for new events.",
    ),
    Setting(
        "webhooks",
        "allow_insecure_loopback",
        _bool,
        False,
        "Allow plain http to a webhook receiver on 127.0.0.1/::1 (tests and demos only).",
    ),
    Setting("admin", "idle_timeout_seconds", _int(60, 86400), 1800, "Admin session idle timeout."),
    Setting(
        "admin",
        "setup_token_ttl_seconds",
        _int(60, 7 * 86400),
        86400,
        "Lifetime of the first-run setup URL.",
    ),
    Setting(
        "admin",
        "login_max_failures",
        _int(1, 100),
        5,
        "Failed sign-ins per (username, address) within the window before that pair locks.",
    ),
    Setting(
        "admin",
        "login_window_seconds",
        _int(60, 86400),
        900,
        "How long failed sign-ins are counted before the count starts again.",
    ),
    Setting(
        "admin",
        "login_lockout_seconds",
        _int(60, 86400),
        900,
        "How long a locked username (or username + address) is refused without a check.",
    ),
    Setting(
        "admin",
        "login_max_failures_per_user",
        _int(1, 10_000),
        20,
        "Failed sign-ins for one username from any address within the window before it locks.",
    ),
)

ALIASES: Mapping[str, str] = {
    "BROKER_PUBLIC_URL": "server.public_url",
    "BROKER_HOST": "server.host",
    "BROKER_PORT": "server.port",
    "BROKER_WORKERS": "server.workers",
    "BROKER_DATABASE": "storage.database",
    "BROKER_CERTS_DIR": "keys.certs_dir",
    "BROKER_LOG_LEVEL": "log.level",
    "BROKER_LOG_FORMAT": "log.format",
}


@dataclass(frozen=True)
class Settings:
    """All settings, flat: `settings.get("saml.clock_skew_seconds")` or the typed properties."""

    values: Mapping[str, Any]
    config_path: Path
    base_dir: Path
    sources: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.values[name]

    @property
    def public_url(self) -> str:
        return str(self.values["server.public_url"])

    @property
    def database(self) -> Path:
        return Path(self.values["storage.database"])

    @property
    def certs_dir(self) -> Path:
        return Path(self.values["keys.certs_dir"])

    @property
    def host(self) -> str:
        return str(self.values["server.host"])

    @property
    def port(self) -> int:
        return int(self.values["server.port"])

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some values replaced (tests, CLI flags); names use __ for dots."""
        values = dict(self.values)
        for key, value in overrides.items():
            values[key.replace("__", ".")] = value
        return Settings(values, self.config_path, self.base_dir, self.sources)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("BROKER_CONFIG") or DEFAULT_CONFIG).absolute()


def load(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    require_file: bool = True,
) -> Settings:
    """Read the TOML file and the environment; raise ConfigError on the first bad value."""
    environ = os.environ if environ is None else environ
    path = (path or config_path(environ)).absolute()
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    elif require_file:
        raise ConfigError(f"{path}: config file not found (run `exec-broker init` first)")
    base_dir = path.parent.parent
    known = {s.name: s for s in SCHEMA}
    _reject_unknown(raw, known, path)

    by_env = {s.env: s.name for s in SCHEMA} | dict(ALIASES)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SCHEMA:
        value, source = setting.default, "default"
        section = raw.get(setting.section, {})
        if setting.key in section:
            value, source = section[setting.key], str(path)
        for env_name, target in by_env.items():
            if target == setting.name and env_name in environ:
                value, source = environ[env_name], env_name
        try:
            parsed = setting.parse(value)
        except ValueError as exc:
            where = source if source.startswith("BROKER_") else setting.name
            raise ConfigError(f"{where}: {exc} (got {value!r})") from None
        if setting.path and parsed:
            parsed = (
                str((base_dir / parsed).resolve()) if not Path(parsed).is_absolute() else parsed
            )
        values[setting.name] = parsed
        sources[setting.name] = source
    if bool(values["server.tls_cert"]) != bool(values["server.tls_key"]):
        raise ConfigError("server.tls_cert and server.tls_key: set both or neither")
    return Settings(values, path, base_dir, sources)


def _reject_unknown(raw: dict[str, Any], known: Mapping[str, Setting], path: Path) -> None:
    for section, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: must be a [{section}] table in {path}")
        for key in table:
            if f"{section}.{key}" not in known:
                raise ConfigError(f"{section}.{key}: unknown setting in {path}")
