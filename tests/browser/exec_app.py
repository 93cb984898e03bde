"""FakeExecApp: Exec's side of OpenID Connect as a real web app on 127.0.0.1.

/login sends the browser to the broker's /oauth2/authorize (code + PKCE S256, state,
nonce); /callback redeems the code at /oauth2/token with client_secret_basic, verifies
the ID token against the broker's JWKS (issuer, audience, nonce) and shows the claims,
so a browser test can read the signed-in user's role and seat on a page.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import socket
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet


class FakeExecApp:
    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.client_id = ""
        self.client_secret = ""
        self.pending: dict[str, tuple[str, str]] = {}  # state → (verifier, nonce)
        self.claims: list[dict[str, Any]] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/callback"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = web.Application()
        app.router.add_get("/login", self._login)
        app.router.add_get("/callback", self._callback)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _login(self, request: web.Request) -> web.Response:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.pending[state] = (verifier, nonce)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "login_hint": request.query.get("login_hint", ""),
        }
        location = f"{self.broker_url}/oauth2/authorize?{urlencode(params)}"
        return web.Response(status=302, headers={"Location": location})

    async def _callback(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "")
        if state not in self.pending or "code" not in request.query:
            return web.Response(status=400, text=f"bad callback: {dict(request.query)}")
        verifier, nonce = self.pending.pop(state)
        # client_secret_basic (RFC 6749 §2.3.1): form-encode, then Basic.
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        auth = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                self.broker_url + "/oauth2/token",
                headers=auth,
                data={
                    "grant_type": "authorization_code",
                    "code": request.query["code"],
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": verifier,
                },
            ) as response:
                token = await response.json()
            async with http.get(self.broker_url + "/oauth2/jwks") as response:
                jwks = await response.json()
        if "id_token" not in token:
            return web.Response(status=502, text=f"token endpoint refused: {token}")
        decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks))
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.broker_url},
            aud={"essential": True, "value": self.client_id},
            nonce={"essential": True, "value": nonce},
        ).validate(decoded.claims)
        claims = dict(decoded.claims)
        self.claims.append(claims)
        rows = "".join(
            f'<dt>{html.escape(k)}</dt><dd id="claim-{html.escape(k)}">{html.escape(str(v))}</dd>'
            for k, v in sorted(claims.items())
        )
        page = f"<!doctype html><title>Exec</title><h1>Signed in to Exec</h1><dl>{rows}</dl>"
        return web.Response(text=page, content_type="text/html")
