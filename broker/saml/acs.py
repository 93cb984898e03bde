"""The Assertion Consumer Service: a posted SAMLResponse → a verified identity → the core.

SAML Bindings §3.5 (HTTP-POST), Profiles §4.1.4 (Web Browser SSO response processing):
  1. Which request does it answer? Its InResponseTo must name an AuthnRequest this broker
     issued FOR THIS CONNECTION (`saml_requests`); that row names the flow. No InResponseTo:
     unsolicited (IdP-initiated), accepted only when the connection allows it.
     RelayState is never trusted on its own: when it names a flow it must be that flow.
  2. broker.saml.verify checks signature, wrapping, issuer, audience, recipient,
     destination, time window (skew from `saml.clock_skew_seconds`), InResponseTo and
     algorithms (SHA-1 only when the connection opted in).
  3. One-time use: the request row is consumed and the assertion ID inserted into the
     replay cache in one store transaction shared by all workers; a duplicate is "replay".
  4. Attributes → UpstreamIdentity through the preset and the admin's overrides
     (broker.saml.mapping); Entra group overage falls back to Directory Sync groups.
  5. core.login.complete_upstream decides (policy, domain rule, session, code).
Every attempt, good or bad, is kept for the admin with the failed check, expected vs got.
A refusal before an IdP signature verified is anyone's junk POST: it gets a throttled
entry in the recent attempts and a log line, never an audit row or an event (SIGNED_CHECKS).

Rippling puts a made-up InResponseTo on IdP-initiated responses (presets.RIPPLING): for a
connection with that preset flag, an InResponseTo that no connection ever issued is
treated as unsolicited (and so needs allow_unsolicited); one issued for ANOTHER connection
is still refused.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NoReturn

from broker.core import audit, flows, login
from broker.core import connections as core_connections
from broker.core.models import Connection, UpstreamIdentity
from broker.core.ports import Flow, SamlLoginAttempt, Store
from broker.errors import LoginRefused, NotFound
from broker.saml import endpoints, mapping, sp_keys
from broker.saml.presets import get_preset
from broker.saml.verify import SamlValidationError, VerifiedResponse, VerifyPolicy, verify_response
from broker.saml.xmlsafe import UnsafeXmlError, parse_untrusted
from broker.web.services import Services

log = logging.getLogger(__name__)

# The checks broker.saml.verify makes only after an IdP signature verified (it reads
# these fields from the signed assertion, `_read`); a refusal for any other check (bad
# base64, DTDs, wrapping, signature, decryption, an unsigned error Status, an
# InResponseTo we never issued) may come from anyone.
SIGNED_CHECKS = frozenset(
    {
        "issuer",
        "destination",
        "in_response_to",
        "unsolicited",
        "not_yet_valid",
        "expired",
        "audience",
        "recipient",
        "subject_expired",
    }
)
MAX_RESPONSE_BYTES = 1024 * 1024  # decoded; real responses are a few KiB (Entra with groups ~50)
AUTHN_METHODS_CLAIM = "http://schemas.microsoft.com/claims/authnmethodsreferences"


@dataclass(frozen=True)
class Binding:
    """What the response claims to answer, after checking it against the store."""

    flow: Flow | None
    expected_in_response_to: str | None
    kind: str  # "sp_initiated" | "test_login" | "idp_initiated"
    note: str | None = None
    flow_id: str | None = None  # from our AuthnRequest record; `flow` once loaded


@dataclass(frozen=True)
class AcsResult:
    outcome: login.LoginOutcome
    connection_id: str
    flow_id: str | None
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


class AcsRefused(Exception):
    """A refused response; `public` for the browser, the rest for the admin.
    `test_flow_id` names the admin's test login it refused (its result page shows why)."""

    def __init__(
        self, reason: str, public: str, status: int = 400, test_flow_id: str | None = None
    ) -> None:
        super().__init__(public)
        self.reason = reason
        self.public = public
        self.status = status
        self.test_flow_id = test_flow_id


def decode_response(value: str) -> bytes:
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SamlValidationError("malformed", "base64 SAMLResponse", "undecodable") from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise SamlValidationError("malformed", f"at most {MAX_RESPONSE_BYTES} bytes", str(len(raw)))
    return raw


def peek_in_response_to(xml: bytes) -> str | None:
    """The claimed InResponseTo, read only to find what we expect; verify() checks it."""
    try:
        value = parse_untrusted(xml).get("InResponseTo")
    except UnsafeXmlError:
        return None  # verify() reports the parse failure with its own check name
    return value or None


