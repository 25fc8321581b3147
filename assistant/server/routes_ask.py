"""POST /v1/ask: one question to a pack (or `auto`), answered with the record that
`assistant ask --json` prints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assistant.server.errors import CLIENT_CLOSED, ClientGone
from assistant.server.requests import parse
from assistant.server.schemas import AskRequest
from assistant.server.service import collect, service_of

routes = APIRouter()


@routes.post("/v1/ask")
async def ask(request: Request) -> JSONResponse:
    service = service_of(request)
    body = await parse(request, AskRequest)
    service.require_ready()
    pack = service.resolve(body.pack)
    history = [t.model_dump(include={"role", "content"}) for t in body.history]
    job = service.submit(body.question, pack, history, body.max_tokens)
    try:
        answer = await collect(job, request)
    except ClientGone:
        return JSONResponse({}, status_code=CLIENT_CLOSED)
    return JSONResponse(answer.to_dict())
