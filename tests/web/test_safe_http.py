"""broker.web.safe_http, the SSRF-safe client both edges use, against real servers on 127.0.0.1.

Host names such as `idp.corp.test` never reach DNS: an injected resolver maps them to
127.0.0.1 and counts its calls, which also shows that every hop is resolved once, by us.
The TLS server's certificate comes from a CA made here, so the system trust store cannot
vouch for it: only the per-call CA bundle can.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.web.safe_http import (
    FetchPolicy,
    PinnedResolver,
    SafeHttp,
    SafeHttpError,
    Target,
    check_url,
    normalize_host,
    tls_context,
    vet_addresses,
)

LOOPBACK = frozenset({"127.0.0.1"})


# ---------------------------------------------------------------- servers


@dataclass(frozen=True)
class Pki:
    ca_pem: str
    server_context: ssl.SSLContext


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throw-away CA and a server certificate for idp.corp.test, evil.test, 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("safe_http test CA"))
        .issuer_name(_name("safe_http test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("idp.corp.test"), x509.DNSName("evil.test")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("idp.corp.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [*names, x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("pki")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return Pki(ca.public_bytes(serialization.Encoding.PEM).decode(), context)


@dataclass
class Seen:
    """What the server saw: one (method, path, client port, form) per request."""

    requests: list[tuple[str, str, int, dict[str, str]]]


def _app(seen: Seen, never: asyncio.Event) -> web.Application:
    async def record(request: web.Request) -> None:
        form = {k: str(v) for k, v in (await request.post()).items()}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.requests.append((request.method, request.path, peer[1] if peer else 0, form))

    async def doc(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"ok": True, "accept": request.headers.get("Accept")})

    async def token(request: web.Request) -> web.Response:
        await record(request)
        if request.headers.get("Authorization") != "Basic czpw":
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": "at", "code": (await request.post())["code"]})

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="<html>not json</html>")

    async def array(request: web.Request) -> web.Response:
        return web.json_response([1, 2])

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

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

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound(request.query["to"])

    async def no_location(request: web.Request) -> web.Response:
        return web.Response(status=302)

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/loop/{int(request.match_info['n']) + 1}")

    app = web.Application()
    app.router.add_get("/doc", doc)
    app.router.add_post("/token", token)
    app.router.add_get("/text", text)
    app.router.add_get("/array", array)
    app.router.add_get("/big", big)
    app.router.add_get("/big-streamed", big_streamed)
    app.router.add_get("/hang", hang)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/no-location", no_location)
    app.router.add_get("/loop/{n}", loop)
    return app


@dataclass
class Servers:
    http: str  # http://127.0.0.1:PORT
    https_port: int
    seen: Seen


@pytest.fixture
async def servers(pki: Pki) -> AsyncIterator[Servers]:
    seen, never = Seen([]), asyncio.Event()
    runners = []
    ports = []
    for context in (None, pki.server_context):
        runner = web.AppRunner(_app(seen, never), access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        runners.append(runner)
        ports.append(runner.addresses[0][1])
    yield Servers(f"http://127.0.0.1:{ports[0]}", ports[1], seen)
    never.set()
    for runner in runners:
        await runner.cleanup()


def loopback_resolver(names: Sequence[str]):
    """Resolves only the given test names, always to 127.0.0.1; records every call."""
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


async def _refused(http: SafeHttp, url: str, **kw: object) -> SafeHttpError:
    with pytest.raises(SafeHttpError) as caught:
        await http.request("GET", url, **kw)  # type: ignore[arg-type]
    return caught.value


def _lenient(**changes: object) -> SafeHttp:
    options: dict[str, object] = {
        "allowlist": LOOPBACK,
        "timeout": 5.0,
        "max_bytes": 4000,
        "allow_insecure_loopback": True,
    }
    options.update(changes)
    return SafeHttp(FetchPolicy(**options))  # type: ignore[arg-type]


# ---------------------------------------------------------------- URL rules


def test_check_url_accepts_https_and_normalizes_the_host() -> None:
    target = check_url("https://IDP.Corp.Test./saml?x=1", False)
    assert target == Target("https://IDP.Corp.Test./saml?x=1", "idp.corp.test", 443, "https")
    assert check_url("https://[::1]:8443/x", False).host == "::1"
    assert check_url("http://127.0.0.1:8080/x", True).port == 8080


@pytest.mark.parametrize(
    ("url", "loopback_flag"),
    [
        ("http://127.0.0.1/x", False),  # plain HTTP needs the explicit flag...
        ("http://idp.example.com/x", True),  # ...and even then, loopback only
        ("ftp://idp.example.com/x", True),
        ("https://user:pw@idp.example.com/x", False),
        ("https://idp.example.com/x#frag", False),
        ("https:///x", False),
        ("https://idp.example.com:99999/x", False),
        ("file:///etc/passwd", True),
    ],
)
def test_check_url_refusals(url: str, loopback_flag: bool) -> None:
    with pytest.raises(SafeHttpError) as caught:
        check_url(url, loopback_flag)
    assert caught.value.kind == "bad_url"
    assert "pw" not in caught.value.public


def test_check_url_names_the_url_and_the_kind() -> None:
    with pytest.raises(SafeHttpError) as caught:
        check_url("http://idp.example.com/", False, what="A redirect", kind="redirect_refused")
    assert caught.value.kind == "redirect_refused"
    assert caught.value.public == "A redirect does not use HTTPS."


def test_allowlists_are_normalized() -> None:
    assert FetchPolicy(allowlist=frozenset({" IdP.Corp.Test. ", "[::1]"})).allowlist == {
        "idp.corp.test",
        "::1",
    }
    http = SafeHttp(FetchPolicy())
    http.extra_allowlist = ["ADFS.Corp.Test."]
    assert http.extra_allowlist == frozenset({"adfs.corp.test"})
    assert normalize_host("[FE80::1]") == "fe80::1"


# ---------------------------------------------------------------- address vetting


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.7"],
        ["172.16.0.1"],
        ["192.168.1.1"],
        ["127.0.0.1"],
        ["169.254.169.254"],  # cloud metadata service
        ["100.64.0.1"],  # carrier-grade NAT
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["240.0.0.1"],
        ["::1"],
        ["fd00::1"],
        ["fe80::1%eth0"],
        ["::ffff:127.0.0.1"],  # IPv4-mapped loopback
        ["8.8.8.8", "10.0.0.1"],  # one bad address spoils the answer
    ],
)
async def test_private_and_reserved_addresses_refused(addresses: list[str]) -> None:
    target = check_url("https://idp.example.com/", False)
    with pytest.raises(SafeHttpError) as caught:
        await vet_addresses(target, frozenset(), fixed_resolver(addresses))
    assert caught.value.kind == "blocked_address"
    assert "allow-list" in caught.value.public
    assert addresses[-1].split("%")[0].split(":")[-1] in caught.value.detail


async def test_public_and_allowlisted_addresses_pass() -> None:
    target = check_url("https://idp.example.com/", False)
    vetted = await vet_addresses(target, frozenset(), fixed_resolver(["9.9.9.9", "8.8.8.8"]))
    assert vetted == ("8.8.8.8", "9.9.9.9")
    allowed = await vet_addresses(
        target, frozenset({"idp.example.com"}), fixed_resolver(["10.0.0.7", "::ffff:10.0.0.8"])
    )
    assert allowed == ("10.0.0.7", "10.0.0.8")  # the mapped form is what gets dialled
    with pytest.raises(SafeHttpError) as caught:  # exact host, no suffix match
        await vet_addresses(target, frozenset({"example.com"}), fixed_resolver(["10.0.0.7"]))
    assert caught.value.kind == "blocked_address"


async def test_ip_literals_skip_dns_and_bad_answers_are_dns_errors() -> None:
    resolver = loopback_resolver([])
    target = check_url("https://127.0.0.1/", False)
    assert await vet_addresses(target, LOOPBACK, resolver) == ("127.0.0.1",)
    assert resolver.calls == []
    unknown = check_url("https://nowhere.test/", False)
    with pytest.raises(SafeHttpError) as caught:
        await vet_addresses(unknown, frozenset(), resolver)
    assert caught.value.kind == "dns"
    with pytest.raises(SafeHttpError) as caught:
        await vet_addresses(unknown, frozenset(), fixed_resolver(["not-an-address"]))
    assert caught.value.kind == "dns"


async def test_pinned_resolver_answers_for_its_host_only() -> None:
    resolver = PinnedResolver("idp.corp.test", ("127.0.0.1", "::1"))
    answers = await resolver.resolve("IDP.corp.test.", 443)
    assert [(a["host"], a["family"], a["port"]) for a in answers] == [
        ("127.0.0.1", socket.AF_INET, 443),
        ("::1", socket.AF_INET6, 443),
    ]
    with pytest.raises(OSError):
        await resolver.resolve("evil.test", 443)


def test_tls_context_refuses_an_unreadable_bundle() -> None:
    with pytest.raises(SafeHttpError) as caught:
        tls_context("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert caught.value.kind == "tls"
    assert tls_context(None).minimum_version == ssl.TLSVersion.TLSv1_2


# ---------------------------------------------------------------- requests


async def test_get_json_and_post_form(servers: Servers) -> None:
    async with _lenient() as http:
        got = await http.request("GET", servers.http + "/doc")
        assert got.status == 200 and got.json() == {"ok": True, "accept": "application/json"}
        xml = await http.request("GET", servers.http + "/doc", headers={"Accept": "text/xml"})
        assert xml.json()["accept"] == "text/xml"  # a caller's Accept wins
        # Token exchange: a form POST; an OAuth error answer is returned, not raised.
        refused = await http.request("POST", servers.http + "/token", form={"code": "c1"})
        assert refused.status == 401 and refused.json() == {"error": "invalid_client"}
        ok = await http.request(
            "POST",
            servers.http + "/token",
            form={"code": "c2"},
            headers={"Authorization": "Basic czpw"},
        )
        assert ok.json() == {"access_token": "at", "code": "c2"}
    assert [(m, f) for m, _, _, f in servers.seen.requests if m == "POST"] == [
        ("POST", {"code": "c1"}),
        ("POST", {"code": "c2"}),
    ]


async def test_answers_that_are_not_json_objects(servers: Servers) -> None:
    async with _lenient() as http:
        with pytest.raises(SafeHttpError) as caught:
            (await http.request("GET", servers.http + "/text")).json()
        assert caught.value.kind == "bad_json" and "html" not in caught.value.public
        with pytest.raises(SafeHttpError) as caught:
            (await http.request("GET", servers.http + "/array")).json()
        assert caught.value.kind == "bad_json"


async def test_loopback_needs_the_allowlist_and_the_flag(servers: Servers) -> None:
    async with _lenient(allowlist=frozenset()) as http:
        assert (await _refused(http, servers.http + "/doc")).kind == "blocked_address"
        http.extra_allowlist = LOOPBACK  # the run-time (store) list counts as well
        assert (await http.request("GET", servers.http + "/doc")).status == 200
    async with _lenient(allow_insecure_loopback=False) as http:
        assert (await _refused(http, servers.http + "/doc")).kind == "bad_url"
    assert len(servers.seen.requests) == 1


async def test_connections_are_pooled_per_vetted_host(servers: Servers) -> None:
    resolver = loopback_resolver(["localhost"])
    port = servers.http.rsplit(":", 1)[1]
    http = SafeHttp(
        FetchPolicy(allowlist=frozenset({"localhost"}), allow_insecure_loopback=True), resolver
    )
    async with http:
        for _ in range(3):
            assert (await http.request("GET", f"http://localhost:{port}/doc")).status == 200
    assert resolver.calls == ["localhost"] * 3  # vetted on every call...
    client_ports = {p for _, _, p, _ in servers.seen.requests}
    assert len(client_ports) == 1  # ...yet one kept-alive connection served them all


async def test_https_with_the_per_call_ca_and_a_pinned_name(servers: Servers, pki: Pki) -> None:
    resolver = loopback_resolver(["idp.corp.test"])
    url = f"https://idp.corp.test:{servers.https_port}/doc"
    http = SafeHttp(FetchPolicy(allowlist=frozenset({"idp.corp.test"})), resolver)
    async with http:
        assert (await http.request("GET", url, ca_pem=pki.ca_pem)).status == 200
        assert (await _refused(http, url)).kind == "tls"  # the system store knows no such CA
    assert resolver.calls == ["idp.corp.test", "idp.corp.test"]


async def test_proxy_environment_is_ignored(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that does not exist: honouring it would fail the call.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with _lenient() as http:
        assert (await http.request("GET", servers.http + "/doc")).status == 200


# ---------------------------------------------------------------- redirects


async def test_redirects_only_when_asked(servers: Servers) -> None:
    to = servers.http + "/doc"
    async with _lenient() as http:
        hop = await http.request("GET", f"{servers.http}/redirect?to={to}")
        assert hop.status == 302 and hop.headers["Location"] == to
        done = await http.request("GET", f"{servers.http}/redirect?to=/doc", follow_redirects=True)
        assert done.status == 200 and done.json()["ok"] is True


async def test_every_hop_is_checked_again(servers: Servers, pki: Pki) -> None:
    resolver = loopback_resolver(["idp.corp.test", "evil.test"])
    start = f"https://idp.corp.test:{servers.https_port}/redirect?to="
    http = SafeHttp(FetchPolicy(allowlist=frozenset({"idp.corp.test"})), resolver)
    async with http:
        evil = f"https://evil.test:{servers.https_port}/doc"
        err = await _refused(http, start + evil, ca_pem=pki.ca_pem, follow_redirects=True)
        assert err.kind == "blocked_address" and "evil.test" in err.public
        assert resolver.calls == ["idp.corp.test", "evil.test"]
        plain = f"http://idp.corp.test:{servers.http.rsplit(':', 1)[1]}/doc"  # a downgrade
        err = await _refused(http, start + plain, ca_pem=pki.ca_pem, follow_redirects=True)
        assert err.kind == "redirect_refused"
        assert err.public == "A redirect does not use HTTPS."


async def test_redirect_limits(servers: Servers) -> None:
    async with _lenient() as http:
        err = await _refused(http, servers.http + "/loop/0", follow_redirects=True)
        assert err.kind == "redirect_refused"
        err = await _refused(http, servers.http + "/no-location", follow_redirects=True)
        assert err.kind == "http_status"


# ---------------------------------------------------------------- size, time, failures


async def test_size_limit(servers: Servers) -> None:
    async with _lenient() as http:
        assert (await _refused(http, servers.http + "/big")).kind == "too_big"
        assert (await _refused(http, servers.http + "/big-streamed")).kind == "too_big"
    async with _lenient(max_bytes=10_000) as http:
        assert len((await http.request("GET", servers.http + "/big-streamed")).body) == 10_000


async def test_timeout_covers_the_call(servers: Servers) -> None:
    class Named(SafeHttp):
        peer = "the identity provider"

    async with Named(
        FetchPolicy(allowlist=LOOPBACK, timeout=0.3, allow_insecure_loopback=True)
    ) as h:
        err = await _refused(h, servers.http + "/hang")
    assert err.kind == "timeout"
    assert err.public.startswith("The identity provider (127.0.0.1) did not answer")


async def test_connection_refused() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _lenient() as http:
        err = await _refused(http, f"http://127.0.0.1:{port}/doc")
    assert err.kind == "connect" and str(port) not in err.public
