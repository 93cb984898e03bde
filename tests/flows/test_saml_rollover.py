"""Key rollover without downtime, over loopback: two trusted IdP certificates while the IdP
switches keys; a metadata URL (HTTPS with a test CA, host on the admin's allow-list) whose
refresh brings the IdP's new certificate without a restart; SP certificate rotation
(next → promote → retire) seen in our metadata, our AuthnRequest signatures and decryption;
and the admin's test login."""

from __future__ import annotations

import base64
import ssl
from typing import Any

import pytest
import xmlsec
from aiohttp import web
from lxml import etree

from broker.core import audit, login
from broker.core import connections as core_connections
from broker.saml import idp_settings, refresh, sp_keys
from tests.fakes.saml_idp import FakeSamlIdP, generate_key_and_cert
from tests.oidc.helpers import Browser
from tests.saml.test_e2e_harness import (
    SamlTenant,
    clock,
    exec_client,
    idp,
    loopback_tls,
    make_saml_tenant,
    parse_form,
    register_sp,
    sp_initiated_login,
    switch_idp_key,
    to_idp_and_back,
)

__all__ = ["idp"]


async def _login(broker: Any, tenant: SamlTenant) -> dict[str, Any]:
    browser, rp = Browser(broker.url), exec_client(broker, tenant)
    try:
        return await sp_initiated_login(broker, tenant, browser, rp, login_hint="ann@acme.test")
    finally:
        await browser.close()
        await rp.aclose()


async def _login_fails(broker: Any, tenant: SamlTenant) -> str | None:
    with pytest.raises(AssertionError):
        await _login(broker, tenant)
    return core_connections.recent_attempts(broker.store, tenant.connection_id)[0].check


async def test_two_trusted_idp_certificates_cover_the_idp_key_switch(broker, idp):
    new_pair = generate_key_and_cert("Fake SAML IdP 2027")
    manual = idp_settings.manual(
        idp.entity_id, idp.sso_url, [idp.certificate_pem, new_pair[1]], clock.now()
    )
    tenant = make_saml_tenant(broker, idp, idp_config=manual)
    assert (await _login(broker, tenant))["email"] == "ann@acme.test"
    switch_idp_key(idp, new_pair)
    assert (await _login(broker, tenant))["email"] == "ann@acme.test"
    switch_idp_key(idp)  # a key nobody configured
    assert await _login_fails(broker, tenant) == "signature"


@pytest.fixture
async def https_metadata(idp: FakeSamlIdP, tmp_path):
    """The IdP's metadata URL over HTTPS on 127.0.0.1, certificate from a test CA."""
    ca_pem, cert_file, key_file = loopback_tls(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    async def metadata(request: web.Request) -> web.Response:
        return web.Response(body=idp.metadata_xml(), content_type="application/xml")

    app = web.Application()
    app.router.add_get("/federationmetadata.xml", metadata)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}/federationmetadata.xml", ca_pem
    await runner.cleanup()


async def test_metadata_url_refresh_picks_up_new_certificate_without_restart(
    broker, idp, https_metadata
):
    url, ca_pem = https_metadata
    store = broker.store
    with store.transaction():
        store.network_hosts.add("127.0.0.1", clock.now(), "test")
    fetched = await idp_settings.from_url(
        url,
        clock.now(),
        allowlist=refresh.allowlist(broker.services),
        ca_bundle_pem=ca_pem,
        timeout=5,
        max_bytes=1_000_000,
    )
    tenant = make_saml_tenant(broker, idp, idp_config=fetched)
    store.saml.schedule_refresh(tenant.connection_id, clock.now() + 86400)
    assert (await _login(broker, tenant))["email"] == "ann@acme.test"

    switch_idp_key(idp)  # the IdP rolled its key; its metadata now shows the new cert
    assert await _login_fails(broker, tenant) == "signature"

    store.network_hosts.remove("127.0.0.1")  # a failing refresh keeps the old certificates
    store.saml.schedule_refresh(tenant.connection_id, 0)
    [failed] = await refresh.run_once(broker.services, "worker-a")
    assert not failed.ok and "allow-list" in (failed.error or "")
    state = store.saml.refresh_state(tenant.connection_id)
    assert state is not None and state.last_error and state.failures == 1
    assert (
        store.connections.get(tenant.connection_id).config["idp_certificates"]
        == fetched["idp_certificates"]
    )

    store.network_hosts.add("127.0.0.1", clock.now(), "test")
    store.saml.schedule_refresh(tenant.connection_id, 0)
    [done] = await refresh.run_once(broker.services, "worker-a")
    assert done.ok and len(done.certificates_added) == 1 and len(done.certificates_removed) == 1
    assert (await _login(broker, tenant))["email"] == "ann@acme.test"  # same process, no restart
    assert any(e.action == "connection.idp_updated" for e in store.audit.list(tenant.org_id))


def _metadata_certs(xml: bytes, use: str) -> list[str]:
    root = etree.fromstring(xml)
    ns = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#"}
    return [
        el.text or ""
        for el in root.findall(
            f".//md:KeyDescriptor[@use='{use}']/ds:KeyInfo/ds:X509Data/ds:X509Certificate", ns
        )
    ]


