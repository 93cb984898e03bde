"""`exec-broker serve` as a real process: banner, health, readiness, clean SIGTERM, and the
start-up failures an admin can meet (port in use, newer schema, locked or broken files)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from broker.settings import Settings
from broker.storage import migrations

BIN = Path(sys.executable).parent / "exec-broker"


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def start(settings: Settings, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "BROKER_CONFIG": str(settings.config_path), "BROKER_LOG_FORMAT": "json"}
    return subprocess.Popen(
        [str(BIN), "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(url: str, proc: subprocess.Popen[str], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.communicate()}")
        try:
            if get(url + "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("serve did not become ready")


def run_cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "BROKER_CONFIG": str(settings.config_path), **(env or {})}
    return subprocess.run(
        [str(BIN), *args], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


def test_serve_answers_and_stops_cleanly(settings: Settings, port: int) -> None:
    proc = start(settings)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        assert get(url + "/healthz") == (200, {"status": "ok"})
        status, body = get(url + "/readyz")
        assert status == 200 and body["checks"] == {"store": "ok", "keys": "ok"}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert f"OIDC issuer:   {url}" in out and f"{url}/admin" in out
    assert "Traceback" not in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("msg") == "request"]
    assert {r["path"] for r in requests} >= {"/healthz", "/readyz"}
    assert all(len(r["request_id"]) == 16 for r in requests)


def test_two_workers_share_the_port(settings: Settings, port: int) -> None:
    proc = start(settings, "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        wait_ready(url, proc)
        for _ in range(50):
            assert get(url + "/readyz")[0] == 200
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) >= 2, children  # two workers (plus, maybe, the spawn tracker)
        deadline = time.monotonic() + 20
        while not any("listening on" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)  # the first worker prints the banner once it is serving
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(5)
        err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert len([line for line in lines if "listening on" in line]) == 1, lines


def test_port_in_use_is_one_clear_message(settings: Settings, port: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_cli(settings, "serve")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"exec-broker: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_newer_schema_refuses_to_start(settings: Settings) -> None:
    conn = sqlite3.connect(settings.database)
    conn.execute(
        "INSERT INTO schema_migrations VALUES (?, 'future', 0)", (migrations.latest_version() + 1,)
    )
    conn.commit()
    conn.close()
    result = run_cli(settings, "serve")
    assert result.returncode == 1
    assert "is newer than this broker knows" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unmigrated_database_says_what_to_do(settings: Settings) -> None:
    settings.database.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(settings.database) + suffix).unlink(missing_ok=True)
    result = run_cli(settings, "serve")
    assert result.returncode == 1
    assert "run `exec-broker migrate`" in result.stderr
    assert run_cli(settings, "migrate").returncode == 0


def test_corrupt_database_file(settings: Settings) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(settings.database) + suffix).unlink(missing_ok=True)
    settings.database.write_bytes(b"this is not sqlite" * 100)
    result = run_cli(settings, "serve")
    assert result.returncode == 1
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr


def test_missing_certs_dir(settings: Settings) -> None:
    result = run_cli(settings, "serve", env={"BROKER_CERTS_DIR": str(settings.base_dir / "gone")})
    assert result.returncode in (1, 2)
    assert "gone" in result.stderr and "Traceback" not in result.stderr


def test_locked_database_times_out_with_a_message(settings: Settings) -> None:
    holder = sqlite3.connect(settings.database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run_cli(
            settings, "org", "create", "Acme", env={"BROKER_STORAGE_BUSY_TIMEOUT_MS": "300"}
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert "stayed locked by another process" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_cli(settings, "org", "list", "--json").stdout.strip() == "[]"  # nothing half-done


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["init"],
        ["serve"],
        ["migrate"],
        ["backup"],
        ["restore"],
        ["doctor"],
        ["keys", "rotate"],
        ["keys", "export-jwks"],
        ["org", "create"],
        ["org", "sso"],
        ["domain", "add"],
        ["domain", "verify"],
        ["client", "create"],
        ["admin", "create"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    from broker.cli import build_parser

    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*command, "--help"])
    assert done.value.code == 0
