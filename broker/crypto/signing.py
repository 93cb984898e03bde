"""OIDC signing keys (RS256, ES256), rotation and the JWKS.

Rotation follows dex's server/signer/rotation.go: a key is published as `next`
before it signs anything, becomes `current` at the next rotation, then `retired`
and stays in the JWKS for a grace period so tokens it signed still verify.
Every worker reads the states from the store, so they all agree on what signs.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from joserfc.jwk import ECKey, KeySet, RSAKey

from broker.core.ports import SigningKeyRecord, Store
from broker.crypto.files import write_private
from broker.errors import StoreUnavailable

Alg = Literal["RS256", "ES256"]
ALGS: tuple[Alg, ...] = ("RS256", "ES256")


def generate(alg: Alg, certs_dir: Path, now: float, state: str) -> SigningKeyRecord:
    """Make a new key pair, write the private half (0600) and describe it for the store."""
    kid = f"{alg.lower()}-{time.strftime('%Y%m%d', time.gmtime(now))}-{secrets.token_hex(4)}"
    params: Any = {"kid": kid, "alg": alg, "use": "sig"}
    key: RSAKey | ECKey
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=params, private=True)
    else:
        key = ECKey.generate_key("P-256", parameters=params, private=True)
    path = certs_dir / "oidc" / f"{kid}.pem"
    write_private(path, key.as_pem(private=True))
    public = key.as_dict(private=False)
    return SigningKeyRecord(
        kid=kid,
        alg=alg,
        state=state,  # type: ignore[arg-type]
        private_path=str(path),
        public_jwk=dict(public),
        created_at=now,
    )


def ensure_keys(store: Store, certs_dir: Path, now: float) -> list[str]:
    """Give each algorithm a current and a next key if it lacks them; return new kids."""
    created = []
    with store.transaction():
        records = store.signing_keys.list()
        for alg in ALGS:
            for state in ("current", "next"):
                if not any(r.alg == alg and r.state == state for r in records):
                    record = generate(alg, certs_dir, now, state)
                    store.signing_keys.create(record)
                    created.append(record.kid)
    return created


def rotate(
    store: Store, certs_dir: Path, now: float, grace_seconds: int, algs: tuple[Alg, ...] = ALGS
) -> dict[str, Any]:
    """next → current → retired; a fresh next is published; long-retired keys are dropped."""
    report: dict[str, Any] = {"activated": [], "retired": [], "published": [], "removed": []}
    with store.transaction():
        records = store.signing_keys.list()
        for alg in algs:
            mine = [r for r in records if r.alg == alg]
            nxt = [r for r in mine if r.state == "next"]
            if not nxt:  # a previous partial state: publish one first, promote next time
                record = generate(alg, certs_dir, now, "next")
                store.signing_keys.create(record)
                report["published"].append(record.kid)
                continue
            for current in (r for r in mine if r.state == "current"):
                store.signing_keys.set_state(current.kid, "retired", now)
                report["retired"].append(current.kid)
            store.signing_keys.set_state(nxt[0].kid, "current", now)
            report["activated"].append(nxt[0].kid)
            record = generate(alg, certs_dir, now, "next")
            store.signing_keys.create(record)
            report["published"].append(record.kid)
        for r in records:
            if (
                r.state == "retired"
                and r.retired_at is not None
                and r.retired_at + grace_seconds < now
            ):
                store.signing_keys.delete(r.kid)
                Path(r.private_path).unlink(missing_ok=True)
                report["removed"].append(r.kid)
    return report


@dataclass(frozen=True)
class LoadedKey:
    record: SigningKeyRecord
    key: RSAKey | ECKey


class KeyRing:
    """The signing keys as every worker sees them; re-read from the store every few seconds."""

    def __init__(self, store: Store, grace_seconds: int, refresh_seconds: float = 5.0) -> None:
        self.store = store
        self.grace_seconds = grace_seconds
        self.refresh_seconds = refresh_seconds
        self._loaded_at = -1e18
        self._keys: dict[str, LoadedKey] = {}

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self.refresh_seconds:
            return
        records = self.store.signing_keys.list()
        keys: dict[str, LoadedKey] = {}
        for record in records:
            known = self._keys.get(record.kid)
            if known is not None:
                keys[record.kid] = LoadedKey(record, known.key)
                continue
            try:
                pem = Path(record.private_path).read_bytes()
            except OSError as exc:
                raise StoreUnavailable(
                    f"signing key {record.kid}: cannot read {record.private_path} ({exc.strerror})"
                ) from None
            cls = RSAKey if record.alg == "RS256" else ECKey
            keys[record.kid] = LoadedKey(
                record,
                cls.import_key(
                    pem, parameters={"kid": record.kid, "alg": record.alg, "use": "sig"}
                ),
            )
        self._keys = keys
        self._loaded_at = time.monotonic()

    def signing_key(self, alg: Alg = "RS256") -> LoadedKey:
        self.refresh()
        for loaded in self._keys.values():
            if loaded.record.alg == alg and loaded.record.state == "current":
                return loaded
        raise StoreUnavailable(f"no current {alg} signing key; run `exec-broker init`")

    def public_jwks(self, now: float | None = None) -> dict[str, Any]:
        """Current, next and retired-within-grace public keys."""
        self.refresh()
        now = time.time() if now is None else now
        keys = []
        for loaded in self._keys.values():
            r = loaded.record
            if r.state == "retired" and (r.retired_at or 0) + self.grace_seconds < now:
                continue
            keys.append(dict(r.public_jwk))
        return {"keys": keys}

    def verification_keys(self) -> KeySet:
        """For verifying our own tokens (access tokens at userinfo, id_token_hint)."""
        jwks = self.public_jwks()
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]

    def find(self, kid: str) -> LoadedKey | None:
        self.refresh()
        if kid not in self._keys:
            self.refresh(force=True)
        return self._keys.get(kid)
