"""The setup UI in headless Chromium (issue 8, tests): a blank organization set up end to
end — first-run setup link, domain verified against a real DNS server on loopback, SAML
connection from the test IdP's metadata URL, test login, SSO on, Directory Sync on with
the token copied, a user provisioned by SCIM, then a full login through Exec's client
showing that user's role and seat. Plus the refusals: CSRF, wrong-password throttling,
a wrong TXT value, a metadata file that is not XML, an expired IdP certificate.

Selenium is synchronous; each browser script runs in a thread so that the servers on
this test's event loop (broker, IdP, Exec app) keep answering.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.request
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from broker.core import admin_sessions
from tests.admin.conftest import PASSWORD, create_admin
from tests.api.sink import WebhookSink
from tests.browser.conftest import screenshot
from tests.browser.exec_app import FakeExecApp
from tests.conftest import RunningBroker
from tests.fakes.dns_server import FakeDnsServer
from tests.fakes.oidc_idp import FakeOidcIdP
from tests.fakes.saml_idp import FakeSamlIdP

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class Ui:
    """Small helpers over the WebDriver: find, type, click, wait."""

    def __init__(self, driver: Any, base: str) -> None:
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
            WebDriverException,
        )
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.d, self.base, self.By = driver, base, By
        # A page replaced mid-read (the node left the document) is read again.
        ignored = (StaleElementReferenceException, NoSuchElementException, WebDriverException)
        self.wait = WebDriverWait(driver, 20, ignored_exceptions=ignored)

    def go(self, path: str) -> None:
        self.d.get(path if path.startswith("http") else self.base + path)

    def css(self, selector: str) -> Any:
        return self.d.find_element(self.By.CSS_SELECTOR, selector)

    def type(self, selector: str, text: str) -> None:
        field = self.css(selector)
        field.clear()
        field.send_keys(text)

    def click(self, selector: str) -> None:
        self.css(selector).click()

    def button(self, text: str, within: str = "main") -> None:
        """Submit a form with its button and wait for the next page to replace this one."""
        from selenium.webdriver.support.expected_conditions import staleness_of

        page = self.d.find_element(self.By.TAG_NAME, "html")
        xpath = f"//{within}//button[normalize-space()='{text}']"
        self.d.find_element(self.By.XPATH, xpath).click()
        self.wait.until(staleness_of(page))

    def link(self, text: str) -> None:
        self.d.find_element(self.By.LINK_TEXT, text).click()

    def page(self) -> str:
        return str(self.d.find_element(self.By.TAG_NAME, "body").text)

    def until_text(self, text: str) -> None:
        from selenium.common.exceptions import TimeoutException

        try:
            self.wait.until(lambda d: text in d.find_element(self.By.TAG_NAME, "body").text)
        except TimeoutException:
            raise AssertionError(f"{text!r} not on {self.d.current_url}:\n{self.page()}") from None

    def until_url(self, part: str) -> None:
        self.wait.until(lambda d: part in d.current_url)


def _scim(base: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        result: dict[str, Any] = json.loads(response.read())
        return result


def _sign_in_first_run(ui: Ui, setup_url: str) -> None:
    ui.go(setup_url)
    screenshot(ui.d, "01-first-run-setup")
    ui.type("#username", "alice")
    ui.type("#password", PASSWORD)
    ui.type("#password_again", PASSWORD)
    ui.button("Create administrator")
    ui.until_text("New organization")


def _create_org(ui: Ui, name: str) -> str:
    ui.type("#name", name)
    ui.button("Create organization")
    ui.until_url("/admin/orgs/org_")
    return str(ui.d.current_url.rsplit("/", 1)[1])


def _add_and_verify_domain(ui: Ui, dns: FakeDnsServer, domain: str) -> None:
    ui.type("#domains-input", domain)
    ui.button("Add")
    ui.until_text("Create its TXT record")
    name, value = ui.css(".txt-name").text, ui.css(".txt-value").text
    copy = ui.css("button.copy[data-copy^='exec-broker-verification=']")
    copy.click()
    ui.wait.until(lambda d: copy.text == "Copied")
    dns.set_txt(name, ["exec-broker-verification=not-the-token"])
    ui.button("Verify now")
    ui.until_text("not the expected value")
    screenshot(ui.d, "03-domain-wrong-txt-value")
    dns.set_txt(name, [value])
    ui.button("Verify now")
    ui.until_text(f"{domain} is verified.")
    screenshot(ui.d, "04-domain-verified")


def _oidc_connection(ui: Ui, org_id: str, oidc_idp: FakeOidcIdP) -> None:
    """Generic OIDC in the same two steps: the redirect URI first, then the client ID and
    secret the IdP handed out; a test login against a real OIDC IdP on loopback."""
    ui.go(f"/admin/orgs/{org_id}/connections/new")
    ui.link("Generic OpenID Connect (OIDC)")
    ui.button("Continue")
    ui.until_text("2a. Register the broker in Generic OpenID Connect")
    redirect_uri = ui.css("#redirect-uri").text
    assert redirect_uri == f"{ui.base}/oidc/{ui.d.current_url.rsplit('/', 1)[1]}/callback"
    assert ui.css("#test-login").get_attribute("disabled") is not None
    screenshot(ui.d, "08b-oidc-connection-redirect-uri")
    oidc_idp.register_client("acme-exec-broker", "idp-issued-secret", [redirect_uri])
    oidc_idp.next_user = dict(oidc_idp.next_user, email="ann@acme.test", sub="00u-ann")
    ui.type("#issuer", oidc_idp.issuer)
    ui.type("#client_id", "acme-exec-broker")
    ui.type("#client_secret", "idp-issued-secret")
    ui.button("Check and save")
    ui.until_text("Identity provider settings saved")
    assert "idp-issued-secret" not in ui.d.page_source  # never shown again
    ui.button("Test login")
    ui.until_url("/admin/connections/")
    ui.until_text("Mapped profile")
    assert ui.css("#test-status").text == "passed"
    assert ui.css("#profile-email").text == "ann@acme.test"
    screenshot(ui.d, "08c-oidc-test-login-result")


def _webhook_log(ui: Ui, client_url: str) -> None:
    """Exec's webhook endpoint: its state, the delivery log, and a manual re-send."""
    ui.go(client_url)
    _reload_until(ui, "#deliveries", "succeeded")
    assert ui.css("#webhook-state").text == "ok"
    ui.button("Re-send")
    ui.until_text("queued for re-sending")
    _reload_until(ui, "#deliveries", "(re-send)")
    screenshot(ui.d, "14-client-webhook-delivery-log")


