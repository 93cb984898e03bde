"""What keeps SCIM writes fast must not change what they do: group commit (several
requests in one transaction, a failure answered on its own), membership PATCHes that
read once, the id-list query they use, and checkpoints that let the WAL restart."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from typing import Any

from broker.clock import SystemClock
from broker.core import query as q
from broker.scim.handlers import Request
from broker.scim.routes import LIMITS
from broker.scim.service import Call, execute_batch
from broker.storage.db import CATCH_UP_FRAMES, Database

from .conftest import events_of

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _create(directory: Any, user_name: str) -> Call:
    body = f'{{"schemas":["{USER}"],"userName":"{user_name}","password":"s3cret"}}'
    return Call(
        directory.directory_id,
        directory.token,
        Request("POST", "/Users", {}, body.encode(), directory.base),
    )


async def test_a_batch_commits_together_and_a_failure_is_answered_alone(broker, scim, directory):
    store = broker.store
    await scim.create_user("dup@acme.test")
    before = len(store.scim_journal.list(directory.directory_id, limit=1000))
    calls = [_create(directory, n) for n in ("a@acme.test", "DUP@acme.test", "b@acme.test")]
    outcomes = execute_batch(store, SystemClock(), broker.app[LIMITS], calls)
    assert [o.status for o in outcomes] == [201, 409, 201]
    names = sorted(u.user_name for u in store.users.list(directory.directory_id))
    assert names == ["a@acme.test", "b@acme.test", "dup@acme.test"]
    # The rolled-back first attempt left nothing behind: one event per user, one journal
    # entry per request, bodies redacted.
    created = [e.data["user_name"] for e in events_of(store, directory.org_id, "dsync.user.cr")]
    assert created == ["dup@acme.test", "a@acme.test", "b@acme.test"]
    journal = store.scim_journal.list(directory.directory_id, limit=1000)
    assert len(journal) - before == 3
    assert sorted(e.status for e in journal[:3]) == [201, 201, 409]
    assert all("s3cret" not in (e.request_body or "") for e in journal)

    calls = [_create(directory, n) for n in ("c@acme.test", "d@acme.test")]
    assert [o.status for o in execute_batch(store, SystemClock(), broker.app[LIMITS], calls)] == [
        201,
        201,
    ]
    created = [e.data["user_name"] for e in events_of(store, directory.org_id, "dsync.user.cr")]
    assert created[-2:] == ["c@acme.test", "d@acme.test"]  # in request order


async def test_concurrent_requests_over_http_each_get_their_own_answer(broker, scim, directory):
    await scim.create_user("taken@acme.test")
    names = [f"u{i}@acme.test" for i in range(15)] + ["TAKEN@acme.test"]
    bodies = [{"schemas": [USER], "userName": n} for n in names]
    results = await asyncio.gather(*[scim.call("POST", "/Users", b) for b in bodies])
    statuses = [status for status, _doc, _headers in results]
    assert statuses == [201] * 15 + [409]
    assert [doc["userName"] for _s, doc, _h in results[:15]] == names[:15]
    assert len(broker.store.users.list(directory.directory_id)) == 16


async def test_a_membership_patch_describes_each_step(broker, scim, directory):
    store = broker.store
    ids = [(await scim.create_user(f"m{i}@acme.test"))["id"] for i in range(3)]
    await scim.create_group("zeta", [ids[0]])
    alpha = (await scim.create_group("Alpha"))["id"]
    status, _doc, _headers = await scim.call(
        "PATCH",
        f"/Groups/{alpha}",
        {"Operations": [{"op": "add", "path": "members", "value": [{"value": u} for u in ids]}]},
    )
    assert status == 204
    added = [
        e.data
        for e in events_of(store, directory.org_id, "dsync.group.user_added")
        if e.data["group"]["id"] == alpha
    ]
    assert [d["user"]["id"] for d in added] == ids
    assert [d["group"]["member_count"] for d in added] == [1, 2, 3]
    assert [g["name"] for g in added[0]["user"]["groups"]] == ["Alpha", "zeta"]  # NOCASE order
    assert [g["name"] for g in added[1]["user"]["groups"]] == ["Alpha"]
    assert store.groups.member_count(alpha) == 3
    assert store.groups.get(directory.directory_id, alpha).version == 2
    status, _doc, _headers = await scim.call(
        "PATCH",
        f"/Groups/{alpha}",
        {"Operations": [{"op": "add", "path": "members", "value": [{"value": "usr_nobody"}]}]},
    )
    assert status == 400 and store.groups.member_count(alpha) == 3


async def test_users_by_id_list(broker, scim, directory):
    store = broker.store
    ids = [(await scim.create_user(f"l{i}@acme.test"))["id"] for i in range(4)]

    def found(expr: q.Expr) -> list[str]:
        page = store.users.query(directory.directory_id, q.Query(filter=expr, count=50))
        return sorted(u.id for u in page.items)

    assert found(q.In(q.Field(column="id"), (ids[0], ids[2], "usr_missing"))) == sorted(
        [ids[0], ids[2]]
    )
    assert found(q.In(q.Field(column="id"), ())) == []
    assert found(q.In(q.Field(column="user_name"), ("L1@ACME.TEST",))) == [ids[1]]  # NOCASE


def _frames(db: Database) -> int:
    return int(db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def test_checkpoint_catches_up_under_the_writers_lock(tmp_path):
    db = Database(tmp_path / "t.db")
    db.conn.execute("CREATE TABLE t (b BLOB)")
    other = os.open(f"{db.path}.lock", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # a writer of another process holds its turn
        started = time.monotonic()
        db.checkpoint()  # a short WAL: no need to wait for the writers
        assert time.monotonic() - started < 1
        fcntl.flock(other, fcntl.LOCK_UN)

        for _ in range(CATCH_UP_FRAMES // 2 + 10):
            with db.transaction() as conn:
                conn.execute("INSERT INTO t VALUES (randomblob(3000))")
        fcntl.flock(other, fcntl.LOCK_EX)
        done = threading.Event()

        def checkpoint() -> None:
            db.checkpoint()
            done.set()

        thread = threading.Thread(target=checkpoint)
        thread.start()
        assert not done.wait(0.3)  # a long WAL: it waits for its turn to catch up
        fcntl.flock(other, fcntl.LOCK_UN)
        assert done.wait(10)
        thread.join()
        with db.transaction() as conn:  # the next writer starts the WAL over
            conn.execute("INSERT INTO t VALUES (1)")
        assert _frames(db) < 10
    finally:
        os.close(other)
        db.close()
