"""Provider presets: per-IdP attribute names, setup guidance, defaults and declared quirks.

One frozen `Preset` per vendor (DESIGN.md §2 "connection"; STYLE.md "quirks are declared,
not scattered"). Each preset cites where its names come from. `broker.saml.mapping` reads
the attribute candidates; the setup UI shows `guidance`; the connection form takes
`sign_requests` / `allow_sha1` / `binding` as defaults; the ACS handler reads the quirk flags.

Attribute candidates are tried in order, after any admin override and before the generic
alias table (`GENERIC_ALIASES`), so a preset never maps less than `generic` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Claim URIs shared by Entra ID and AD FS (WS-Federation / WIF claim types).
CLAIM_EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
CLAIM_GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
CLAIM_SURNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
CLAIM_NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
CLAIM_UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
CLAIM_ENTRA_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
CLAIM_ENTRA_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
CLAIM_ENTRA_GROUPS_LINK = "http://schemas.microsoft.com/claims/groups.link"
CLAIM_ADFS_GROUP = "http://schemas.xmlsoap.org/claims/Group"
CLAIM_ADFS_EMAIL_1X = "http://schemas.xmlsoap.org/claims/EmailAddress"
CLAIM_ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"

# LDAP names and their OIDs (RFC 4519, RFC 4524, eduPerson), as SimpleSAMLphp, Shibboleth
# and PingFederate send them with NameFormat uri.
OID_MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
OID_GIVEN_NAME = "urn:oid:2.5.4.42"
OID_SN = "urn:oid:2.5.4.4"
OID_UID = "urn:oid:0.9.2342.19200300.100.1.1"
OID_EPPN = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
OID_EDU_UNIQUE_ID = "urn:oid:1.3.6.1.4.1.5923.1.1.1.13"
OID_IS_MEMBER_OF = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
OID_AD_MEMBER_OF = "urn:oid:1.2.840.113556.1.2.102"
SUBJECT_ID = "urn:oasis:names:tc:SAML:attribute:subject-id"  # SAML V2.0 Subject Identifier

NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

Field = Literal["email", "given_name", "family_name", "groups", "idp_id"]
FIELDS: tuple[Field, ...] = ("email", "given_name", "family_name", "groups", "idp_id")


@dataclass(frozen=True)
class AliasTable:
    email: tuple[str, ...] = ()
    given_name: tuple[str, ...] = ()
    family_name: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    # A stable, immutable user id; when none is present the NameID is the IdP subject.
    idp_id: tuple[str, ...] = ()

    def for_field(self, name: Field) -> tuple[str, ...]:
        result: tuple[str, ...] = getattr(self, name)
        return result


@dataclass(frozen=True)
class Preset:
    key: str
    display_name: str
    attributes: AliasTable
    source: str  # where the names and steps are documented
    acs_url_label: str  # what the IdP console calls our ACS URL
    entity_id_label: str  # ... and our SP entity ID
    guidance: tuple[str, ...]  # setup steps, shown in order in the setup UI
    attribute_statements: tuple[tuple[str, str], ...] = ()  # (name to type, value to pick)
    name_id_format: str | None = NAMEID_EMAIL
    binding: Literal["redirect", "post"] = "redirect"
    sign_requests: bool = False
    allow_sha1: bool = False
    # --- declared quirks ---
    # The IdP puts a made-up InResponseTo on IdP-initiated responses (treat as unsolicited).
    placeholder_in_response_to_on_idp_initiated: bool = False
    # Group values are opaque ids (Entra object ids), not names.
    groups_are_ids: bool = False
    # Group values are LDAP distinguished names (CN=…,OU=…).
    groups_are_dns: bool = False
    # Encrypts assertions whenever our SP metadata lists an encryption certificate.
    encrypts_if_sp_has_encryption_cert: bool = False
    # Fails the login when a RequestedAuthnContext cannot be met (so we send none by default).
    strict_requested_authn_context: bool = False
    idp_initiated_by_default: bool = False
    notes: tuple[str, ...] = field(default=())


GENERIC_ALIASES = AliasTable(
    email=(
        "email",
        "mail",
        "Email",
        "emailAddress",
        "emailaddress",
        "EmailAddress",
        "e-mail",
        "User.email",
        "user.email",
        CLAIM_EMAIL,
        CLAIM_ADFS_EMAIL_1X,
        OID_MAIL,
        "urn:oid:1.2.840.113549.1.9.1",  # PKCS #9 emailAddress
    ),
    given_name=(
        "firstName",
        "givenName",
        "given_name",
        "givenname",
        "FirstName",
        "first_name",
        "User.FirstName",
        "user.firstName",
        CLAIM_GIVEN,
        OID_GIVEN_NAME,
    ),
    family_name=(
        "lastName",
        "sn",
        "surname",
        "family_name",
        "familyName",
        "LastName",
        "last_name",
        "User.LastName",
        "user.lastName",
        CLAIM_SURNAME,
        OID_SN,
    ),
    groups=(
        "groups",
        "Groups",
        "memberOf",
        "memberof",
        "member_of",
        "isMemberOf",
        "group",
        CLAIM_ENTRA_GROUPS,
        CLAIM_ADFS_GROUP,
        OID_IS_MEMBER_OF,
        OID_AD_MEMBER_OF,
    ),
    idp_id=(CLAIM_ENTRA_OID, SUBJECT_ID, OID_EDU_UNIQUE_ID),
)

_COMMON_STATEMENTS = (
    ("email", "the user's primary email"),
    ("firstName", "first name"),
    ("lastName", "last name"),
    ("groups", "group names (optional)"),
)

OKTA = Preset(
    key="okta",
    display_name="Okta",
    # Okta attribute statements are admin-typed; email/firstName/lastName/groups is the
    # convention of Okta's own SAML app wizard examples and of IDP-NOTES.md.
    # Source: https://help.okta.com/en-us/content/topics/apps/oiw/sso-settings.htm
    source="https://help.okta.com/en-us/content/topics/apps/oiw/sso-settings.htm",
    attributes=AliasTable(
        email=("email",),
        given_name=("firstName",),
        family_name=("lastName",),
        groups=("groups",),
    ),
    acs_url_label="Single sign-on URL",
    entity_id_label="Audience URI (SP Entity ID)",
    guidance=(
        "In the Okta Admin Console open Applications > Create App Integration > SAML 2.0.",
        "Paste the ACS URL into 'Single sign-on URL' and keep 'Use this for Recipient URL "
        "and Destination URL' ticked.",
        "Paste the Entity ID into 'Audience URI (SP Entity ID)'.",
        "Name ID format: EmailAddress; Application username: Email.",
        "Attribute Statements: email = user.email, firstName = user.firstName, "
        "lastName = user.lastName.",
        "Group Attribute Statements: groups, filter 'Matches regex' .* (or a narrower one).",
        "On the Sign On tab copy the 'Metadata URL' and paste it here.",
    ),
    attribute_statements=(
        ("email", "user.email"),
        ("firstName", "user.firstName"),
        ("lastName", "user.lastName"),
        ("groups", "group filter Matches regex .*"),
    ),
    idp_initiated_by_default=True,
)

ENTRA = Preset(
    key="entra",
    display_name="Microsoft Entra ID",
    # Source: https://learn.microsoft.com/entra/identity-platform/reference-saml-tokens
    # (claim URIs, objectidentifier, groups as object ids, groups.link above 150 groups).
    source="https://learn.microsoft.com/entra/identity-platform/reference-saml-tokens",
    attributes=AliasTable(
        email=(CLAIM_EMAIL, CLAIM_NAME, CLAIM_UPN),
        given_name=(CLAIM_GIVEN,),
        family_name=(CLAIM_SURNAME,),
        groups=(CLAIM_ENTRA_GROUPS,),
        idp_id=(CLAIM_ENTRA_OID,),
    ),
    acs_url_label="Reply URL (Assertion Consumer Service URL)",
    entity_id_label="Identifier (Entity ID)",
    guidance=(
        "In the Entra admin center open Enterprise applications > New application > "
        "Create your own application (non-gallery), then Single sign-on > SAML.",
        "Basic SAML Configuration: paste the Entity ID into 'Identifier (Entity ID)' and the "
        "ACS URL into 'Reply URL (Assertion Consumer Service URL)'.",
        "Attributes & Claims: keep the defaults (emailaddress, givenname, surname, name); "
        "Unique User Identifier: user.userprincipalname or user.mail.",
        "Optional: Add a group claim (Security groups). Entra sends group object IDs; above "
        "150 groups it sends a groups.link claim instead, so prefer Directory Sync for groups.",
        "Copy the 'App Federation Metadata Url' from SAML Certificates and paste it here.",
        "Assign users or groups under Users and groups.",
    ),
    name_id_format=None,  # Entra picks the NameID from the Unique User Identifier claim
    groups_are_ids=True,
)

GOOGLE = Preset(
    key="google",
    display_name="Google Workspace",
    # Attribute mapping is manual in Google's custom SAML app ("Primary email" → a name the
    # admin types); NameID comes as 1.1 unspecified holding the primary email.
    # Source: https://cloudcannon.com/documentation/guides/google-saml-site-authentication/create-a-google-workspace-saml-app
    # and https://www.ory.sh/docs/polis/sso-providers/google (Primary email/First/Last name).
    source="https://cloudcannon.com/documentation/guides/google-saml-site-authentication/create-a-google-workspace-saml-app",
    attributes=AliasTable(
        email=("email",),
        given_name=("firstName",),
        family_name=("lastName",),
        groups=("groups",),
    ),
    acs_url_label="ACS URL",
    entity_id_label="Entity ID",
    guidance=(
        "In the Google Admin console open Apps > Web and mobile apps > Add app > "
        "Add custom SAML app.",
        "On 'Google Identity Provider details' download the metadata and upload it here.",
        "Service provider details: paste the ACS URL into 'ACS URL' and the Entity ID into "
        "'Entity ID'. Name ID format: EMAIL; Name ID: Basic Information > Primary email.",
        "Attribute mapping: Primary email → email, First name → firstName, "
        "Last name → lastName; optionally Group membership → groups.",
        "Turn the app ON for the organizational units that should sign in (otherwise Google "
        "answers app_not_configured_for_user).",
    ),
    attribute_statements=(
        ("email", "Primary email"),
        ("firstName", "First name"),
        ("lastName", "Last name"),
        ("groups", "Group membership"),
    ),
)

ONELOGIN = Preset(
    key="onelogin",
    display_name="OneLogin",
    # Default parameter names of OneLogin's SAML connectors: User.email, User.FirstName,
    # User.LastName, memberOf (NameFormat basic), as in its captured responses
    # (crewjam/saml testdata TestSPCanHandleOneloginResponse). Console fields:
    # Source: https://kb.aampe.com/developer-guide/sso/sso_onelogin
    source="https://kb.aampe.com/developer-guide/sso/sso_onelogin",
    attributes=AliasTable(
        email=("User.email",),
        given_name=("User.FirstName",),
        family_name=("User.LastName",),
        groups=("memberOf",),
    ),
    acs_url_label="ACS (Consumer) URL",
    entity_id_label="Audience (EntityID)",
    guidance=(
        "In OneLogin open Applications > Add App and choose 'SAML Custom Connector (Advanced)'.",
        "Configuration tab: Audience (EntityID) = the Entity ID; Recipient = the ACS URL; "
        "ACS (Consumer) URL = the ACS URL; ACS (Consumer) URL Validator = the ACS URL as a "
        "regular expression (^ at the start, $ at the end, dots and slashes escaped).",
        "SAML nameID format: Email; SAML signature element: Both or Response; "
        "SAML Signature Algorithm: SHA-256 (older tenants default to SHA-1).",
        "Parameters tab: keep email, first name and last name (sent as User.email, "
        "User.FirstName, User.LastName); add memberOf for groups and tick 'Include in SAML "
        "assertion'.",
        "More Actions > SAML Metadata downloads the IdP metadata to upload here.",
    ),
    attribute_statements=(
        ("User.email", "Email"),
        ("User.FirstName", "First Name"),
        ("User.LastName", "Last Name"),
        ("memberOf", "MemberOf (groups)"),
    ),
)

PINGFEDERATE = Preset(
    key="pingfederate",
    display_name="PingFederate",
    # The SP connection's attribute contract carries SAML_SUBJECT (sent as the NameID) plus
    # extended attributes, commonly LDAP names; InCommon-style partners use the OIDs.
    # Source: https://docs.pingidentity.com/r/en-us/pingfederate-100/help_usersessioncreationtasklet_createattributecontractstate
    source="https://docs.pingidentity.com/r/en-us/pingfederate-112/help_assertioncreationtasklet_createattributecontractstate",
    attributes=AliasTable(
        email=("mail", "email", OID_MAIL),
        given_name=("givenName", OID_GIVEN_NAME),
        family_name=("sn", OID_SN),
        groups=("memberOf", OID_IS_MEMBER_OF),
    ),
    acs_url_label="Endpoint URL (Assertion Consumer Service URL)",
    entity_id_label="Partner's Entity ID (Connection ID)",
    guidance=(
        "In PingFederate create an SP Connection (Browser SSO, SAML 2.0), importing our SP "
        "metadata or entering the values by hand.",
        "General Info: 'Partner's Entity ID (Connection ID)' = the Entity ID.",
        "Protocol Settings > Assertion Consumer Service URL: binding POST, Endpoint URL = "
        "the ACS URL.",
        "Attribute Contract: SAML_SUBJECT (name format emailAddress or unspecified) and the "
        "extended attributes mail, givenName, sn and memberOf; fulfil them from the LDAP "
        "data store.",
        "Export the IdP metadata (or copy its URL) and paste it here.",
    ),
    attribute_statements=(
        ("SAML_SUBJECT", "mail"),
        ("mail", "mail"),
        ("givenName", "givenName"),
        ("sn", "sn"),
        ("memberOf", "memberOf"),
    ),
    groups_are_dns=True,
)

PINGONE = Preset(
    key="pingone",
    display_name="PingOne",
    # saml_subject is a required mapping (sent as NameID and as an attribute); other names
    # are admin-mapped from PingOne user attributes such as ${user.email}.
    # Source: https://developer.pingidentity.com/pingone-api/platform/applications/application-attribute-mapping.html
    source="https://developer.pingidentity.com/pingone-api/platform/applications/application-attribute-mapping.html",
    attributes=AliasTable(
        email=("email", "user.email"),
        given_name=("given_name", "firstName", "user.name.given"),
        family_name=("family_name", "lastName", "user.name.family"),
        groups=("groups", "memberOfGroupNames", "user.memberOfGroupNames"),
        idp_id=("user.id",),
    ),
    acs_url_label="ACS URLs",
    entity_id_label="Entity ID",
    guidance=(
        "In the PingOne admin console open Applications > Applications > + > SAML "
        "Application, and choose 'Manually enter'.",
        "Paste the ACS URL into 'ACS URLs' and the Entity ID into 'Entity ID'.",
        "Attribute Mappings: saml_subject = Email Address (or User ID); add email = Email "
        "Address, given_name = Given Name, family_name = Family Name, groups = Group Names.",
        "Copy the IdP metadata URL from the Configuration tab and paste it here; enable the "
        "application.",
    ),
    attribute_statements=(
        ("saml_subject", "Email Address"),
        ("email", "Email Address"),
        ("given_name", "Given Name"),
        ("family_name", "Family Name"),
        ("groups", "Group Names"),
    ),
)

JUMPCLOUD = Preset(
    key="jumpcloud",
    display_name="JumpCloud",
    # Custom SAML App: admin-typed attribute names; group attribute usually memberOf;
    # free-text IdP Entity ID; metadata lists HTTP-POST only.
    # Source: https://jumpcloud.com/support/sso-application-connector-fields
    source="https://jumpcloud.com/support/sso-application-connector-fields",
    attributes=AliasTable(
        email=("email",),
        given_name=("firstName", "firstname"),
        family_name=("lastName", "lastname"),
        groups=("memberOf",),
    ),
    acs_url_label="ACS URL",
    entity_id_label="SP Entity ID",
    guidance=(
        "In the JumpCloud Admin Portal open SSO Applications > + Add New Application > "
        "Custom Application (SAML).",
        "SSO tab: IdP Entity ID = any unique value (e.g. your JumpCloud org name); SP Entity "
        "ID = the Entity ID; ACS URL = the ACS URL; SAMLSubject NameID = email, format "
        "emailAddress; Signature: Sign Assertion.",
        "Attributes: email = email, firstName = firstname, lastName = lastname; tick 'Include "
        "group attribute' and name it memberOf.",
        "Activate, assign user groups, then Export Metadata and upload it here.",
    ),
    attribute_statements=(
        ("email", "email"),
        ("firstName", "firstname"),
        ("lastName", "lastname"),
        ("memberOf", "group attribute"),
    ),
    binding="post",  # JumpCloud metadata lists HTTP-POST only
)

DUO = Preset(
    key="duo",
    display_name="Duo Single Sign-On",
    # Generic SAML Service Provider application: Map attributes from Duo/AD attributes to
    # names we choose; signs response and assertion.
    # Source: https://duo.com/docs/sso-generic
    source="https://duo.com/docs/sso-generic",
    attributes=AliasTable(
        email=("email", "Email"),
        given_name=("firstName",),
        family_name=("lastName",),
        groups=("groups",),
    ),
    acs_url_label="Assertion Consumer Service (ACS) URL",
    entity_id_label="Entity ID",
    guidance=(
        "In the Duo Admin Panel open Applications > Protect an Application > 'Generic SAML "
        "Service Provider' (Single Sign-On hosted by Duo) > Protect.",
        "Service Provider: Entity ID = the Entity ID; Assertion Consumer Service (ACS) URL = "
        "the ACS URL.",
        "SAML Response: NameID format emailAddress, NameID attribute <Email Address>, "
        "signature algorithm SHA256, sign response and assertion.",
        "Map attributes: <Email Address> → email, <First Name> → firstName, <Last Name> → "
        "lastName; Group attributes → groups (optional).",
        "Download the metadata XML (or copy the Metadata URL) and paste it here.",
    ),
    attribute_statements=(
        ("email", "<Email Address>"),
        ("firstName", "<First Name>"),
        ("lastName", "<Last Name>"),
        ("groups", "group attribute"),
    ),
)

ADFS = Preset(
    key="adfs",
    display_name="Microsoft AD FS",
    # "Send LDAP Attributes as Claims" rule: E-Mail-Addresses → E-Mail Address,
    # Given-Name → Given Name, Surname → Surname, Token-Groups (unqualified) → Group
    # (http://schemas.xmlsoap.org/claims/Group).
    # Source: https://learn.microsoft.com/windows-server/identity/ad-fs/technical-reference/when-to-use-a-send-ldap-attributes-as-claims-rule
    # and https://support.ptc.com/help/identity_and_access_management/en/iam/ADFSAddAttributesMappingToRelyingParty.html
    # (Group → http://schemas.xmlsoap.org/claims/Group).
    source="https://learn.microsoft.com/windows-server/identity/ad-fs/technical-reference/when-to-use-a-send-ldap-attributes-as-claims-rule",
    attributes=AliasTable(
        email=(CLAIM_EMAIL, CLAIM_ADFS_EMAIL_1X, CLAIM_UPN),
        given_name=(CLAIM_GIVEN,),
        family_name=(CLAIM_SURNAME,),
        groups=(CLAIM_ADFS_GROUP, CLAIM_ROLE),
    ),
    acs_url_label="Relying party SAML 2.0 SSO service URL",
    entity_id_label="Relying party trust identifier",
    guidance=(
        "In AD FS Management open Relying Party Trusts > Add Relying Party Trust (Claims "
        "aware) and import our SP metadata URL, or enter data manually:",
        "'Enable support for the SAML 2.0 WebSSO protocol': Relying party SAML 2.0 SSO "
        "service URL = the ACS URL; 'Relying party trust identifier' = the Entity ID.",
        "Edit Claim Issuance Policy > Add Rule > 'Send LDAP Attributes as Claims' (Active "
        "Directory): E-Mail-Addresses → E-Mail Address, Given-Name → Given Name, Surname → "
        "Surname, Token-Groups - Unqualified Names → Group.",
        "Add Rule > 'Transform an Incoming Claim': E-Mail Address → Name ID, format Email.",
        "Properties > Advanced: secure hash algorithm SHA-256 (SHA-1 needs an opt-in here).",
        "Give us the federation metadata URL: https://<adfs host>/FederationMetadata/"
        "2007-06/FederationMetadata.xml (add the host to the allow-list if it is internal).",
    ),
    attribute_statements=(
        (CLAIM_EMAIL, "E-Mail-Addresses"),
        (CLAIM_GIVEN, "Given-Name"),
        (CLAIM_SURNAME, "Surname"),
        (CLAIM_ADFS_GROUP, "Token-Groups - Unqualified Names"),
    ),
    encrypts_if_sp_has_encryption_cert=True,
    strict_requested_authn_context=True,  # MSIS7102
)

RIPPLING = Preset(
    key="rippling",
    display_name="Rippling",
    # Rippling sends dummy InResponseTo values on IdP-initiated SSO unless the admin ticks
    # "Disable InResponseTo field in assertions for IdP initiated SSO".
    # Source: https://www.ory.sh/docs/polis/sso-providers/rippling
    source="https://www.ory.sh/docs/polis/sso-providers/rippling",
    attributes=AliasTable(
        email=("email",),
        given_name=("firstName", "first_name"),
        family_name=("lastName", "last_name"),
        groups=("groups",),
    ),
    acs_url_label="Assertion Consumer Service URL",
    entity_id_label="Service Provider Entity ID",
    guidance=(
        "In Rippling open IT Management > Custom App > Create New App, and choose Single "
        "Sign-On (SAML).",
        "Copy the IdP Metadata URL shown and paste it here.",
        "Enter the ACS URL as 'Assertion Consumer Service URL' and the Entity ID as "
        "'Service Provider Entity ID'.",
        "Settings > Advanced SAML Settings: tick 'Disable InResponseTo field in assertions "
        "for IdP initiated SSO'.",
        "Settings > SAML Attributes: add email, firstName and lastName (and groups).",
    ),
    attribute_statements=_COMMON_STATEMENTS,
    placeholder_in_response_to_on_idp_initiated=True,
)

CYBERARK = Preset(
    key="cyberark",
    display_name="CyberArk Identity",
    # Custom SAML web app: Trust page (service provider configuration) and SAML Response
    # page (attributes, values such as LoginUser.Email); signs the assertion.
    # Source: https://docs.cyberark.com/Product-Doc/OnlineHelp/Idaptive/Latest/en/Content/Applications/AppsWeb/CyberArk-Cloud-Entitlements-Manager.htm
    source="https://docs.cyberark.com/Product-Doc/OnlineHelp/Idaptive/Latest/en/Content/Applications/AppsWeb/CyberArk-Cloud-Entitlements-Manager.htm",
    attributes=AliasTable(
        email=("email", "Email"),
        given_name=("firstName", "FirstName"),
        family_name=("lastName", "LastName"),
        groups=("groups", "Groups"),
    ),
    acs_url_label="Assertion Consumer Service (ACS) URL",
    entity_id_label="SP Entity ID / Issuer / Audience",
    guidance=(
        "In the Identity Administration portal open Apps & Widgets > Web Apps > Add Web "
        "Apps > Custom > SAML > Add.",
        "Trust page, Identity Provider Configuration: choose Metadata and copy the metadata "
        "URL (or download the file) to paste here.",
        "Trust page, Service Provider Configuration: choose Manual Configuration; SP Entity "
        "ID = the Entity ID; Assertion Consumer Service (ACS) URL = the ACS URL; NameID "
        "format emailAddress.",
        "SAML Response page: add email = LoginUser.Email, firstName = LoginUser.FirstName, "
        "lastName = LoginUser.LastName (and groups if you use them).",
        "Permissions page: grant the roles that may sign in.",
    ),
    attribute_statements=(
        ("email", "LoginUser.Email"),
        ("firstName", "LoginUser.FirstName"),
        ("lastName", "LoginUser.LastName"),
        ("groups", "roles or groups"),
    ),
)

GENERIC = Preset(
    key="generic",
    display_name="Other SAML 2.0 identity provider",
    # Names from RFC 4519/4524 (LDAP), eduPerson, the WS-Fed claim URIs and the common
    # vendor spellings; OIDs as listed by PingFederate's InCommon guidance.
    # Source: https://docs.pingidentity.com/r/en-us/pingfederate-100/help_usersessioncreationtasklet_createattributecontractstate
    source="https://docs.pingidentity.com/r/en-us/pingfederate-100/help_usersessioncreationtasklet_createattributecontractstate",
    attributes=AliasTable(),
    acs_url_label="Assertion Consumer Service (ACS) URL",
    entity_id_label="SP Entity ID (Audience)",
    guidance=(
        "Create a SAML 2.0 application in your IdP, importing our SP metadata URL if it can.",
        "Otherwise set the ACS URL (HTTP-POST binding) and the SP Entity ID / Audience.",
        "Send the NameID as an email address (or a persistent id) and these attributes: "
        "email (or mail), firstName (or givenName), lastName (or sn), groups (optional).",
        "Sign the response or the assertion with SHA-256.",
        "Give us the IdP metadata URL or file, or its entity ID, SSO URL and certificate.",
    ),
    attribute_statements=_COMMON_STATEMENTS,
)

PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        OKTA,
        ENTRA,
        GOOGLE,
        ONELOGIN,
        PINGFEDERATE,
        PINGONE,
        JUMPCLOUD,
        DUO,
        ADFS,
        RIPPLING,
        CYBERARK,
        GENERIC,
    )
}


def get_preset(key: str) -> Preset:
    """The preset for `key`; unknown keys raise KeyError (a stored connection is checked)."""
    return PRESETS[key]


def preset_defaults(key: str) -> dict[str, Any]:
    """The connection options a new connection of this preset starts with."""
    preset = get_preset(key)
    return {
        "binding": preset.binding,
        "sign_requests": preset.sign_requests,
        "allow_sha1": preset.allow_sha1,
    }
