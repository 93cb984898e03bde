"""TxtLookup against a real DNS server on loopback (tests/fakes/dns_server.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import dns.message
import dns.query
import pytest

from broker.dns.txt import TxtLookup, parse_resolver
from tests.fakes.dns_server import FakeDnsServer

NAME = "_exec-broker-verification.example.com"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDnsServer]:
    with FakeDnsServer() as srv:
        yield srv


@pytest.fixture
def dns_server(server: FakeDnsServer) -> FakeDnsServer:
    server.clear()
    return server


def lookup(server: FakeDnsServer, timeout: float = 2.0) -> TxtLookup:
    return TxtLookup([server.address], timeout=timeout)


async def test_single_record_found(dns_server: FakeDnsServer) -> None:
    dns_server.set_txt(NAME, ["exec-broker-verification=tok_123"])
    result = await lookup(dns_server).lookup(NAME)
    assert result.status == "found"
    assert result.values == ("exec-broker-verification=tok_123",)


async def test_trailing_dot_and_case_are_the_same_name(dns_server: FakeDnsServer) -> None:
    dns_server.set_txt(NAME, ["v"])
    result = await lookup(dns_server).lookup(NAME.upper() + ".")
    assert (result.status, result.values) == ("found", ("v",))


async def test_several_records_all_returned(dns_server: FakeDnsServer) -> None:
    values = ["v=spf1 -all", "google-site-verification=abc", "exec-broker-verification=x"]
    dns_server.set_txt(NAME, values)
    result = await lookup(dns_server).lookup(NAME)
    assert result.status == "found"
    assert sorted(result.values) == sorted(values)


async def test_long_record_split_in_255_octet_strings_is_joined(
    dns_server: FakeDnsServer,
) -> None:
    value = "exec-broker-verification=" + "a" * 300 + "b" * 300
    dns_server.set_txt(NAME, [value])
    # The wire really carries three <character-string>s (RFC 1035 §3.3.14) ...
    query = dns.message.make_query(NAME, "TXT", use_edns=0, payload=1232)
    port = int(dns_server.address.split(":")[1])
    raw = dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
    assert [len(s) for s in raw.answer[0][0].strings] == [255, 255, 115]
    # ... and the look-up returns them as one value.
    result = await lookup(dns_server).lookup(NAME)
    assert result.values == (value,)


async def test_quotes_unicode_and_invalid_utf8(dns_server: FakeDnsServer) -> None:
    quoted = 'exec-broker-verification="tok" ; x\\y'
    unicode = "vérification=✓ 東京"
    dns_server.set_txt(NAME, [quoted, unicode, b"bad\xff\xfebytes"])
    result = await lookup(dns_server).lookup(NAME)
    assert result.status == "found"
    assert sorted(result.values) == sorted([quoted, unicode, "bad\ufffd\ufffdbytes"])


async def test_large_answer_is_truncated_then_fetched_over_tcp(
    dns_server: FakeDnsServer,
) -> None:
    values = [f"record-{i:02d}=" + "x" * 200 for i in range(10)]  # > 1232 octets in all
    dns_server.set_txt(NAME, values)
    result = await lookup(dns_server).lookup(NAME)
    assert result.status == "found"
    assert sorted(result.values) == values
    assert [q[0] for q in dns_server.queries] == ["udp", "tcp"]


async def test_answers_are_not_cached(dns_server: FakeDnsServer) -> None:
    txt = lookup(dns_server)
    dns_server.set_txt(NAME, ["old"])
    assert (await txt.lookup(NAME)).values == ("old",)
    dns_server.set_txt(NAME, ["new"])
    assert (await txt.lookup(NAME)).values == ("new",)
    dns_server.set_nxdomain(NAME)
    assert (await txt.lookup(NAME)).status == "nxdomain"


async def test_unknown_name_is_nxdomain(dns_server: FakeDnsServer) -> None:
    result = await lookup(dns_server).lookup("nothing-here.example.org")
    assert result.status == "nxdomain"
    assert result.values == ()


async def test_explicit_nxdomain(dns_server: FakeDnsServer) -> None:
    dns_server.set_nxdomain(NAME)
    assert (await lookup(dns_server).lookup(NAME)).status == "nxdomain"


async def test_name_with_other_types_only_is_no_answer(dns_server: FakeDnsServer) -> None:
    dns_server.set_record(NAME, "A", ["192.0.2.10"])
    result = await lookup(dns_server).lookup(NAME)
    assert result.status == "no_answer"
    assert result.values == ()


async def test_servfail(dns_server: FakeDnsServer) -> None:
    dns_server.set_servfail(NAME)
    result = await lookup(dns_server).lookup(NAME)
    assert result.status == "servfail"
    assert "SERVFAIL" in result.detail


async def test_dropped_query_times_out_within_budget(dns_server: FakeDnsServer) -> None:
    dns_server.set_drop(NAME)
    started = time.monotonic()
    result = await lookup(dns_server, timeout=1.0).lookup(NAME)
    elapsed = time.monotonic() - started
    assert result.status == "timeout"
    assert 0.9 <= elapsed < 2.5


async def test_malformed_name_is_error_not_exception(dns_server: FakeDnsServer) -> None:
    result = await lookup(dns_server).lookup("a" * 64 + ".example.com")
    assert result.status == "error"
    assert "LabelTooLong" in result.detail


async def test_dead_first_resolver_falls_through_to_second(dns_server: FakeDnsServer) -> None:
    # A loopback UDP port nobody listens on: the kernel answers "port unreachable".
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    dns_server.set_txt(NAME, ["ok"])
    result = await TxtLookup([dead, dns_server.address], timeout=2).lookup(NAME)
    assert (result.status, result.values) == ("found", ("ok",))


async def test_only_dead_resolvers_is_not_found(dns_server: FakeDnsServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    result = await TxtLookup([dead], timeout=1).lookup(NAME)
    assert result.status in {"servfail", "timeout", "error"}
    assert result.values == ()


def test_sync_use_of_the_fake_server(dns_server: FakeDnsServer) -> None:
    dns_server.set_txt(NAME, ["sync"])
    port = int(dns_server.address.split(":")[1])
    raw = dns.query.udp(dns.message.make_query(NAME, "TXT"), "127.0.0.1", port=port, timeout=2)
    assert raw.answer[0][0].strings == (b"sync",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
        ("2001:db8::1", ("2001:db8::1", 53)),
    ],
)
def test_parse_resolver(text: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "127.0.0.1:0", "127.0.0.1:x", "[::1", "[::1]53"])
def test_parse_resolver_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_resolver(text)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TxtLookup(["127.0.0.1:53"], timeout=0)
