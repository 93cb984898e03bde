"""Organizations, domains (DNS verification against a real loopback DNS server), the SSO
switch and clients, through the setup UI over real HTTP (issue 8 §2, §3, §5, §7, §9)."""

from __future__ import annotations

import asyncio
import html
import re
import time

from broker.admin import domain_recheck
from broker.core.models import Connection
from broker.ids import hash_token, new_id
from tests.admin.conftest import AdminClient
from tests.conftest import RunningBroker
from tests.fakes.dns_server import FakeDnsServer


async def _org(admin: AdminClient, name: str = "Acme") -> str:
    response = await admin.post("/admin/orgs", {"name": name}, allow_redirects=False)
    assert response.status == 303
    return response.headers["Location"].rsplit("/", 1)[1]


def _txt(page: str) -> tuple[str, str]:
    name = re.search(r'class="txt-name">([^<]+)<', page)
    value = re.search(r'class="txt-value">([^<]+)<', page)
    assert name and value
    return html.unescape(name[1]), html.unescape(value[1])


async def test_domain_verification_outcomes_in_plain_words(
    broker: RunningBroker, admin: AdminClient, dns: FakeDnsServer
) -> None:
    org_id = await _org(admin)
    response = await admin.post(f"/admin/orgs/{org_id}/domains", {"domains": "acme.com"})
    assert response.status == 200
    name, value = _txt(admin.last)
    assert name == "_exec-broker-verification.acme.com"
    assert value.startswith("exec-broker-verification=")
    verify = f"/admin/orgs/{org_id}/domains/acme.com/verify"

    dns.set_nxdomain(name)
    await admin.post(verify)
    assert "NXDOMAIN" in admin.last and "No TXT record named" in admin.last

    dns.set_txt(name, ["exec-broker-verification=typo"])
    await admin.post(verify)
    assert "not the expected value" in html.unescape(admin.last)

    dns.set_drop(name)
    await admin.post(verify)
    assert "did not answer in time" in admin.last

    dns.set_txt(name, [value])
    await admin.post(verify)
    assert "acme.com is verified." in admin.last
    assert broker.store.domains.find(org_id, "acme.com").state == "verified"
    entry = next(
        e for e in broker.store.audit.list(org_id) if e.action == "domain.verification_verified"
    )
    assert entry.actor.startswith("admin:") and entry.remote_addr == "127.0.0.1"


async def test_several_domains_and_refusals(broker: RunningBroker, admin: AdminClient) -> None:
    org_id = await _org(admin)
    response = await admin.post(
        f"/admin/orgs/{org_id}/domains", {"domains": "acme.com, acme.co.uk gmail.com"}
    )
    assert response.status == 400
    assert "gmail.com is a public mail provider" in admin.last
    assert {d.domain for d in broker.store.domains.list(org_id)} == {"acme.com", "acme.co.uk"}
    await admin.post(f"/admin/orgs/{org_id}/domains/acme.co.uk/remove")
    assert "acme.co.uk removed." in admin.last
    assert [d.domain for d in broker.store.domains.list(org_id)] == ["acme.com"]


async def test_sso_switch_follows_the_core_rules(
    broker: RunningBroker, admin: AdminClient, dns: FakeDnsServer
) -> None:
    org_id = await _org(admin)
    enable = f"/admin/orgs/{org_id}/sso/enable"
    response = await admin.post(enable, {"confirm": "on"})
    assert response.status == 400 and "verify at least one email domain first" in admin.last
    await admin.post(f"/admin/orgs/{org_id}/domains", {"domains": "acme.com"})
    name, value = _txt(admin.last)
    dns.set_txt(name, [value])
    await admin.post(f"/admin/orgs/{org_id}/domains/acme.com/verify")
    response = await admin.post(enable, {"confirm": "on"})
    assert "activate a connection that passed a test login first" in admin.last
    now = time.time()
    broker.store.connections.create(
        Connection(new_id("conn"), org_id, "saml", "okta", "Okta", "active", {}, now, now, now)
    )
    response = await admin.post(enable)  # no confirmation ticked
    assert response.status == 400 and not broker.store.organizations.get(org_id).sso_enabled
    response = await admin.post(enable, {"confirm": "on"})
    assert response.status == 200 and "SSO is on" in admin.last
    assert broker.store.organizations.get(org_id).sso_enabled
    response = await admin.post(f"/admin/orgs/{org_id}/sso/disable", {"confirm": "on"})
    assert "SSO is off" in admin.last
    assert not broker.store.organizations.get(org_id).sso_enabled
    assert broker.store.domains.find(org_id, "acme.com").state == "verified"  # kept
    actions = [e.action for e in broker.store.audit.list(org_id)]
    assert "sso.enabled" in actions and "sso.disabled" in actions


