"""Directory read API over the real server, on users and groups provisioned by the core
exactly as the SCIM edge provisions them."""

from __future__ import annotations

from typing import Any

import aiohttp

from broker.core import directories, provisioning
from broker.core.directory_types import GroupAttributes, UserAttributes
from tests.api.conftest import ApiClient, clock, make_client, make_org
from tests.conftest import RunningBroker


def provision(broker: RunningBroker, org: str, n: int) -> tuple[str, list[str], str]:
    store = broker.store
    directory_id, _token = directories.activate(store, org, clock.now())
    directory = store.directories.get(directory_id)
    users = []
    for i in range(n):
        user = provisioning.create_user(
            store,
            clock,
            directory,
            UserAttributes(
                user_name=f"u{i}@acme.test",
                active=i % 3 != 0,
                email=f"u{i}@acme.test",
                given_name="U",
                family_name=str(i),
                raw={"userName": f"u{i}@acme.test", "title": f"T{i}"},
            ),
        )
        users.append(user.id)
    group = provisioning.create_group(
        store,
        clock,
        directory,
        GroupAttributes(display_name="Engineering", raw={"displayName": "Engineering"}),
        tuple(users[:4]),
    )
    return directory_id, users, group.id


async def get(
    http: aiohttp.ClientSession, broker: RunningBroker, client: ApiClient, path: str, **params: Any
) -> tuple[int, Any]:
    async with http.get(broker.url + "/api/v1" + path, params=params, headers=client.basic) as r:
        return r.status, await r.json()


async def test_directory_users_groups_and_isolation(broker: RunningBroker) -> None:
    org, other_org = make_org(broker, "Acme"), make_org(broker, "Other")
    client, outsider = make_client(broker, [org]), make_client(broker, [other_org])
    directory_id, users, group_id = provision(broker, org, 7)
    async with aiohttp.ClientSession() as http:
        status, body = await get(http, broker, client, "/directories")
        assert status == 200 and [d["id"] for d in body["data"]] == [directory_id]
        # Cursor pagination walks every user once, in id order.
        seen, after = [], None
        while True:
            params = {"limit": 3} | ({"after": after} if after else {})
            status, body = await get(
                http, broker, client, f"/directories/{directory_id}/users", **params
            )
            assert status == 200
            seen += [u["id"] for u in body["data"]]
            if not body["has_more"]:
                break
            after = body["next_cursor"]
        assert seen == sorted(users)
        status, body = await get(
            http, broker, client, f"/directories/{directory_id}/users", state="inactive"
        )
        assert sorted(u["id"] for u in body["data"]) == sorted(users[0::3])
        status, body = await get(
            http, broker, client, f"/directories/{directory_id}/users", group=group_id
        )
        assert sorted(u["id"] for u in body["data"]) == sorted(users[:4])
        status, body = await get(
            http, broker, client, f"/directories/{directory_id}/users", email="U5@ACME.TEST"
        )
        assert [u["id"] for u in body["data"]] == [users[5]]
        status, user = await get(http, broker, client, f"/users/{users[1]}")
        assert status == 200 and user["groups"] == [{"id": group_id, "name": "Engineering"}]
        assert user["raw_attributes"]["title"] == "T1" and user["seat"] in ("full", "basic")
        assert "slug" in user["role"]
        status, groups = await get(http, broker, client, f"/directories/{directory_id}/groups")
        assert [g["id"] for g in groups["data"]] == [group_id]
        status, group = await get(http, broker, client, f"/groups/{group_id}", limit=3)
        assert status == 200 and group["member_count"] == 4
        assert len(group["members"]["data"]) == 3 and group["members"]["has_more"]
        status, rest = await get(
            http, broker, client, f"/groups/{group_id}", after=group["members"]["next_cursor"]
        )
        assert [m["id"] for m in group["members"]["data"] + rest["members"]["data"]] == sorted(
            users[:4]
        )
        # The outsider sees none of it.
        for path in (
            f"/directories/{directory_id}/users",
            f"/directories/{directory_id}/groups",
            f"/users/{users[0]}",
            f"/groups/{group_id}",
        ):
            status, body = await get(http, broker, outsider, path)
            assert status == 404, path
        status, body = await get(http, broker, outsider, "/directories")
        assert body["data"] == []
        status, body = await get(
            http, broker, client, f"/directories/{directory_id}/users", state="deleted"
        )
        assert status == 400
        status, body = await get(
            http, broker, client, f"/directories/{directory_id}/users", after="nonsense"
        )
        assert status == 400
