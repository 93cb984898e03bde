"""Changing a registered client's URIs from the setup UI (issue 8 §7).

The same validation as registration (broker.core.clients.check_uri): exact https URLs,
http only for loopback, no fragments. Secrets are rotated by clients.rotate_secret and
webhooks.rotate_secret; this module never touches them.
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.clock import Clock
from broker.core import audit
from broker.core.clients import check_uri
from broker.core.models import Client
from broker.core.ports import Store
from broker.errors import InvalidInput


def update_uris(
    store: Store,
    clock: Clock,
    actor: audit.Actor,
    client_id: str,
    *,
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str] = (),
    initiate_login_uri: str | None = None,
    backchannel_logout_uri: str | None = None,
) -> Client:
    if not redirect_uris:
        raise InvalidInput("a client needs at least one redirect URI")
    for uri in redirect_uris:
        check_uri(uri, "redirect URI")
    for uri in post_logout_redirect_uris:
        check_uri(uri, "post-logout redirect URI")
    if initiate_login_uri:
        check_uri(initiate_login_uri, "initiate-login URI")
    if backchannel_logout_uri:
        check_uri(backchannel_logout_uri, "back-channel logout URI")
    now = clock.now()
    with store.transaction():
        client = store.clients.update(
            client_id,
            redirect_uris=list(redirect_uris),
            post_logout_redirect_uris=list(post_logout_redirect_uris),
            initiate_login_uri=initiate_login_uri or None,
            backchannel_logout_uri=backchannel_logout_uri or None,
            updated_at=now,
        )
        audit.record(
            store,
            actor,
            "client.updated",
            now,
            target=client_id,
            redirect_uris=list(redirect_uris),
            post_logout_redirect_uris=list(post_logout_redirect_uris),
            initiate_login_uri=initiate_login_uri,
            backchannel_logout_uri=backchannel_logout_uri,
        )
    return client
