"""Exec's OIDC client: registration, URIs, secret rotation (shown once), webhook endpoint
with its delivery log (issue 8 §7). Same core calls as `exec-broker client|webhooks`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.admin.page import Notice, attempt, form_text, page, redirect
from broker.admin.security import actor, services_of
from broker.core import client_settings, clients, webhooks
from broker.core.ports import Store
from broker.errors import NotFound


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


async def index(request: web.Request, notices: list[Notice] | None = None) -> web.Response:
    services = services_of(request)
    listed = await services.run(services.store.clients.list)
    orgs = await services.run(services.store.organizations.list)
    status = 400 if notices and any(n.kind == "bad" for n in notices) else 200
    return page(
        request,
        "clients.html",
        {"clients": listed, "orgs": orgs},
        notices=notices or [],
        status=status,
    )


async def list_clients(request: web.Request) -> web.StreamResponse:
    return await index(request)


async def create(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    form = await request.post()
    notices: list[Notice] = []
    box = services.secret_box
    made = await attempt(
        services.run(
            lambda: clients.create_client(
                services.store,
                services.clock,
                actor(request),
                name=str(form.get("name", "")),
                redirect_uris=_lines(str(form.get("redirect_uris", ""))),
                organization_ids=[str(v) for v in form.getall("org", [])],
                post_logout_redirect_uris=_lines(str(form.get("post_logout_redirect_uris", ""))),
                initiate_login_uri=str(form.get("initiate_login_uri", "")).strip() or None,
                webhook_url=str(form.get("webhook_url", "")).strip() or None,
                seal=lambda s: box.encrypt(s, webhooks.SECRET_CONTEXT),
            )
        ),
        notices,
    )
    if made is None:
        return await index(request, notices)
    client, secret, webhook_secret = made
    return await show(
        request,
        client.id,
        [Notice("ok", f"Client {client.name} registered.")],
        secrets={"client_secret": secret, "webhook_secret": webhook_secret},
    )


def _details(store: Store, client_id: str) -> dict[str, Any]:
    client = store.clients.get(client_id)
    endpoint = deliveries = None
    if client.webhook_url:
        try:
            endpoint = webhooks.endpoint(store, client_id)
            deliveries = webhooks.deliveries(store, client_id, 50)
        except NotFound:
            endpoint = None
    orgs = {o.id: o for o in store.organizations.list()}
    return {"client": client, "endpoint": endpoint, "deliveries": deliveries or [], "orgs": orgs}


async def show(
    request: web.Request,
    client_id: str,
    notices: list[Notice],
    secrets: dict[str, str | None] | None = None,
    status: int = 200,
) -> web.Response:
    services = services_of(request)
    details = await attempt(services.run(_details, services.store, client_id), notices)
    if details is None:
        return page(request, "not_found.html", notices=notices, status=404)
    details["secrets"] = secrets or {}
    return page(request, "client.html", details, notices=notices, status=status)


async def detail(request: web.Request) -> web.StreamResponse:
    return await show(request, request.match_info["client_id"], [])


async def update(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    form = await request.post()
    client_id = request.match_info["client_id"]
    notices: list[Notice] = []
    done = await attempt(
        services.run(
            lambda: client_settings.update_uris(
                services.store,
                services.clock,
                actor(request),
                client_id,
                redirect_uris=_lines(str(form.get("redirect_uris", ""))),
                post_logout_redirect_uris=_lines(str(form.get("post_logout_redirect_uris", ""))),
                initiate_login_uri=str(form.get("initiate_login_uri", "")).strip() or None,
                backchannel_logout_uri=str(form.get("backchannel_logout_uri", "")).strip() or None,
            )
        ),
        notices,
    )
    if done is not None:
        notices.append(Notice("ok", "Client settings saved."))
    return await show(request, client_id, notices, status=200 if done else 400)


async def rotate(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    client_id = request.match_info["client_id"]
    notices: list[Notice] = []
    done = await attempt(
        services.run(
            clients.rotate_secret, services.store, services.clock, actor(request), client_id
        ),
        notices,
    )
    if done is None:
        return await show(request, client_id, notices, status=400)
    notices.append(Notice("ok", "New client secret made; the old one no longer works."))
    return await show(request, client_id, notices, secrets={"client_secret": done[1]})


async def rotate_webhook(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    client_id = request.match_info["client_id"]
    box = services.secret_box
    notices: list[Notice] = []
    secret = await attempt(
        services.run(
            webhooks.rotate_secret,
            services.store,
            services.clock,
            actor(request),
            client_id,
            lambda s: box.encrypt(s, webhooks.SECRET_CONTEXT),
        ),
        notices,
    )
    if secret is None:
        return await show(request, client_id, notices, status=400)
    notices.append(Notice("ok", "New webhook signing secret made; deliveries now use it."))
    return await show(request, client_id, notices, secrets={"webhook_secret": secret})


async def resend(request: web.Request) -> web.StreamResponse:
    """Queue one event again (out of band: the stream's cursor does not move); the
    delivery worker sends it and the log shows the outcome."""
    services = services_of(request)
    client_id = request.match_info["client_id"]
    notices: list[Notice] = []
    queued = await attempt(
        services.run(
            webhooks.resend,
            services.store,
            services.clock,
            actor(request),
            client_id,
            await form_text(request, "event_id"),
        ),
        notices,
    )
    if queued is None:
        return await show(request, client_id, notices, status=400)
    notices.append(Notice("ok", f"{queued.event_type} {queued.event_id} queued for re-sending."))
    return await show(request, client_id, notices)


async def bind(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    client_id = request.match_info["client_id"]
    notices: list[Notice] = []
    done = await attempt(
        services.run(
            clients.bind_organization,
            services.store,
            services.clock,
            actor(request),
            client_id,
            await form_text(request, "org"),
        ),
        notices,
    )
    if done is None:
        return await show(request, client_id, notices, status=400)
    return redirect(f"/admin/clients/{client_id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/clients", list_clients)
    app.router.add_post("/clients", create)
    app.router.add_get("/clients/{client_id}", detail)
    app.router.add_post("/clients/{client_id}", update)
    app.router.add_post("/clients/{client_id}/rotate", rotate)
    app.router.add_post("/clients/{client_id}/webhook/rotate", rotate_webhook)
    app.router.add_post("/clients/{client_id}/webhook/resend", resend)
    app.router.add_post("/clients/{client_id}/orgs", bind)
