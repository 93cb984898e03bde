"""Requests exactly as Okta, Entra and JumpCloud send them, each with its source.

Entra: Microsoft Learn, "Known issues and resolutions with SCIM 2.0 protocol compliance
of the Azure AD User Provisioning service" (learn.microsoft.com/entra/identity/
app-provisioning/application-provisioning-config-problem-scim-compatibility) and
"Tutorial: Develop and plan provisioning for a SCIM endpoint" (…/use-scim-to-provision-
users-and-groups), request/response examples.
Okta: "SCIM 2.0 protocol reference" (developer.okta.com/docs/api/openapi/okta-scim/
guides/scim-20).
JumpCloud: IDP-NOTES "SCIM clients" (jumpcloud.com/support/scim-integration-guide).
"""

from __future__ import annotations

from broker.scim.quirks import entra, okta

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_entra_normaliser_unit():
    ops = entra.patch(
        [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "value": {"active": "True", f"{ENTERPRISE}:manager": "m"}},
        ]
    )
    assert ops == [
        {"op": "replace", "path": "active", "value": False},
        {"op": "add", "value": {"active": True, f"{ENTERPRISE}:manager": {"value": "m"}}},
    ]
    assert entra.filter_text('userName eq "ann%40acme.test"') == 'userName eq "ann@acme.test"'
    assert entra.filter_text('userName eq "100%"') == 'userName eq "100%"'


def test_okta_normaliser_unit():
    assert okta.patch([{"op": "replace", "value": {"id": "g", "displayName": "X"}}]) == [
        {"op": "replace", "value": {"displayName": "X"}}
    ]


async def test_okta_probes_then_search_then_create(scim):
    # Okta guide, "Test your SCIM API": GET /Users?startIndex=1&count=2 and Groups count=100.
    status, doc, _ = await scim.call("GET", "/Users", params={"startIndex": "1", "count": "2"})
    assert status == 200 and doc["totalResults"] == 0 and doc["Resources"] == []
    status, doc, _ = await scim.call("GET", "/Groups", params={"startIndex": "1", "count": "100"})
    assert status == 200 and doc["totalResults"] == 0
    _, doc, _ = await scim.call(
        "GET",
        "/Users",
        params={"filter": 'userName eq "ann@acme.test"', "startIndex": "1", "count": "100"},
    )
    assert doc["totalResults"] == 0
    # Okta's create request (guide, "Create the user").
    status, user, _ = await scim.call(
        "POST",
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ann@acme.test",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"primary": True, "value": "ann@acme.test", "type": "work"}],
            "displayName": "Ann Lee",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": True,
        },
        headers={"User-Agent": "Okta SCIM Client 1.0.0"},
    )
    assert status == 201 and user["externalId"] == "00ujl29u0le5T6Aj10h7"
    _, doc, _ = await scim.call("GET", "/Users", params={"filter": 'userName eq "ANN@acme.test"'})
    assert doc["totalResults"] == 1 and doc["Resources"][0]["id"] == user["id"]


async def test_okta_put_update_and_deactivation(scim, broker):
    user = await scim.create_user("ann@acme.test", name={"givenName": "Ann"})
    full = {**user, "name": {"givenName": "Annie", "familyName": "Lee"}}
    full.pop("active")
    status, doc, _ = await scim.call("PUT", f"/Users/{user['id']}", full)
    assert status == 200 and doc["active"] is True and doc["name"]["givenName"] == "Annie"
    # Okta deactivates with PATCH active=false (guide, "Deactivate the user").
    status, doc, _ = await scim.call(
        "PATCH",
        f"/Users/{user['id']}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert status == 200 and doc["active"] is False
    assert broker.store.users.get_any(user["id"]).state == "inactive"
    # ... and a PUT with active=true reactivates (AIW apps).
    status, doc, _ = await scim.call("PUT", f"/Users/{user['id']}", {**full, "active": True})
    assert doc["active"] is True


async def test_okta_group_push(scim):
    a = (await scim.create_user("a@acme.test"))["id"]
    status, group, _ = await scim.call(
        "POST",
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Test SCIMv2",
            "members": [],
        },
    )
    assert status == 201
    gid = group["id"]
    # Okta guide, "Update a specific group name" (value repeats the id).
    status, _, _ = await scim.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "Renamed"}}],
        },
    )
    assert status == 204
    status, _, _ = await scim.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": a, "display": "a@acme.test"}]}
            ],
        },
    )
    assert status == 204
    status, _, _ = await scim.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": f'members[value eq "{a}"]'}],
        },
    )
    _, doc, _ = await scim.call("GET", f"/Groups/{gid}")
    assert doc["displayName"] == "Renamed" and doc["members"] == []