def bind(
    store: Store,
    services: Services,
    connection: Connection,
    claimed: str | None,
    relay_state: str | None,
) -> Binding:
    """InResponseTo ↔ flow: only requests we issued for this connection are answered."""
    if claimed is None:
        return Binding(None, None, "idp_initiated")
    record = store.saml.find_request(claimed)
    if record is None:
        preset = get_preset(connection.preset)
        if preset.placeholder_in_response_to_on_idp_initiated and connection.config.get(
            "allow_unsolicited", True
        ):
            return Binding(
                None,
                claimed,
                "idp_initiated",
                note=f"{preset.key} placeholder InResponseTo treated as unsolicited",
            )
        raise SamlValidationError(
            "in_response_to", "an AuthnRequest ID this broker issued", claimed
        )
    if record.connection_id != connection.id:
        raise SamlValidationError(
            "in_response_to",
            f"a request of {connection.id}",
            f"a request of {record.connection_id}",
        )
    if relay_state and relay_state.startswith("flow_") and relay_state != record.flow_id:
        raise SamlValidationError("relay_state", record.flow_id, relay_state)
    return Binding(None, claimed, "sp_initiated", flow_id=record.flow_id)


def with_flow(services: Services, connection: Connection, binding: Binding) -> Binding:
    """Load the bound flow (live, this connection's, still waiting for the IdP). Done after
    the replay check, so that a replayed response is reported as the replay it is."""
    if binding.flow_id is None:
        return binding
    flow = login.load_flow_for_upstream(
        services.store, services.clock, binding.flow_id, connection.id
    )
    kind = "test_login" if flow.kind == "test_login" else "sp_initiated"
    return replace(binding, flow=flow, kind=kind)


def policy_for(services: Services, connection: Connection, binding: Binding) -> VerifyPolicy:
    config, public_url = connection.config, services.settings.public_url
    return VerifyPolicy(
        idp_entity_id=str(config.get("idp_entity_id") or ""),
        idp_certificates=core_connections.trusted_certificates(connection),
        sp_entity_id=endpoints.sp_entity_id(public_url, connection.id),
        acs_url=endpoints.acs_url(public_url, connection.id),
        expected_in_response_to=binding.expected_in_response_to,
        allow_unsolicited=bool(config.get("allow_unsolicited", True)),
        clock_skew_seconds=int(services.settings.get("saml.clock_skew_seconds")),
        allow_sha1=bool(config.get("allow_sha1", False)),
        decryption_keys=sp_keys.load(services.certs_dir).decryption_keys(),
    )


def consume_once(
    store: Store, connection: Connection, binding: Binding, verified: VerifiedResponse, now: float
) -> None:
    """Replay cache + request consumption, atomically, for every worker (Profiles §4.1.4.5)."""
    with store.transaction():
        if not store.saml.remember_assertion(
            verified.assertion_id, connection.id, now, verified.assertion_not_on_or_after
        ):
            raise SamlValidationError(
                "replay", "an assertion ID not seen before", verified.assertion_id
            )
        if (
            binding.flow_id is not None
            and binding.expected_in_response_to
            and not store.saml.consume_request(binding.expected_in_response_to, connection.id, now)
        ):
            raise SamlValidationError(
                "in_response_to",
                "an unused, unexpired AuthnRequest",
                binding.expected_in_response_to,
            )


def to_identity(connection: Connection, verified: VerifiedResponse) -> UpstreamIdentity:
    """Map attributes with the preset and overrides; acr/amr. Entra's group overage is only
    flagged here: the core takes the groups from Directory Sync when it can."""
    preset = get_preset(connection.preset)
    overrides = connection.config.get("attribute_overrides") or {}
    mapped = mapping.map_attributes(
        preset, verified.attributes, verified.name_id, verified.name_id_format, overrides
    )
    acr, amr = mapping.authn_context_to_acr_amr(
        verified.authn_context_class_ref, verified.attributes.get(AUTHN_METHODS_CLAIM, ())
    )
    return UpstreamIdentity(
        connection_id=connection.id,
        idp_subject=mapped.idp_id,
        email=mapped.email,
        given_name=mapped.given_name,
        family_name=mapped.family_name,
        groups=tuple(mapped.groups),
        groups_overage=mapped.groups_overage,
        acr=acr,
        amr=tuple(amr),
        raw_attributes={k: list(v) for k, v in mapped.raw_attributes.items()},
        authn_instant=_epoch(verified.authn_instant),
    )


