"""POST /v1/chat/completions: OpenAI's chat format over the packs (`model` is a pack or
`auto`), as one JSON answer or as server-sent events, with the sources as extra fields."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from assistant.answering.answers import Answer
from assistant.server.errors import CLIENT_CLOSED, INTERNAL_ERROR, ApiError, ClientGone
from assistant.server.queue import END, Job
from assistant.server.requests import parse, split_messages
from assistant.server.schemas import (
    ChatRequest,
    ChatResponse,
    Choice,
    ResponseMessage,
    Usage,
    error_body,
)
from assistant.server.service import Service, collect, next_item, service_of

log = logging.getLogger("assistant.server")

routes = APIRouter()


def _usage(answer: Answer) -> Usage:
    prompt, completion = answer.timings.prompt_tokens, answer.timings.answer_tokens
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


@routes.post("/v1/chat/completions", response_model=None)
async def chat(request: Request) -> Any:
    service = service_of(request)
    body = await parse(request, ChatRequest)
    service.require_ready()
    pack = service.resolve(body.model)
    question, history = split_messages(body.messages)
    limit = body.token_limit()
    job = service.submit(question, pack, history, limit)
    ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.stream:
        try:
            answer = await collect(job, request)
        except ClientGone:
            return JSONResponse({}, status_code=CLIENT_CLOSED)
        response = ChatResponse(
            id=ident,
            created=created,
            model=body.model,
            choices=[
                Choice(
                    message=ResponseMessage(content=answer.answer),
                    finish_reason=service.finish_reason(answer, limit),
                )
            ],
            usage=_usage(answer),
            pack=answer.pack,
            declined=answer.declined,
            decline_reason=answer.decline_reason,
            sources=[s.to_dict() for s in answer.sources],
            citations=answer.citations,
        )
        return JSONResponse(response.model_dump())
    # Errors before the first piece (a bad question...) still get a JSON status.
    try:
        first = await next_item(job, request)
    except ClientGone:
        return JSONResponse({}, status_code=CLIENT_CLOSED)
    return StreamingResponse(
        _sse(service, job, first, ident, created, body.model, limit),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    service: Service, job: Job, first: Any, ident: str, created: int, model: str, limit: int | None
) -> AsyncIterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
        data = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    item = first
    try:
        yield chunk({"role": "assistant", "content": ""})
        while item is not END:
            if item:
                yield chunk({"content": item})
            item = await next_item(job, None)
        if (answer := job.answer) is not None:
            yield chunk(
                {},
                service.finish_reason(answer, limit),
                usage=_usage(answer).model_dump(),
                pack=answer.pack,
                declined=answer.declined,
                decline_reason=answer.decline_reason,
                sources=[s.to_dict() for s in answer.sources],
                citations=answer.citations,
            )
        yield "data: [DONE]\n\n"
    except ApiError as exc:
        yield f"data: {json.dumps(exc.body())}\n\n"
    except Exception:
        log.exception("error while streaming")
        body = error_body(INTERNAL_ERROR, "server_error")
        yield f"data: {json.dumps(body)}\n\n"
    finally:
        job.cancel.set()  # a client that left (or any early end) frees the generator