async def test_entra_without_flag(scim, broker):
    """Entra without aadOptscim062020: capitalised ops, "False" strings."""
    user = await scim.create_user("ann@acme.test", externalId="ann")
    uid = user["id"]
    status, doc, _ = await scim.call(
        "PATCH",
        f"/Users/{uid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": "userName", "value": "ann.lee@acme.test"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ann.lee@acme.test"},
                {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": "usr_boss"},
            ],
        },
    )
    assert status == 200, doc
    assert doc["userName"] == "ann.lee@acme.test" and doc["active"] is False
    assert doc["emails"][0]["value"] == "ann.lee@acme.test"
    assert doc[ENTERPRISE]["manager"] == {"value": "usr_boss"}
    stored = broker.store.users.get_any(uid)
    assert stored.state == "inactive" and stored.email == "ann.lee@acme.test"


async def test_entra_with_flag_and_pathless_value_keys(scim):
    """With aadOptscim062020: lower-case ops, real booleans; path-less value objects whose
    keys are dotted or URN-prefixed paths (split at the last colon)."""
    uid = (await scim.create_user("ann@acme.test"))["id"]
    status, doc, _ = await scim.call(
        "PATCH",
        f"/Users/{uid}?aadOptscim062020",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "replace",
                    "value": {
                        "name.givenName": "Ann",
                        "name.familyName": "Lee",
                        f"{ENTERPRISE}:employeeNumber": "42",
                        f"{ENTERPRISE}:department": "Sales",
                        "active": False,
                    },
                }
            ],
        },
    )
    assert status == 200, doc
    assert doc["name"] == {"givenName": "Ann", "familyName": "Lee"}
    assert doc[ENTERPRISE] == {"employeeNumber": "42", "department": "Sales"}
    assert doc["active"] is False
    status, doc, _ = await scim.call(
        "PATCH",
        f"/Users/{uid}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": True}]},
    )
    assert doc["active"] is True


async def test_entra_lookups_and_validator_encoding(scim):
    await scim.create_user("ann@acme.test", externalId="e-1")
    _, doc, _ = await scim.call("GET", "/Users", params={"filter": 'userName eq "ann%40acme.test"'})
    assert doc["totalResults"] == 1
    _, doc, _ = await scim.call("GET", "/Users", params={"filter": 'externalId eq "e-1"'})
    assert doc["totalResults"] == 1
    # Entra's POST /Groups carries an extra Microsoft schema: accepted.
    status, doc, _ = await scim.call(
        "POST",
        "/Groups",
        {
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:Group",
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
            ],
            "externalId": "8aa1a0c0",
            "displayName": "Group1DisplayName",
        },
    )
    assert status == 201 and doc["externalId"] == "8aa1a0c0"


async def test_entra_group_member_removal_removes_only_listed(scim):
    ids = [(await scim.create_user(f"u{i}@acme.test"))["id"] for i in range(3)]
    gid = (await scim.create_group("G", ids))["id"]
    status, _, _ = await scim.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Remove", "path": "members", "value": [{"value": ids[0]}]}],
        },
    )
    assert status == 204
    _, doc, _ = await scim.call("GET", f"/Groups/{gid}")
    assert {m["value"] for m in doc["members"]} == set(ids[1:])


async def test_jumpcloud_group_rename_and_member_add(scim):
    a = (await scim.create_user("a@acme.test"))["id"]
    gid = (await scim.create_group("Old"))["id"]
    status, _, _ = await scim.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "value": {"displayName": "New"}},
                {"op": "add", "path": "members", "value": [{"value": a}]},
            ],
        },
    )
    assert status == 204
    _, doc, _ = await scim.call("GET", f"/Groups/{gid}")
    assert doc["displayName"] == "New" and doc["members"][0]["value"] == a
