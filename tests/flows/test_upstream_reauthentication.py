"""`max_age` reaches an upstream OIDC IdP (security review F6.2; OIDC Core §3.1.2.1): a
flow that must re-authenticate sends `prompt=login` and `max_age` upstream; a plain one
sends neither."""

from __future__ import annotations

from tests.upstream_oidc import conftest as upstream
from tests.upstream_oidc.helpers import Browser, authorize_url, make_oidc_tenant, pkce, query

settings = upstream.settings
idp = upstream.idp


async def test_upstream_oidc_gets_prompt_login_and_max_age(broker, idp):
    tenant = make_oidc_tenant(broker, idp)
    _, challenge = pkce()
    browser = Browser(idp)
    try:
        sent = []
        for extra in ({"max_age": "300"}, {}):
            hop = await browser.get(authorize_url(broker.url, tenant, challenge, **extra))
            assert hop.location is not None and hop.location.startswith("/oidc/"), hop
            start = await browser.get(broker.url + hop.location)
            assert start.location is not None
            sent.append(query(start.location))
    finally:
        await browser.close()
    assert sent[0]["prompt"] == "login" and sent[0]["max_age"] == "300"
    assert "prompt" not in sent[1] and "max_age" not in sent[1]
