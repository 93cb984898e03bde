"""The SSRF-safe metadata fetcher against real servers on 127.0.0.1 (plain and TLS).

Host names such as `idp.corp.test` never reach DNS: an injected resolver maps them to
127.0.0.1, which also proves that the connection goes to the vetted address only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from broker.saml.fetch import FetchError, fetch_metadata

METADATA = b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>'


@dataclass
class Pki:
    ca_pem: str
    server_context: ssl.SSLContext


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Test Private CA"))
        .issuer_name(_name("Test Private CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [
        x509.DNSName("localhost"),
        x509.DNSName("idp.corp.test"),
        x509.DNSName("evil.test"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("pki")
    cert_file = folder / "server.pem"
    key_file = folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    return Pki(ca_pem=ca_pem, server_context=context)


def _app(never: asyncio.Event) -> web.Application:
    async def metadata(request: web.Request) -> web.Response:
        return web.Response(body=METADATA, content_type="application/samlmetadata+xml")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 10_000)

    async def big_streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"y" * 1000)
        await response.write_eof()
        return response

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response(text="too late")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def loop_redirect(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        raise web.HTTPFound(f"/loop/{n + 1}")

    app = web.Application()
    app.router.add_get("/metadata", metadata)
    app.router.add_get("/big", big)
    app.router.add_get("/big-streamed", big_streamed)
    app.router.add_get("/hang", hang)
    app.router.add_get("/missing", missing)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop/{n}", loop_redirect)
    return app


async def _serve(app: web.Application, context: ssl.SSLContext | None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


@pytest.fixture
async def never() -> AsyncIterator[asyncio.Event]:
    event = asyncio.Event()
    yield event
    event.set()


@pytest.fixture
async def http_port(never: asyncio.Event) -> AsyncIterator[int]:
    runner, port = await _serve(_app(never), None)
    yield port
    await runner.cleanup()


@pytest.fixture
async def https_port(never: asyncio.Event, pki: Pki) -> AsyncIterator[int]:
    runner, port = await _serve(_app(never), pki.server_context)
    yield port
    await runner.cleanup()


def loopback_resolver(names: Sequence[str]):
    """Resolves only the given test names, always to 127.0.0.1; counts calls."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        if host not in names:
            raise OSError(f"unknown test host {host}")
        return ["127.0.0.1"]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def fixed_resolver(addresses: Sequence[str]):
    async def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


async def _fetch(url: str, **overrides) -> bytes:
    options = dict(
        allowlist=["127.0.0.1"],
        ca_bundle_pem=None,
        timeout=5.0,
        max_bytes=5000,
        allow_insecure_loopback=True,
    )
    options.update(overrides)
    return await fetch_metadata(url, **options)


async def test_fetches_from_allowlisted_loopback(http_port: int) -> None:
    body = await _fetch(f"http://127.0.0.1:{http_port}/metadata")
    assert body == METADATA


async def test_loopback_refused_unless_allowlisted(http_port: int) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(f"http://127.0.0.1:{http_port}/metadata", allowlist=[])
    assert caught.value.kind == "blocked_address"
    assert "allow-list" in caught.value.public


async def test_plain_http_needs_explicit_loopback_flag(http_port: int) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(f"http://127.0.0.1:{http_port}/metadata", allow_insecure_loopback=False)
    assert caught.value.kind == "bad_url"
    with pytest.raises(FetchError) as caught:
        await _fetch("http://idp.example.com/metadata")
    assert caught.value.kind == "bad_url"


async def test_credentials_in_url_refused() -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch("https://user:pw@idp.example.com/metadata")
    assert caught.value.kind == "bad_url"


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.7"],
        ["192.168.1.1"],
        ["169.254.169.254"],  # cloud metadata service
        ["100.64.0.1"],  # carrier-grade NAT
        ["0.0.0.0"],
        ["::1"],
        ["fd00::1"],
        ["fe80::1"],
        ["::ffff:127.0.0.1"],
        ["8.8.8.8", "10.0.0.1"],  # one bad address spoils the answer
    ],
)
async def test_private_and_reserved_addresses_refused(addresses: list[str]) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(
            "https://idp.example.com/metadata", allowlist=[], resolver=fixed_resolver(addresses)
        )
    assert caught.value.kind == "blocked_address"


