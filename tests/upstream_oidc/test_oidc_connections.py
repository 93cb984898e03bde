"""Creating OIDC connections: the core's rules and the `exec-broker connection create-oidc`
CLI, against a real initialised broker home and its SQLite store."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from broker.cli import main
from broker.clock import SystemClock
from broker.core import audit, organizations
from broker.core.oidc_connections import (
    OidcConnectionInput,
    create_oidc_connection,
    secret_context,
)
from broker.crypto.secrets import SecretBox
from broker.errors import InvalidInput
from broker.settings import Settings
from broker.storage.store import SQLiteStore
from tests.fakes.oidc_idp import FakeOidcIdP

clock = SystemClock()


def _org(store: SQLiteStore) -> str:
    return organizations.create_organization(store, clock, audit.CLI, "Acme").id


def _input(org_id: str, **kw: object) -> OidcConnectionInput:
    values: dict[str, object] = {
        "organization_id": org_id,
        "preset": "okta",
        "issuer": "https://acme.okta.com",
        "client_id": "0oa1",
        "client_secret": "s3cret",
    }
    values.update(kw)
    return OidcConnectionInput(**values)  # type: ignore[arg-type]


def test_secret_is_sealed_per_connection(settings: Settings, store: SQLiteStore) -> None:
    box = SecretBox.load(settings.certs_dir)
    org_id = _org(store)
    conn = create_oidc_connection(
        store, clock, audit.CLI, _input(org_id, scopes=["email"]), seal=box.encrypt
    )
    stored = store.connections.get(conn.id)
    assert stored.type == "oidc" and stored.state == "draft"
    assert stored.config["scopes"] == ["openid", "email"]
    sealed = stored.config["client_secret_enc"]
    assert "s3cret" not in json.dumps(stored.config)
    assert box.decrypt(sealed, secret_context(conn.id)) == "s3cret"
    with pytest.raises(InvalidInput):  # bound to its connection: another context fails
        box.decrypt(sealed, secret_context("conn_other"))
    entries = store.audit.list(organization_id=org_id)
    assert any(e.action == "connection.created" for e in entries)
    assert "s3cret" not in json.dumps([e.detail for e in entries])


@pytest.mark.parametrize(
    "kw",
    [
        {"issuer": "http://acme.okta.com"},
        {"issuer": "https://acme.okta.com?x=1"},
        {"issuer": "not a url"},
        {"preset": "adfs"},
        {"scopes": ["openid", 'bad"scope']},
        {"claims": {"phone": "x"}},
        {"client_secret": ""},
        {"token_auth_method": "private_key_jwt"},  # with a secret: refused
        {"hosted_domain": "example.com"},  # okta: no hosted domain
        {"ca_pem": "not a pem"},
    ],
)
def test_invalid_input(settings: Settings, store: SQLiteStore, kw: dict[str, object]) -> None:
    box = SecretBox.load(settings.certs_dir)
    org_id = _org(store)
    with pytest.raises(InvalidInput):
        create_oidc_connection(store, clock, audit.CLI, _input(org_id, **kw), seal=box.encrypt)
    assert store.connections.list(org_id) == []  # nothing half-created


def test_insecure_loopback_only_by_flag(settings: Settings, store: SQLiteStore) -> None:
    box = SecretBox.load(settings.certs_dir)
    org_id = _org(store)
    data = _input(org_id, issuer="http://127.0.0.1:5556")
    with pytest.raises(InvalidInput):
        create_oidc_connection(store, clock, audit.CLI, data, seal=box.encrypt)
    conn = create_oidc_connection(
        store, clock, audit.CLI, data, seal=box.encrypt, allow_insecure_loopback=True
    )
    assert conn.config["issuer"] == "http://127.0.0.1:5556"


async def test_cli_create_oidc(
    settings: Settings,
    store: SQLiteStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org_id = _org(store)
    async with FakeOidcIdP(tls=True) as idp:
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(idp.ca_pem)
        monkeypatch.setattr("sys.stdin", io.StringIO("very-secret\n"))
        code = main(
            [
                "connection",
                "create-oidc",
                "--org",
                org_id,
                "--preset",
                "entra",
                "--issuer",
                idp.issuer,
                "--client-id",
                "app-1",
                "--client-secret-stdin",
                "--claim",
                "email=upn",
                "--scope",
                "openid offline_access",
                "--ca-file",
                str(ca_file),
                "--json",
            ]
        )
    out = capsys.readouterr().out
    assert code == 0, out
    shown = json.loads(out)
    assert "very-secret" not in out and shown["client_secret_set"] is True
    assert shown["redirect_uri"].endswith(f"/oidc/{shown['id']}/callback")
    assert shown["claims"] == {"email": "upn"} and shown["custom_ca"] is True
    assert shown["scopes"] == ["openid", "offline_access"]
    assert (
        main(
            [
                "connection",
                "create-oidc",
                "--org",
                org_id,
                "--issuer",
                "https://x.test",
                "--client-id",
                "a",
                "--private-key-jwt",
                "--claim",
                "nope",
            ]
        )
        == 2
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("new-secret\n"))
    assert main(["connection", "rotate-oidc-secret", shown["id"]]) == 0
    box = SecretBox.load(settings.certs_dir)
    sealed = store.connections.get(shown["id"]).config["client_secret_enc"]
    assert box.decrypt(sealed, secret_context(shown["id"])) == "new-secret"
    capsys.readouterr()
    assert main(["connection", "test-login-url", shown["id"], "--json"]) == 0
    url = json.loads(capsys.readouterr().out)["url"]
    assert f"/oidc/{shown['id']}/start?flow=flow_" in url
