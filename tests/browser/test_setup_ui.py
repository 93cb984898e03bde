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
import urllib.request
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from broker.core import admin_sessions
from tests.admin.conftest import PASSWORD, create_admin
from tests.browser.conftest import screenshot
from tests.browser.exec_app import FakeExecApp
from tests.conftest import RunningBroker
from tests.fakes.dns_server import FakeDnsServer
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


def _setup_script(
    ui: Ui, broker: RunningBroker, dns: FakeDnsServer, idp: FakeSamlIdP, exec_app: FakeExecApp
) -> dict[str, Any]:
    token = admin_sessions.issue_setup_token(broker.store, broker.services.clock, 600)
    _sign_in_first_run(ui, f"{broker.url}/admin/setup?token={token}")
    screenshot(ui.d, "02-organizations")
    org_id = _create_org(ui, "Acme")
    _add_and_verify_domain(ui, dns, "acme.test")

    # Connection wizard: Okta preset, metadata URL from the test IdP.
    ui.link("Add a connection")
    ui.link("Okta")
    ui.until_text("Attribute statements")
    screenshot(ui.d, "05-connection-wizard-okta")
    ui.type("#metadata_url", idp.base_url + "/metadata")
    ui.button("Check and save")
    ui.until_text("Paste these into Okta")
    connection_url = ui.d.current_url
    sp_metadata_url = ui.css("#sp-metadata-url").text
    assert ui.css("#acs-url").text.endswith("/acs")
    assert ui.css("#activate").get_attribute("disabled") is not None  # untested: no activation
    screenshot(ui.d, "06-connection")
    with urllib.request.urlopen(sp_metadata_url, timeout=10) as response:
        idp.add_sp_metadata(response.read())  # the admin pastes our metadata into the IdP

    ui.button("Test login")
    ui.until_url("/test-result")
    ui.until_text("ann@acme.test")
    screenshot(ui.d, "07-test-login-result")
    ui.go(connection_url)
    ui.button("Activate")
    ui.until_text("Connection active")

    ui.go(f"/admin/orgs/{org_id}")
    ui.click("#sso input[name=confirm]")
    ui.button("Enable SSO")
    ui.until_text("SSO is on")
    screenshot(ui.d, "08-sso-on")

    ui.go(f"/admin/orgs/{org_id}/directory")
    ui.button("Enable Directory Sync")
    ui.until_text("shown only once")
    scim_token = ui.css("#scim-token").text
    scim_base = ui.css("#scim-base-url").text
    ui.click("#copy-token")
    ui.wait.until(lambda d: ui.css("#copy-token").text == "Copied")
    screenshot(ui.d, "09-directory-sync-token")
    ui.type("#group", "Engineering")
    ui.type("#role", "admin")
    ui.css("#seat option[value=full]").click()
    ui.type("#priority", "10")
    ui.button("Add mapping")
    ui.until_text("Members of Engineering now get the role admin.")

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
    _scim(
        scim_base,
        scim_token,
        "/Groups",
        {"schemas": [SCIM_GROUP], "displayName": "Engineering", "members": [{"value": user["id"]}]},
    )
    ui.go(f"/admin/orgs/{org_id}/directory?preview_user={user['id']}")
    ui.until_text("ann@acme.test would get role admin and a full seat.")
    assert "POST /Users 201" in ui.page()  # the SCIM request log
    screenshot(ui.d, "10-directory-users-and-scim-log")

    ui.go("/admin/clients")
    ui.type("#redirect_uris", exec_app.redirect_uri)
    ui.button("Register client")
    ui.until_text("shown only once")
    exec_app.client_secret = ui.css("#client-secret").text
    exec_app.client_id = ui.css("#client-id").text
    screenshot(ui.d, "11-client")

    ui.go(f"{exec_app.base_url}/login?login_hint=ann@acme.test")
    ui.until_text("Signed in to Exec")
    screenshot(ui.d, "12-exec-signed-in")
    return {
        "org_id": org_id,
        "role": ui.css("#claim-role").text,
        "seat": ui.css("#claim-seat").text,
        "email": ui.css("#claim-email").text,
    }


async def test_blank_organization_set_up_end_to_end(
    driver: Any,
    broker: RunningBroker,
    dns: FakeDnsServer,
    idp: FakeSamlIdP,
    exec_app: FakeExecApp,
) -> None:
    ui = Ui(driver, broker.url)
    result = await asyncio.to_thread(_setup_script, ui, broker, dns, idp, exec_app)
    assert result["email"] == "ann@acme.test"
    assert result["role"] == "admin" and result["seat"] == "full"
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
    ui.go(f"/admin/orgs/{org_id}/connections/new?preset=entra")
    ui.until_text("Microsoft Entra ID")
    ui.css("input[name=source][value=xml]").click()
    ui.css("#metadata_file").send_keys(tmp_file)
    ui.button("Check and save")
    ui.until_text("The metadata is not well-formed XML.")
    screenshot(ui.d, "21-metadata-not-xml")

    # An expired IdP certificate, typed by hand: shown clearly on the connection page.
    ui.go(f"/admin/orgs/{org_id}/connections/new?preset=generic")
    ui.css("input[name=source][value=manual]").click()
    ui.type("#entity_id", "https://idp.beta.test/saml")
    ui.type("#sso_url", "https://idp.beta.test/sso")
    ui.d.find_element(By.ID, "certificate").send_keys(_expired_certificate())
    ui.button("Check and save")
    ui.until_text("expired on")
    screenshot(ui.d, "22-expired-idp-certificate")

    # A non-HTTPS SSO URL is refused on the spot.
    ui.go(f"/admin/orgs/{org_id}/connections/new?preset=generic")
    ui.css("input[name=source][value=manual]").click()
    ui.type("#entity_id", "https://idp.beta.test/saml")
    ui.type("#sso_url", "http://idp.beta.test/sso")
    ui.d.find_element(By.ID, "certificate").send_keys(_expired_certificate())
    ui.button("Check and save")
    ui.until_text("The single sign-on URL must use HTTPS.")

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
    screenshot(ui.d, "23-sign-in-throttled")


async def test_refusals_are_shown_in_plain_words(
    driver: Any, broker: RunningBroker, tmp_path: Any
) -> None:
    create_admin(broker)
    not_xml = tmp_path / "metadata.xml"
    not_xml.write_text("this is not XML, it is a note that says: download the metadata\n")
    await asyncio.to_thread(_refusals_script, Ui(driver, broker.url), broker, str(not_xml))
    actions = [e.action for e in broker.store.audit.list(limit=100)]
    assert actions.count("admin.sign_in_failed") == 5