async def test_status_panel_and_default_seat(broker: RunningBroker, admin: AdminClient) -> None:
    org_id = await _org(admin)
    await admin.get(f"/admin/orgs/{org_id}")
    assert 'id="sso-state">Off' in admin.last and 'id="dsync-state">Off' in admin.last
    await admin.post(f"/admin/orgs/{org_id}/seat", {"default_seat": "full"})
    assert broker.store.organizations.get(org_id).default_seat == "full"
    response = await admin.post(f"/admin/orgs/{org_id}/seat", {"default_seat": "gold"})
    assert response.status == 400 and "full or basic" in admin.last
    assert (await admin.get("/admin/orgs/org_nope")).status == 404


async def test_background_recheck_verifies_pending_domains(
    broker: RunningBroker, admin: AdminClient, dns: FakeDnsServer
) -> None:
    org_id = await _org(admin)
    await admin.post(f"/admin/orgs/{org_id}/domains", {"domains": "acme.com"})
    name, value = _txt(admin.last)
    dns.set_txt(name, [value])
    record = broker.store.domains.find(org_id, "acme.com")
    broker.store.domains.update(record.id, next_check_at=time.time() - 1)
    task = asyncio.create_task(domain_recheck.run(broker.services, interval=0.05))
    try:
        for _ in range(100):
            if broker.store.domains.find(org_id, "acme.com").state == "verified":
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert broker.store.domains.find(org_id, "acme.com").state == "verified"


async def test_clients_secret_shown_once_and_rotated(
    broker: RunningBroker, admin: AdminClient
) -> None:
    org_id = await _org(admin)
    await admin.get("/admin/clients")
    response = await admin.post(
        "/admin/clients",
        {
            "name": "Exec",
            "redirect_uris": "http://127.0.0.1:9/callback",
            "org": org_id,
            "webhook_url": "http://127.0.0.1:9/hooks",
        },
    )
    assert response.status == 200
    secret = re.search(r'id="client-secret">(brk_cs_[^<]+)<', admin.last)
    assert secret and re.search(r'id="webhook-secret">whsec_', admin.last)
    client = broker.store.clients.list()[0]
    assert client.secret_hash == hash_token(secret[1])
    await admin.get(f"/admin/clients/{client.id}")
    assert secret[1] not in admin.last and "brk_cs_" not in admin.last  # shown once only
    assert "Delivery log" in admin.last

    response = await admin.post(
        f"/admin/clients/{client.id}", {"redirect_uris": "ftp://evil/callback"}
    )
    assert response.status == 400 and "must be an https URL" in admin.last
    response = await admin.post(
        f"/admin/clients/{client.id}",
        {
            "redirect_uris": "https://exec.example/cb\nhttps://exec.example/cb2",
            "initiate_login_uri": "https://exec.example/sso/start",
        },
    )
    assert response.status == 200
    updated = broker.store.clients.get(client.id)
    assert updated.redirect_uris == ("https://exec.example/cb", "https://exec.example/cb2")
    assert updated.initiate_login_uri == "https://exec.example/sso/start"

    await admin.post(f"/admin/clients/{client.id}/rotate")
    rotated = re.search(r'id="client-secret">(brk_cs_[^<]+)<', admin.last)
    assert rotated and rotated[1] != secret[1]
    assert broker.store.clients.get(client.id).secret_hash == hash_token(rotated[1])
    actions = [e.action for e in broker.store.audit.list(limit=30)]
    assert {"client.created", "client.updated", "client.secret_rotated"} <= set(actions)
