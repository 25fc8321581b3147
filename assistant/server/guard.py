"""The ASGI middleware in front of every route: the API key on /v1/*, and the body size limit."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from assistant.server.errors import ApiError


class Guard:
    """Pure ASGI middleware: API key on /v1/*, and a body size limit checked from
    Content-Length and again while reading (the body is read here and replayed to the app)."""

    def __init__(self, app: Any, api_key: str | None, max_body: int) -> None:
        self.app, self.api_key, self.max_body = app, api_key, max_body

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key and scope["path"].startswith("/v1"):
            given = headers.get("authorization", "")
            token = given[7:].strip() if given[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(token.encode(), self.api_key.encode()):
                error = ApiError(
                    401,
                    "missing or wrong API key: send `Authorization: Bearer KEY`",
                    "authentication_error" if token else "invalid_request_error",
                    code="invalid_api_key",
                )
                return await error.response()(scope, receive, send)
        too_big = ApiError(
            413,
            f"the request body is larger than {self.max_body} bytes",
            code="request_too_large",
        )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return await too_big.response()(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await too_big.response()(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
