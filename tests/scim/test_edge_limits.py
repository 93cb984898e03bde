"""The SCIM edge before the store: whole bodies up to the size limit (a 10,000-member PATCH
arrives in many chunks), 413 past it, and requests with a wrong token that cost little
(no body journaled) and are throttled per directory and address before any write."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from broker.clock import SystemClock
from broker.core.models import DirectoryUser
from broker.ids import new_id
from broker.scim import auth_failures
from broker.scim.auth_failures import AuthFailureLimiter
from broker.scim.routes import AUTH_FAILURES, MAX_BODY
from tests.scim.conftest import SCIM, Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _bulk_users(store: Any, org_id: str, directory_id: str, n: int) -> list[str]:
    now = SystemClock().now()
    ids = [new_id("usr") for _ in range(n)]
    with store.transaction():
        for i, uid in enumerate(ids):
            name = f"user{i:05d}@acme.test"
            user = DirectoryUser(
                id=uid,
                organization_id=org_id,
                directory_id=directory_id,
                user_name=name,
                email=name,
                state="active",
                role="member",
                seat="basic",
                raw={"userName": name},
                created_at=now,
                updated_at=now,
            )
            store.users.create(user, base_seat="basic")
    return ids


async def test_a_one_megabyte_patch_adding_10000_members_is_applied(
    broker: Any, scim: Scim, directory: Any
) -> None:
    ids = _bulk_users(broker.store, directory.org_id, directory.directory_id, 10_000)
    group = await scim.create_group("Everyone")
    members = [
        {"value": uid, "display": f"User number {i:05d} of the whole company, Acme"}
        for i, uid in enumerate(ids)
    ]
    body = json.dumps(
        {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": members}]}
    ).encode()
    assert 1_000_000 < len(body) < broker.app[MAX_BODY]
    status, doc, _ = await scim.call("PATCH", f"/Groups/{group['id']}", raw=body)
    assert status == 204, doc
    assert broker.store.groups.member_ids(group["id"]) == set(ids)
    row = broker.store.db.one(
        "SELECT status, change FROM scim_requests WHERE method = 'PATCH' ORDER BY id DESC"
    )
    assert row["status"] == 204 and json.loads(row["change"])["added"] == 10_000


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_bodies_over_the_limit_are_413(
    broker: Any, scim: Scim, directory: Any, session: aiohttp.ClientSession
) -> None:
    limit = broker.app[MAX_BODY]
    pad = limit - len(json.dumps({"userName": "big@acme.test", "nickName": ""}))
    exact = json.dumps({"userName": "big@acme.test", "nickName": "x" * pad}).encode()
    assert len(exact) == limit
    status, doc, _ = await scim.call("POST", "/Users", raw=exact)  # at the limit: accepted
    assert status == 201, doc
    over = exact[:-1] + b' "x"}'
    headers = {"Authorization": f"Bearer {directory.token}", "Content-Type": SCIM}
    for data in (io.BytesIO(over), _chunks(over)):  # with a Content-Length, and chunked without one
        async with session.post(directory.base + "/Users", data=data, headers=headers) as resp:
            doc = await resp.json(content_type=None)
            assert resp.status == 413 and resp.headers["Content-Type"].startswith(SCIM)
            assert doc["status"] == "413" and str(limit) in doc["detail"]
    # Still a working directory afterwards.
    assert (await scim.call("GET", "/Users", params={"count": "1"}))[0] == 200


async def test_wrong_tokens_journal_no_body_and_are_throttled(
    broker: Any, scim: Scim, directory: Any, session: aiohttp.ClientSession
) -> None:
    db = broker.store.db
    await scim.create_user("ann@acme.test")  # the IdP has synced before (token known)
    before = db.scalar("SELECT count(*) FROM scim_requests")
    body = json.dumps({"schemas": ["x"], "userName": "A" * 20_000}).encode()
    guess = Scim(session, directory.base, "brk_scim_guess")
    statuses, retry_after = [], set()
    for i in range(200):
        status, doc, headers = await guess.call(
            "POST", "/Users", raw=body, headers={"User-Agent": "U" * 5000}
        )
        statuses.append(status)
        if status == 429:
            retry_after.add(int(headers["Retry-After"]))
            assert doc["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        if i == 100:  # the directory's own IdP, same address, is not held up meanwhile
            assert (await scim.call("GET", "/Users"))[0] == 200
    burst = int(auth_failures.BURST)
    assert statuses[:burst] == [401] * burst and set(statuses[burst:]) == {429}
    assert retry_after and min(retry_after) >= 1
    rows = db.all(
        "SELECT status, request_body, response_body, user_agent, remote_addr, method, path"
        " FROM scim_requests WHERE id > (SELECT max(id) FROM scim_requests) - 1000"
        " AND status = 401"
    )
    assert len(rows) == burst
    for row in rows:
        assert (row["request_body"], row["response_body"], row["user_agent"]) == (None,) * 3
        assert (row["method"], row["path"], row["remote_addr"]) == ("POST", "/Users", "127.0.0.1")
    added = db.scalar("SELECT count(*) FROM scim_requests") - before
    assert added == burst + 1  # the 401s and the IdP's own GET: no row for a 429


async def test_failures_refill_and_made_up_directories_share_the_address_budget(
    broker: Any, directory: Any, session: aiohttp.ClientSession
) -> None:
    now = [1000.0]
    limiter = AuthFailureLimiter(
        burst=3, per_second=0.5, address_burst=5, address_per_second=0.01, clock=lambda: now[0]
    )
    broker.app._state[AUTH_FAILURES] = limiter
    wrong = Scim(session, directory.base, "brk_scim_wrong")
    assert [(await wrong.call("GET", "/Users"))[0] for _ in range(4)] == [401, 401, 401, 429]
    now[0] += 2.0  # one failure's worth refilled
    assert [(await wrong.call("GET", "/Users"))[0] for _ in range(2)] == [401, 429]
    # Other (made-up) directory ids from the same address: the address bucket (5) is
    # spent after one more failure, whatever the directory id.
    made_up = [Scim(session, directory.base.replace("dir_", f"dir_x{i}"), "t") for i in range(3)]
    assert [(await s.call("GET", "/Users"))[0] for s in made_up] == [401, 429, 429]


async def test_a_rotated_token_is_forgotten_and_throttled(
    broker: Any, scim: Scim, directory: Any, session: aiohttp.ClientSession
) -> None:
    from broker.core import directories

    limiter = AuthFailureLimiter(burst=2, per_second=0.001, clock=lambda: 0.0)
    broker.app._state[AUTH_FAILURES] = limiter
    for _ in range(5):  # the known token is never throttled, and gives back what it took
        assert (await scim.call("GET", "/Users"))[0] == 200
    directories.rotate_token(broker.store, directory.org_id, SystemClock().now(), 0)
    assert [(await scim.call("GET", "/Users"))[0] for _ in range(4)] == [401, 401, 401, 429]


def test_limiter_buckets_are_bounded() -> None:
    now = [0.0]
    limiter = AuthFailureLimiter(burst=1, per_second=1.0, max_keys=50, clock=lambda: now[0])
    for i in range(1000):
        assert limiter.admit(f"dir_{i}", f"10.0.{i // 250}.{i % 250}", None).retry_after == 0
    assert len(limiter.pairs.buckets) <= 50 and len(limiter.addresses.buckets) <= 50
    admission = limiter.admit("dir_a", "10.9.9.9", "tok")
    assert limiter.admit("dir_a", "10.9.9.9", "tok").retry_after == 1
    limiter.authenticated("dir_a", "10.9.9.9", "tok", admission)
    assert limiter.admit("dir_a", "10.9.9.9", "tok").counted is False
    limiter.refused("dir_a", "tok")
    assert limiter.admit("dir_a", "10.9.9.9", "tok").counted is True
