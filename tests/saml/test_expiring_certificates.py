"""IdP signing certificates close to expiry (broker.core.connections.expiring_certificates,
`exec-broker connection show`): one expiring in 10 days is reported with its expiry, an
expired one is accepted with the warning broker.saml.metadata documents (`_expiry_warning`:
a warning for the admin, not a refusal) and reported as expired, one valid for 2 years is
not reported. Certificates are generated here with `cryptography`, on a real initialised
home, through the real CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from broker.cli import main
from broker.core import connections as core_connections
from broker.saml import idp_settings

DAY = 86400.0


def certificate(common_name: str, not_after: dt.datetime) -> tuple[str, dt.datetime]:
    """A self-signed certificate (PEM) valid until `not_after` (whole seconds, as X.509)."""
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_after = not_after.replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=800))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), not_after


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and code == 0 else out), err


def create(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, org: str, *pems: str
) -> dict[str, Any]:
    args: list[str] = []
    for n, pem in enumerate(pems):
        path = tmp_path / f"idp-{n}.pem"
        path.write_text(pem)
        args += ["--cert", str(path)]
    code, shown, err = run(
        capsys,
        "connection",
        "create",
        "--org",
        org,
        "--preset",
        "entra",
        "--entity-id",
        "https://sts.windows.net/0b1c2d3e-0000-4000-8000-000000000001/",
        "--sso-url",
        "https://login.microsoftonline.com/0b1c2d3e/saml2",
        *args,
        "--json",
    )
    assert code == 0, err
    return dict(shown)


@pytest.fixture
def org(settings: Any, capsys: pytest.CaptureFixture[str]) -> str:
    code, shown, err = run(capsys, "org", "create", "Acme", "--json")
    assert code == 0, err
    return str(shown["id"])


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_certificate_expiring_in_10_days_is_reported(settings, capsys, tmp_path, org, store):
    pem, not_after = certificate("Entra soon", now() + dt.timedelta(days=10))
    conn = create(capsys, tmp_path, org, pem)["id"]

    found = core_connections.expiring_certificates(store.connections.get(conn), now().timestamp())
    assert len(found) == 1
    assert found[0]["subject"] == "CN=Entra soon" and found[0]["expired"] is False
    assert found[0]["not_after"] == not_after.timestamp()
    # 10 days is inside the 30-day window, 5 days is not.
    assert (
        core_connections.expiring_certificates(
            store.connections.get(conn), now().timestamp(), within=5 * DAY
        )
        == []
    )

    code, shown, err = run(capsys, "connection", "show", conn, "--json")
    assert code == 0, err
    [reported] = shown["expiring_certificates"]
    assert reported["subject"] == "CN=Entra soon" and reported["expired"] is False
    assert reported["not_after"] == not_after.timestamp()
    assert dt.datetime.fromisoformat(reported["not_after_iso"].replace("Z", "+00:00")) == not_after
    assert reported["sha256"] == shown["certificate_fingerprints"][0]
    assert any(
        "expires on " + not_after.strftime("%Y-%m-%d") in w and "in under 30 days" in w
        for w in shown["warnings"]
    ), shown["warnings"]

    code, text, _ = run(capsys, "connection", "show", conn)
    assert code == 0 and "WARNING: IdP certificate CN=Entra soon expires" in text


def test_expired_certificate_is_accepted_with_a_warning_and_reported(
    settings, capsys, tmp_path, org, store
):
    pem, not_after = certificate("Entra old", now() - dt.timedelta(days=3))
    # What metadata.py documents: an expired certificate is a warning, not a refusal.
    parsed = idp_settings.manual(
        "https://idp.example.test", "https://idp.example.test/sso", [pem], now().timestamp()
    )
    day = not_after.strftime("%Y-%m-%d")
    assert parsed["idp_warnings"] == [f"The signing certificate CN=Entra old expired on {day}."]

    conn = create(capsys, tmp_path, org, pem)["id"]
    code, shown, err = run(capsys, "connection", "show", conn, "--json")
    assert code == 0, err
    [reported] = shown["expiring_certificates"]
    assert reported["expired"] is True and reported["not_after"] == not_after.timestamp()
    assert shown["warnings"] == [f"The signing certificate CN=Entra old expired on {day}."]
    code, text, _ = run(capsys, "connection", "show", conn)
    assert "WARNING: IdP certificate CN=Entra old expired" in text


def test_certificate_valid_for_two_years_is_not_reported(settings, capsys, tmp_path, org, store):
    pem, _ = certificate("Entra fresh", now() + dt.timedelta(days=730))
    conn = create(capsys, tmp_path, org, pem)["id"]

    assert (
        core_connections.expiring_certificates(store.connections.get(conn), now().timestamp()) == []
    )
    code, shown, err = run(capsys, "connection", "show", conn, "--json")
    assert code == 0, err
    assert shown["expiring_certificates"] == [] and shown["warnings"] == []
    assert len(shown["idp_certificates"]) == 1
    code, text, _ = run(capsys, "connection", "show", conn)
    assert "WARNING" not in text


def test_only_the_expiring_one_of_a_rollover_pair_is_reported(
    settings, capsys, tmp_path, org, store
):
    old, _ = certificate("Entra outgoing", now() + dt.timedelta(days=10))
    new, _ = certificate("Entra incoming", now() + dt.timedelta(days=730))
    conn = create(capsys, tmp_path, org, old, new)["id"]

    code, shown, err = run(capsys, "connection", "show", conn, "--json")
    assert code == 0, err
    assert len(shown["idp_certificates"]) == 2
    assert [c["subject"] for c in shown["expiring_certificates"]] == ["CN=Entra outgoing"]
