"""GET /health (loading, ready or failed; the queue) and GET /v1/models[/{model}] (the packs,
plus `auto`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assistant.errors import AssistantError
from assistant.server.errors import ApiError
from assistant.server.schemas import ModelCard, ModelList
from assistant.server.service import AUTO, Service, service_of

routes = APIRouter()


@routes.get("/health")
async def health(request: Request) -> JSONResponse:
    service = service_of(request)
    queue = service.queue
    body: dict[str, Any] = {
        "status": "ready" if service.ready.is_set() else "loading",
        "generating": queue.generating > 0,
        "generating_now": queue.generating,
        "concurrency": queue.workers,
        "waiting": queue.waiting,
        "queue_size": queue.size,
        "served": queue.served,
        "stopped": queue.stopped,
    }
    if service.load_error:  # /health needs no key: what failed is for /v1/* and the log
        body.update(status="error", error="the models failed to load; see the server's log")
        return JSONResponse(body, status_code=500)
    if not service.ready.is_set():
        return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})
    return JSONResponse(body)


def model_cards(service: Service) -> list[ModelCard]:
    """`auto`, then every pack whose pack.toml loads (a broken one is not served)."""
    from assistant.packs.format import load_pack_config

    router = service.router
    cards = [
        ModelCard(
            id=AUTO,
            title="Automatic",
            description="The router picks the pack for each question, or declines.",
        )
    ]
    for pack in router.packs():
        try:
            config = load_pack_config(pack, router.loaded)
            title, description = config.title, config.description
        except AssistantError:
            continue  # a broken pack.toml: not served
        cards.append(ModelCard(id=pack.name, title=title, description=description))
    return cards


@routes.get("/v1/models")
async def models(request: Request) -> ModelList:
    return ModelList(data=model_cards(service_of(request)))


@routes.get("/v1/models/{model}")
async def model(model: str, request: Request) -> ModelCard:
    service = service_of(request)
    for card in model_cards(service):
        if card.id == model:
            return card
    service.resolve(model)  # raises the 404 with the list
    raise ApiError(404, f"model {model!r} does not exist")
