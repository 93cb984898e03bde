"""Connection lifecycle and its CLI twins (issue §1, §2, §9), on a real initialised home:
metadata from a file, by hand and from an HTTPS URL (test CA, allow-list), show/list/set,
activation rules, test-login URL, SP certificate rotation and the private-host allow-list;
plus the store's SAML contract (replay cache, attempt trimming, refresh lease)."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.cli import main
from broker.core.ports import SamlLoginAttempt
from tests.fakes.saml_idp import FakeSamlIdP, generate_key_and_cert
from tests.saml.test_e2e_harness import loopback_tls


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        parsed = json.loads(out) if "--json" in argv and code == 0 else out
    except json.JSONDecodeError:
        parsed = out
    return code, parsed, err


@pytest.fixture
def org(settings, capsys) -> str:
    code, shown, _ = run(capsys, "org", "create", "Acme", "--json")
    assert code == 0
    return str(shown["id"])


@pytest.fixture
def idp_metadata(tmp_path: Path) -> tuple[FakeSamlIdP, Path]:
    idp = FakeSamlIdP("https://idp.example.test/saml", tmp_path / "idp")
    path = tmp_path / "idp-metadata.xml"
    path.write_bytes(idp.metadata_xml())
    return idp, path


def test_create_from_metadata_file_show_and_activation_rules(
    settings, capsys, org, idp_metadata, store
):
    idp, path = idp_metadata
    code, shown, err = run(
        capsys,
        "connection",
        "create",
        "--org",
        org,
        "--preset",
        "okta",
        "--metadata-file",
        str(path),
        "--json",
    )
    assert code == 0, err
    conn = shown["id"]
    assert shown["state"] == "draft" and shown["idp_entity_id"] == idp.entity_id
    assert shown["acs_url"] == f"{settings.public_url}/saml/{conn}/acs"
    assert (
        shown["sp_entity_id"]
        == shown["metadata_url"]
        == f"{settings.public_url}/saml/{conn}/metadata"
    )
    assert shown["options"]["binding"] == "redirect" and shown["options"]["allow_unsolicited"]
    code, text, _ = run(capsys, "connection", "show", conn)
    assert "ACS URL (HTTP-POST):" in text and shown["acs_url"] in text

    code, _, err = run(capsys, "connection", "activate", conn)
    assert code == 1 and "test login" in err
    code, url, _ = run(capsys, "connection", "test-login-url", conn, "--json")
    assert code == 0 and url["url"].startswith(f"{settings.public_url}/saml/{conn}/start?flow=")
    flow_id = url["flow_id"]
    assert (
        url["result_url"] == f"{settings.public_url}/admin/connections/{conn}/test?flow={flow_id}"
    )
    code, active, _ = run(capsys, "connection", "activate", conn, "--without-test", "--json")
    assert code == 0 and active["state"] == "active"
    assert store.connections.get(conn).config["activated_without_test"] is True
    assert any(
        e.action == "connection.activated" and e.detail["without_test"]
        for e in store.audit.list(org)
    )
    code, off, _ = run(capsys, "connection", "deactivate", conn, "--json")
    assert off["state"] == "inactive"
    types = [e.type for e in store.events.after(0, 100, organization_ids=[org])]
    assert types.count("connection.created") == 1 and "connection.deactivated" in types
    code, listed, _ = run(capsys, "connection", "list", "--org", org, "--json")
    assert [c["id"] for c in listed] == [conn]


def test_manual_settings_with_two_certificates_and_options(settings, capsys, org, tmp_path):
    certs = []
    for n in (1, 2):
        certs.append(tmp_path / f"idp{n}.pem")
        certs[-1].write_text(generate_key_and_cert(f"IdP {n}")[1])
    code, shown, err = run(
        capsys,
        "connection",
        "create",
        "--org",
        org,
        "--preset",
        "adfs",
        "--entity-id",
        "http://adfs.corp.test/adfs/services/trust",
        "--sso-url",
        "https://adfs.corp.test/adfs/ls/",
        "--cert",
        str(certs[0]),
        "--cert",
        str(certs[1]),
        "--sign-requests",
        "true",
        "--sign-alg",
        "rsa-sha1",
        "--json",
    )
    assert code == 0, err
    assert len(shown["idp_certificates"]) == 2 and shown["metadata_source"] == "manual"
    assert shown["options"]["sign_requests"] is True and shown["options"]["sign_alg"] == "rsa-sha1"
    code, changed, _ = run(
        capsys,
        "connection",
        "set",
        shown["id"],
        "--allow-unsolicited",
        "false",
        "--map",
        "email=mail",
        "--requested-authn-context",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:X509",
        "--json",
    )
    assert code == 0
    assert changed["options"]["allow_unsolicited"] is False
    assert changed["options"]["attribute_overrides"] == {"email": "mail"}
    assert changed["options"]["requested_authn_context"] == [
        "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
    ]
    code, _, err = run(capsys, "connection", "set", shown["id"], "--map", "shoe_size=x")
    assert code == 2 and "attribute overrides" in err
    code, _, err = run(
        capsys,
        "connection",
        "create",
        "--org",
        org,
        "--entity-id",
        "x",
        "--sso-url",
        "http://idp.example.test/sso",
        "--cert",
        str(certs[0]),
    )
    assert code == 2 and "HTTPS" in err


@pytest.fixture
def https_metadata(idp_metadata, tmp_path) -> Iterator[tuple[str, str]]:
    _, path = idp_metadata
    ca_pem, cert_file, key_file = loopback_tls(tmp_path)
    body = path.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca_pem)
    yield f"https://127.0.0.1:{server.server_address[1]}/metadata", str(ca_file)
    server.shutdown()
    server.server_close()


def test_metadata_url_needs_allow_list_and_ca(settings, capsys, org, https_metadata, store):
    url, ca_file = https_metadata
    args = ("connection", "create", "--org", org, "--preset", "adfs", "--metadata-url", url)
    code, _, err = run(capsys, *args, "--ca-bundle", ca_file)
    assert code == 1 and "allow-list" in err  # 127.0.0.1 is a private address
    code, _, _ = run(capsys, "network", "allow-host", "127.0.0.1", "--json")
    assert code == 0
    code, _, err = run(capsys, *args)
    assert code == 1 and "TLS certificate" in err  # the private CA is not trusted by default
    code, shown, err = run(capsys, *args, "--ca-bundle", ca_file, "--json")
    assert code == 0, err
    assert shown["metadata_source"] == "url" and shown["idp_metadata_url"] == url
    assert shown["metadata_refresh"]["last_error"] is None  # scheduled
    code, refreshed, err = run(capsys, "connection", "refresh-metadata", shown["id"], "--json")
    assert code == 0 and refreshed["ok"], err
    code, hosts, _ = run(capsys, "network", "hosts", "--json")
    assert hosts["store"] == ["127.0.0.1"]
    assert run(capsys, "network", "remove-host", "127.0.0.1")[0] == 0


def test_sp_certificate_rotation_cli(settings, capsys):
    code, first, _ = run(capsys, "saml", "sp-certs", "--json")
    assert code == 0 and set(first) == {"current"}
    code, shown, _ = run(capsys, "saml", "rotate-sp-cert", "--json")
    assert set(shown) == {"current", "next"} and shown["current"] == first["current"]
    code, _, err = run(capsys, "saml", "rotate-sp-cert")
    assert code == 1 and "promote it first" in err
    code, shown, _ = run(capsys, "saml", "rotate-sp-cert", "--promote", "--json")
    assert shown["previous"] == first["current"] and shown["current"] != first["current"]
    code, shown, _ = run(capsys, "saml", "rotate-sp-cert", "--retire-previous", "--json")
    assert set(shown) == {"current"}
    assert (settings.certs_dir / "saml-sp.key").stat().st_mode & 0o077 == 0


def test_store_replay_cache_attempts_and_refresh_lease(settings, store, org, capsys, idp_metadata):
    _, path = idp_metadata
    _, shown, _ = run(
        capsys, "connection", "create", "--org", org, "--metadata-file", str(path), "--json"
    )
    conn = shown["id"]
    saml = store.saml
    assert saml.remember_assertion("_a1", conn, 100.0, 200.0) is True
    assert saml.remember_assertion("_a1", conn, 101.0, 200.0) is False  # replay
    assert saml.purge_expired(150.0) == 0 and saml.purge_expired(201.0) == 1
    assert saml.remember_assertion("_a1", conn, 300.0, 400.0) is True  # expired rows purged
    for n in range(55):
        store.saml.record_attempt(
            SamlLoginAttempt(conn, float(n), "sp_initiated", "refused", check=f"c{n}"), keep=50
        )
    attempts = saml.attempts(conn, 100)
    assert len(attempts) == 50 and attempts[0].check == "c54" and attempts[-1].check == "c5"
    saml.schedule_refresh(conn, 10.0)
    assert saml.due_refreshes(20.0, 10) == [conn]
    assert saml.take_refresh_lease(conn, "w1", 20.0, 140.0) is True
    assert saml.take_refresh_lease(conn, "w2", 30.0, 150.0) is False  # w1 holds it
    assert saml.due_refreshes(30.0, 10) == []
    assert saml.take_refresh_lease(conn, "w2", 141.0, 260.0) is True  # expired lease
    saml.finish_refresh(conn, "w2", now=150.0, next_at=1000.0, error=None)
    state = saml.refresh_state(conn)
    assert state is not None and state.next_at == 1000.0 and state.lease_owner is None


def test_drafts_without_idp_settings_and_oidc_test_login_urls(settings, capsys, org, store):
    """A draft made before the IdP's settings (the setup UI's order) can be neither tested
    nor activated, with a message that says why; `connection test-login-url` starts an
    OIDC connection's test at its own edge."""
    from broker.clock import SystemClock
    from broker.core import audit, connections, oidc_connections
    from broker.crypto.secrets import SecretBox

    clock = SystemClock()

    draft = connections.create_connection(
        store, clock, audit.CLI, organization_id=org, type="saml", preset="okta"
    )
    assert connections.missing_settings(draft) is not None
    code, _, err = run(capsys, "connection", "test-login-url", draft.id)
    assert code == 1 and "no identity provider settings yet" in err
    code, _, err = run(capsys, "connection", "activate", draft.id, "--without-test")
    assert code == 1 and "no identity provider settings yet" in err
    assert store.connections.get(draft.id).state == "draft"

    box = SecretBox.load(settings.certs_dir)
    oidc = oidc_connections.create_oidc_draft(
        store, clock, audit.CLI, organization_id=org, preset="okta"
    )
    code, _, err = run(capsys, "connection", "test-login-url", oidc.id)
    assert code == 1 and "no identity provider settings yet" in err
    oidc_connections.set_oidc_settings(
        store,
        clock,
        audit.CLI,
        oidc.id,
        oidc_connections.OidcConnectionInput(
            organization_id="",
            preset="generic",
            issuer="https://acme.okta.example",
            client_id="0oa-client",
            client_secret="s3cret",
        ),
        seal=box.encrypt,
    )
    code, url, _ = run(capsys, "connection", "test-login-url", oidc.id, "--json")
    assert code == 0 and url["url"].startswith(f"{settings.public_url}/oidc/{oidc.id}/start?flow=")
    assert url["result_url"].endswith(f"/admin/connections/{oidc.id}/test?flow={url['flow_id']}")
