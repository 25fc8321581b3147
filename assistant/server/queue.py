"""One generator, many clients: worker threads run the router's streams, one at a time each:
a single worker for a model in this process; several (`serve --concurrency`) for a remote
engine that runs several answers at once.

Requests wait in a bounded queue (`size` waiting, plus the one generating); a full queue
raises `QueueFull` at once (the app answers 503 with Retry-After). Each job has a cancel event:
setting it before the job starts skips it, during generation stops the router at its next token.
Items (text pieces, the final `Answer`, or an exception) reach the waiting coroutine through
its event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_END = object()


class QueueFull(Exception):
    """Every place in the queue is taken."""


@dataclass
class Job:
    """One request's run of `make_stream(cancel)`; read its items with `next()`."""

    make_stream: Callable[[threading.Event], Iterator[Any]]
    loop: asyncio.AbstractEventLoop
    cancel: threading.Event = field(default_factory=threading.Event)
    items: asyncio.Queue = field(default_factory=asyncio.Queue)
    finished: threading.Event = field(default_factory=threading.Event)
    answer: Any = None  # the stream's final record, set before `END` when it ran to the end

    def _put(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.items.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancel.set()

    async def next(self, timeout: float | None = None) -> Any:
        """The next text piece, or `END`; re-raises the stream's error."""
        item = await asyncio.wait_for(self.items.get(), timeout)
        if isinstance(item, BaseException):
            raise item
        return item


END = _END


class GeneratorQueue:
    """`workers` threads in front of the shared model, with `size` places to wait."""

    def __init__(self, size: int = 8, workers: int = 1) -> None:
        self.size = size
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self._current: dict[int, Job] = {}
        self.served = 0
        self.stopped = 0  # generations stopped early because their client left
        self.workers = workers
        for number in range(workers):
            name = f"assistant-serve-{number}"
            threading.Thread(target=self._run, name=name, daemon=True).start()

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    @property
    def generating(self) -> int:
        """How many answers are being generated now."""
        with self._lock:
            return len(self._current)

    def submit(self, make_stream: Callable[[threading.Event], Iterator[Any]]) -> Job:
        job = Job(make_stream, asyncio.get_running_loop())
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise QueueFull from None
        return job

    def close(self) -> None:
        with self._lock:
            for job in self._current.values():
                job.cancel.set()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel.set()
                job._put(_END)
        for _ in range(self.workers):
            with contextlib.suppress(queue.Full):
                self._jobs.put_nowait(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.cancel.is_set():  # the client left while waiting
                job._put(_END)
                job.finished.set()
                continue
            with self._lock:
                self._current[id(job)] = job
            try:
                stream = job.make_stream(job.cancel)
                try:
                    for item in stream:
                        job._put(item)
                        if job.cancel.is_set():
                            with self._lock:
                                self.stopped += 1
                            break
                    else:  # a plain iterator of pieces has no final record
                        job.answer = getattr(stream, "answer", None)
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()  # stops generation at once when we broke out early
            except BaseException as exc:  # handed to the request, which maps it to a status
                if not isinstance(exc, Exception):
                    log.exception("generator worker stopped")
                job._put(exc)
            finally:
                job._put(_END)
                with self._lock:
                    self._current.pop(id(job), None)
                    self.served += 1
                job.finished.set()
