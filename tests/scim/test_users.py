"""/Users: create, read, list, replace, patch, delete; meta and ETags; discovery
documents; SCIM errors for everything that fails (RFC 7644 §3)."""

from __future__ import annotations

from tests.scim.conftest import events_of

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def test_create_returns_the_resource_with_meta(scim, directory):
    doc = await scim.create_user(
        "ann@acme.test",
        name={"givenName": "Ann", "familyName": "Lee"},
        externalId="00u1",
        password="hunter2",
        **{
            ENTERPRISE: {
                "department": "Sales",
                "manager": {"value": "m1"},
                "employeeNumber": "42",
                "costCenter": "c",
                "organization": "o",
                "division": "d",
            },
            "urn:example:custom:2.0:User": {"shoeSize": 44},
        },
    )
    assert doc["id"].startswith("usr_") and doc["userName"] == "ann@acme.test"
    assert doc["active"] is True and "password" not in doc
    assert doc[ENTERPRISE]["employeeNumber"] == "42"
    assert doc["urn:example:custom:2.0:User"] == {"shoeSize": 44}  # unknown kept
    assert set(doc["schemas"]) >= {"urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE}
    meta = doc["meta"]
    assert meta["resourceType"] == "User" and meta["version"] == 'W/"1"'
    assert meta["location"] == f"{directory.base}/Users/{doc['id']}"
    status, got, headers = await scim.call("GET", f"/Users/{doc['id']}")
    assert status == 200 and got == doc and headers["ETag"] == 'W/"1"'
    assert headers["Content-Type"].startswith("application/scim+json")


async def test_password_is_never_stored_or_journalled(scim, broker, directory):
    await scim.create_user("pw@acme.test", password="hunter2")
    user = broker.store.users.list(directory.directory_id)[0]
    assert "password" not in user.raw
    entries = broker.store.scim_journal.list(directory.directory_id)
    assert entries and all("hunter2" not in (e.request_body or "") for e in entries)
    assert any('"password":"[redacted]"' in (e.request_body or "") for e in entries)


async def test_uniqueness_conflict_is_409(scim):
    await scim.create_user("ann@acme.test")
    status, doc, _ = await scim.call("POST", "/Users", {"userName": "ANN@acme.test"})
    assert status == 409 and doc["scimType"] == "uniqueness" and doc["status"] == "409"


async def test_put_replaces_and_keeps_active_when_omitted(scim):
    user = await scim.create_user("ann@acme.test", title="Eng")
    status, doc, _ = await scim.call(
        "PUT",
        f"/Users/{user['id']}",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ann@acme.test",
            "name": {"givenName": "Ann"},
        },
    )
    assert status == 200 and doc["active"] is True and "title" not in doc
    assert doc["meta"]["version"] == 'W/"2"'


async def test_if_match_is_honoured(scim):
    user = await scim.create_user("ann@acme.test")
    body = {"Operations": [{"op": "replace", "path": "title", "value": "X"}]}
    status, doc, _ = await scim.call(
        "PATCH", f"/Users/{user['id']}", body, headers={"If-Match": 'W/"7"'}
    )
    assert status == 412 and doc["status"] == "412"
    status, doc, headers = await scim.call(
        "PATCH", f"/Users/{user['id']}", body, headers={"If-Match": 'W/"1"'}
    )
    assert status == 200 and headers["ETag"] == 'W/"2"'


async def test_patch_forms(scim):
    user = await scim.create_user(
        "ann@acme.test",
        emails=[
            {"value": "ann@acme.test", "type": "work", "primary": True},
            {"value": "ann@home.test", "type": "home"},
        ],
    )
    uid = user["id"]
    ops = [
        {"op": "add", "path": "name.givenName", "value": "Ann"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ann2@acme.test"},
        {"op": "remove", "path": 'emails[type eq "home"]'},
        {"op": "add", "path": "phoneNumbers", "value": [{"value": "+1", "type": "work"}]},
        {"op": "replace", "value": {"title": "CTO", "name.familyName": "Lee"}},
        {"op": "add", "path": f"{ENTERPRISE}:department", "value": "R&D"},
        {"op": "remove", "path": "phoneNumbers"},
    ]
    status, doc, _ = await scim.call(
        "PATCH",
        f"/Users/{uid}",
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops},
    )
    assert status == 200, doc
    assert doc["name"] == {"givenName": "Ann", "familyName": "Lee"}
    assert doc["emails"] == [{"value": "ann2@acme.test", "type": "work", "primary": True}]
    assert doc["title"] == "CTO" and doc[ENTERPRISE]["department"] == "R&D"
    assert "phoneNumbers" not in doc


async def test_patch_errors(scim):
    uid = (await scim.create_user("ann@acme.test"))["id"]
    cases = [
        ({"Operations": [{"op": "move", "path": "title", "value": 1}]}, "invalidSyntax"),
        ({"Operations": [{"op": "replace", "path": "groups", "value": []}]}, "mutability"),
        ({"Operations": [{"op": "replace", "path": "id", "value": "x"}]}, "mutability"),
        ({"Operations": [{"op": "replace", "path": "emails[type eq", "value": 1}]}, "invalidPath"),
        ({"Operations": [{"op": "replace", "path": "active", "value": "maybe"}]}, "invalidValue"),
        ({"Operations": [{"op": "replace", "path": "userName", "value": ""}]}, "invalidValue"),
        (
            {"Operations": [{"op": "replace", "path": 'emails[value co "x"].type', "value": "w"}]},
            "noTarget",
        ),
        ({"Operations": []}, "invalidSyntax"),
    ]
    for body, scim_type in cases:
        status, doc, _ = await scim.call("PATCH", f"/Users/{uid}", body)
        assert (status, doc.get("scimType")) == (400, scim_type), (body, doc)


