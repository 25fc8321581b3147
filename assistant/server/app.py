"""The FastAPI app: OpenAI-compatible chat completions over the packs, plus `/v1/ask`.

Routes: GET /health, GET /v1/models, POST /v1/chat/completions (JSON or SSE), POST /v1/ask.
Models load in a background thread at startup (/health says "loading" until then). Every
error reaches the client as OpenAI's error JSON; tracebacks only go to the log.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.answering.answers import Answer
from assistant.errors import AssistantError
from assistant.server.queue import END, GeneratorQueue, Job, QueueFull
from assistant.server.schemas import (
    AskRequest,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Choice,
    ModelCard,
    ModelList,
    ResponseMessage,
    Usage,
    error_body,
)

log = logging.getLogger("assistant.server")

AUTO = "auto"
MAX_BODY_BYTES = 1_000_000
RETRY_AFTER_S = 5  # what a full queue or a loading server tells clients to wait
POLL_S = 0.25  # how often a waiting request checks that its client is still there


class ApiError(Exception):
    """An error with its HTTP status, rendered as OpenAI's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type_,
            param,
            code,
        )
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(
            error_body(self.message, self.type, self.param, self.code),
            status_code=self.status,
            headers=self.headers,
        )


class _ClientGone(Exception):
    pass


class _Guard:
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


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The last user message is the question; the user/assistant turns before it, the history.
    System (and tool) messages are ignored: each pack brings its own persona."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise ApiError(400, "messages need at least one user message", param="messages")
    question = messages[last].text().strip()
    if not question:
        raise ApiError(400, "the last user message is empty", param="messages")
    history = [
        {"role": m.role, "content": m.text()}
        for m in messages[:last]
        if m.role in ("user", "assistant") and m.text()
    ]
    return question, history


