"""Store: migrations from empty and from every earlier version, newer schemas refused,
transactions, and two processes writing one file at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from broker.clock import SystemClock
from broker.core import audit, organizations
from broker.errors import AlreadyExists, NotFound, StoreUnavailable
from broker.storage import migrations
from broker.storage.db import Database
from broker.storage.store import SQLiteStore


def tables(db: Database) -> set[str]:
    return {r[0] for r in db.all("SELECT name FROM sqlite_master WHERE type='table'")}


def test_migrates_from_empty(tmp_path: Path) -> None:
    db = Database(tmp_path / "b.db")
    applied = migrations.migrate(db)
    assert applied == [m.version for m in migrations.available()]
    assert {"organizations", "domains", "connections", "events", "flows"} <= tables(db)
    assert migrations.migrate(db) == []  # idempotent
    assert db.scalar("PRAGMA journal_mode") == "wal"
    assert db.scalar("PRAGMA foreign_keys") == 1
    migrations.check_current(db)


@pytest.mark.parametrize("start", [m.version for m in migrations.available()][:-1] or [0])
def test_migrates_from_every_earlier_version(tmp_path: Path, start: int) -> None:
    db = Database(tmp_path / "b.db")
    migrations.migrate(db, target=start)
    assert migrations.current_version(db) == start
    if start:
        # data written at the old version survives the upgrade
        db.execute(
            "INSERT INTO organizations (id, name, created_at, updated_at)"
            " VALUES ('org_old', 'Old', 0, 0)"
        )
    with pytest.raises(StoreUnavailable, match="run `exec-broker migrate`"):
        migrations.check_current(db)
    migrations.migrate(db)
    migrations.check_current(db)
    if start:
        assert db.scalar("SELECT name FROM organizations WHERE id='org_old'") == "Old"


def test_newer_schema_is_refused_and_untouched(tmp_path: Path) -> None:
    db = Database(tmp_path / "b.db")
    migrations.migrate(db)
    future = migrations.latest_version() + 1
    db.execute("INSERT INTO schema_migrations VALUES (?, 'future', 0)", (future,))
    with pytest.raises(StoreUnavailable, match="newer than this broker knows"):
        migrations.check_current(db)
    with pytest.raises(StoreUnavailable, match="newer than this broker knows"):
        migrations.migrate(db)
    assert migrations.current_version(db) == future


def test_transaction_rolls_back_everything(tmp_path: Path) -> None:
    store = SQLiteStore.open(tmp_path / "b.db", migrate=True)
    clock = SystemClock()
    org = organizations.create_organization(store, clock, audit.CLI, "Acme")
    events_before = len(store.events.after(0, 1000))
    with pytest.raises(RuntimeError), store.transaction():
        store.organizations.update(org.id, name="Changed", updated_at=1.0)
        store.events.append("evt_x", "organization.updated", org.id, {}, 1.0)
        raise RuntimeError("boom")
    assert store.organizations.get(org.id).name == "Acme"
    assert len(store.events.after(0, 1000)) == events_before


def test_repository_sentinels(tmp_path: Path) -> None:
    store = SQLiteStore.open(tmp_path / "b.db", migrate=True)
    with pytest.raises(NotFound):
        store.organizations.get("org_missing")
    org = organizations.create_organization(store, SystemClock(), audit.CLI, "Acme", "ext-1")
    with pytest.raises(AlreadyExists):
        organizations.create_organization(store, SystemClock(), audit.CLI, "Other", "ext-1")
    assert store.organizations.get(org.id).external_id == "ext-1"


def _writer(path: str, n: int, name: str) -> None:
    store = SQLiteStore.open(path, busy_timeout_ms=10_000)
    clock = SystemClock()
    for i in range(n):
        organizations.create_organization(store, clock, audit.CLI, f"{name}-{i}")
    store.close()


def test_two_processes_write_without_lock_errors(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    SQLiteStore.open(path, migrate=True).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), 150, f"p{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    store = SQLiteStore.open(path)
    assert len(store.organizations.list()) == 300
    seqs = [e.seq for e in store.events.after(0, 10_000)]
    assert len(seqs) == 300 and seqs == sorted(seqs)
