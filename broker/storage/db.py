"""The SQLite file: connections, pragmas, transactions.

WAL mode lets readers run beside the one writer; `BEGIN IMMEDIATE` takes the write
lock up front so that two processes never deadlock upgrading a read lock; the busy
timeout makes a writer wait for the lock instead of failing at once. Each thread
gets its own connection (sqlite3 objects are not shared across threads); the
server runs store calls on one thread per process (broker.web.services).

Writers of different processes first queue on an flock() of `<database>.lock`:
SQLite's own busy handler polls with sleeps of 1 ms and more, which caps a
two-worker server far below what one writer can do; the kernel hands an flock to
the next waiter as soon as it is released. SQLite's lock and busy timeout still
guard against writers that do not take the flock (the sqlite3 shell, say).

Checkpoints run off the request path (checkpoint(), from a thread of each server
worker). A WAL only starts over from its beginning when a checkpoint has copied every
frame before the next write transaction begins; under steady writes a checkpoint that
runs beside writers never quite catches up, the WAL grows to the automatic checkpoint
size and the checkpoint then runs inside some request's COMMIT, holding the write
lock. So checkpoint() copies the bulk beside the writers, then, when the WAL is big
enough to be worth restarting, takes the writers' flock for the short catch-up.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlite_utils

from broker.errors import StoreUnavailable

# Safety net for processes without the checkpoint thread (CLI, tests); larger than what
# the server writes between two background checkpoints (about 20 pages per SCIM write).
AUTOCHECKPOINT_PAGES = 16000
# A checkpoint that finds at least this many WAL frames catches up under the flock so
# that the WAL restarts (and the file is cut back to JOURNAL_SIZE_LIMIT).
CATCH_UP_FRAMES = 1000
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


class Database:
    def __init__(self, path: Path | str, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock_fds: list[int] = []
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            self._local.depth = 0
            self._local.lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            with self._lock:
                self._all.append(conn)
                self._lock_fds.append(self._local.lock_fd)
        return conn

    def _open(self) -> sqlite3.Connection:
        if not self.path.parent.is_dir():
            raise StoreUnavailable(f"database directory {self.path.parent} does not exist")
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreUnavailable(f"{self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            # The server checkpoints from a background thread (checkpoint()); the automatic
            # checkpoint, which would run inside a request right after COMMIT, is only a
            # safety net for processes without that thread (CLI, tests).
            conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            conn.execute("PRAGMA temp_store = MEMORY")  # sorts and DISTINCT never hit disk
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: cannot open the database ({exc})") from None
        return conn

    @property
    def utils(self) -> sqlite_utils.Database:
        """sqlite-utils on this thread's connection (table helpers, introspection)."""
        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
            for fd in self._lock_fds:
                with suppress(OSError):
                    os.close(fd)
            self._lock_fds.clear()
        self._local = threading.local()

    # -- statements --------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise _translate(exc, self.path) from exc

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return list(self.execute(sql, params).fetchall())

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE); nested calls join the outer one."""
        conn = self.conn
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        with self._writers_turn():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _translate(exc, self.path) from exc
            self._local.depth = 1
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    conn.execute("ROLLBACK")
                    raise _translate(exc, self.path) from exc
            finally:
                self._local.depth = 0

    @contextmanager
    def _writers_turn(self) -> Iterator[None]:
        """Hold the flock that the writers of every process queue on."""
        lock_fd = self._local.lock_fd
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)

    @property
    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy committed WAL pages into the database file (PASSIVE: beside the writers),
        then, if the WAL is long, copy what they added meanwhile while holding their
        flock, so that the next writer restarts the WAL: (busy, WAL pages, pages
        checkpointed)."""
        conn = self.conn
        busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if log >= CATCH_UP_FRAMES:
            with self._writers_turn():
                busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(log), int(done)

    def backup_to(self, target: Path) -> None:
        """An online, consistent copy through SQLite's backup API."""
        dest = sqlite3.connect(target)
        try:
            self.conn.backup(dest)
        finally:
            dest.close()


def _translate(exc: sqlite3.OperationalError, path: Path) -> Exception:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreUnavailable(f"{path}: the database stayed locked by another process ({text})")
    if "readonly" in text or "read-only" in text:
        return StoreUnavailable(f"{path}: the database is read-only ({text})")
    if "unable to open" in text or "disk I/O" in text:
        return StoreUnavailable(f"{path}: cannot open the database ({text})")
    return exc
