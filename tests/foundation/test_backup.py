"""`exec-broker backup` while another process writes; `restore` with confirmation."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from broker.cli import main as cli_main
from broker.clock import SystemClock
from broker.core import audit, organizations
from broker.settings import Settings
from broker.storage.store import SQLiteStore


def _keep_writing(path: str, stop_after: float) -> None:
    store = SQLiteStore.open(path, busy_timeout_ms=10_000)
    clock = SystemClock()
    deadline = time.monotonic() + stop_after
    i = 0
    while time.monotonic() < deadline:
        organizations.create_organization(store, clock, audit.CLI, f"writer-{i}")
        i += 1
    store.close()


def check(path: Path) -> tuple[str, int, int]:
    conn = sqlite3.connect(path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        orgs = conn.execute("SELECT COUNT(*) FROM organizations").fetchone()[0]
        created = conn.execute(
            "SELECT COUNT(*) FROM events WHERE type = 'organization.created'"
        ).fetchone()[0]
        return integrity, orgs, created
    finally:
        conn.close()


def test_backup_during_writes_is_consistent(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=_keep_writing, args=(str(settings.database), 8.0))
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while check(settings.database)[1] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)  # the writer is spawned: wait until it is really writing
        copies = []
        for n in range(3):
            target = tmp_path / f"backup-{n}.db"
            assert cli_main(["backup", str(target)]) == 0
            copies.append(target)
            time.sleep(0.3)
    finally:
        writer.join(30)
    assert writer.exitcode == 0
    counts = []
    for copy in copies:
        integrity, orgs, created = check(copy)
        assert integrity == "ok"
        assert orgs == created > 0  # each organization and its event, never one without the other
        counts.append(orgs)
    assert counts == sorted(counts)
    assert "integrity ok" not in capsys.readouterr().err


def test_backup_refuses_to_overwrite(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "b.db"
    target.write_text("precious")
    assert cli_main(["backup", str(target)]) == 1
    assert target.read_text() == "precious"
    assert "exists" in capsys.readouterr().err


def test_restore_needs_confirmation_and_a_sound_file(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["org", "create", "Before"]) == 0
    backup = tmp_path / "b.db"
    assert cli_main(["backup", str(backup)]) == 0
    assert cli_main(["org", "create", "After"]) == 0
    capsys.readouterr()

    assert cli_main(["restore", str(backup)]) == 2
    assert "--yes-replace-database" in capsys.readouterr().err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 50)
    assert cli_main(["restore", str(junk), "--yes-replace-database"]) == 1
    assert "not a sound backup" in capsys.readouterr().err

    assert cli_main(["restore", str(backup), "--yes-replace-database"]) == 0
    names = [o.name for o in SQLiteStore.open(settings.database).organizations.list()]
    assert names == ["Before"]