class Service:
    """The state behind the routes: the router, readiness, and the generator queue."""

    def __init__(self, router: Any, queue_size: int) -> None:
        self.router = router
        self.queue = GeneratorQueue(queue_size)
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.load_seconds: float | None = None

    def load(self) -> None:
        """Base model, embedder, every pack's index and adapter: all before 'ready'."""
        start = time.perf_counter()
        try:
            self.router.warm_up()
            self.router.embedder()
            for pack in self.router.packs():
                handle = self.router.handle(pack.name)
                if handle.pack.adapter_weights.is_file():
                    try:
                        self.router.load_adapter(handle.pack)
                    except AssistantError as exc:  # answered without it, with a notice
                        log.warning("pack %s: adapter not loaded: %s", pack.name, exc)
        except Exception as exc:
            log.exception("loading the models failed")
            self.load_error = str(exc) if isinstance(exc, AssistantError) else "see the log"
            return
        self.load_seconds = time.perf_counter() - start
        self.ready.set()

    def pack_names(self) -> list[str]:
        return [p.name for p in self.router.packs()]

    def resolve(self, model: str | None) -> str | None:
        """A pack name, or None for auto routing; 404 for anything else."""
        if model in (None, "", AUTO):
            return None
        names = self.pack_names()
        if model not in names:
            raise ApiError(
                404,
                f"model {model!r} does not exist; the models are: {', '.join([AUTO, *names])}",
                param="model",
                code="model_not_found",
            )
        return model

    def require_ready(self) -> None:
        if self.load_error:
            raise ApiError(500, f"the models failed to load: {self.load_error}", "server_error")
        if not self.ready.is_set():
            raise ApiError(
                503,
                "the models are still loading; retry shortly",
                "server_error",
                code="loading",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )

    def submit(self, question: str, pack: str | None, history: list, max_tokens: int | None):
        def make_stream(cancel: threading.Event):
            return self.router.stream(question, pack, history, max_tokens=max_tokens, cancel=cancel)

        try:
            return self.queue.submit(make_stream)
        except QueueFull:
            raise ApiError(
                503,
                f"the server is busy ({self.queue.size} requests already waiting); retry later",
                "server_error",
                code="queue_full",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None

    def finish_reason(self, answer: Answer, max_tokens: int | None) -> str:
        if answer.cancelled:
            return "stop"
        if answer.pack and answer.timings.answer_tokens and not answer.declined:
            limit = max_tokens or self.router.handle(answer.pack).config.generation.max_new_tokens
            if answer.timings.answer_tokens >= limit:
                return "length"
        return "stop"


async def next_item(job: Job, request: Request | None) -> Any:
    """The job's next item, checking every POLL_S that the client is still connected."""
    while True:
        try:
            return await job.next(timeout=POLL_S)
        except TimeoutError:
            if request is not None and await request.is_disconnected():
                job.cancel.set()
                raise _ClientGone from None
        except AssistantError as exc:
            raise ApiError(400, str(exc)) from None
        except ApiError:
            raise
        except Exception:
            log.exception("the answer failed")
            raise ApiError(
                500, "internal server error (see the server log)", "server_error"
            ) from None


async def collect(job: Job, request: Request) -> Answer:
    answer = None
    while (item := await next_item(job, request)) is not END:
        if isinstance(item, Answer):
            answer = item
    if answer is None:
        raise ApiError(500, "the answer did not complete", "server_error")
    return answer


def validation_error(errors: list[dict]) -> ApiError:
    """400 with the first problem in a sentence (OpenAI answers 400 where FastAPI says 422)."""
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        message = f"the request body is not valid JSON ({first.get('msg', '')})"
    elif first.get("type") == "missing":
        message = f"missing field {'.'.join(loc)!r}"
    else:
        where = ".".join(loc) or "body"
        message = f"invalid {where}: {first.get('msg', 'bad value')}"
    return ApiError(400, message, param=".".join(loc) or None)


async def parse(request: Request, model: type[BaseModel]) -> Any:
    """The JSON body as `model`, whatever the Content-Type (curl -d sends a form type)."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc})") from None
    except RecursionError:  # json recurses once per nested array or object
        raise ApiError(400, "the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def _usage(answer: Answer) -> Usage:
    prompt, completion = answer.timings.prompt_tokens, answer.timings.answer_tokens
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def create_app(
    router: Any,
    *,
    api_key: str | None = None,
    queue_size: int = 8,
    max_body: int = MAX_BODY_BYTES,
    preload: bool = True,
) -> FastAPI:
    """The app for `router`. With `preload`, models load in a thread at startup; without it
    (tests), call `app.state.service.load()` or set `.ready` yourself."""
    service = Service(router, queue_size)

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
    app.add_middleware(_Guard, api_key=api_key, max_body=max_body)

    # ----- errors: always OpenAI's JSON, never a traceback ------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(list(exc.errors())).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        message = str(exc.detail) if exc.status_code != 404 else f"no route {request.url.path}"
        return ApiError(exc.status_code, message, code=code, headers=exc.headers).response()

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("error on %s %s", request.method, request.url.path, exc_info=exc)
        return ApiError(
            500, "internal server error (see the server log)", "server_error"
        ).response()

    # ----- routes -----------------------------------------------------------------------

    @app.get("/health")
    async def health() -> JSONResponse:
        queue = service.queue
        body: dict[str, Any] = {
            "status": "ready" if service.ready.is_set() else "loading",
            "generating": queue.generating,
            "waiting": queue.waiting,
            "queue_size": queue.size,
            "served": queue.served,
        }
        if service.load_error:
            body.update(status="error", error=service.load_error)
            return JSONResponse(body, status_code=500)
        if not service.ready.is_set():
            return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})
        return JSONResponse(body)

    @app.get("/v1/models")
    async def models() -> ModelList:
        from assistant.packs.format import load_pack_config

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
        return ModelList(data=cards)

    @app.get("/v1/models/{model}")
    async def model(model: str) -> ModelCard:
        listed = await models()
        for card in listed.data:
            if card.id == model:
                return card
        service.resolve(model)  # raises the 404 with the list
        raise ApiError(404, f"model {model!r} does not exist")

    @app.post("/v1/ask")
    async def ask(request: Request) -> JSONResponse:
        body = await parse(request, AskRequest)
        service.require_ready()
        pack = service.resolve(body.pack)
        history = [t.model_dump(include={"role", "content"}) for t in body.history]
        job = service.submit(body.question, pack, history, body.max_tokens)
        try:
            answer = await collect(job, request)
        except _ClientGone:
            return JSONResponse({}, status_code=499)
        return JSONResponse(answer.to_dict())

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
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
            except _ClientGone:
                return JSONResponse({}, status_code=499)
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
        except _ClientGone:
            return JSONResponse({}, status_code=499)
        return StreamingResponse(
            _sse(job, first, ident, created, body.model, limit),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _sse(
        job: Job, first: Any, ident: str, created: int, model: str, limit: int | None
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
                if isinstance(item, Answer):
                    yield chunk(
                        {},
                        service.finish_reason(item, limit),
                        usage=_usage(item).model_dump(),
                        pack=item.pack,
                        declined=item.declined,
                        decline_reason=item.decline_reason,
                        sources=[s.to_dict() for s in item.sources],
                        citations=item.citations,
                    )
                elif item:
                    yield chunk({"content": item})
                item = await next_item(job, None)
            yield "data: [DONE]\n\n"
        except ApiError as exc:
            yield f"data: {json.dumps(error_body(exc.message, exc.type, exc.param, exc.code))}\n\n"
        except Exception:
            log.exception("error while streaming")
            body = error_body("internal server error (see the server log)", "server_error")
            yield f"data: {json.dumps(body)}\n\n"
        finally:
            job.cancel.set()  # a client that left (or any early end) frees the generator

    return app


__all__ = ["ApiError", "create_app", "split_messages"]
