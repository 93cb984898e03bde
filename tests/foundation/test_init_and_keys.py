"""`exec-broker init` (idempotent, 0600 keys, --force) and signing-key rotation."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from broker.cli import main as cli_main
from broker.crypto.signing import KeyRing, rotate
from broker.settings import Settings
from broker.storage.store import SQLiteStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def private_files(certs: Path) -> list[Path]:
    return [certs / "secret.key", certs / "saml-sp.key", *sorted((certs / "oidc").glob("*.pem"))]


def test_init_writes_config_keys_and_database(settings: Settings) -> None:
    certs = settings.certs_dir
    assert settings.config_path.exists()
    assert (certs / "saml-sp.crt").exists()
    for path in private_files(certs):
        assert mode(path) == 0o600, path
    assert mode(certs) == 0o700
    store = SQLiteStore.open(settings.database)
    states = sorted((k.alg, k.state) for k in store.signing_keys.list())
    assert states == [
        ("ES256", "current"),
        ("ES256", "next"),
        ("RS256", "current"),
        ("RS256", "next"),
    ]


def test_init_again_keeps_keys_and_data(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    certs = settings.certs_dir
    before = {p: p.read_bytes() for p in private_files(certs)}
    config_before = settings.config_path.read_text()
    assert cli_main(["org", "create", "Acme"]) == 0
    capsys.readouterr()
    assert cli_main(["init"]) == 0
    assert "Already initialised" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in private_files(certs)} == before
    assert settings.config_path.read_text() == config_before
    assert len(SQLiteStore.open(settings.database).organizations.list()) == 1


def test_init_force_replaces_sp_cert_and_publishes_new_keys(settings: Settings) -> None:
    certs = settings.certs_dir
    sp_before = (certs / "saml-sp.key").read_bytes()
    secret_before = (certs / "secret.key").read_bytes()
    assert cli_main(["init", "--force"]) == 0
    assert (certs / "saml-sp.key").read_bytes() != sp_before
    assert (certs / "secret.key").read_bytes() == secret_before  # would orphan encrypted data
    assert len(SQLiteStore.open(settings.database).signing_keys.list()) == 6


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_rotation_keeps_earlier_tokens_verifiable(settings: Settings, alg: str) -> None:
    store = SQLiteStore.open(settings.database)
    ring = KeyRing(store, grace_seconds=3600, refresh_seconds=0)
    old = ring.signing_key(alg)  # type: ignore[arg-type]
    next_kid = next(k.kid for k in store.signing_keys.list() if k.alg == alg and k.state == "next")
    assert next_kid in {k["kid"] for k in ring.public_jwks()["keys"]}  # published before use
    token = jwt.encode({"alg": alg, "kid": old.record.kid}, {"sub": "x"}, old.key)

    rotate(store, settings.certs_dir, time.time(), 3600)
    assert ring.signing_key(alg).record.kid == next_kid  # type: ignore[arg-type]
    published = ring.public_jwks()
    assert old.record.kid in {k["kid"] for k in published["keys"]}
    assert jwt.decode(token, KeySet.import_key_set(published)).claims == {"sub": "x"}  # type: ignore[arg-type]

    # after the grace period the retired key leaves the JWKS and its file is removed
    later = time.time() + 7200
    assert old.record.kid not in {k["kid"] for k in ring.public_jwks(now=later)["keys"]}
    report = rotate(store, settings.certs_dir, later, 3600)
    assert old.record.kid in report["removed"]
    assert not Path(old.record.private_path).exists()


def test_keys_cli_rotate_and_export(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert cli_main(["keys", "export-jwks"]) == 0
    before = {k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]}
    assert len(before) == 4  # current + next for each algorithm
    assert cli_main(["keys", "rotate", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["activated"]) == 2 and len(report["published"]) == 2
    assert cli_main(["keys", "export-jwks"]) == 0
    after = {k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]}
    assert before < after  # retired keys stay during the grace period
