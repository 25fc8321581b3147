"""The llama.cpp engine (`models.backend = "llama_cpp"`, the default): the prebuilt `xllamacpp`
wheel runs llama.cpp's own server loop inside this process, with no compiler at install.

Prompts are token ids from the answer path's tokenizer and chat template; llama.cpp decodes and
picks tokens in C++ (the speed of this engine). Each pack's adapter is exported once to a GGUF
LoRA and registered when the server is built; every request names every adapter with its scale
(1 for the answering pack, 0 for the rest), because a request that leaves the list out reuses
a prompt cache computed under another adapter. The answer path's rules are kept:

- the repetition penalty is llama.cpp's (the same formula, over the prompt and the answer);
- the decline margin (`processors.DeclineMargin`) needs the first tokens' probabilities:
  those come from a one-token request that returns them after the penalty, and the rule then
  picks the token, so a decline starts only when the model gives it `decline_min_prob`;
- no repeated n-grams in the answer (`processors.RepeatGuard`): the stream is watched, and a
  token that would repeat a run is replaced by the best token that does not (a one-token
  request with those tokens banned), then the stream goes on from there.
Each of these requests reuses the server's prompt cache, so they cost a token each.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from assistant.errors import AssistantError, MissingDependencyError
from assistant.packs.locate import DomainPack
from assistant.runtime.engine import CONTEXT_TOKENS
from assistant.runtime.generation import (
    GenerationOptions,
    GenerationStats,
    TextStream,
    TokenQueue,
    end_token_ids,
    stream_text,
)
from assistant.runtime.processors import DeclineMargin, RepeatGuard, decline_margin
from assistant.settings import LoadedSettings

# How many first-token probabilities the decline margin reads: a decline that is not among the
# 40 likeliest tokens has too little probability to matter.
FIRST_TOKEN_PROBS = 40
# The answer path generates one answer at a time; a second slot would halve each one's context.
SLOTS = 1

_engines_lock = threading.Lock()
_engines: dict[tuple[Any, ...], LlamaEngine] = {}


# The prebuilt library is compiled for these x86-64 extensions; on a CPU without them it would
# stop the process with an illegal instruction instead of raising.
NEEDED_CPU_FLAGS = ("avx2", "fma", "f16c")


def missing_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The x86-64 extensions the prebuilt library needs that this CPU lacks (none elsewhere)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not cpuinfo.is_file():
        return []
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return [flag for flag in NEEDED_CPU_FLAGS if flag not in flags]
    return []


def import_xllamacpp() -> Any:
    """The xllamacpp module; MissingDependencyError when it is absent or its library cannot
    run on this machine (another CPU, OS or C library)."""
    missing = missing_cpu_flags()
    if missing:
        raise MissingDependencyError(
            f"the llama.cpp engine needs a CPU with {', '.join(missing).upper()}; set"
            " models.backend = 'transformers' to silence this"
        )
    try:
        import xllamacpp
    except ImportError as exc:
        raise MissingDependencyError(
            f"the llama.cpp engine cannot load here ({exc}): reinstall with"
            " `pip install xllamacpp==2026.10.11549`, or set models.backend = 'transformers'"
        ) from None
    return xllamacpp


class LlamaEngine:
    """One xllamacpp server: the base GGUF and every registered pack's GGUF LoRA."""

    def __init__(self, loaded: LoadedSettings) -> None:
        from assistant.runtime.models import load_tokenizer

        import_xllamacpp()
        self.loaded = loaded
        self.tokenizer = load_tokenizer(loaded)
        self.end_ids = end_token_ids(self.tokenizer)
        self.adapters: dict[str, str] = {}  # pack name -> GGUF LoRA path, in registration order
        self._server: Any = None
        self._server_adapters: tuple[str, ...] = ()
        self.load_seconds = 0.0  # of the last server build: the model and its adapters
        self.lock = threading.Lock()  # one generation at a time, and no rebuild during one

    def load_adapter(self, pack: DomainPack) -> str:
        """Check the pack's adapter against the base, export it once, and register it (the
        server is rebuilt with it before the next answer: ~0.5 s for the 135M base)."""
        from assistant.runtime.adapters import check_adapter
        from assistant.runtime.gguf_files import exported_lora

        with self.lock:
            if pack.name not in self.adapters:
                check_adapter(pack, self.loaded)
                self.adapters[pack.name] = str(exported_lora(pack, self.loaded))
            return pack.name

    def server(self) -> Any:
        """The server with every registered adapter (built, or rebuilt, on demand); the caller
        holds `lock`."""
        wanted = tuple(self.adapters.values())
        if self._server is None or wanted != self._server_adapters:
            self._server = None  # free the old model before loading the new one
            start = time.perf_counter()
            self._server = _build_server(self.loaded, wanted)
            self.load_seconds = time.perf_counter() - start
            self._server_adapters = wanted
        return self._server

    def drop_cache(self) -> None:
        """Build the server again: nothing cached (benchmarks of a first answer)."""
        with self.lock:
            self._server = None
            self.server()

    def lora(self, adapter: str | None) -> list[dict[str, Any]]:
        """The adapter list every request sends: each registered adapter with scale 1 for
        `adapter` and 0 for the rest."""
        if adapter is not None and adapter not in self.adapters:
            raise AssistantError(f"adapter {adapter!r} is not loaded")
        return [
            {"id": i, "scale": 1.0 if name == adapter else 0.0}
            for i, name in enumerate(self.adapters)
        ]

    def produce(
        self,
        ids: list[int],
        adapter: str | None,
        options: GenerationOptions,
        cancel: threading.Event,
        out: TokenQueue,
    ) -> None:
        """Generate into `out` until an end token, the token limit or `cancel`."""
        with self.lock:
            Decoding(self, ids, adapter, options, cancel, out).run()


