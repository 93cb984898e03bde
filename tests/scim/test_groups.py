"""/Groups: lifecycle, members at scale, concurrency, and events that roll back with a
failed write."""

from __future__ import annotations

import asyncio
import time

from tests.scim.conftest import events_of


async def test_group_lifecycle(scim, broker, directory):
    a = (await scim.create_user("a@acme.test"))["id"]
    b = (await scim.create_user("b@acme.test"))["id"]
    group = await scim.create_group("Engineering", [a])
    assert group["members"] == [
        {
            "value": a,
            "display": "a@acme.test",
            "type": "User",
            "$ref": f"{directory.base}/Users/{a}",
        }
    ]
    gid = group["id"]
    status, _, headers = await scim.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": b}]},
                {"op": "replace", "path": "displayName", "value": "Eng"},
            ]
        },
    )
    assert status == 204 and headers["ETag"]
    _, doc, _ = await scim.call("GET", f"/Groups/{gid}")
    assert doc["displayName"] == "Eng" and {m["value"] for m in doc["members"]} == {a, b}
    _, user, _ = await scim.call("GET", f"/Users/{a}")
    assert user["groups"][0]["value"] == gid and user["groups"][0]["display"] == "Eng"
    _, found, _ = await scim.call(
        "GET",
        "/Groups",
        params={"filter": f'members[value eq "{b}"]', "excludedAttributes": "members"},
    )
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]
    _, found, _ = await scim.call("GET", "/Users", params={"filter": f'groups.value eq "{gid}"'})
    assert found["totalResults"] == 2
    status, _, _ = await scim.call(
        "PATCH",
        f"/Groups/{gid}",
        {"Operations": [{"op": "remove", "path": f'members[value eq "{a}"]'}]},
    )
    assert status == 204
    status, doc, _ = await scim.call(
        "PUT", f"/Groups/{gid}", {"displayName": "Eng", "members": [{"value": a}]}
    )
    assert status == 200 and [m["value"] for m in doc["members"]] == [a]
    status, _, _ = await scim.call("DELETE", f"/Groups/{gid}")
    assert status == 204
    assert (await scim.call("GET", f"/Groups/{gid}"))[0] == 404
    types = [e.type for e in events_of(broker.store, directory.org_id, "dsync.group")]
    assert types == [
        "dsync.group.created",
        "dsync.group.user_added",
        "dsync.group.updated",
        "dsync.group.user_added",
        "dsync.group.user_removed",
        "dsync.group.user_removed",
        "dsync.group.user_added",
        "dsync.group.deleted",
    ]
    added = events_of(broker.store, directory.org_id, "dsync.group.user_added")[0]
    assert added.data["user"]["id"] == a and added.data["group"]["member_count"] == 1


async def test_failed_write_rolls_back_data_and_events(scim, broker, directory):
    a = (await scim.create_user("a@acme.test"))["id"]
    b = (await scim.create_user("b@acme.test"))["id"]
    gid = (await scim.create_group("G"))["id"]
    before = len(events_of(broker.store, directory.org_id))
    status, doc, _ = await scim.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "Operations": [
                {
                    "op": "add",
                    "path": "members",
                    "value": [{"value": a}, {"value": b}, {"value": "usr_nobody"}],
                }
            ]
        },
    )
    assert status == 400 and doc["scimType"] == "invalidValue"
    assert len(events_of(broker.store, directory.org_id)) == before
    assert broker.store.groups.member_ids(gid) == set()
    assert broker.store.groups.member_count(gid) == 0


async def test_concurrent_patches_lose_no_member(scim, broker):
    ids = [(await scim.create_user(f"u{i}@acme.test"))["id"] for i in range(40)]
    gid = (await scim.create_group("Everyone"))["id"]
    await asyncio.gather(
        *[
            scim.call(
                "PATCH",
                f"/Groups/{gid}",
                {"Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]},
            )
            for uid in ids
        ]
    )
    assert broker.store.groups.member_ids(gid) == set(ids)
    assert broker.store.groups.member_count(gid) == 40
    await asyncio.gather(
        *[
            scim.call(
                "PATCH",
                f"/Groups/{gid}",
                {"Operations": [{"op": "remove", "path": "members", "value": [{"value": uid}]}]},
            )
            for uid in ids[:20]
        ]
    )
    assert broker.store.groups.member_ids(gid) == set(ids[20:])


async def test_one_member_patch_stays_fast_in_a_large_group(scim, broker, directory):
    from broker.clock import SystemClock
    from broker.core import provisioning
    from broker.core.directory_types import UserAttributes

    store, clock = broker.store, SystemClock()
    dir_record = store.directories.get(directory.directory_id)
    ids = []
    with store.transaction():  # seed 10,000 users through the core, in one transaction
        for i in range(10_000):
            user = provisioning.create_user(
                store,
                clock,
                dir_record,
                UserAttributes(user_name=f"bulk{i}@acme.test", active=True, raw={}),
            )
            ids.append(user.id)
    gid = (await scim.create_group("Big"))["id"]
    for start in range(0, 9_999, 1000):
        status, doc, _ = await scim.call(
            "PATCH",
            f"/Groups/{gid}",
            {
                "Operations": [
                    {
                        "op": "add",
                        "path": "members",
                        "value": [{"value": u} for u in ids[start : min(start + 1000, 9_999)]],
                    }
                ]
            },
        )
        assert status == 204, doc
    assert store.groups.member_count(gid) == 9_999
    started = time.perf_counter()
    for uid in (ids[9_999], ids[0]):
        op = "add" if uid == ids[9_999] else "remove"
        status, _, _ = await scim.call(
            "PATCH",
            f"/Groups/{gid}",
            {"Operations": [{"op": op, "path": "members", "value": [{"value": uid}]}]},
        )
        assert status == 204
    assert (time.perf_counter() - started) / 2 < 0.05
    assert store.groups.member_count(gid) == 9_999
