"""Settings: TOML + BROKER_* overrides, one clear message and exit code 2 for a bad value."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from broker import settings as settings_module
from broker.cli import main as cli_main
from broker.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "broker.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_example_documents_every_setting_and_nothing_else() -> None:
    example = tomllib.loads((ROOT / "config" / "broker.example.toml").read_text())
    text = (ROOT / "config" / "broker.example.toml").read_text()
    documented = {f"{section}.{key}" for section, table in example.items() for key in table}
    # tls_cert/tls_key are shown commented out (optional): count commented keys too.
    documented |= {f"server.{k}" for k in re.findall(r"^# (tls_\w+) =", text, re.M)}
    declared = {s.name for s in settings_module.SCHEMA}
    assert declared - documented == set(), "settings missing from config/broker.example.toml"
    assert documented - declared == set(), "example documents settings that do not exist"


def test_example_loads_as_is(tmp_path: Path) -> None:
    path = write(tmp_path, (ROOT / "config" / "broker.example.toml").read_text())
    loaded = settings_module.load(path, environ={})
    assert loaded.public_url == "http://127.0.0.1:8080"
    assert loaded.database == tmp_path / "data" / "broker.db"  # relative to the install dir


def test_documented_environment_names_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\n")
    env = {
        "BROKER_CONFIG": str(path),
        "BROKER_PUBLIC_URL": "https://sso.acme.test/",
        "BROKER_HOST": "::1",
        "BROKER_PORT": "9443",
        "BROKER_DATABASE": "/srv/b.db",
        "BROKER_CERTS_DIR": "/srv/certs",
        "BROKER_LOG_LEVEL": "DEBUG",
        "BROKER_SAML_CLOCK_SKEW_SECONDS": "30",
    }
    loaded = settings_module.load(environ=env)
    assert loaded.config_path == path
    assert loaded.public_url == "https://sso.acme.test"
    assert (loaded.host, loaded.port) == ("::1", 9443)
    assert str(loaded.database) == "/srv/b.db"
    assert str(loaded.certs_dir) == "/srv/certs"
    assert loaded.get("log.level") == "debug"
    assert loaded.get("saml.clock_skew_seconds") == 30
    assert loaded.sources["server.port"] == "BROKER_PORT"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[server]\nport = "eighty"\n', {}, "server.port: must be an integer"),
        ("[server]\nport = 70000\n", {}, "server.port: must be between 1 and 65535"),
        ('[server]\npublic_url = "sso.acme.test"\n', {}, "server.public_url: must be an absolute"),
        ('[log]\nlevel = "loud"\n', {}, "log.level: must be one of"),
        ('[server]\ntrusted_proxies = ["not-an-ip"]\n', {}, "server.trusted_proxies:"),
        ('[dns]\nresolvers = ["1.2.3.4:99999"]\n', {}, "dns.resolvers:"),
        ('[server]\ntls_cert = "a.pem"\n', {}, "server.tls_cert and server.tls_key"),
        ("[server]\nprot = 1\n", {}, "server.prot: unknown setting"),
        ("server = 3\n", {}, "server: must be a [server] table"),
        ("[server\n", {}, "not valid TOML"),
        ("", {"BROKER_PORT": "x"}, "BROKER_PORT: must be an integer"),
        ("", {"BROKER_PUBLIC_URL": "ftp://x"}, "BROKER_PUBLIC_URL: must be an absolute"),
        ("", {"BROKER_LOG_LEVEL": "chatty"}, "BROKER_LOG_LEVEL: must be one of"),
        ("", {"BROKER_STORAGE_BUSY_TIMEOUT_MS": "5"}, "BROKER_STORAGE_BUSY_TIMEOUT_MS: must be"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as err:
        settings_module.load(path, environ=env)
    assert message in err.value.public


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["keys", "list"], ["org", "list"]])
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    path = write(tmp_path, '[server]\nport = "eighty"\n')
    monkeypatch.setenv("BROKER_CONFIG", str(path))
    assert cli_main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["exec-broker: server.port: must be an integer (got 'eighty')"]


def test_missing_config_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BROKER_CONFIG", str(tmp_path / "nope.toml"))
    assert cli_main(["serve"]) == 2
    assert "config file not found (run `exec-broker init` first)" in capsys.readouterr().err
