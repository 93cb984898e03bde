"""The connection wizard over real HTTP (issue 8 §4): a draft first, the SP values to
paste before any IdP setting, checks on the spot, the one test-result page (admins only),
OIDC secrets never shown again; plus the network allow-list form and a webhook re-send."""

from __future__ import annotations

import html
import io
import re
import threading

from broker.core import audit, connections, login, oidc_connections
from broker.crypto.secrets import SecretBox
from tests.admin.conftest import AdminClient, new_client
from tests.conftest import RunningBroker
from tests.fakes.saml_idp import FakeSamlIdP


async def _org(admin: AdminClient, name: str = "Acme") -> str:
    response = await admin.post("/admin/orgs", {"name": name}, allow_redirects=False)
    return response.headers["Location"].rsplit("/", 1)[1]


async def _draft(admin: AdminClient, org_id: str, kind: str, preset: str) -> str:
    await admin.get(f"/admin/orgs/{org_id}/connections/new?type={kind}&preset={preset}")
    response = await admin.post(
        f"/admin/orgs/{org_id}/connections",
        {"type": kind, "preset": preset, "name": f"Acme {preset}"},
        allow_redirects=False,
    )
    assert response.status == 303, admin.last
    return response.headers["Location"].rsplit("/", 1)[1]


async def test_saml_draft_shows_what_to_paste_before_asking_for_metadata(
    broker: RunningBroker, admin: AdminClient, tmp_path
) -> None:
    org_id = await _org(admin)
    conn_id = await _draft(admin, org_id, "saml", "okta")
    page_url = f"/admin/orgs/{org_id}/connections/{conn_id}"
    await admin.get(page_url)
    page = admin.last
    acs = f"{broker.url}/saml/{conn_id}/acs"
    assert f'id="acs-url">{acs}<' in page
    assert page.index('id="acs-url"') < page.index('id="metadata_url"')  # paste first
    assert re.search(r'id="test-login" disabled', page)
    assert broker.store.connections.get(conn_id).state == "draft"
    # The SP metadata of the draft is already served: Okta and AD FS read it first.
    sp_metadata = await admin.http.get(f"{broker.url}/saml/{conn_id}/metadata")
    assert sp_metadata.status == 200 and acs.encode() in await sp_metadata.read()

    # No test login and no activation before the IdP's settings, with the reason.
    response = await admin.post(f"{page_url}/test")
    assert response.status == 400 and "no identity provider settings yet" in admin.last
    response = await admin.post(f"{page_url}/activate")
    assert response.status == 400 and "no identity provider settings yet" in admin.last

    # Checked on the spot: not XML is refused; the IdP's metadata file is taken.
    idp = FakeSamlIdP("https://idp.acme.test/saml", tmp_path / "idp")
    response = await admin.post(
        f"{page_url}/idp", {"source": "xml", "metadata_file": io.BytesIO(b"<not-xml")}
    )
    assert response.status == 400 and "not well-formed XML" in admin.last
    response = await admin.post(
        f"{page_url}/idp",
        {"source": "xml", "metadata_file": io.BytesIO(idp.metadata_xml())},
        allow_redirects=False,
    )
    assert response.status == 303, admin.last  # Post/Redirect/Get: a reload re-sends nothing
    assert response.headers["Location"] == f"{page_url}?done=idp_saved"
    response = await admin.get(response.headers["Location"])
    assert response.status == 200 and "IdP settings checked and saved" in admin.last
    saved = broker.store.connections.get(conn_id)
    assert connections.missing_settings(saved) is None
    assert saved.config["idp_entity_id"] == "https://idp.acme.test/saml"

    # Test login: the start path is the SAML edge's; the result page is the admin's.
    response = await admin.post(f"{page_url}/test", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith(f"/saml/{conn_id}/start?flow=flow_")


async def test_activate_and_deactivate_redirect_to_the_page_with_a_fixed_notice(
    broker: RunningBroker, admin: AdminClient, tmp_path
) -> None:
    org_id = await _org(admin)
    conn_id = await _draft(admin, org_id, "saml", "okta")
    page_url = f"/admin/orgs/{org_id}/connections/{conn_id}"
    await admin.get(page_url)
    # Refused (no test login yet): the page at once, 400, with the reason; no redirect.
    idp = FakeSamlIdP("https://idp.acme.test/saml", tmp_path / "idp")
    await admin.post(
        f"{page_url}/idp", {"source": "xml", "metadata_file": io.BytesIO(idp.metadata_xml())}
    )
    response = await admin.post(f"{page_url}/activate", allow_redirects=False)
    assert response.status == 400 and "Run a successful test login" in admin.last
    assert broker.store.connections.get(conn_id).state == "draft"

    # The IdP round trip itself is tested elsewhere; here its outcome is stamped by the core.
    connections.record_test_success(broker.store, broker.services.clock, conn_id)
    response = await admin.post(f"{page_url}/activate", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"{page_url}?done=activated"
    assert broker.store.connections.get(conn_id).state == "active"
    response = await admin.get(response.headers["Location"])
    assert response.status == 200 and "Connection active: its users may sign in." in admin.last
    # Without the query (a later visit) there is no notice.
    await admin.get(page_url)
    assert "Connection active: its users may sign in." not in admin.last

    response = await admin.post(f"{page_url}/deactivate", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"{page_url}?done=deactivated"
    assert broker.store.connections.get(conn_id).state != "active"
    await admin.get(response.headers["Location"])
    assert "Connection switched off." in admin.last

    # The URL names a notice, it never supplies its words: free text is not shown.
    response = await admin.get(f"{page_url}?done=%3Cb%3Eyour+account+is+locked%3C%2Fb%3E")
    assert response.status == 200 and "your account is locked" not in html.unescape(admin.last)


async def test_result_page_is_for_signed_in_admins_and_offers_activation(
    broker: RunningBroker, admin: AdminClient, tmp_path
) -> None:
    org_id = await _org(admin)
    conn_id = await _draft(admin, org_id, "saml", "generic")
    idp = FakeSamlIdP("https://idp.acme.test/saml", tmp_path / "idp")
    await admin.post(
        f"/admin/orgs/{org_id}/connections/{conn_id}/idp",
        {"source": "xml", "metadata_file": io.BytesIO(idp.metadata_xml())},
    )
    store, clock = broker.store, broker.services.clock
    flow_id = login.create_test_login(
        store, clock, conn_id, audit.CLI, broker.services.login_config
    )
    path = connections.test_result_path(conn_id, flow_id)
    assert path == f"/admin/connections/{conn_id}/test?flow={flow_id}"

    stranger = await new_client(broker)
    try:
        response = await stranger.http.get(broker.url + path, allow_redirects=False)
        assert response.status == 302 and response.headers["Location"] == "/admin/login"
    finally:
        await stranger.http.close()

    await admin.get(path)
    assert "not finished" in admin.last  # the IdP has not answered yet
    # Another connection's id with this flow: not found (no cross-reading of results).
    other = await _draft(admin, org_id, "saml", "okta")
    response = await admin.get(connections.test_result_path(other, flow_id))
    assert response.status == 404


async def test_oidc_draft_redirect_uri_first_and_a_secret_never_shown_again(
    broker: RunningBroker, admin: AdminClient
) -> None:
    org_id = await _org(admin)
    conn_id = await _draft(admin, org_id, "oidc", "okta")
    page_url = f"/admin/orgs/{org_id}/connections/{conn_id}"
    await admin.get(page_url)
    assert f'id="redirect-uri">{broker.url}/oidc/{conn_id}/callback<' in admin.last
    assert re.search(r'id="test-login" disabled', admin.last)

    form = {
        "issuer": "http://idp.acme.example",
        "client_id": "0oa-exec",
        "client_secret": "first-secret",
        "scopes": "openid email profile groups",
        "claims": "groups=memberOf",
    }
    response = await admin.post(f"{page_url}/oidc", form)
    assert response.status == 400 and "The issuer must use https." in html.unescape(admin.last)
    response = await admin.post(f"{page_url}/oidc", {**form, "claims": "nonsense"})
    assert response.status == 400 and "field=claim" in html.unescape(admin.last)

    form["issuer"] = "https://acme.okta.example"
    response = await admin.post(f"{page_url}/oidc", form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"{page_url}?done=oidc_saved"
    response = await admin.get(response.headers["Location"])
    assert response.status == 200 and "Identity provider settings saved" in admin.last
    assert "first-secret" not in admin.last
    connection = broker.store.connections.get(conn_id)
    assert connection.config["claims"] == {"groups": "memberOf"}
    assert connection.config["scopes"] == ["openid", "email", "profile", "groups"]
    box = SecretBox.load(broker.settings.certs_dir)
    sealed = connection.config["client_secret_enc"]
    assert box.decrypt(sealed, oidc_connections.secret_context(conn_id)) == "first-secret"

    # A blank secret keeps the sealed one; a new one replaces it.
    await admin.post(f"{page_url}/oidc", {**form, "client_secret": "", "client_id": "0oa-2"})
    kept = broker.store.connections.get(conn_id).config
    assert kept["client_id"] == "0oa-2" and kept["client_secret_enc"] == sealed
    response = await admin.post(f"{page_url}/test", allow_redirects=False)
    assert response.headers["Location"].startswith(f"/oidc/{conn_id}/start?flow=flow_")


async def test_network_allow_list_form(broker: RunningBroker, admin: AdminClient) -> None:
    await admin.get("/admin/network")
    response = await admin.post("/admin/network/hosts", {"host": "adfs.acme.test"}, csrf="x")
    assert response.status == 403 and broker.store.network_hosts.list() == []
    await admin.get("/admin/network")
    response = await admin.post("/admin/network/hosts", {"host": "http://evil/"})
    assert response.status == 400 and "is not a host name" in html.unescape(admin.last)
    response = await admin.post("/admin/network/hosts", {"host": " ADFS.Acme.Test. "})
    assert response.status == 200 and broker.store.network_hosts.list() == ["adfs.acme.test"]
    await admin.post("/admin/network/hosts/adfs.acme.test/remove")
    assert broker.store.network_hosts.list() == []
    actions = [e.action for e in broker.store.audit.list(limit=20)]
    assert "network.host_allowed" in actions and "network.host_removed" in actions


async def test_webhook_resend_from_the_delivery_log(
    broker: RunningBroker, admin: AdminClient
) -> None:
    org_id = await _org(admin)
    await admin.get("/admin/clients")
    await admin.post(
        "/admin/clients",
        {
            "name": "Exec",
            "redirect_uris": "https://exec.example/callback",
            "webhook_url": "http://127.0.0.1:9/hooks",
            "org": org_id,
        },
    )
    client = broker.store.clients.list()[0]
    await _draft(admin, org_id, "saml", "okta")  # a connection.created event
    event = broker.store.events.after(0, 10, organization_ids=[org_id])[-1]
    await admin.get(f"/admin/clients/{client.id}")
    response = await admin.post(
        f"/admin/clients/{client.id}/webhook/resend", {"event_id": "evt_unknown"}
    )
    assert response.status == 400
    response = await admin.post(
        f"/admin/clients/{client.id}/webhook/resend", {"event_id": event.id}
    )
    assert response.status == 200 and "queued for re-sending" in admin.last
    assert any(
        d.kind == "resend" and d.event_id == event.id
        for d in broker.store.webhooks.deliveries(client.id, 50)
    )


async def test_verify_now_keeps_store_calls_off_the_event_loop(
    broker: RunningBroker, admin: AdminClient
) -> None:
    org_id = await _org(admin)
    await admin.post(f"/admin/orgs/{org_id}/domains", {"domains": "acme.com"})
    store = broker.services.store
    real = store.domains
    loop_thread = threading.get_ident()
    threads: list[int] = []

    class Watched:
        def __getattr__(self, name: str):
            attribute = getattr(real, name)
            if not callable(attribute):
                return attribute

            def call(*args, **kwargs):
                threads.append(threading.get_ident())
                return attribute(*args, **kwargs)

            return call

    store.domains = Watched()  # type: ignore[misc]
    try:
        await admin.post(f"/admin/orgs/{org_id}/domains/acme.com/verify")
    finally:
        store.domains = real  # type: ignore[misc]
    assert "No TXT record" in admin.last or "did not answer" in admin.last
    assert threads and loop_thread not in threads


async def test_wizard_drafts_start_with_their_presets_defaults(
    broker: RunningBroker, admin: AdminClient
) -> None:
    # JumpCloud lists only an HTTP-POST SSO endpoint in its metadata (IDP-NOTES.md).
    org_id = await _org(admin)
    jumpcloud = broker.store.connections.get(await _draft(admin, org_id, "saml", "jumpcloud"))
    okta = broker.store.connections.get(await _draft(admin, org_id, "saml", "okta"))
    assert jumpcloud.config["binding"] == "post"
    assert okta.config["binding"] == "redirect"
