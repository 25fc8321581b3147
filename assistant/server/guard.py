"""The ASGI middleware in front of every route: the Host header, the API key on /v1/*, JSON
bodies only, and the body size limit."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Any

from assistant.server.errors import ApiError


def host_allowed(host_header: str, allowed: Sequence[str]) -> bool:
    """Whether a Host header ("name" or "name:port", "[::1]:8000") names an allowed host:
    "*" allows any, "*.example.com" its subdomains. (Starlette's TrustedHostMiddleware does
    this too, but answers in plain text; every error here is OpenAI's error JSON.)"""
    name = host_header.strip().lower()
    name = name[1 : name.index("]")] if name.startswith("[") and "]" in name else name
    name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    return any(
        pattern == "*"
        or name == pattern
        or (pattern.startswith("*.") and name.endswith(pattern[1:]))
        for pattern in (a.lower().strip("[]") for a in allowed)
    )


class Guard:
    """Pure ASGI middleware. The Host header must name an allowed host (a web page that
    rebinds its own name to 127.0.0.1 sends its own name: DNS rebinding); the API key on
    /v1/*; a POST body must be JSON (a cross-site form or `text/plain` post cannot send it
    without a preflight); and a body size limit checked from Content-Length and again while
    reading (the body is read here and replayed to the app)."""

    def __init__(
        self,
        app: Any,
        api_key: str | None,
        max_body: int,
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:
        self.app, self.api_key, self.max_body = app, api_key, max_body
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.allowed_hosts is not None and not host_allowed(
            headers.get("host", ""), self.allowed_hosts
        ):
            error = ApiError(
                400,
                "this server does not answer to that host name; start it with"
                " `assistant serve --allowed-host NAME` to allow it",
                code="host_not_allowed",
            )
            return await error.response()(scope, receive, send)
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
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            error = ApiError(
                415,
                "send the request body as JSON, with `Content-Type: application/json`",
                code="unsupported_media_type",
            )
            return await error.response()(scope, receive, send)
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
