"""The directory as a tenant: token auth and isolation, disable/enable, rotation, throttling,
deprovisioning that refuses the next login, roles and seats from groups."""

from __future__ import annotations

import pytest

from broker.clock import SystemClock
from broker.core import audit, directories, login, organizations, policy, roles
from broker.core.models import UpstreamIdentity
from broker.errors import LoginRefused
from tests.scim.conftest import Scim, enable, events_of, make_org


async def test_tenant_isolation(broker, scim, directory, session):
    other = enable(broker.store, make_org(broker.store, "Beta", "beta.test"), broker.url)
    beta = Scim(session, other.base, other.token)
    mine = await scim.create_user("ann@acme.test")
    theirs_group = await beta.create_group("Beta group")
    # A's token on B's directory, and B's token on A's: 401 with a SCIM error.
    crossed = Scim(session, other.base, directory.token)
    for method, path in (
        ("GET", "/Users"),
        ("GET", f"/Users/{mine['id']}"),
        ("POST", "/Users"),
        ("GET", "/ServiceProviderConfig"),
    ):
        status, doc, headers = await crossed.call(method, path, {"userName": "x"})
        assert status == 401 and doc["status"] == "401"
        assert headers["WWW-Authenticate"].startswith("Bearer")
    # B's own token cannot reach A's resources by id either.
    status, _, _ = await beta.call("GET", f"/Users/{mine['id']}")
    assert status == 404
    status, _, _ = await beta.call(
        "PATCH",
        f"/Users/{mine['id']}",
        {"Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    assert status == 404
    status, doc, _ = await scim.call(
        "PATCH",
        f"/Groups/{theirs_group['id']}",
        {"Operations": [{"op": "add", "path": "members", "value": [{"value": mine["id"]}]}]},
    )
    assert status == 404
    status, doc, _ = await beta.call(
        "POST", "/Groups", {"displayName": "x", "members": [{"value": mine["id"]}]}
    )
    assert status == 400 and doc["scimType"] == "invalidValue"
    _, listing, _ = await beta.call("GET", "/Users")
    assert listing["totalResults"] == 0
    for token in ("", "brk_scim_wrong", directory.token + "x"):
        assert (await Scim(session, directory.base, token).call("GET", "/Users"))[0] == 401
    assert (
        await Scim(session, directory.base.replace("dir_", "dir_x"), directory.token).call(
            "GET", "/Users"
        )
    )[0] == 401


async def test_disable_unlinks_and_stops_then_enable_relinks(broker, scim, directory, session):
    store = broker.store
    uid = (await scim.create_user("ann@acme.test", externalId="e1"))["id"]
    gid = (await scim.create_group("G", [uid]))["id"]
    org = policy.disable_directory_sync(store, SystemClock(), audit.CLI, directory.org_id)
    assert org.sso_enabled and not org.dsync_enabled
    status, doc, _ = await scim.call("GET", "/Users")
    assert status == 401 and doc["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    user = store.users.get_any(uid)
    assert user.directory_id is None and user.state == "active"
    assert store.groups.member_ids(gid) == {uid}
    assert events_of(store, directory.org_id, "dsync.deleted")[0].data["users_unlinked"] == 1
    again = enable(store, directory.org_id, broker.url)
    assert again.directory_id == directory.directory_id and again.token != directory.token
    fresh = Scim(session, again.base, again.token)
    status, doc, _ = await fresh.call(
        "POST", "/Users", {"userName": "ann@acme.test", "externalId": "e1"}
    )
    assert status == 201 and doc["id"] == uid  # re-linked, not duplicated
    assert (await scim.call("GET", "/Users"))[0] == 401  # the old token died with disable


async def test_token_rotation_overlap(broker, scim, directory, session):
    store, clock = broker.store, SystemClock()
    new = directories.rotate_token(store, directory.org_id, clock.now(), 60)
    assert (await scim.call("GET", "/Users"))[0] == 200  # old token inside the overlap
    assert (await Scim(session, directory.base, new).call("GET", "/Users"))[0] == 200
    newer = directories.rotate_token(store, directory.org_id, clock.now(), 0)
    assert (await Scim(session, directory.base, new).call("GET", "/Users"))[0] == 401
    assert (await Scim(session, directory.base, newer).call("GET", "/Users"))[0] == 200
    assert store.directories.get(directory.directory_id).token_hash != newer  # hashed


async def test_throttling_answers_429_with_retry_after(broker, scim, directory):
    from broker.scim.routes import LIMITS
    from broker.scim.service import Limits

    limits = broker.app[LIMITS]
    broker.app._state[LIMITS] = Limits(limits.max_page_size, 2.0, limits.retention_seconds)
    statuses = []
    for _ in range(12):
        status, doc, headers = await scim.call("GET", "/Users")
        statuses.append(status)
        if status == 429:
            assert int(headers["Retry-After"]) >= 1 and doc["status"] == "429"
    assert statuses[:8] == [200] * 8 and 429 in statuses  # burst is 4x the rate


async def test_deprovisioning_refuses_the_next_login(broker, scim, directory):
    store = broker.store
    org = store.organizations.get(directory.org_id)
    uid = (await scim.create_user("ann@acme.test"))["id"]
    identity = UpstreamIdentity(connection_id="conn_x", idp_subject="00u1", email="ann@acme.test")
    assert login._directory_user(store, org, identity, "ann@acme.test").id == uid
    await scim.call(
        "PATCH",
        f"/Users/{uid}",
        {"Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
    )
    with pytest.raises(LoginRefused) as refused:
        login._directory_user(store, org, identity, "ann@acme.test")
    assert refused.value.reason == "user_inactive"
    await scim.call(
        "PATCH",
        f"/Users/{uid}",
        {"Operations": [{"op": "replace", "path": "active", "value": True}]},
    )
    assert login._directory_user(store, org, identity, "ann@acme.test").state == "active"
    await scim.call("DELETE", f"/Users/{uid}")
    with pytest.raises(LoginRefused):
        login._directory_user(store, org, identity, "ann@acme.test")


async def test_roles_and_seats_from_groups(broker, scim, directory):
    store, clock = broker.store, SystemClock()
    organizations.set_default_seat(store, clock, audit.CLI, directory.org_id, "full")
    uid = (await scim.create_user("ann@acme.test"))["id"]
    user = store.users.get_any(uid)
    assert (user.role, user.seat) == ("member", "full")
    admins = (await scim.create_group("Admins"))["id"]
    roles.add_mapping(
        store, clock, audit.CLI, directory.org_id, role="admin", group_name="admins", priority=10
    )
    roles.add_mapping(
        store,
        clock,
        audit.CLI,
        directory.org_id,
        role="viewer",
        group_name="Viewers",
        priority=1,
        seat="basic",
    )
    viewers = (await scim.create_group("Viewers", [uid]))["id"]
    assert (store.users.get_any(uid).role, store.users.get_any(uid).seat) == ("viewer", "basic")
    await scim.call(
        "PATCH",
        f"/Groups/{admins}",
        {"Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]},
    )
    user = store.users.get_any(uid)
    assert (user.role, user.seat) == ("admin", "basic")  # admin wins, seat from Viewers
    await scim.call("DELETE", f"/Groups/{viewers}")
    await scim.call(
        "PATCH",
        f"/Groups/{admins}",
        {"Operations": [{"op": "remove", "path": "members", "value": [{"value": uid}]}]},
    )
    user = store.users.get_any(uid)
    assert (user.role, user.seat) == ("member", "full")
    updates = [e for e in events_of(store, directory.org_id, "dsync.user.updated")]
    assert [e.data["role"]["slug"] for e in updates] == ["viewer", "admin", "admin", "member"]


async def test_drift_report_and_redrive(broker, scim, directory):
    from broker.core import drift

    store, clock = broker.store, SystemClock()
    uid = (await scim.create_user("ann@acme.test"))["id"]
    assert drift.report(store, directory.org_id).users == []
    store.events.purge_before(clock.now() + 1)  # Exec never got them (lost, expired)
    found = drift.report(store, directory.org_id)
    assert [u["id"] for u in found.users] == [uid] and found.users[0]["told"] is None
    drift.redrive(store, clock, directory.org_id)
    assert drift.report(store, directory.org_id).users == []
    assert events_of(store, directory.org_id, "dsync.user.updated")[0].data["id"] == uid
