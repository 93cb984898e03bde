"""OIDC provider presets: which claims carry email, names and groups, per IdP vendor.

One frozen `OidcPreset` per vendor (DESIGN §2 "connection"; STYLE "quirks are declared, not
scattered"). `broker.upstream_oidc.mapping` reads the claim candidates, in order, after any
per-connection override (`config["claims"]`). Each preset cites where its names come from;
`documented=False` marks a vendor whose OIDC claim names we could not find in public
documentation, so the preset falls back to the standard claims of OIDC Core §5.1 and the
admin is told to check (or override) the group claim.

Never put secrets or tenant-specific values here; presets are code, shared by every tenant.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OidcPreset:
    key: str
    display_name: str
    source: str  # where the claim names and steps are documented
    email: tuple[str, ...] = ("email",)
    given_name: tuple[str, ...] = ("given_name",)
    family_name: tuple[str, ...] = ("family_name",)
    name: tuple[str, ...] = ("name",)
    groups: tuple[str, ...] = ("groups",)
    roles: tuple[str, ...] = ()
    # A stable, immutable user id when `sub` is not the one to key on; default is `sub`.
    idp_id: tuple[str, ...] = ()
    extra_scopes: tuple[str, ...] = ()  # asked for on top of the connection's scopes
    guidance: tuple[str, ...] = ()
    documented: bool = True
    # --- declared quirks ---
    # Entra replaces `groups` with `_claim_names`/`_claim_sources` above 200 groups.
    groups_overage_claim_names: bool = False
    # Google: the `hd` claim names the Workspace domain; checked against the connection's
    # `hosted_domain` when set, and sent as the `hd` authorization parameter as a hint.
    hosted_domain_claim: str | None = None

    def candidates(self, field: str) -> tuple[str, ...]:
        value: tuple[str, ...] = getattr(self, field)
        return value


_COMMON_STEPS = (
    "Create a web application (confidential client) using the authorization code flow.",
    "Set its sign-in redirect URI to the broker's callback URL shown here.",
    "Copy the issuer URL, the client ID and the client secret into the broker.",
)

PRESETS: dict[str, OidcPreset] = {
    p.key: p
    for p in (
        OidcPreset(
            key="okta",
            display_name="Okta",
            # developer.okta.com/docs/guides/customize-tokens-groups-claim/ : a groups claim
            # exists only once an admin adds one to the app (org server) or the custom
            # authorization server, and the custom server releases it with the `groups` scope.
            source="https://developer.okta.com/docs/guides/customize-tokens-groups-claim/",
            extra_scopes=("groups",),
            guidance=(
                *_COMMON_STEPS,
                "Add a `groups` claim (filter: Matches regex `.*` or your prefix) to the ID "
                "token; with a custom authorization server also add a `groups` scope.",
            ),
        ),
        OidcPreset(
            key="entra",
            display_name="Microsoft Entra ID",
            # learn.microsoft.com/entra/identity-platform/id-token-claims-reference and
            # .../how-to-connect-fed-group-claims: `groups` holds group object ids (200 at
            # most in a JWT, then `_claim_names`/`_claim_sources` point at Graph), `roles` the
            # app roles, `oid` the immutable user id within the tenant `tid`, `email` is an
            # optional claim and `preferred_username` usually the UPN.
            source="https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference",
            email=("email", "preferred_username", "upn"),
            roles=("roles",),
            idp_id=("oid",),
            guidance=(
                "Register an application (single tenant) with a Web redirect URI set to the "
                "broker's callback URL; create a client secret.",
                "Use the issuer https://login.microsoftonline.com/<tenant id>/v2.0 (the "
                "tenant-specific one; `common` is refused because its issuer varies).",
                "Token configuration: add the optional `email` claim and a groups claim "
                "(Security groups or groups assigned to the application).",
            ),
            groups_overage_claim_names=True,
        ),
        OidcPreset(
            key="google",
            display_name="Google Workspace",
            # developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload:
            # `hd` is the Workspace domain of the account (absent for consumer accounts);
            # Google sends no groups claim.
            source="https://developers.google.com/identity/openid-connect/openid-connect",
            groups=(),
            hosted_domain_claim="hd",
            guidance=(
                "In Google Cloud console, create an OAuth client ID of type Web application, "
                "internal to your organization, with the broker's callback URL.",
                "Use the issuer https://accounts.google.com; set the hosted domain so that "
                "only accounts of your Workspace domain can sign in.",
                "Google sends no groups: use Directory Sync for groups.",
            ),
        ),
        OidcPreset(
            key="onelogin",
            display_name="OneLogin",
            # developers.onelogin.com/openid-connect/scopes: standard claims by scope; groups
            # are released with the `groups` scope once the app's Parameters map them.
            source="https://developers.onelogin.com/openid-connect/scopes",
            extra_scopes=("groups",),
            guidance=(
                "Add the 'OpenId Connect (OIDC)' app; set the Login Url and Redirect URI to "
                "the broker's callback URL; Token Endpoint authentication: POST or Basic.",
                "In Parameters, map Groups to the user's roles or groups.",
                "Use the issuer https://<subdomain>.onelogin.com/oidc/2.",
            ),
        ),
        OidcPreset(
            key="pingone",
            display_name="PingOne",
            # docs.pingidentity.com/pingone/applications/p1_edit_oidc_resource.html and the
            # Application Attribute Mapping API: custom attributes (e.g. groups from
            # `memberOfGroupNames`) are released in the ID token whatever the scopes.
            source="https://developer.pingidentity.com/pingone-api/platform/applications/"
            "application-attribute-mapping.html",
            guidance=(
                *_COMMON_STEPS,
                "Attribute mappings: add `groups` mapped to Group Names (memberOfGroupNames).",
                "Use the issuer https://auth.pingone.<region>/<environment id>/as.",
            ),
        ),
        OidcPreset(
            key="jumpcloud",
            display_name="JumpCloud",
            # jumpcloud.com/support/oidc-attributes-claims: standard scopes openid, profile,
            # email; group attributes are added under Attribute Mapping with an admin-chosen
            # claim name (we default to `groups`).
            source="https://jumpcloud.com/support/oidc-attributes-claims",
            guidance=(
                "Add a Custom OIDC App; set the redirect URI to the broker's callback URL and "
                "client authentication to client_secret_basic.",
                "Attribute Mapping: enable the email and profile scopes and add a group "
                "attribute named `groups`.",
                "Use the issuer https://oauth.id.jumpcloud.com/.",
            ),
        ),
        OidcPreset(
            key="rippling",
            display_name="Rippling",
            # Rippling documents its SAML custom apps publicly; we found no public page on its
            # OIDC claim names, so this preset uses the standard claims (OIDC Core §5.1).
            source="https://openid.net/specs/openid-connect-core-1_0.html#StandardClaims",
            documented=False,
            guidance=(
                *_COMMON_STEPS,
                "Check which claim carries groups in your Rippling app and set it with "
                "`--claim groups=<name>` if it is not `groups`.",
            ),
        ),
        OidcPreset(
            key="cyberark",
            display_name="CyberArk Identity",
            # identity-developer.cyberark.com/docs/claims: standard claims by scope; extra
            # claims are defined on the app's OpenID Connect configuration by the admin.
            source="https://identity-developer.cyberark.com/docs/claims",
            guidance=(
                "Add a custom OpenID Connect web app; set the redirect URI to the broker's "
                "callback URL and copy the client ID and secret.",
                "Add a `groups` claim in the app's token script if groups are needed.",
                "Use the issuer https://<tenant>.id.cyberark.cloud/<application id>/.",
            ),
        ),
        OidcPreset(
            key="generic",
            display_name="Other OpenID Connect provider",
            source="https://openid.net/specs/openid-connect-core-1_0.html#StandardClaims",
            guidance=(
                *_COMMON_STEPS,
                "Release `email`, `given_name`, `family_name` and, if you use groups, a "
                "`groups` claim (or set the claim names per connection).",
            ),
        ),
    )
}


def preset(key: str) -> OidcPreset:
    """The named preset; `generic` for an unknown name (the core refuses those earlier)."""
    return PRESETS.get(key, PRESETS["generic"])