async def test_https_with_private_ca(https_port: int, pki: Pki) -> None:
    body = await _fetch(
        f"https://localhost:{https_port}/metadata",
        allowlist=["localhost"],
        ca_bundle_pem=pki.ca_pem,
        allow_insecure_loopback=False,
    )
    assert body == METADATA


async def test_https_without_the_ca_is_a_tls_error(https_port: int) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(
            f"https://localhost:{https_port}/metadata",
            allowlist=["localhost"],
            allow_insecure_loopback=False,
        )
    assert caught.value.kind == "tls"


async def test_allowlisted_name_connects_to_the_vetted_address(https_port: int, pki: Pki) -> None:
    resolver = loopback_resolver(["idp.corp.test"])
    body = await _fetch(
        f"https://idp.corp.test:{https_port}/metadata",
        allowlist=["IDP.Corp.Test."],  # exact host, case-insensitive, trailing dot ignored
        ca_bundle_pem=pki.ca_pem,
        resolver=resolver,
    )
    assert body == METADATA
    assert resolver.calls == ["idp.corp.test"]  # resolved once, by us


async def test_allowlist_is_exact_not_suffix(https_port: int, pki: Pki) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(
            f"https://idp.corp.test:{https_port}/metadata",
            allowlist=["corp.test"],
            ca_bundle_pem=pki.ca_pem,
            resolver=loopback_resolver(["idp.corp.test"]),
        )
    assert caught.value.kind == "blocked_address"


async def test_redirect_to_disallowed_host_refused(https_port: int, pki: Pki) -> None:
    evil = f"https://evil.test:{https_port}/metadata"
    resolver = loopback_resolver(["idp.corp.test", "evil.test"])
    with pytest.raises(FetchError) as caught:
        await _fetch(
            f"https://idp.corp.test:{https_port}/redirect?to={evil}",
            allowlist=["idp.corp.test"],
            ca_bundle_pem=pki.ca_pem,
            resolver=resolver,
        )
    assert caught.value.kind == "blocked_address"
    assert resolver.calls == ["idp.corp.test", "evil.test"]


async def test_redirect_within_allowlist_followed(https_port: int, pki: Pki) -> None:
    target = f"https://localhost:{https_port}/metadata"
    body = await _fetch(
        f"https://idp.corp.test:{https_port}/redirect?to={target}",
        allowlist=["idp.corp.test", "localhost"],
        ca_bundle_pem=pki.ca_pem,
        resolver=loopback_resolver(["idp.corp.test", "localhost"]),
    )
    assert body == METADATA


async def test_redirect_to_plain_http_refused(https_port: int, http_port: int, pki: Pki) -> None:
    target = f"http://idp.corp.test:{http_port}/metadata"
    with pytest.raises(FetchError) as caught:
        await _fetch(
            f"https://idp.corp.test:{https_port}/redirect?to={target}",
            allowlist=["idp.corp.test"],
            ca_bundle_pem=pki.ca_pem,
            resolver=loopback_resolver(["idp.corp.test"]),
        )
    assert caught.value.kind == "redirect_refused"


async def test_too_many_redirects_refused(http_port: int) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(f"http://127.0.0.1:{http_port}/loop/0")
    assert caught.value.kind == "redirect_refused"


async def test_size_limit_by_content_length(http_port: int) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(f"http://127.0.0.1:{http_port}/big")
    assert caught.value.kind == "too_big"
    body = await _fetch(f"http://127.0.0.1:{http_port}/big", max_bytes=10_000)
    assert len(body) == 10_000


async def test_size_limit_while_streaming(http_port: int) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(f"http://127.0.0.1:{http_port}/big-streamed", max_bytes=4_500)
    assert caught.value.kind == "too_big"


async def test_timeout(http_port: int) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(f"http://127.0.0.1:{http_port}/hang", timeout=0.3)
    assert caught.value.kind == "timeout"


async def test_http_status(http_port: int) -> None:
    with pytest.raises(FetchError) as caught:
        await _fetch(f"http://127.0.0.1:{http_port}/missing")
    assert caught.value.kind == "http_status"
    assert "404" in caught.value.public