def _epoch(instant: str | None) -> float | None:
    if not instant:
        return None
    try:
        return datetime.fromisoformat(instant.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def process(
    services: Services,
    connection_id: str,
    saml_response: str,
    relay_state: str | None,
    actor: audit.Actor,
) -> AcsResult:
    """Runs on the store thread. Raises AcsRefused after recording the refusal."""
    store, now = services.store, services.clock.now()
    try:
        connection = store.connections.get(connection_id)
    except NotFound:
        raise AcsRefused("unknown_connection", "This sign-in address is not valid.", 404) from None
    if connection.type != "saml":
        raise AcsRefused("unknown_connection", "This sign-in address is not valid.", 404)
    binding: Binding | None = None
    signed = False  # did an IdP signature vouch for what was refused? (see SIGNED_CHECKS)
    try:
        xml = decode_response(saml_response)
        binding = bind(store, services, connection, peek_in_response_to(xml), relay_state)
        try:
            verified = verify_response(xml, policy_for(services, connection, binding), now)
        except SamlValidationError as exc:
            signed = exc.check in SIGNED_CHECKS
            raise
        signed = True
        consume_once(store, connection, binding, verified, now)
        binding = with_flow(services, connection, binding)
        identity = to_identity(connection, verified)
    except SamlValidationError as exc:
        refused = LoginRefused(exc.check, exc.public, exc.detail)
        _refuse(services, actor, connection, binding, refused, exc.expected, exc.got, signed)
    except LoginRefused as exc:
        _refuse(services, actor, connection, binding, exc, None, None, signed)
    assert binding is not None
    detail: dict[str, Any] = {
        **({"note": binding.note} if binding.note else {}),
        "signed": sorted(verified.signed),
        "encrypted": verified.encrypted,
    }
    flow_id = binding.flow.id if binding.flow else None
    try:
        outcome = login.complete_upstream(
            store,
            services.clock,
            connection_id=connection.id,
            flow_id=flow_id,
            identity=identity,
            actor=actor,
            config=services.login_config,
        )
    except LoginRefused as exc:  # the core already wrote the flow row, audit and event
        _remember(
            store,
            now,
            actor,
            connection,
            binding,
            "refused",
            exc.reason,
            None,
            exc.detail,
            verified.name_id,
            detail,
        )
        test_flow = flow_id if binding.kind == "test_login" else None
        raise AcsRefused(exc.reason, exc.public, test_flow_id=test_flow) from exc
    outcome_name, reason = _test_outcome(store, outcome)
    detail.update(outcome.notes)
    _remember(
        store,
        now,
        actor,
        connection,
        binding,
        outcome_name,
        reason,
        None,
        None,
        verified.name_id,
        detail,
    )
    return AcsResult(outcome, connection.id, flow_id, binding.kind, detail)


def _test_outcome(store: Store, outcome: login.LoginOutcome) -> tuple[str, str | None]:
    if not outcome.test_login or outcome.flow_id is None:
        return "succeeded", None
    result = login.test_login_result(store, outcome.flow_id)
    if result.get("status") == "succeeded":
        return "succeeded", None
    return "refused", str(result.get("error") or "refused")


def _refuse(
    services: Services,
    actor: audit.Actor,
    connection: Connection,
    binding: Binding | None,
    exc: LoginRefused,
    expected: str | None,
    got: str | None,
    signed: bool,
) -> NoReturn:
    """Write the refusal down. Only a response an IdP signature vouched for is a real
    user's refused login (audit log + `authentication.sso_failed` event to Exec); anything
    before that is anyone's junk POST (connection ids are public), which gets a throttled
    entry in the connection's recent attempts and a log line, never an event or an
    audit row."""
    store, now = services.store, services.clock.now()
    flow = binding.flow if binding else None
    if flow is None and binding is not None and binding.flow_id is not None:
        flow = _test_flow(store, binding.flow_id, connection.id)
    detail: dict[str, Any] = {"detail": exc.detail}
    if signed:
        flows.record_refusal(
            store,
            now,
            actor,
            exc,
            flow=flow,
            organization_id=connection.organization_id,
            connection_id=connection.id,
        )
    else:
        log.info(
            "unauthenticated SAML response refused",
            extra={
                "request_id": actor.correlation_id,
                "connection_id": connection.id,
                "reason": exc.reason,
                "detail": exc.detail,
            },
        )
        if flow is not None:  # the admin's test login: its result page says why
            flows.record_test_refusal(store, now, exc, flow)
        detail["unverified"] = True
    _remember(
        store,
        now,
        actor,
        connection,
        binding,
        "refused",
        exc.reason,
        expected,
        got,
        None,
        detail,
        throttled=not signed,
    )
    test_flow = flow.id if flow is not None and flow.kind == "test_login" else None
    raise AcsRefused(exc.reason, exc.public, test_flow_id=test_flow) from exc


def _test_flow(store: Store, flow_id: str, connection_id: str) -> Flow | None:
    """The admin's test login a refused response answered (checked before the flow was
    loaded, e.g. a bad signature), so that its result page says why; never a real login's
    flow, which stays as it is for the genuine answer still to come."""
    try:
        flow = store.flows.get(flow_id)
    except NotFound:
        return None
    live = flow.kind == "test_login" and flow.status == "upstream"
    return flow if live and flow.connection_id == connection_id else None


def _remember(
    store: Store,
    now: float,
    actor: audit.Actor,
    connection: Connection,
    binding: Binding | None,
    outcome: str,
    check: str | None,
    expected: str | None,
    got: str | None,
    subject: str | None,
    detail: dict[str, Any],
    *,
    throttled: bool = False,
) -> None:
    kind = binding.kind if binding else "idp_initiated"
    record = (
        core_connections.record_unverified_attempt if throttled else core_connections.record_attempt
    )
    record(
        store,
        SamlLoginAttempt(
            connection_id=connection.id,
            at=now,
            kind=kind,  # type: ignore[arg-type]
            outcome=outcome,  # type: ignore[arg-type]
            flow_id=binding.flow.id if binding and binding.flow else None,
            check=check,
            expected=expected,
            got=got,
            subject=subject,
            correlation_id=actor.correlation_id,
            detail=detail,
        ),
    )
