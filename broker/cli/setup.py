"""init · migrate · serve · backup · restore · doctor."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from broker import settings as settings_module
from broker.cli.common import Command, emit, fail, load_settings, open_store
from broker.crypto.certs import SP_CERT, SP_KEY, ensure_sp_certificate
from broker.crypto.secrets import SECRET_KEY_FILE, SecretBox
from broker.crypto.signing import ensure_keys
from broker.errors import ConfigError, StoreUnavailable
from broker.storage import migrations
from broker.storage.db import Database
from broker.storage.store import SQLiteStore


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="write config, generate keys, create and migrate the database")
    p.add_argument("--public-url", help="external base URL (the OIDC issuer)")
    p.add_argument(
        "--force",
        action="store_true",
        help="regenerate the SAML SP certificate and publish new OIDC keys",
    )
    Command(p, init)

    p = sub.add_parser("migrate", help="apply pending database migrations")
    Command(p, migrate)

    p = sub.add_parser("serve", help="run the broker")
    p.add_argument("--workers", type=int, help="processes sharing the port (default from config)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    Command(p, serve)

    p = sub.add_parser("backup", help="online, consistent copy of the database")
    p.add_argument("file", type=Path)
    Command(p, backup)

    p = sub.add_parser("restore", help="replace the database with a backup (broker stopped)")
    p.add_argument("file", type=Path)
    p.add_argument(
        "--yes-replace-database",
        action="store_true",
        dest="confirm",
        help="confirm that the current database will be overwritten",
    )
    Command(p, restore)

    p = sub.add_parser("doctor", help="check configuration, keys, database and libraries")
    Command(p, doctor)


def _example_config(base_dir: Path) -> str:
    example = base_dir / "config" / "broker.example.toml"
    if example.exists():
        return example.read_text(encoding="utf-8")
    return "# Exec Identity Broker settings; see config/broker.example.toml in the source.\n"


def _set_public_url(text: str, url: str) -> str:
    lines, done = [], False
    for line in text.splitlines():
        if not done and line.lstrip("# ").startswith("public_url"):
            line, done = f'public_url = "{url}"', True
        lines.append(line)
    if not done:
        lines = ["[server]", f'public_url = "{url}"', "", *lines]
    return "\n".join(lines) + "\n"


def init(args: argparse.Namespace) -> int:
    path = settings_module.config_path()
    base_dir = path.parent.parent
    report: dict[str, Any] = {"config": str(path), "created": []}
    if not path.exists():
        config_text = _example_config(base_dir)
        if args.public_url:
            config_text = _set_public_url(config_text, settings_module._url(args.public_url))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_text, encoding="utf-8")
        report["created"].append(str(path))
    settings = settings_module.load(path)
    certs = settings.certs_dir
    try:
        certs.mkdir(parents=True, exist_ok=True)
        certs.chmod(0o700)
    except OSError as exc:
        raise ConfigError(f"keys.certs_dir: cannot create {certs} ({exc.strerror})") from None
    if not (certs / SECRET_KEY_FILE).exists():
        SecretBox.create(certs)
        report["created"].append(str(certs / SECRET_KEY_FILE))
    host = settings.public_url.split("://", 1)[1].split("/")[0]
    if ensure_sp_certificate(certs, f"Exec Identity Broker SAML SP ({host})", force=args.force):
        report["created"] += [str(certs / SP_KEY), str(certs / SP_CERT)]
    settings.database.parent.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore.open(settings.database, migrate=True)
    try:
        from broker.clock import SystemClock
        from broker.crypto.signing import rotate

        now = SystemClock().now()
        new_kids = ensure_keys(store, certs, now)
        if args.force and not new_kids:
            new_kids = rotate(store, certs, now, settings.get("keys.rotation_grace_seconds"))[
                "published"
            ]
        report["created"] += [f"signing key {kid}" for kid in new_kids]
        report["schema_version"] = migrations.current_version(store.db)
    finally:
        store.close()
    report["already_initialised"] = not report["created"]

    def text() -> str:
        if not report["created"]:
            return f"Already initialised ({path}); keys and data kept."
        return "Initialised:\n" + "\n".join(f"  {c}" for c in report["created"])

    emit(args, report, text)
    return 0


def migrate(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    db = Database(settings.database, settings.get("storage.busy_timeout_ms"))
    try:
        applied = migrations.migrate(db)
        version = migrations.current_version(db)
    finally:
        db.close()
    emit(
        args,
        {"applied": applied, "schema_version": version},
        f"Applied {applied or 'nothing'}; schema version {version}.",
    )
    return 0


def serve(args: argparse.Namespace) -> int:
    from broker import server
    from broker.saml.xmlsafe import check_libxml2_versions

    settings = load_settings(args)
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["server__host"] = args.host
    if args.port:
        overrides["server__port"] = args.port
    settings = settings.with_overrides(**overrides) if overrides else settings
    try:
        check_libxml2_versions()
    except RuntimeError as exc:
        return fail(str(exc))
    store = open_store(settings)  # fails early: missing, locked, newer or unmigrated database
    try:
        store.check()
        store.db.execute("BEGIN IMMEDIATE")  # writable? (read-only file or directory)
        store.db.execute("ROLLBACK")
        from broker.crypto.signing import KeyRing

        KeyRing(store, 1).signing_key("RS256")
        SecretBox.load(settings.certs_dir)
        setup_url = _first_run_setup_url(store, settings)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"{settings.database}: {exc}") from None
    finally:
        store.close()
    workers = args.workers or settings.get("server.workers")
    try:
        return server.serve(settings, workers, setup_url)
    except OSError as exc:
        return fail(str(exc))


def _first_run_setup_url(store: SQLiteStore, settings: settings_module.Settings) -> str | None:
    """While no administrator exists, a one-time URL that leads into the setup UI."""
    from broker.clock import SystemClock
    from broker.core.admin_sessions import issue_setup_token

    ttl = settings.get("admin.setup_token_ttl_seconds")
    token = issue_setup_token(store, SystemClock(), ttl)
    return f"{settings.public_url}/admin/setup?token={token}" if token else None


def backup(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    target: Path = args.file.absolute()
    if target.exists():
        return fail(f"{target} exists; choose a new file name")
    store = open_store(settings)
    try:
        store.db.backup_to(target)
    finally:
        store.close()
    check = _integrity(target)
    emit(args, {"file": str(target), "integrity": check}, f"Backed up to {target} ({check}).")
    return 0 if check == "ok" else 1


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        return f"not a database ({exc})"
    finally:
        conn.close()


def restore(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    source: Path = args.file.absolute()
    if not source.exists():
        return fail(f"{source} does not exist")
    check = _integrity(source)
    if check != "ok":
        return fail(f"{source} is not a sound backup: {check}")
    db = Database(source)
    try:
        version = migrations.current_version(db)
    finally:
        db.close()
    if version > migrations.latest_version():
        return fail(f"{source} has schema version {version}, newer than this broker knows")
    if not args.confirm:
        return fail(
            "restore overwrites the current database; stop the broker and pass "
            "--yes-replace-database",
            2,
        )
    target = settings.database
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dest = sqlite3.connect(target)
    try:
        src.backup(dest)
    finally:
        src.close()
        dest.close()
    for suffix in ("-wal", "-shm"):
        stale = Path(str(target) + suffix)
        if stale.exists() and stale.stat().st_size == 0:
            stale.unlink()
    emit(
        args,
        {"restored": str(target), "from": str(source), "schema_version": version},
        f"Restored {target} from {source} (schema {version}). Run `exec-broker migrate` "
        "if the backup is from an older version.",
    )
    return 0


def doctor(args: argparse.Namespace) -> int:
    checks: dict[str, str] = {}
    try:
        settings = load_settings(args)
        checks["config"] = f"ok ({settings.config_path})"
    except ConfigError as exc:
        checks["config"] = exc.public
        emit(args, checks, "\n".join(f"{k}: {v}" for k, v in checks.items()))
        return 2
    try:
        from broker.saml.xmlsafe import check_libxml2_versions

        check_libxml2_versions()
        checks["libxml2"] = "ok"
    except RuntimeError as exc:
        checks["libxml2"] = str(exc)
    try:
        store = open_store(settings)
        store.check()
        from broker.crypto.signing import KeyRing

        KeyRing(store, 1).signing_key("RS256")
        store.close()
        checks["database"] = "ok"
        checks["keys"] = "ok"
    except (StoreUnavailable, ConfigError) as exc:
        checks["database"] = exc.public
    checks["xmlsec1 binary"] = "present" if shutil.which("xmlsec1") else "absent (not needed)"
    emit(args, checks, "\n".join(f"{k}: {v}" for k, v in checks.items()))
    bad = [k for k, v in checks.items() if not v.startswith(("ok", "present", "absent"))]
    return 1 if bad else 0