class DecodingEngine(Protocol):
    """What one answer's decoding needs of an engine: this process's llama.cpp server or a
    remote one (`remote_engine`)."""

    tokenizer: Any
    end_ids: set[int]

    def server(self) -> Any: ...

    def lora(self, adapter: str | None) -> list[dict[str, Any]]: ...

    def produce(
        self,
        ids: list[int],
        adapter: str | None,
        options: GenerationOptions,
        cancel: threading.Event,
        out: TokenQueue,
    ) -> None: ...


class Decoding:
    """One answer's requests to the server: the first tokens under the decline margin, then
    streams that are cut and resumed wherever the repeat guard bans a token."""

    def __init__(
        self,
        engine: DecodingEngine,
        ids: list[int],
        adapter: str | None,
        options: GenerationOptions,
        cancel: threading.Event,
        out: TokenQueue,
    ) -> None:
        self.server = engine.server()
        self.prompt = ids
        self.options = options
        self.cancel = cancel
        self.out = out
        self.end_ids = engine.end_ids
        self.end_of_turn = min(engine.end_ids)
        self.answer: list[int] = []
        self.finished = False
        self.margin: DeclineMargin | None = None
        if options.decline_min_prob > 0:
            self.margin = decline_margin(engine.tokenizer, options.decline_min_prob)
        self.guard = RepeatGuard(options.no_repeat_ngram)
        self.base = _request_base(options, engine.lora(adapter))

    def run(self) -> None:
        while self.margin is not None and not self._done() and self.margin.watching(self.answer):
            probs = self._probabilities()
            banned = self.margin.banned(self.answer, probs)
            self._accept(self._pick(probs, banned) if self._greedy else self._one(banned))
        while not self._done():
            banned = self.guard.banned(self.answer)
            if banned:
                self._accept(self._one(banned))
            elif not self._stream():
                return  # the server stopped without a token or a reason: nothing more comes

    @property
    def _greedy(self) -> bool:
        return self.options.temperature <= 0

    def _done(self) -> bool:
        if self.finished or self.cancel.is_set():
            return True
        return len(self.answer) >= self.options.max_new_tokens

    def _accept(self, token: int) -> None:
        if self.finished:
            return
        self.out.push(token)
        if token in self.end_ids:
            self.finished = True
            return
        self.answer.append(token)
        self.guard.add(self.answer)

    def _request(self, **fields: Any) -> dict[str, Any]:
        request = {**self.base, "prompt": self.prompt + self.answer, **fields}
        # `min_new_tokens` (benchmarks): the end of turn is held back until that many tokens
        short = int(self.options.extra.get("min_new_tokens", 0)) - len(self.answer)
        if short > 0:
            request["ignore_eos"] = True
            request["max_tokens"] = min(request["max_tokens"], short)
        return request

    def _probabilities(self) -> dict[int, float]:
        """The next token's likeliest probabilities after the repetition penalty (a sampled
        one-token request at temperature 1 with nothing else in the chain)."""
        request = self._request(
            max_tokens=1,
            temperature=1.0,
            samplers=["penalties", "temperature"],
            n_probs=FIRST_TOKEN_PROBS,
            post_sampling_probs=True,
        )
        content = _content(_checked(self.server.handle_completions(request)))
        return {int(item["id"]): float(item["prob"]) for item in content[0]["top_probs"]}

    def _pick(self, probs: dict[int, float], banned: set[int]) -> int:
        allowed = {token: p for token, p in probs.items() if token not in banned}
        if not allowed:  # every listed token is banned: let the server pick among the rest
            return self._one(banned)
        return max(allowed, key=allowed.__getitem__)

    def _one(self, banned: set[int]) -> int:
        """The next token with `banned` tokens excluded, under the answer's own sampling."""
        bias = [[token, False] for token in sorted(banned)]
        response = _checked(
            self.server.handle_completions(self._request(max_tokens=1, logit_bias=bias))
        )
        content = _content(response)
        if not content:  # the model ended its turn
            return self.end_of_turn
        return int(content[0]["id"])

    def _stream(self) -> bool:
        """Stream tokens until the end, the limit, a cancel or a token the guard bans (that
        token is dropped; the loop in `run` replaces it). False when nothing came."""
        errors: list[dict[str, Any]] = []
        before = len(self.answer)

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if "error" in chunk or "choices" not in chunk:
                errors.append(chunk)
                return True
            for item in _content(chunk):
                token = int(item["id"])
                if token in self.guard.banned(self.answer):
                    return True
                self._accept(token)
                if self._done():
                    return True
            if chunk["choices"][0].get("finish_reason") == "stop":
                self._accept(self.end_of_turn)
            return self.cancel.is_set()

        remaining = self.options.max_new_tokens - len(self.answer)
        request = self._request(max_tokens=remaining, stream=True)
        self.server.handle_completions(request, on_chunk)
        if errors:
            _checked(errors[0])
        return self.finished or len(self.answer) > before


