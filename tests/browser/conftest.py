"""Headless Chromium (Debian's chromium + chromedriver, never a downloaded browser) for
the setup-UI tests, screenshots under artifacts/screenshots/, and the loopback servers
the tests drive: the broker, a DNS server, a SAML IdP, an OIDC IdP, Exec's OIDC client
app and its webhook receiver."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from broker.settings import Settings
from tests.api.sink import WebhookSink
from tests.browser.exec_app import FakeExecApp
from tests.conftest import RunningBroker, make_home
from tests.fakes.dns_server import FakeDnsServer
from tests.fakes.oidc_idp import FakeOidcIdP
from tests.fakes.saml_idp import FakeSamlIdP

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            # Selenium's own HTTP client leaves sockets to the GC on some paths.
            item.add_marker(pytest.mark.filterwarnings("ignore::ResourceWarning"))


@pytest.fixture
def driver() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="broker-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1366,900",  # a laptop screen
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def dns() -> Iterator[FakeDnsServer]:
    with FakeDnsServer() as server:
        yield server


@pytest.fixture
def settings(
    tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch, dns: FakeDnsServer
) -> Settings:
    return make_home(
        tmp_path,
        port,
        monkeypatch,
        BROKER_DNS_RESOLVERS=dns.address,
        BROKER_DNS_TIMEOUT_SECONDS="1",
        # The test IdP serves its metadata on loopback: allow-listed as an admin would.
        BROKER_NETWORK_PRIVATE_HOSTS_ALLOWLIST="127.0.0.1",
        # The test OIDC IdP speaks plain http on loopback (a browser would refuse its
        # test CA); this opt-in allows exactly that and nothing else.
        BROKER_UPSTREAM_OIDC_ALLOW_INSECURE_LOOPBACK="true",
        BROKER_WEBHOOKS_ALLOW_INSECURE_LOOPBACK="true",
    )


@pytest.fixture
async def idp(tmp_path: Path) -> AsyncIterator[FakeSamlIdP]:
    fake = FakeSamlIdP("https://idp.acme.test/saml", tmp_path / "idp")
    runner = await fake.start()
    yield fake
    await runner.cleanup()


@pytest.fixture
async def oidc_idp() -> AsyncIterator[FakeOidcIdP]:
    async with FakeOidcIdP() as server:
        yield server


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    receiver = WebhookSink()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def exec_app(broker: RunningBroker) -> AsyncIterator[FakeExecApp]:
    app = FakeExecApp(broker.url)
    await app.start()
    yield app
    await app.stop()


def screenshot(driver: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))  # type: ignore[attr-defined]
