"""SCIM throughput and latency against real `exec-broker serve --workers N` processes.

Run: .venv/bin/python bench/bench_scim.py [--users 10000] [--groups 200] [--changes 2000]
                                          [--lookup-users 100000] [--workers 2] [--inflight 8]

1. Initial sync as an IdP does it, `inflight` requests at a time over loopback HTTP:
   POST every user, POST every group, then PATCH members in (50 per request).
2. Changes: `changes` operations mixed evenly: PATCH attribute updates, deactivations
   (`active=false`), single-member adds and removes.
   Reports ops/s and p50/p95/p99 per operation, then checks the end state exactly
   (every user's state and title, every group's member set) against what was sent.
3. Lookups: the directory grown to `lookup-users` users (extra rows written straight
   through the store), then `filter=userName eq "…"` one at a time: p50/p95/p99.
   RSS of each worker is read from /proc after the lookups.
Each phase also prints the CPU share of this process (the load generator) and of each
server process, what was left idle of the machine's cores, and the load average: other
work on a shared machine shows as load above what those shares explain.
Targets (2-core machine): overall >= 1,500 ops/s with p99 <= 30 ms on --workers 2;
lookup p50 <= 2 ms at 100k users; RSS <= 150 MB per worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import broker_home, serve, sso_tenant

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def worker_pids(proc_pid: int) -> list[int]:
    children = Path(f"/proc/{proc_pid}/task/{proc_pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return pids or [proc_pid]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by this process (the load generator) and by the server's workers
    over a phase, to tell a server limit from a client or machine limit."""

    def __init__(self, server_pid: int) -> None:
        self.pids = worker_pids(server_pid)
        self.start()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.client0 = time.process_time()
        self.workers0 = [cpu_seconds(p) for p in self.pids]

    def report(self, label: str) -> str:
        wall = time.perf_counter() - self.t0
        client = time.process_time() - self.client0
        workers = [cpu_seconds(p) - w for p, w in zip(self.pids, self.workers0, strict=True)]
        cores = os.cpu_count() or 1
        shown = ", ".join(f"{w / wall:.0%}" for w in workers)
        return (
            f"  cpu {label}: wall {wall:.1f} s; client {client / wall:.0%} of a core;"
            f" workers [{shown}] of a core each; idle left "
            f"{max(0.0, 1 - (client + sum(workers)) / (wall * cores)):.0%} of {cores} cores;"
            f" load average {os.getloadavg()[0]:.2f}"
        )


def summary(name: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"  {name:<18} n={len(ms):>6}  p50={pct(ms, 50):6.2f} ms  p95={pct(ms, 95):6.2f} ms"
        f"  p99={pct(ms, 99):6.2f} ms"
    )


def prepare(home: Any) -> tuple[str, str]:
    from broker.clock import SystemClock
    from broker.core import audit, policy

    org_id, _ = sso_tenant(home.store, "Bench", "bench.test")
    enabled = policy.enable_directory_sync(home.store, SystemClock(), audit.CLI, org_id)
    return enabled.directory_id, enabled.token


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        started = time.perf_counter()
        async with self.session.request(
            method,
            self.base + path,
            headers=self.headers,
            data=None if body is None else json.dumps(body),
            params=params,
        ) as resp:
            text = await resp.read()
            elapsed = time.perf_counter() - started
            if resp.status >= 300:
                self.failures.append(f"{kind} {resp.status} {text[:200]!r}")
                return None
        self.samples[kind].append(elapsed)
        return json.loads(text) if text else {}


async def run_all(jobs: list[Any], inflight: int) -> float:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            await job()

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(inflight)])
    return time.perf_counter() - started