def _request_signed_by(request_xml: str, cert_pem: str) -> bool:
    root = etree.fromstring(request_xml.encode())
    xmlsec.tree.add_ids(root, ["ID"])
    signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
    try:
        ctx.verify(signature)
    except xmlsec.Error:
        return False
    return True


async def test_sp_certificate_rotation(broker, idp):
    tenant = make_saml_tenant(broker, idp, options={"binding": "post", "sign_requests": True})
    certs = broker.settings.certs_dir
    browser = Browser(broker.url)
    metadata_path = f"/saml/{tenant.connection_id}/metadata"
    try:
        first = await browser.get(metadata_path)
        body = await first.read()
        assert first.headers["Content-Type"].startswith("application/samlmetadata+xml")
        assert (
            len(_metadata_certs(body, "signing")) == len(_metadata_certs(body, "encryption")) == 1
        )
        old = sp_keys.load(certs).current
        new = sp_keys.prepare_next(certs, "SP 2")
        body = await (await browser.get(metadata_path)).read()
        assert len(_metadata_certs(body, "signing")) == 2  # old and new during the overlap
        idp._sp_metadata.clear()  # the IdP re-reads our metadata during the overlap
        register_sp(broker, idp, tenant.connection_id)
        await _login(broker, tenant)
        assert _request_signed_by(idp.received_requests[-1], old.cert_pem)

        sp_keys.promote(certs)
        body = await (await browser.get(metadata_path)).read()
        assert len(_metadata_certs(body, "signing")) == 2
        idp.options.encrypt_with_cert = old.cert_pem  # an IdP still encrypting for the old one
        await _login(broker, tenant)
        assert _request_signed_by(idp.received_requests[-1], new.cert_pem)
        assert not _request_signed_by(idp.received_requests[-1], old.cert_pem)

        sp_keys.retire_previous(certs)
        body = await (await browser.get(metadata_path)).read()
        assert len(_metadata_certs(body, "signing")) == 1
        assert await _login_fails(broker, tenant) == "decrypt"
    finally:
        await browser.close()


async def test_test_login_shows_mapping_without_tokens_then_allows_activation(broker, idp):
    tenant = make_saml_tenant(broker, idp, active=False, sso=False, with_client=False)
    store = broker.store
    flow_id = login.create_test_login(
        store, clock, tenant.connection_id, audit.CLI, broker.services.login_config
    )
    admin = Browser(broker.url)
    try:
        action, fields = await to_idp_and_back(
            admin, f"/saml/{tenant.connection_id}/start?flow={flow_id}"
        )
        resp = await admin.post(action, data=fields)
        assert resp.status == 303
        result_path = resp.headers["Location"]
        # The one result page: the setup UI's, for signed-in admins only.
        assert result_path == core_connections.test_result_path(tenant.connection_id, flow_id)
        assert result_path == f"/admin/connections/{tenant.connection_id}/test?flow={flow_id}"
        assert not any("session" in c.key for c in admin.jar)  # no broker session, no tokens
        anonymous = await admin.get(result_path)
        assert anonymous.status == 302 and anonymous.headers["Location"] == "/admin/login"
    finally:
        await admin.close()
    result = login.test_login_result(store, flow_id)
    assert result["status"] == "succeeded"
    assert result["profile"]["email"] == "ann@acme.test"
    assert result["identity"]["raw_attributes"]["firstName"] == ["Ann"]
    connection = core_connections.activate(store, clock, audit.CLI, tenant.connection_id)
    assert connection.state == "active" and connection.tested_at is not None
    assert not connection.config.get("activated_without_test")
    attempt = core_connections.recent_attempts(store, tenant.connection_id)[0]
    assert (attempt.kind, attempt.outcome) == ("test_login", "succeeded")
    assert base64 and parse_form  # shared helpers


async def test_a_refused_test_login_ends_on_the_result_page_with_the_reason(broker, idp):
    """A response refused before its flow is read (here: signed with a key nobody trusts)
    still ends the admin's test login, and the result page says which check failed."""
    tenant = make_saml_tenant(broker, idp, active=False, sso=False, with_client=False)
    store = broker.store
    flow_id = login.create_test_login(
        store, clock, tenant.connection_id, audit.CLI, broker.services.login_config
    )
    admin = Browser(broker.url)
    try:
        action, fields = await to_idp_and_back(
            admin, f"/saml/{tenant.connection_id}/start?flow={flow_id}"
        )
        # The IdP signed with its key; the admin meanwhile replaced the trusted certificate.
        stranger = generate_key_and_cert("Not the IdP")[1]
        core_connections.set_idp_settings(
            store,
            clock,
            audit.CLI,
            tenant.connection_id,
            idp_settings.manual(idp.entity_id, idp.sso_url, [stranger], clock.now()),
        )
        resp = await admin.post(action, data=fields)
    finally:
        await admin.close()
    assert resp.status == 303
    assert resp.headers["Location"] == core_connections.test_result_path(
        tenant.connection_id, flow_id
    )
    result = login.test_login_result(store, flow_id)
    assert result["status"] == "refused" and result["reason"] == "signature", result
    assert store.connections.get(tenant.connection_id).tested_at is None