def _reload_until(ui: Ui, selector: str, text: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        ui.d.refresh()
        found = ui.d.find_elements(ui.By.CSS_SELECTOR, selector)
        if found and text in found[0].text:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never appeared in {selector}:\n{ui.page()}")
        time.sleep(0.3)


def _setup_script(
    ui: Ui,
    broker: RunningBroker,
    dns: FakeDnsServer,
    idp: FakeSamlIdP,
    oidc_idp: FakeOidcIdP,
    exec_app: FakeExecApp,
    sink: WebhookSink,
) -> dict[str, Any]:
    token = admin_sessions.issue_setup_token(broker.store, broker.services.clock, 600)
    _sign_in_first_run(ui, f"{broker.url}/admin/setup?token={token}")
    screenshot(ui.d, "02-organizations")
    org_id = _create_org(ui, "Acme")
    _add_and_verify_domain(ui, dns, "acme.test")

    # Connection wizard, in the order Okta needs: provider → draft → the SP URLs to paste
    # (shown BEFORE the IdP's metadata is asked for) → metadata URL → test login → activate.
    ui.link("Add a connection")
    ui.link("Okta")
    ui.until_text("The broker creates a draft connection first")
    screenshot(ui.d, "05-connection-wizard-choose")
    ui.type("#conn-name", "Acme Okta")
    ui.button("Continue")
    ui.until_text("2a. Paste these into Okta")
    connection_url = ui.d.current_url
    acs_url = ui.css("#acs-url").text
    assert acs_url.endswith("/acs") and "/saml/conn_" in acs_url
    assert ui.css("#sp-entity-id").text and ui.css("#metadata_url").is_displayed()
    assert "Attribute statements" in ui.page()
    assert ui.css("#test-login").get_attribute("disabled") is not None  # no IdP settings yet
    screenshot(ui.d, "06-connection-paste-into-okta")
    with urllib.request.urlopen(ui.css("#sp-metadata-url").text, timeout=10) as response:
        idp.add_sp_metadata(response.read())  # the admin creates the app in the IdP first
    ui.type("#metadata_url", idp.base_url + "/metadata")
    ui.button("Check and save")
    ui.until_text("IdP settings checked and saved")
    assert ui.css("#activate").get_attribute("disabled") is not None  # untested: no activation
    screenshot(ui.d, "07-connection-idp-saved")

    ui.button("Test login")
    ui.until_url("/admin/connections/")
    ui.until_text("ann@acme.test")
    assert ui.css("#test-status").text == "passed"
    assert "firstName" in ui.page()  # the attributes as Okta sent them
    screenshot(ui.d, "08-test-login-result")
    ui.button("Activate")
    ui.until_text("Connection active")
    assert ui.d.current_url.startswith(connection_url)
    _oidc_connection(ui, org_id, oidc_idp)

    ui.go(f"/admin/orgs/{org_id}")
    ui.click("#sso input[name=confirm]")
    ui.button("Enable SSO")
    ui.until_text("SSO is on")
    screenshot(ui.d, "09-sso-on")

    ui.go(f"/admin/orgs/{org_id}/directory")
    ui.button("Enable Directory Sync")
    ui.until_text("shown only once")
    scim_token = ui.css("#scim-token").text
    scim_base = ui.css("#scim-base-url").text
    ui.click("#copy-token")
    ui.wait.until(lambda d: ui.css("#copy-token").text == "Copied")
    screenshot(ui.d, "10-directory-sync-token")
    ui.type("#group", "Engineering")
    ui.type("#role", "admin")
    ui.css("#seat option[value=full]").click()
    ui.type("#priority", "10")
    ui.button("Add mapping")
    ui.until_text("Members of Engineering now get the role admin.")
    ui.type("#group", "Everyone")
    ui.type("#role", "member")
    ui.type("#priority", "1")
    ui.button("Add mapping")
    ui.until_text("Members of Everyone now get the role member.")

    user = _scim(
        scim_base,
        scim_token,
        "/Users",
        {
            "schemas": [SCIM_USER],
            "userName": "ann@acme.test",
            "externalId": "00u-ann",
            "name": {"givenName": "Ann", "familyName": "Example"},
            "emails": [{"value": "ann@acme.test", "primary": True, "type": "work"}],
            "active": True,
        },
    )
    group = _scim(
        scim_base,
        scim_token,
        "/Groups",
        {"schemas": [SCIM_GROUP], "displayName": "Engineering", "members": [{"value": user["id"]}]},
    )
    # The preview: the higher-priority mapping wins; a mapping by group id as well.
    ui.go(f"/admin/orgs/{org_id}/directory")
    ui.type("#preview_user", "ann@acme.test")
    ui.button("Preview")
    ui.until_text("ann@acme.test would get role admin and a full seat.")
    assert "POST /Users 201" in ui.page()  # the SCIM request log
    ui.type("#q", "engin")
    ui.button("Search")
    ui.until_text("Groups (1)")
    assert "Everyone" not in ui.css("#groups").text
    screenshot(ui.d, "11-directory-preview-search-and-scim-log")
    ui.css(f"#group_id option[value='{group['id']}']").click()
    ui.type("#role", "owner")
    ui.type("#priority", "20")
    ui.button("Add mapping")
    ui.until_text(f"Members of {group['id']} now get the role owner.")
    ui.type("#preview_user", user["id"])
    ui.button("Preview")
    ui.until_text("ann@acme.test would get role owner and a full seat.")
    if "No drift" not in ui.page():  # Exec was not told some change: re-drive it
        ui.button("Re-drive to Exec")
        ui.until_text("Sent the current state of")
    ui.until_text("No drift")

    ui.go("/admin/clients")
    ui.type("#redirect_uris", exec_app.redirect_uri)
    ui.type("#webhook_url", sink.url)
    ui.button("Register client")
    ui.until_text("shown only once")
    exec_app.client_secret = ui.css("#client-secret").text
    exec_app.client_id = ui.css("#client-id").text
    client_url = f"/admin/clients/{exec_app.client_id}"
    screenshot(ui.d, "12-client")

    ui.go(f"{exec_app.base_url}/login?login_hint=ann@acme.test")
    ui.until_text("Signed in to Exec")
    screenshot(ui.d, "13-exec-signed-in")
    result = {
        "org_id": org_id,
        "role": ui.css("#claim-role").text,
        "seat": ui.css("#claim-seat").text,
        "email": ui.css("#claim-email").text,
    }
    _webhook_log(ui, client_url)
    return result


async def test_blank_organization_set_up_end_to_end(
    driver: Any,
    broker: RunningBroker,
    dns: FakeDnsServer,
    idp: FakeSamlIdP,
    oidc_idp: FakeOidcIdP,
    exec_app: FakeExecApp,
    sink: WebhookSink,
) -> None:
    ui = Ui(driver, broker.url)
    result = await asyncio.to_thread(_setup_script, ui, broker, dns, idp, oidc_idp, exec_app, sink)
    assert result["email"] == "ann@acme.test"
    assert result["role"] == "owner" and result["seat"] == "full"
    assert sink.accepted()  # Exec's receiver got the events the delivery log lists
    org = broker.store.organizations.get(result["org_id"])
    assert org.sso_enabled and org.dsync_enabled
    actors = {e.actor for e in broker.store.audit.list(result["org_id"], limit=200)}
    assert any(a.startswith("admin:adm_") for a in actors)


def _expired_certificate() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Old IdP signing key")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now - dt.timedelta(days=35))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _refusals_script(ui: Ui, broker: RunningBroker, tmp_file: str) -> None:
    from selenium.webdriver.common.by import By

    ui.go("/admin/login")
    ui.type("#username", "alice")
    ui.type("#password", PASSWORD)
    ui.button("Sign in")
    ui.until_text("New organization")
    org_id = _create_org(ui, "Beta")

    # CSRF: a form whose token was tampered with is refused before anything changes.
    ui.d.execute_script(
        'document.querySelector(\'#domains form input[name=csrf], form[action$="/domains"] '
        "input[name=csrf]').value = 'forged';"
    )
    ui.type("#domains-input", "beta.test")
    ui.button("Add")
    ui.until_text("did not come from this site")
    screenshot(ui.d, "20-csrf-refused")
    assert broker.store.domains.list(org_id) == []

    # A metadata file that is not XML.
    ui.go(f"/admin/orgs/{org_id}/connections/new?type=saml&preset=entra")
    ui.button("Continue")
    ui.until_text("2a. Paste these into Microsoft Entra ID")
    draft_url = ui.d.current_url
    ui.css("input[name=source][value=xml]").click()
    ui.css("#metadata_file").send_keys(tmp_file)
    ui.button("Check and save")
    ui.until_text("The metadata is not well-formed XML.")
    screenshot(ui.d, "21-metadata-not-xml")

    # An expired IdP certificate, typed by hand: shown clearly on the connection page.
    ui.go(draft_url)
    ui.css("input[name=source][value=manual]").click()
    ui.type("#entity_id", "https://idp.beta.test/saml")
    ui.type("#sso_url", "https://idp.beta.test/sso")
    ui.d.find_element(By.ID, "certificate").send_keys(_expired_certificate())
    ui.button("Check and save")
    ui.until_text("expired on")
    screenshot(ui.d, "22-expired-idp-certificate")

    # A non-HTTPS SSO URL is refused on the spot.
    ui.go(f"/admin/orgs/{org_id}/connections/new?type=saml&preset=generic")
    ui.button("Continue")
    ui.until_text("2a. Paste these into")
    ui.css("input[name=source][value=manual]").click()
    ui.type("#entity_id", "https://idp.beta.test/saml")
    ui.type("#sso_url", "http://idp.beta.test/sso")
    ui.d.find_element(By.ID, "certificate").send_keys(_expired_certificate())
    ui.button("Check and save")
    ui.until_text("The single sign-on URL must use HTTPS.")

    # The network allow-list: a CSRF-protected form.
    ui.go("/admin/network")
    ui.type("#host", "ADFS.Beta.Test.")
    ui.type("#note", "on-prem AD FS")
    ui.button("Allow host")
    ui.until_text("adfs.beta.test may now resolve to private addresses.")
    assert "127.0.0.1" in ui.css("#hosts").text  # the setting's entry, read-only
    screenshot(ui.d, "24-network-allow-list")
    ui.d.execute_script("window.confirm = function () { return true; };")  # the admin agrees
    ui.button("Remove")
    ui.until_text("adfs.beta.test is off the allow-list.")

    # Wrong passwords: after five, sign-in pauses even for the right one.
    ui.button("Sign out", within="header")
    ui.until_text("Sign in to the setup UI")
    for _ in range(5):
        ui.type("#username", "alice")
        ui.type("#password", "not the password")
        ui.button("Sign in")
    ui.until_text("Too many failed attempts")
    ui.type("#username", "alice")
    ui.type("#password", PASSWORD)
    ui.button("Sign in")
    ui.until_text("Too many failed attempts")
    screenshot(ui.d, "25-sign-in-throttled")


async def test_refusals_are_shown_in_plain_words(
    driver: Any, broker: RunningBroker, tmp_path: Any
) -> None:
    create_admin(broker)
    not_xml = tmp_path / "metadata.xml"
    not_xml.write_text("this is not XML, it is a note that says: download the metadata\n")
    await asyncio.to_thread(_refusals_script, Ui(driver, broker.url), broker, str(not_xml))
    actions = [e.action for e in broker.store.audit.list(limit=100)]
    assert actions.count("admin.sign_in_failed") == 5