async def test_delete_then_404(scim, broker, directory):
    uid = (await scim.create_user("ann@acme.test"))["id"]
    status, _, _ = await scim.call("DELETE", f"/Users/{uid}")
    assert status == 204
    status, doc, _ = await scim.call("GET", f"/Users/{uid}")
    assert status == 404 and doc["status"] == "404"
    assert broker.store.users.get_any(uid).state == "deleted"
    # The userName is free again for a new user.
    await scim.create_user("ann@acme.test")


async def test_list_paging_is_exact(scim):
    for i in range(7):
        await scim.create_user(f"u{i}@acme.test")
    status, doc, _ = await scim.call("GET", "/Users", params={"startIndex": "1", "count": "2"})
    assert doc["totalResults"] == 7 and doc["itemsPerPage"] == 2 and doc["startIndex"] == 1
    seen, start = [], 1
    while True:  # page the way IdPs do, until a page comes back empty
        _, page, _ = await scim.call(
            "GET", "/Users", params={"startIndex": str(start), "count": "3"}
        )
        if not page["Resources"]:
            break
        seen += [r["userName"] for r in page["Resources"]]
        start += page["itemsPerPage"]
    assert sorted(seen) == sorted(f"u{i}@acme.test" for i in range(7))
    _, doc, _ = await scim.call("GET", "/Users", params={"count": "0"})
    assert doc["totalResults"] == 7 and doc["Resources"] == []
    _, doc, _ = await scim.call("GET", "/Users", params={"count": "100000"})
    assert doc["itemsPerPage"] == 7
    _, doc, _ = await scim.call(
        "GET", "/Users", params={"sortBy": "userName", "sortOrder": "descending"}
    )
    assert doc["Resources"][0]["userName"] == "u6@acme.test"
    status, doc, _ = await scim.call("GET", "/Users", params={"count": "x"})
    assert status == 400 and doc["scimType"] == "invalidValue"


async def test_attributes_and_excluded_attributes(scim):
    await scim.create_user(
        "ann@acme.test",
        name={"givenName": "Ann", "familyName": "Lee"},
        **{ENTERPRISE: {"department": "Sales"}},
    )
    _, doc, _ = await scim.call(
        "GET", "/Users", params={"attributes": f"userName,name.givenName,{ENTERPRISE}:department"}
    )
    res = doc["Resources"][0]
    assert set(res) == {"schemas", "id", "userName", "name", ENTERPRISE}
    assert res["name"] == {"givenName": "Ann"} and res[ENTERPRISE] == {"department": "Sales"}
    _, doc, _ = await scim.call("GET", "/Users", params={"excludedAttributes": "emails,meta,id"})
    res = doc["Resources"][0]
    assert "emails" not in res and "meta" not in res and "id" in res


async def test_discovery_documents(scim):
    status, spc, _ = await scim.call("GET", "/ServiceProviderConfig")
    assert status == 200 and spc["patch"]["supported"] is True
    assert spc["bulk"]["supported"] is False and spc["etag"]["supported"] is True
    _, types, _ = await scim.call("GET", "/ResourceTypes")
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    _, user_type, _ = await scim.call("GET", "/ResourceTypes/User")
    assert user_type["schemaExtensions"][0]["schema"] == ENTERPRISE
    _, schemas, _ = await scim.call("GET", "/Schemas")
    ids = {s["id"] for s in schemas["Resources"]}
    assert ENTERPRISE in ids and len(ids) == 3
    _, enterprise, _ = await scim.call("GET", f"/Schemas/{ENTERPRISE}")
    assert {a["name"] for a in enterprise["attributes"]} == {
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "manager",
    }
    for path in ("/Me", "/Bulk"):
        status, doc, _ = await scim.call("GET" if path == "/Me" else "POST", path, {})
        assert status == 501 and doc["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_errors_are_scim_documents(scim, broker):
    limit = broker.settings.get("server.max_body_bytes")
    status, doc, _ = await scim.call("POST", "/Users", raw=b"x" * (limit + 10))
    assert status == 413 and doc["status"] == "413"
    for raw in (b"{not json", b"[1,2]", b'"x"'):
        status, doc, _ = await scim.call("POST", "/Users", raw=raw)
        assert status == 400 and doc["scimType"] == "invalidSyntax"
    status, doc, _ = await scim.call("POST", "/Users", {"userName": 5})
    assert status == 400 and doc["scimType"] == "invalidValue"
    status, doc, _ = await scim.call("POST", "/Users", {"userName": "a", "emails": "x"})
    assert status == 400 and doc["scimType"] == "invalidValue"
    status, doc, _ = await scim.call("GET", "/Nothing")
    assert status == 404 and doc["status"] == "404"
    status, doc, _ = await scim.call("DELETE", "/Users")
    assert status == 405 and doc["status"] == "405"
    status, doc, _ = await scim.call("GET", "/Users/usr_missing")
    assert status == 404


async def test_events_once_per_change_and_none_for_no_op(scim, broker, directory):
    uid = (await scim.create_user("ann@acme.test"))["id"]
    body = {"Operations": [{"op": "replace", "path": "title", "value": "CTO"}]}
    await scim.call("PATCH", f"/Users/{uid}", body)
    await scim.call("PATCH", f"/Users/{uid}", body)  # unchanged: no event
    types = [e.type for e in events_of(broker.store, directory.org_id, "dsync.user")]
    assert types == ["dsync.user.created", "dsync.user.updated"]
    event = events_of(broker.store, directory.org_id, "dsync.user")[-1]
    assert event.data["raw_attributes"]["title"] == "CTO"
    assert event.data["seat"] == "basic" and event.data["role"] == {"slug": "member"}