async def sync_and_change(
    base: str, token: str, args: argparse.Namespace, meter: CpuMeter
) -> tuple[dict[str, Any], dict[str, set[str]]]:
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=args.inflight)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(session, base, token)
        users: dict[str, str] = {}  # userName → id
        expected: dict[str, dict[str, Any]] = {}

        def make_user(i: int) -> Any:
            async def job() -> None:
                name = f"user{i:06d}@bench.test"
                doc = await client.call(
                    "create user",
                    "POST",
                    "/Users",
                    {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": name,
                        "externalId": f"ext{i}",
                        "active": True,
                        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
                        "emails": [{"value": name, "type": "work", "primary": True}],
                    },
                )
                if doc:
                    users[name] = doc["id"]
                    expected[doc["id"]] = {"active": True, "title": None}

            return job

        groups: dict[str, str] = {}

        def make_group(i: int) -> Any:
            async def job() -> None:
                doc = await client.call(
                    "create group",
                    "POST",
                    "/Groups",
                    {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": f"Group {i:03d}",
                        "externalId": f"g{i}",
                    },
                )
                if doc:
                    groups[doc["id"]] = doc["displayName"]

            return job

        meter.start()
        t_users = await run_all([make_user(i) for i in range(args.users)], args.inflight)
        print(meter.report(f"{args.users} user creates ({args.users / t_users:,.0f}/s)"))
        t_groups = await run_all([make_group(i) for i in range(args.groups)], args.inflight)
        members: dict[str, set[str]] = {g: set() for g in groups}
        user_ids, group_ids = sorted(expected), sorted(groups)
        batches = []
        for uid in user_ids:  # every user in 2 groups
            for gid in rng.sample(group_ids, 2):
                members[gid].add(uid)
        for gid in group_ids:
            ids = sorted(members[gid])
            for start in range(0, len(ids), 50):
                batches.append((gid, ids[start : start + 50]))

        def add_members(gid: str, ids: list[str]) -> Any:
            async def job() -> None:
                await client.call(
                    "add members x50",
                    "PATCH",
                    f"/Groups/{gid}",
                    {
                        "schemas": [PATCH_OP],
                        "Operations": [
                            {"op": "add", "path": "members", "value": [{"value": u} for u in ids]}
                        ],
                    },
                )

            return job

        meter.start()
        t_members = await run_all([add_members(g, ids) for g, ids in batches], args.inflight)
        print(meter.report(f"{len(batches)} member batches ({len(batches) / t_members:,.0f}/s)"))
        initial_ops = args.users + args.groups + len(batches)
        initial_time = t_users + t_groups + t_members
        print(
            f"initial sync: {args.users} users, {args.groups} groups, {len(batches)} member "
            f"batches in {initial_time:.1f} s = {initial_ops / initial_time:,.0f} requests/s"
        )

        jobs = []
        live = list(user_ids)
        rng.shuffle(live)
        per_kind = args.changes // 4
        for i in range(per_kind):  # attribute updates
            uid = live[i]
            title = f"Title {i}"
            expected[uid]["title"] = title

            def update(uid: str = uid, title: str = title) -> Any:
                async def job() -> None:
                    await client.call(
                        "update user",
                        "PATCH",
                        f"/Users/{uid}",
                        {
                            "schemas": [PATCH_OP],
                            "Operations": [{"op": "replace", "path": "title", "value": title}],
                        },
                    )

                return job

            jobs.append(update())
        for i in range(per_kind, 2 * per_kind):  # deactivations (Entra's form)
            uid = live[i]
            expected[uid]["active"] = False

            def deactivate(uid: str = uid) -> Any:
                async def job() -> None:
                    await client.call(
                        "deactivate",
                        "PATCH",
                        f"/Users/{uid}",
                        {
                            "schemas": [PATCH_OP],
                            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
                        },
                    )

                return job

            jobs.append(deactivate())
        for i in range(args.changes - 2 * per_kind):  # single-member adds and removes
            gid = group_ids[i % len(group_ids)]
            if i % 2 == 0:
                uid = next(u for u in live[2 * per_kind + i :] if u not in members[gid])
                members[gid].add(uid)
                op, kind = "add", "member add"
            else:
                uid = sorted(members[gid])[i % len(members[gid])]
                members[gid].discard(uid)
                op, kind = "remove", "member remove"

            def member(gid: str = gid, uid: str = uid, op: str = op, kind: str = kind) -> Any:
                async def job() -> None:
                    await client.call(
                        kind,
                        "PATCH",
                        f"/Groups/{gid}",
                        {
                            "schemas": [PATCH_OP],
                            "Operations": [
                                {"op": op, "path": "members", "value": [{"value": uid}]}
                            ],
                        },
                    )

                return job

            jobs.append(member())
        rng.shuffle(jobs)
        meter.start()
        t_changes = await run_all(jobs, args.inflight)
        print(meter.report(f"{len(jobs)} changes"))
        print(f"changes: {len(jobs)} in {t_changes:.1f} s = {len(jobs) / t_changes:,.0f} ops/s")
        total_ops = initial_ops + len(jobs)
        total_time = initial_time + t_changes
        every = [s for v in client.samples.values() for s in v]
        print(
            f"overall: {total_ops} requests in {total_time:.1f} s = "
            f"{total_ops / total_time:,.0f} ops/s; p99 {pct(every, 99) * 1000:.2f} ms"
        )
        for kind, samples in client.samples.items():
            print(summary(kind, samples))
        if client.failures:
            print(f"FAILURES: {len(client.failures)}; first: {client.failures[:3]}")
        return expected, members


