"""SP-initiated login, step 1: the flow the core handed us → an AuthnRequest to the IdP.

SAML Profiles §4.1.3 (Web Browser SSO, SP-initiated): the AuthnRequest travels by
HTTP-Redirect (default) or HTTP-POST (broker.saml.authn), signed when the connection or the
IdP's metadata asks. Its ID is kept in the store, bound to the flow and the connection
(`saml_requests`), so that any worker can check the InResponseTo of the answer; RelayState
is the flow id, which the ACS only uses after checking it against that binding.
`ForceAuthn` follows the OIDC `prompt=login` or `max_age` of the flow's authorize request
(core.login.reauthentication): SAML has no max_age, so any max_age the broker session
could not meet asks the IdP to authenticate the user afresh (SAML Core §3.4.1).

A test login also gets a random browser token (cookie); only the browser that started the
test may read its result page.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from broker.core import login
from broker.core.ports import SamlRequestRecord
from broker.errors import LoginRefused
from broker.saml import endpoints, sp_keys
from broker.saml.authn import AuthnPost, AuthnRedirect, build_authn_request
from broker.saml.presets import get_preset
from broker.web.services import Services


@dataclass(frozen=True)
class StartStep:
    message: AuthnRedirect | AuthnPost
    flow_id: str
    detail: dict[str, Any] = field(default_factory=dict)


def new_request_id() -> str:
    # xs:ID must start with a letter or underscore (SAML Core §1.3.4); 160 random bits.
    return "_" + secrets.token_hex(20)


def prepare(services: Services, connection_id: str, flow_id: str) -> StartStep:
    """Runs on the store thread: build the AuthnRequest and bind its ID to the flow."""
    store, clock = services.store, services.clock
    flow = login.load_flow_for_upstream(store, clock, flow_id, connection_id)
    connection = store.connections.get(connection_id)
    if connection.type != "saml":
        raise LoginRefused(
            "not_saml",
            "This sign-in link is not valid.",
            f"{connection_id} is a {connection.type} connection",
        )
    config = connection.config
    sso_urls: dict[str, str] = config.get("sso_urls") or {}
    binding = config.get("binding", "redirect")
    if binding not in sso_urls:  # the IdP offers only the other binding (JumpCloud: POST)
        binding = "post" if "post" in sso_urls else "redirect"
    keys = sp_keys.load(services.certs_dir)
    public_url = services.settings.public_url
    request_id = new_request_id()
    preset = get_preset(connection.preset)
    name_id_format = config.get("name_id_format") or preset.name_id_format
    sign = bool(config.get("sign_requests") or config.get("want_authn_requests_signed"))
    now = clock.now()
    message = build_authn_request(
        request_id=request_id,
        sp_entity_id=endpoints.sp_entity_id(public_url, connection_id),
        acs_url=endpoints.acs_url(public_url, connection_id),
        idp_sso_url=sso_urls[binding],
        binding=binding,
        relay_state=flow.id,
        force_authn=bool(login.reauthentication(flow)),
        requested_authn_context=config.get("requested_authn_context") or None,
        name_id_format=name_id_format,
        sign=sign,
        sign_alg=config.get("sign_alg", "rsa-sha256"),
        sp_key_pem=keys.current.key_pem if sign else None,
        sp_cert_pem=keys.current.cert_pem if sign else None,
        issue_instant=now,
    )
    upstream: dict[str, Any] = {
        "authn_request_id": request_id,
        "relay_state": flow.id,
        "binding": binding,
        "signed": sign,
    }
    with store.transaction():
        store.saml.add_request(
            SamlRequestRecord(request_id, connection_id, flow.id, now, flow.expires_at)
        )
        login.record_upstream_request(store, clock, flow.id, connection_id, upstream)
    return StartStep(message, flow.id, upstream)
