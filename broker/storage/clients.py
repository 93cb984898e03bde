"""OIDC clients of the broker (normally just Exec) and the organizations they may see."""

from __future__ import annotations

import builtins
import sqlite3
from typing import Any

from broker.core.models import Client
from broker.errors import NotFound
from broker.storage.db import Database
from broker.storage.rows import insert, loads, update_columns

_COLUMNS = (
    "name",
    "secret_hash",
    "redirect_uris",
    "post_logout_redirect_uris",
    "initiate_login_uri",
    "backchannel_logout_uri",
    "token_endpoint_auth_method",
    "id_token_signed_response_alg",
    "jwks",
    "front_channel_only",
    "webhook_url",
    "webhook_secret_enc",
    "updated_at",
)
_JSON = ("redirect_uris", "post_logout_redirect_uris", "jwks")


class ClientRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _client(self, row: sqlite3.Row) -> Client:
        orgs = self.db.all(
            "SELECT organization_id FROM client_organizations WHERE client_id = ?"
            " ORDER BY organization_id",
            (row["id"],),
        )
        return Client(
            id=row["id"],
            name=row["name"],
            secret_hash=row["secret_hash"],
            redirect_uris=tuple(loads(row["redirect_uris"], [])),
            post_logout_redirect_uris=tuple(loads(row["post_logout_redirect_uris"], [])),
            initiate_login_uri=row["initiate_login_uri"],
            backchannel_logout_uri=row["backchannel_logout_uri"],
            token_endpoint_auth_method=row["token_endpoint_auth_method"],
            id_token_signed_response_alg=row["id_token_signed_response_alg"],
            jwks=loads(row["jwks"]),
            front_channel_only=bool(row["front_channel_only"]),
            webhook_url=row["webhook_url"],
            webhook_secret_enc=row["webhook_secret_enc"],
            organization_ids=tuple(r[0] for r in orgs),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def create(self, client: Client) -> None:
        insert(
            self.db,
            "clients",
            {
                "id": client.id,
                "name": client.name,
                "secret_hash": client.secret_hash,
                "redirect_uris": list(client.redirect_uris),
                "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
                "initiate_login_uri": client.initiate_login_uri,
                "backchannel_logout_uri": client.backchannel_logout_uri,
                "token_endpoint_auth_method": client.token_endpoint_auth_method,
                "id_token_signed_response_alg": client.id_token_signed_response_alg,
                "jwks": client.jwks,
                "front_channel_only": client.front_channel_only,
                "webhook_url": client.webhook_url,
                "webhook_secret_enc": client.webhook_secret_enc,
                "created_at": client.created_at,
                "updated_at": client.updated_at,
            },
            f"client {client.id}",
        )
        for org_id in client.organization_ids:
            self.bind_organization(client.id, org_id)

    def get(self, client_id: str) -> Client:
        row = self.db.one("SELECT * FROM clients WHERE id = ?", (client_id,))
        if row is None:
            raise NotFound(f"client {client_id} not found")
        return self._client(row)

    def list(self) -> builtins.list[Client]:
        return [self._client(r) for r in self.db.all("SELECT * FROM clients ORDER BY id")]

    def update(self, client_id: str, **fields: Any) -> Client:
        update_columns(self.db, "clients", ("id", client_id), fields, _COLUMNS, _JSON)
        return self.get(client_id)

    def bind_organization(self, client_id: str, organization_id: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO client_organizations VALUES (?, ?)", (client_id, organization_id)
        )