def verify(
    home: Any, directory_id: str, expected: dict[str, Any], members: dict[str, set[str]]
) -> bool:
    store = home.store
    users = {u.id: u for u in store.users.list(directory_id)}
    ok = set(users) == set(expected)
    for uid, want in expected.items():
        user = users.get(uid)
        if (
            user is None
            or (user.state == "active") != want["active"]
            or user.raw.get("title") != want["title"]
        ):
            ok = False
    for gid, want_members in members.items():
        if store.groups.member_ids(gid) != want_members or store.groups.member_count(gid) != len(
            want_members
        ):
            ok = False
    print(
        f"end state: {'EXACT' if ok else 'MISMATCH'} ({len(users)} users, "
        f"{len(members)} groups, {sum(len(m) for m in members.values())} memberships)"
    )
    return ok


def grow(home: Any, directory_id: str, org_id: str, total: int) -> None:
    from broker.core.models import DirectoryUser
    from broker.ids import new_id

    store = home.store
    have = len(store.users.list(directory_id))
    started = time.perf_counter()
    now = time.time()
    with store.transaction():
        for i in range(have, total):
            name = f"user{i:06d}@bench.test"
            store.users.create(
                DirectoryUser(
                    id=new_id("usr"),
                    organization_id=org_id,
                    directory_id=directory_id,
                    user_name=name,
                    email=name,
                    state="active",
                    role="member",
                    seat="basic",
                    external_id=f"ext{i}",
                    raw={"userName": name, "emails": [{"value": name, "primary": True}]},
                    created_at=now,
                    updated_at=now,
                ),
                base_seat="basic",
            )
    print(f"grew the directory to {total:,} users in {time.perf_counter() - started:.1f} s")


async def lookups(base: str, token: str, total: int, n: int) -> list[float]:
    rng = random.Random(11)
    async with aiohttp.ClientSession() as session:
        client = Client(session, base, token)
        for _ in range(n):
            name = f"USER{rng.randrange(total):06d}@bench.test"  # case-insensitive match
            doc = await client.call(
                "userName eq", "GET", "/Users", params={"filter": f'userName eq "{name}"'}
            )
            assert doc and doc["totalResults"] == 1, doc
        print(summary("userName eq", client.samples["userName eq"]))
        return client.samples["userName eq"]


def worker_rss(proc_pid: int) -> list[int]:
    found = []
    for pid in worker_pids(proc_pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                found.append(int(line.split()[1]) // 1024)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--changes", type=int, default=2_000)
    parser.add_argument("--lookup-users", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inflight", type=int, default=8)
    args = parser.parse_args()
    # Throttling is per directory; the benchmark is one directory going flat out.
    with broker_home(BROKER_SCIM_RATE_LIMIT_PER_SECOND="100000") as home:
        directory_id, token = prepare(home)
        org_id = home.store.directories.get(directory_id).organization_id
        base = f"{home.url}/scim/v2/{directory_id}"
        with serve(home, workers=args.workers) as proc:
            print(
                f"exec-broker serve --workers {args.workers}; {args.inflight} in flight;"
                f" load average {os.getloadavg()[0]:.2f} at start"
            )
            meter = CpuMeter(proc.pid)
            expected, members = asyncio.run(sync_and_change(base, token, args, meter))
            ok = verify(home, directory_id, expected, members)
            grow(home, directory_id, org_id, args.lookup_users)
            samples = asyncio.run(lookups(base, token, args.lookup_users, args.lookups))
            rss = worker_rss(proc.pid)
            print(f"RSS per worker at {args.lookup_users:,} users: {rss} MB")
        print(f"userName lookup p50 {statistics.median(samples) * 1000:.2f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
