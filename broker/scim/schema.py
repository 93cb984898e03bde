"""What this SCIM server supports, declared once (RFC 7643 §4, §7, §8.7; RFC 7644 §4).

The attribute tables drive everything else: attribute-name case folding, filter
resolution (case-exactness, multi-valued, indexed column), mutability checks and the
/Schemas, /ResourceTypes and /ServiceProviderConfig documents, so that what we
advertise is exactly what we do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RT_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


@dataclass(frozen=True)
class Attr:
    name: str
    type: str = "string"  # string boolean decimal integer dateTime reference complex
    multi: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"  # readOnly readWrite immutable writeOnly
    returned: str = "default"  # always never default request
    uniqueness: str = "none"
    required: bool = False
    sub: tuple[Attr, ...] = ()
    column: str | None = None  # the store's indexed column, when there is one
    description: str = ""

    def child(self, name: str) -> Attr | None:
        lowered = name.lower()
        return next((a for a in self.sub if a.name.lower() == lowered), None)


def _s(name: str, **kw: Any) -> Attr:
    return Attr(name, **kw)


_MULTI_SUB = (_s("value"), _s("display"), _s("type"), _s("primary", type="boolean"))
_META = Attr(
    "meta",
    "complex",
    mutability="readOnly",
    sub=(
        _s("resourceType", case_exact=True, mutability="readOnly"),
        _s("created", type="dateTime", mutability="readOnly", column="created"),
        _s("lastModified", type="dateTime", mutability="readOnly", column="updated"),
        _s("location", type="reference", case_exact=True, mutability="readOnly"),
        _s("version", case_exact=True, mutability="readOnly"),
    ),
)
_ID = Attr(
    "id",
    case_exact=True,
    mutability="readOnly",
    returned="always",
    uniqueness="server",
    column="id",
)
_EXTERNAL_ID = Attr("externalId", case_exact=True, column="external_id")

USER_ATTRS: tuple[Attr, ...] = (
    _ID,
    _EXTERNAL_ID,
    Attr("userName", required=True, uniqueness="server", column="user_name"),
    Attr(
        "name",
        "complex",
        sub=(
            _s("formatted"),
            _s("familyName", column="family_name"),
            _s("givenName", column="given_name"),
            _s("middleName"),
            _s("honorificPrefix"),
            _s("honorificSuffix"),
        ),
    ),
    Attr("displayName"),
    Attr("nickName"),
    Attr("profileUrl", "reference"),
    Attr("title"),
    Attr("userType"),
    Attr("preferredLanguage"),
    Attr("locale"),
    Attr("timezone"),
    Attr("active", "boolean", column="active"),
    Attr("password", mutability="writeOnly", returned="never"),
    Attr("emails", "complex", multi=True, sub=_MULTI_SUB),
    Attr("phoneNumbers", "complex", multi=True, sub=_MULTI_SUB),
    Attr("ims", "complex", multi=True, sub=_MULTI_SUB),
    Attr("photos", "complex", multi=True, sub=_MULTI_SUB),
    Attr(
        "addresses",
        "complex",
        multi=True,
        sub=(
            _s("formatted"),
            _s("streetAddress"),
            _s("locality"),
            _s("region"),
            _s("postalCode"),
            _s("country"),
            _s("type"),
            _s("primary", type="boolean"),
        ),
    ),
    Attr(
        "groups",
        "complex",
        multi=True,
        mutability="readOnly",
        sub=(
            _s("value", case_exact=True, mutability="readOnly", column="group"),
            _s("$ref", type="reference", case_exact=True, mutability="readOnly"),
            _s("display", mutability="readOnly"),
            _s("type", mutability="readOnly"),
        ),
    ),
    Attr("entitlements", "complex", multi=True, sub=_MULTI_SUB),
    Attr("roles", "complex", multi=True, sub=_MULTI_SUB),
    Attr("x509Certificates", "complex", multi=True, sub=_MULTI_SUB),
    _META,
)

ENTERPRISE_ATTRS: tuple[Attr, ...] = (
    Attr("employeeNumber"),
    Attr("costCenter"),
    Attr("organization"),
    Attr("division"),
    Attr("department"),
    Attr(
        "manager",
        "complex",
        sub=(
            _s("value", case_exact=True),
            _s("$ref", type="reference", case_exact=True),
            _s("displayName", mutability="readOnly"),
        ),
    ),
)

GROUP_ATTRS: tuple[Attr, ...] = (
    _ID,
    _EXTERNAL_ID,
    Attr("displayName", required=True, column="display_name"),
    Attr(
        "members",
        "complex",
        multi=True,
        sub=(
            _s("value", case_exact=True, mutability="immutable", column="member"),
            _s("$ref", type="reference", case_exact=True, mutability="immutable"),
            _s("display", mutability="readOnly"),
            _s("type", mutability="immutable"),
        ),
    ),
    _META,
)


@dataclass(frozen=True)
class ResourceSchema:
    name: str  # "User" | "Group"
    endpoint: str
    core: str
    attrs: tuple[Attr, ...]
    extensions: dict[str, tuple[Attr, ...]]

    def find(self, name: str, uri: str | None = None) -> tuple[str | None, Attr | None]:
        """(extension URN or None for core, attribute) by case-insensitive name."""
        lowered = name.lower()
        if uri and uri.lower() != self.core.lower():
            for urn, attrs in self.extensions.items():
                if urn.lower() == uri.lower():
                    return urn, next((a for a in attrs if a.name.lower() == lowered), None)
            return uri, None
        return None, next((a for a in self.attrs if a.name.lower() == lowered), None)

    def extension(self, key: str) -> str | None:
        lowered = key.lower()
        return next((u for u in self.extensions if u.lower() == lowered), None)


USER = ResourceSchema("User", "/Users", USER_SCHEMA, USER_ATTRS, {ENTERPRISE: ENTERPRISE_ATTRS})
GROUP = ResourceSchema("Group", "/Groups", GROUP_SCHEMA, GROUP_ATTRS, {})


# -- discovery documents (RFC 7644 §4) ---------------------------------------------------


def service_provider_config(base_url: str, max_results: int) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "primary": True,
                "description": "The directory's token (brk_scim_…) as an HTTP Bearer token.",
                "specUri": "https://datatracker.ietf.org/doc/html/rfc6750",
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RT_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
        },
        {
            "schemas": [RT_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/Group"},
        },
    ]


def _describe_attr(attr: Attr) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "name": attr.name,
        "type": attr.type,
        "multiValued": attr.multi,
        "description": attr.description or attr.name,
        "required": attr.required,
        "caseExact": attr.case_exact,
        "mutability": attr.mutability,
        "returned": attr.returned,
        "uniqueness": attr.uniqueness,
    }
    if attr.type == "reference":
        shown["referenceTypes"] = ["external"] if attr.name != "$ref" else ["User", "Group"]
    if attr.sub:
        shown["subAttributes"] = [_describe_attr(a) for a in attr.sub]
    return shown


def schemas(base_url: str) -> list[dict[str, Any]]:
    found = []
    for urn, name, attrs in (
        (USER_SCHEMA, "User", USER_ATTRS),
        (ENTERPRISE, "EnterpriseUser", ENTERPRISE_ATTRS),
        (GROUP_SCHEMA, "Group", GROUP_ATTRS),
    ):
        found.append(
            {
                "schemas": [SCHEMA_SCHEMA],
                "id": urn,
                "name": name,
                "description": name,
                "attributes": [_describe_attr(a) for a in attrs if a.name != "meta"],
                "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{urn}"},
            }
        )
    return found
