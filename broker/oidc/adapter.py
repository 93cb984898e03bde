"""The thin aiohttp ↔ Authlib adapter (docs/adr: "Authlib in aiohttp"), modelled on
authlib/integrations/flask_oauth2/requests.py.

Authlib's server side is synchronous: the handler reads the body on the event loop,
wraps it in `AiohttpOAuth2Request` (a plain snapshot, safe to hand to the store thread),
and turns Authlib's `(status, body, headers)` back into an aiohttp response.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from multidict import CIMultiDict, MultiDict, MultiDictProxy


class AiohttpOAuth2Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, values: MultiDict[str]) -> None:
        self._values = values

    @property
    def data(self) -> Mapping[str, str]:
        return {key: self._values[key] for key in self._values}

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._values.items():
            values[key].append(value)
        return values


class AiohttpOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request built from what aiohttp already parsed. `uri` is the issuer-based
    URL of the endpoint (the issuer is never taken from the Host header, DESIGN §7)."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        form: MultiDict[str],
    ) -> None:
        super().__init__(method=method, uri=uri, headers=CIMultiDict(headers))
        self._query = MultiDict(query)
        self._form = form
        self.payload = AiohttpOAuth2Payload(form if method == "POST" else self._query)
        self.issued: Any = None  # what our token generator minted, for save_token
        self.presented: Any = None  # ("code" | "refresh", value) being redeemed
        self.actor: Any = None  # audit.Actor: who asks, with the correlation id

    @property
    def args(self) -> MultiDict[str]:
        return self._query

    @property
    def form(self) -> MultiDict[str]:
        return self._form


async def oauth2_request(request: web.Request, issuer: str) -> AiohttpOAuth2Request:
    form: MultiDict[str] = MultiDict()
    if request.method == "POST":
        posted: MultiDictProxy[Any] = await request.post()
        form = MultiDict((k, v) for k, v in posted.items() if isinstance(v, str))
    return AiohttpOAuth2Request(
        request.method, issuer + request.path, request.headers, request.query, form
    )


def to_response(status: int, body: Any, headers: list[tuple[str, str]]) -> web.Response:
    """Authlib's (status, body, headers) as an aiohttp response; JSON bodies stay JSON."""
    text = body if isinstance(body, str) else json.dumps(body)
    response = web.Response(status=status, text=text)
    for name, value in headers:
        if name.lower() == "content-type":
            response.content_type = value.split(";")[0].strip()
        else:
            response.headers[name] = value
    return response
