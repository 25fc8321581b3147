"""The remote engine (`models.backend = "openai"`): tokens come from an engine a team already
runs, reached over HTTP at `models.base_url`: llama.cpp's server, started with every pack's
adapter (`assistant engine prepare` writes the adapters and the launch line).

Only token generation moves. The prompt is token ids from the local tokenizer and chat
template, and the answer's requests are the llama.cpp engine's own (`llama_engine.Decoding`:
the decline margin's first-token probabilities, the repeat guard's banned tokens, the
repetition penalty), sent to the server's OpenAI-compatible `/v1/completions` instead of to an
in-process server, so an answer is the one the local llama.cpp engine gives with the same
model. The pack's adapter is chosen per request from the server's `/lora-adapters` list, by
the file name `prepare` gave it: `<pack>-<hash of the adapter>.gguf`, so an engine still
running an older adapter of a pack is refused, not silently used.

A request that reaches no engine is tried again `models.retries` times (0.5 s, 1 s, 2 s, ...);
one that fails after tokens came is not (the answer so far is shown, the error is one line).
Several answers may run at once: the engine schedules them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from assistant.errors import AssistantError
from assistant.packs.locate import DomainPack
from assistant.runtime.generation import (
    GenerationOptions,
    TextStream,
    TokenQueue,
    end_token_ids,
)
from assistant.settings import LoadedSettings

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5
CONNECT_TIMEOUT_S = 5.0


class EngineUnavailable(AssistantError):
    """The remote engine cannot be reached or stopped answering."""


class HttpCompletions:
    """llama.cpp's completion call over HTTP, in the shape of the in-process server's
    `handle_completions(request, on_chunk)`: a dict back, or each streamed chunk to
    `on_chunk` until it returns True."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float, retries: int) -> None:
        self.base_url = base_url
        self.retries = retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S),
        )

    def get(self, path: str) -> Any:
        return self._json(self._attempt(lambda: self.client.get(path)), path)

    def handle_completions(
        self, request: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        body = {**request, "stream": on_chunk is not None}
        if on_chunk is None:
            response = self._attempt(lambda: self.client.post("/v1/completions", json=body))
            return self._json(response, "/v1/completions")
        self._stream(body, on_chunk)
        return {}

    def _stream(self, body: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool]) -> None:
        received = False
        request = self.client.build_request("POST", "/v1/completions", json=body)
        stream = self._attempt(lambda: self.client.send(request, stream=True))
        try:
            if stream.status_code >= 400:
                stream.read()
                self._json(stream, "/v1/completions")
            for line in stream.iter_lines():
                data = line.removeprefix("data:").strip() if line.startswith("data:") else ""
                if not data:
                    continue
                if data == "[DONE]":
                    return
                received = True
                if on_chunk(json.loads(data)):
                    return
        except (httpx.TransportError, json.JSONDecodeError) as exc:
            when = "mid-answer" if received else "before answering"
            raise EngineUnavailable(
                f"the engine at {self.base_url} stopped {when} ({_reason(exc)}): see its log"
                " and ask again"
            ) from None
        finally:
            stream.close()

    def _attempt(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        """`call`, tried again while no engine answers (connection refused or timed out
        before a byte came back), waiting longer each time."""
        wait = FIRST_RETRY_S
        for tries_left in range(self.retries, -1, -1):
            try:
                return call()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if tries_left == 0:
                    raise EngineUnavailable(
                        f"no engine answers at {self.base_url} ({_reason(exc)}): start it"
                        " (`assistant engine prepare` prints the launch line) or fix"
                        " models.base_url"
                    ) from None
                time.sleep(wait)
                wait *= 2
            except httpx.TransportError as exc:
                raise EngineUnavailable(
                    f"the engine at {self.base_url} failed ({_reason(exc)}): see its log"
                ) from None
        raise AssertionError("unreachable")

    def _json(self, response: httpx.Response, path: str) -> Any:
        if response.status_code in (401, 403):
            raise AssistantError(
                f"the engine at {self.base_url} refused the API key ({response.status_code}):"
                " set the environment variable named by models.api_key_env"
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400 or data is None:
            detail = data.get("error", data) if isinstance(data, dict) else response.text[:200]
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
            raise AssistantError(
                f"the engine at {self.base_url} answered {path} with {response.status_code}:"
                f" {detail}"
            )
        return data


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class RemoteEngine:
    """What `Decoding` needs of an engine (tokenizer, end ids, `server()`, `lora()`), with
    the server over HTTP and the adapters the remote engine was started with."""

    def __init__(self, loaded: LoadedSettings) -> None:
        from assistant.runtime.models import load_tokenizer

        models = loaded.settings.models
        if not models.base_url:
            raise AssistantError(
                "models.backend is 'openai' but models.base_url is empty: set it to the"
                " engine's address, e.g. http://127.0.0.1:8080"
            )
        self.loaded = loaded
        self.tokenizer = load_tokenizer(loaded)
        self.end_ids = end_token_ids(self.tokenizer)
        api_key = os.environ.get(models.api_key_env) or None
        self.http = HttpCompletions(models.base_url, api_key, models.timeout, models.retries)
        self.adapter_ids: dict[str, int] = {}  # pack name -> the engine's adapter id
        self._file_names: dict[str, str] = {}  # pack name -> its GGUF LoRA's file name
        self._listed: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0

    def server(self) -> HttpCompletions:
        return self.http

    def listed_adapters(self, refresh: bool = False) -> list[dict[str, Any]]:
        """The engine's adapters ({"id", "path", ...}), as last asked (again with refresh)."""
        with self._lock:
            if self._listed is None or refresh:
                listed = self.http.get("/lora-adapters")
                self._listed = listed if isinstance(listed, list) else []
            return self._listed

    def load_adapter(self, pack: DomainPack) -> str:
        """Find the pack's adapter among the engine's, by the file name `engine prepare`
        gave it; a one-line error when the engine lacks it or runs an older one."""
        from assistant.runtime.gguf_files import lora_file_name

        # the adapter's files are hashed once per process, as the local engine exports once
        if pack.name not in self._file_names:
            self._file_names[pack.name] = lora_file_name(pack, self.loaded)
        wanted = self._file_names[pack.name]
        # asked again for every answer (one small GET): an engine restarted with other
        # adapters numbers them anew, and a remembered id would pick another pack's
        listed = self.listed_adapters(refresh=True)
        for item in listed:
            if os.path.basename(str(item.get("path", ""))) == wanted:
                self.adapter_ids[pack.name] = int(item["id"])
                return pack.name
        names = [os.path.basename(str(item.get("path", ""))) for item in listed]
        older = any(name.rsplit("-", 1)[0] == pack.name for name in names)
        what = "an older adapter of" if older else "no adapter for"
        raise AssistantError(
            f"the engine at {self.http.base_url} has {what} pack {pack.name!r}: run"
            " `assistant engine prepare` and restart the engine with the line it prints"
        )

    def lora(self, adapter: str | None) -> list[dict[str, Any]]:
        """Every adapter of the engine, scale 1 for the answering pack's and 0 for the rest (a
        request that leaves one out would reuse a prompt cache computed under it)."""
        if adapter is not None and adapter not in self.adapter_ids:
            raise AssistantError(f"adapter {adapter!r} is not loaded")
        chosen = self.adapter_ids.get(adapter) if adapter is not None else None
        return [
            {"id": int(item["id"]), "scale": 1.0 if int(item["id"]) == chosen else 0.0}
            for item in self.listed_adapters()
        ]

    def produce(
        self,
        ids: list[int],
        adapter: str | None,
        options: GenerationOptions,
        cancel: threading.Event,
        out: TokenQueue,
    ) -> None:
        from assistant.runtime.llama_engine import Decoding

        Decoding(self, ids, adapter, options, cancel, out).run()


class OpenAIGenerator:
    """The `Generator` of the remote engine."""

    def __init__(self, loaded: LoadedSettings) -> None:
        self.engine = RemoteEngine(loaded)
        self.tokenizer = self.engine.tokenizer

    @property
    def load_seconds(self) -> float:
        return 0.0  # the engine loaded its model when it started

    def warm_up(self, packs: Sequence[DomainPack] = ()) -> None:
        """Find each pack's adapter in the engine now. An engine that is down, or lacks a
        pack's adapter, is logged, not raised: a server keeps starting, and each answer says
        in one line what is wrong while it still is."""
        for pack in packs:
            try:
                self.engine.load_adapter(pack)
            except EngineUnavailable as exc:
                log.warning("%s", exc)
                return
            except AssistantError as exc:
                log.warning("%s", exc)

    def load_adapter(self, pack: DomainPack) -> str:
        return self.engine.load_adapter(pack)

    def generate(
        self,
        token_ids: list[int],
        options: GenerationOptions,
        *,
        adapter: str | None = None,
        cancel: threading.Event | None = None,
    ) -> TextStream:
        from assistant.runtime.llama_engine import engine_stream

        return engine_stream(self.engine, token_ids, options, adapter, cancel)
