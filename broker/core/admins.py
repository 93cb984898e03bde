"""Setup-UI administrators. Hashing is injected (argon2 lives in broker.crypto)."""

from __future__ import annotations

import re
from collections.abc import Callable

from broker.clock import Clock
from broker.core import audit
from broker.core.models import Admin
from broker.core.ports import Store
from broker.errors import InvalidInput
from broker.ids import new_id

_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{2,64}$")


def create_admin(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    username: str,
    password: str,
    hash_password: Callable[[str], str],
) -> Admin:
    if not _USERNAME.match(username):
        raise InvalidInput("a username has 2-64 letters, digits or . _ @ + -")
    now = clock.now()
    admin = Admin(
        id=new_id("adm"), username=username, password_hash=hash_password(password), created_at=now
    )
    with store.transaction():
        store.admins.create(admin)
        audit.record(store, actor, "admin.created", now, target=admin.id, username=username)
    return admin
