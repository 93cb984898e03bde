"""State of the OIDC signing keys (the private halves are files under certs/)."""

from __future__ import annotations

import builtins

from broker.core.ports import SigningKeyRecord
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import dumps, loads


class SigningKeyRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, key: SigningKeyRecord) -> None:
        self.db.execute(
            "INSERT INTO signing_keys (kid, alg, state, private_path, public_jwk, created_at,"
            " activated_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.kid,
                key.alg,
                key.state,
                key.private_path,
                dumps(key.public_jwk),
                key.created_at,
                key.activated_at,
                key.retired_at,
            ),
        )

    def list(self) -> builtins.list[SigningKeyRecord]:
        rows = self.db.all("SELECT * FROM signing_keys ORDER BY created_at, kid")
        return [
            SigningKeyRecord(
                kid=r["kid"],
                alg=r["alg"],
                state=r["state"],
                private_path=r["private_path"],
                public_jwk=loads(r["public_jwk"], {}),
                created_at=r["created_at"],
                activated_at=r["activated_at"],
                retired_at=r["retired_at"],
            )
            for r in rows
        ]

    def set_state(self, kid: str, state: str, at: float) -> None:
        column = {"current": "activated_at", "retired": "retired_at"}.get(state)
        sql = "UPDATE signing_keys SET state = ?" + (f", {column} = ?" if column else "")
        params = [state, at] if column else [state]
        if self.db.execute(sql + " WHERE kid = ?", [*params, kid]).rowcount == 0:
            raise NotFound(f"signing key {kid} not found")

    def delete(self, kid: str) -> None:
        self.db.execute("DELETE FROM signing_keys WHERE kid = ?", (kid,))