def _request_base(options: GenerationOptions, lora: list[dict[str, Any]]) -> dict[str, Any]:
    """What every request of one answer shares: its sampling (greedy unless a temperature is
    set), the repetition penalty over the whole context, the adapters and the prompt cache."""
    sampling: dict[str, Any] = {"temperature": 0.0, "samplers": ["penalties", "temperature"]}
    if options.temperature > 0:
        sampling = {
            "temperature": options.temperature,
            "top_p": options.top_p,
            "samplers": ["penalties", "temperature", "top_p"],
            "seed": 0,
        }
    return {
        **sampling,
        "repeat_penalty": options.repetition_penalty,
        "repeat_last_n": CONTEXT_TOKENS,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
        "n_probs": 1,
        "post_sampling_probs": True,
        "lora": lora,
        "cache_prompt": True,
    }


def _content(response: dict[str, Any]) -> list[dict[str, Any]]:
    logprobs = response["choices"][0].get("logprobs") or {}
    return list(logprobs.get("content") or [])


def _checked(response: dict[str, Any]) -> dict[str, Any]:
    if "choices" in response:
        return response
    error = response.get("error", response)
    message = error.get("message", error) if isinstance(error, dict) else error
    raise AssistantError(f"llama.cpp could not answer: {message}")


def _build_server(loaded: LoadedSettings, lora_paths: tuple[str, ...]) -> Any:
    """An xllamacpp server on the runtime GGUF with these LoRA files, quiet, and its HTTP side
    (always started, on a free loopback port) closed to every caller without a random key."""
    return build_server(loaded, lora_paths, api_keys=[secrets.token_hex(32)])


