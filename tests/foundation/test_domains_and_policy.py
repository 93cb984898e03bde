"""Domains verified by DNS TXT (a real DNS server on loopback) and the SSO switch rules."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from broker.cli import main as cli_main
from broker.clock import FixedClock, SystemClock
from broker.core import audit, domains, organizations, policy
from broker.core.models import Connection
from broker.dns.txt import TxtLookup
from broker.errors import Conflict, InvalidInput, PolicyError
from broker.ids import new_id
from broker.settings import Settings
from broker.storage.store import SQLiteStore
from tests.fakes.dns_server import FakeDnsServer

clock = SystemClock()


@pytest.fixture
def dns() -> Iterator[FakeDnsServer]:
    with FakeDnsServer() as server:
        yield server


def resolver(dns: FakeDnsServer, timeout: float = 2) -> TxtLookup:
    return TxtLookup([dns.address], timeout)


def expected(record: domains.Domain) -> tuple[str, str]:
    return domains.txt_record(record)


async def test_verify_tells_outcomes_apart(store: SQLiteStore, dns: FakeDnsServer) -> None:
    org = organizations.create_organization(store, clock, audit.CLI, "Acme")
    record = domains.add_domain(store, clock, audit.CLI, org.id, "Acme.TEST")
    assert record.domain == "acme.test" and record.state == "pending"
    name, value = expected(record)
    assert name == "_exec-broker-verification.acme.test"
    assert value.startswith("exec-broker-verification=")

    result = await domains.verify_domain(
        store, resolver(dns), clock, audit.CLI, org.id, "acme.test"
    )
    assert result.outcome == "not_found" and "NXDOMAIN" in result.message

    dns.set_txt(name, ["exec-broker-verification=wrong", "v=spf1 -all"])
    result = await domains.verify_domain(
        store, resolver(dns), clock, audit.CLI, org.id, "acme.test"
    )
    assert result.outcome == "wrong_value" and "'exec-broker-verification=wrong'" in result.message

    dns.set_drop(name)
    result = await domains.verify_domain(
        store, resolver(dns, 1), clock, audit.CLI, org.id, "acme.test"
    )
    assert result.outcome == "timeout" and "did not answer in time" in result.message

    dns.set_servfail(name)
    result = await domains.verify_domain(
        store, resolver(dns), clock, audit.CLI, org.id, "acme.test"
    )
    assert result.outcome == "dns_error"

    dns.set_txt(name, ["v=spf1 -all", value])
    result = await domains.verify_domain(
        store, resolver(dns), clock, audit.CLI, org.id, "acme.test"
    )
    assert result.outcome == "verified" and result.domain.state == "verified"
    kinds = [e.type for e in store.events.after(0, 100)]
    assert kinds.count("organization_domain.verified") == 1
    actions = [a.action for a in store.audit.list(org.id)]
    assert "domain.verification_timeout" in actions and "domain.verification_verified" in actions


async def test_a_verified_domain_cannot_be_claimed_twice(
    store: SQLiteStore, dns: FakeDnsServer
) -> None:
    acme = organizations.create_organization(store, clock, audit.CLI, "Acme")
    evil = organizations.create_organization(store, clock, audit.CLI, "Evil")
    mine = domains.add_domain(store, clock, audit.CLI, acme.id, "acme.test")
    theirs = domains.add_domain(store, clock, audit.CLI, evil.id, "acme.test")  # pending: allowed
    dns.set_txt(expected(mine)[0], [expected(mine)[1], expected(theirs)[1]])
    ok = await domains.verify_domain(store, resolver(dns), clock, audit.CLI, acme.id, "acme.test")
    assert ok.outcome == "verified"
    again = await domains.verify_domain(
        store, resolver(dns), clock, audit.CLI, evil.id, "acme.test"
    )
    assert again.outcome == "claimed" and again.domain.state == "pending"
    with pytest.raises(Conflict):
        domains.add_domain(
            store,
            clock,
            audit.CLI,
            organizations.create_organization(store, clock, audit.CLI, "Third").id,
            "acme.test",
        )
    assert domains.is_verified_for(store, acme.id, "acme.test")
    assert not domains.is_verified_for(store, evil.id, "acme.test")


@pytest.mark.parametrize(
    "bad",
    ["gmail.com", "Outlook.com", "localhost", "1.2.3.4", "a..b", "-x.com", "x" * 64 + ".com", ""],
)
def test_refused_domains(store: SQLiteStore, bad: str) -> None:
    org = organizations.create_organization(store, clock, audit.CLI, "Acme")
    with pytest.raises(InvalidInput):
        domains.add_domain(store, clock, audit.CLI, org.id, bad)


async def test_background_recheck_backs_off_then_fails_after_30_days(
    store: SQLiteStore, dns: FakeDnsServer
) -> None:
    fixed = FixedClock(1_000_000.0)
    org = organizations.create_organization(store, fixed, audit.CLI, "Acme")
    record = domains.add_domain(store, fixed, audit.CLI, org.id, "acme.test")
    assert await domains.recheck_pending(store, resolver(dns), fixed) == []  # not due yet
    fixed.advance(61)
    first = await domains.recheck_pending(store, resolver(dns), fixed)
    assert [r.outcome for r in first] == ["not_found"]
    assert first[0].domain.next_check_at == pytest.approx(fixed.now() + 120)
    fixed.advance(31 * 86400)
    last = await domains.recheck_pending(store, resolver(dns), fixed)
    assert last[0].domain.state == "failed"
    assert store.domains.get(record.id).next_check_at is None
    assert "organization_domain.verification_failed" in [e.type for e in store.events.after(0, 50)]


def active_connection(store: SQLiteStore, org_id: str, tested: bool) -> Connection:
    now = clock.now()
    connection = Connection(
        id=new_id("conn"),
        organization_id=org_id,
        type="saml",
        preset="okta",
        name="Okta",
        state="active",
        config={},
        created_at=now,
        updated_at=now,
        tested_at=now if tested else None,
    )
    store.connections.create(connection)
    return connection


async def test_sso_needs_a_verified_domain_and_a_tested_connection(
    store: SQLiteStore, dns: FakeDnsServer
) -> None:
    org = organizations.create_organization(store, clock, audit.CLI, "Acme")
    with pytest.raises(PolicyError) as refused:
        policy.enable_sso(store, clock, audit.CLI, org.id)
    assert "verify at least one email domain" in refused.value.public
    assert "activate a connection that passed a test login" in refused.value.public

    record = domains.add_domain(store, clock, audit.CLI, org.id, "acme.test")
    dns.set_txt(expected(record)[0], [expected(record)[1]])
    await domains.verify_domain(store, resolver(dns), clock, audit.CLI, org.id, "acme.test")
    active_connection(store, org.id, tested=False)
    with pytest.raises(PolicyError, match="passed a test login"):
        policy.enable_sso(store, clock, audit.CLI, org.id)
    active_connection(store, org.id, tested=True)
    assert policy.enable_sso(store, clock, audit.CLI, org.id).sso_enabled

    updates = [e for e in store.events.after(0, 100) if e.type == "organization.updated"]
    assert updates[-1].data["sso_enabled"] is True  # Exec turns password sign-in off on this

    off = policy.disable_sso(store, clock, audit.CLI, org.id)
    assert not off.sso_enabled and not off.dsync_enabled
    assert store.domains.get(record.id).state == "verified"  # domains survive
    assert [a.action for a in store.audit.list(org.id)][:2] == ["sso.disabled", "sso.enabled"]


def test_cli_domain_and_sso_twins(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeDnsServer() as dns:
        monkeypatch.setenv("BROKER_DNS_RESOLVERS", dns.address)
        monkeypatch.setenv("BROKER_DNS_TIMEOUT_SECONDS", "2")
        assert cli_main(["org", "create", "Acme", "--json"]) == 0
        org_id = json.loads(capsys.readouterr().out)["id"]
        assert cli_main(["domain", "add", "acme.test", "--org", org_id, "--json"]) == 0
        txt = json.loads(capsys.readouterr().out)["txt_record"]
        assert cli_main(["domain", "verify", "acme.test", "--org", org_id]) == 1
        assert "No TXT record named _exec-broker-verification.acme.test" in capsys.readouterr().out
        dns.set_txt(txt["name"], [txt["value"]])
        assert cli_main(["domain", "verify", "acme.test", "--org", org_id, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["outcome"] == "verified"
        assert cli_main(["org", "sso", "enable", "--org", org_id]) == 1
        assert "activate a connection" in capsys.readouterr().err
        assert cli_main(["domain", "list", "--org", org_id, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["state"] == "verified"
