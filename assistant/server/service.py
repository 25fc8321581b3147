"""The state behind the routes: the router, whether the models are loaded, and the generator
queue; and how a request waits for its job's items."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import Request

from assistant.answering.answers import Answer
from assistant.errors import AssistantError
from assistant.runtime.bases import pack_adapter
from assistant.server.errors import (
    INTERNAL_ERROR,
    ApiError,
    ClientGone,
    from_assistant_error,
    without_paths,
)
from assistant.server.queue import END, GeneratorQueue, Job, QueueFull

log = logging.getLogger("assistant.server")

AUTO = "auto"
RETRY_AFTER_S = 5  # what a full queue or a loading server tells clients to wait
POLL_S = 0.25  # how often a waiting request checks that its client is still there


class Service:
    """The state behind the routes: the router, readiness, and the generator queue."""

    def __init__(self, router: Any, queue_size: int, concurrency: int = 1) -> None:
        self.router = router
        self.queue = GeneratorQueue(queue_size, workers=concurrency)
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.load_seconds: float | None = None

    def load(self) -> None:
        """Base model, embedder, every pack's index and adapter: all before 'ready'."""
        start = time.perf_counter()
        try:
            self.router.warm_up()
            self.router.embedding().dimension()  # loads the embedder now
            for pack in self.router.packs():
                handle = self.router.handle(pack.name)
                if pack_adapter(handle.pack, self.router.loaded).trained:
                    try:
                        self.router.load_adapter(handle.pack)
                    except AssistantError as exc:  # answered without it, with a notice
                        log.warning("pack %s: adapter not loaded: %s", pack.name, exc)
        except Exception as exc:
            log.exception("loading the models failed")
            # shown with status 500 (/health, every request): no path, see from_assistant_error
            known = isinstance(exc, AssistantError)
            self.load_error = without_paths(str(exc)) if known else "see the log"
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


def service_of(request: Request) -> Service:
    """The app's Service (create_app puts it in app.state)."""
    return request.app.state.service


async def next_item(job: Job, request: Request | None) -> Any:
    """The job's next item, checking every POLL_S that the client is still connected."""
    while True:
        try:
            return await job.next(timeout=POLL_S)
        except TimeoutError:
            if request is not None and await request.is_disconnected():
                job.cancel.set()
                raise ClientGone from None
        except AssistantError as exc:
            raise from_assistant_error(exc) from None
        except ApiError:
            raise
        except Exception:
            log.exception("the answer failed")
            raise ApiError(500, INTERNAL_ERROR, "server_error") from None


async def collect(job: Job, request: Request) -> Answer:
    while await next_item(job, request) is not END:
        pass
    answer = job.answer
    if answer is None:
        raise ApiError(500, "the answer did not complete", "server_error")
    return answer