def build_server(
    loaded: LoadedSettings,
    lora_paths: Sequence[str],
    *,
    api_keys: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int | None = None,
    slots: int = SLOTS,
) -> Any:
    """An xllamacpp server (llama.cpp's own server loop, and its HTTP API on `host`:`port`,
    a free port when None) on the runtime GGUF with these LoRA files, each at scale 0 until a
    request names it; `slots` answers at once, each with a whole context."""
    from assistant.runtime.gguf_files import runtime_gguf

    xllamacpp = import_xllamacpp()
    threads = loaded.settings.models.threads or os.cpu_count() or 1
    params = xllamacpp.CommonParams()
    params.model.path = str(runtime_gguf(loaded))
    params.n_ctx = CONTEXT_TOKENS * slots
    params.n_parallel = slots
    params.n_batch = 512
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.ctx_shift = False
    params.warmup = False
    params.verbosity = -1
    params.hostnames = [host]
    if port is not None:
        params.port = port
    params.api_keys = list(api_keys)
    params.lora_init_without_apply = True
    adapters = []
    for path in lora_paths:
        adapter = xllamacpp.CommonAdapterLoraInfo(path, 0.0)
        adapters.append(adapter)
    params.lora_adapters = adapters
    try:
        return xllamacpp.Server(params)
    except RuntimeError as exc:
        raise AssistantError(
            f"llama.cpp could not load {params.model.path} with {len(lora_paths)} adapters"
            f" ({exc}): delete that file to have it made again"
        ) from None


def engine_for(loaded: LoadedSettings) -> LlamaEngine:
    """The process's llama.cpp engine for these settings (loaded once, shared)."""
    models = loaded.settings.models
    key = (models.base_model, models.threads)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = LlamaEngine(loaded)
        return _engines[key]


class LlamaCppGenerator:
    """The `Generator` of the llama.cpp engine: the process's shared `LlamaEngine`."""

    def __init__(self, loaded: LoadedSettings) -> None:
        self.loaded = loaded
        self.engine = engine_for(loaded)
        self.tokenizer = self.engine.tokenizer

    def warm_up(self, packs: Sequence[DomainPack] = ()) -> None:
        """Register every pack's adapter, then build the server once with all of them."""
        for pack in packs:
            # a damaged adapter: that pack's answer raises it again, where it is shown
            with contextlib.suppress(AssistantError):
                self.engine.load_adapter(pack)
        with self.engine.lock:
            self.engine.server()

    def load_adapter(self, pack: DomainPack) -> str:
        return self.engine.load_adapter(pack)

    @property
    def load_seconds(self) -> float:
        return self.engine.load_seconds

    def generate(
        self,
        token_ids: list[int],
        options: GenerationOptions,
        *,
        adapter: str | None = None,
        cancel: threading.Event | None = None,
    ) -> TextStream:
        return engine_stream(self.engine, token_ids, options, adapter, cancel)


def engine_stream(
    engine: DecodingEngine,
    token_ids: list[int],
    options: GenerationOptions,
    adapter: str | None,
    cancel: threading.Event | None,
) -> TextStream:
    """The answer's `TextStream` from an engine's `produce` (this process's server or a remote
    one): tokens handed over in a worker thread, text pieces out."""
    cancel = cancel or threading.Event()
    stats = GenerationStats()

    def produce(out: TokenQueue) -> None:
        engine.produce(token_ids, adapter, options, cancel, out)

    pieces = stream_text(
        produce, engine.tokenizer, engine.end_ids, len(token_ids), cancel=cancel, stats=stats
    )
    return TextStream(pieces, stats)
