"""The app factory: OpenAI-compatible chat completions over the packs, plus `/v1/ask`.

Routes: GET /health, GET /v1/models (routes_info.py), POST /v1/chat/completions, JSON or SSE
(routes_chat.py), POST /v1/ask (routes_ask.py). Models load in a background thread at startup
(/health says "loading" until then). Every error reaches the client as OpenAI's error JSON
(errors.py); tracebacks only go to the log.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from assistant.server import routes_ask, routes_chat, routes_info
from assistant.server.errors import install_error_handlers
from assistant.server.guard import Guard
from assistant.server.service import Service

MAX_BODY_BYTES = 1_000_000


def create_app(
    router: Any,
    *,
    api_key: str | None = None,
    queue_size: int = 8,
    concurrency: int = 1,
    max_body: int = MAX_BODY_BYTES,
    preload: bool = True,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The app for `router`. With `preload`, models load in a thread at startup; without it
    (tests), call `app.state.service.load()` or set `.ready` yourself. `allowed_hosts`: the
    host names requests may carry in their Host header (None: any; `assistant serve` always
    passes them)."""
    service = Service(router, queue_size, concurrency)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if preload:
            threading.Thread(target=service.load, name="assistant-load", daemon=True).start()
        yield
        service.queue.close()

    app = FastAPI(
        title="assistant", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.service = service
    app.add_middleware(Guard, api_key=api_key, max_body=max_body, allowed_hosts=allowed_hosts)
    install_error_handlers(app)
    for module in (routes_info, routes_ask, routes_chat):
        app.include_router(module.routes)
    return app
