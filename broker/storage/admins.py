"""Setup-UI administrators (argon2 hashes only)."""

from __future__ import annotations

import sqlite3
from typing import Any

from broker.core.models import Admin
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import insert, update_columns


def _admin(row: sqlite3.Row) -> Admin:
    return Admin(
        id=row["id"],
        username=row["username"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
    )


class AdminRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, admin: Admin) -> None:
        insert(
            self.db,
            "admins",
            {
                "id": admin.id,
                "username": admin.username,
                "password_hash": admin.password_hash,
                "created_at": admin.created_at,
            },
            f"admin {admin.username}",
        )

    def get_by_username(self, username: str) -> Admin:
        row = self.db.one("SELECT * FROM admins WHERE username = ?", (username,))
        if row is None:
            raise NotFound(f"admin {username} not found")
        return _admin(row)

    def count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM admins"))

    def update(self, admin_id: str, **fields: Any) -> None:
        update_columns(
            self.db, "admins", ("id", admin_id), fields, ("password_hash", "last_login_at")
        )
