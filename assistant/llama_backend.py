"""The optional llama.cpp answer backend (`models.backend = "llama_cpp"`).

The packaged base model is a GGUF, so llama.cpp can run it as it ships: 4-bit weights read per
token instead of float16, about 5x the decode speed of the transformers path on 2 cores
(bench/RESULTS.md). Adapters stay what `assistant train` writes; each is exported once to a GGUF
LoRA in the cache (`assistant.gguf_lora`) and set on the context per answer, so switching packs
costs microseconds. Prompts are tokenized by the same tokenizer and chat template as the
transformers path, and each next token is chosen by the same logits processors (repetition
penalty, decline margin, no repeats in the answer) from llama.cpp's logits, so the two backends
differ only in the numerics of the weights.

llama-cpp-python compiles llama.cpp when it installs, so it is an extra (`assistant[llama]`),
never a dependency: without it the setting gives a one-line error saying what to install.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.generation import (
    GenerationOptions,
    GenerationStats,
    TokenQueue,
    logits_processors,
    stream_text,
)
from assistant.packs import DomainPack
from assistant.settings import LoadedSettings, cache_dir

INSTALL = "pip install 'assistant[llama]' (compiles llama.cpp: ~5-10 min)"
N_BATCH = 512

_engines_lock = threading.Lock()
_engines: dict[tuple[Any, ...], LlamaEngine] = {}


def base_gguf(loaded: LoadedSettings) -> Path:
    """The GGUF file llama.cpp runs: the packaged base model, or `base_model` if it is a .gguf."""
    from assistant.models import PACKAGED_BASE, packaged_gguf

    name = loaded.settings.models.base_model
    if name == PACKAGED_BASE:
        return packaged_gguf()
    path = Path(name).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path
    raise AssistantError(
        f"the llama_cpp backend needs a GGUF base model, and base_model is {name!r}: set"
        f" base_model to {PACKAGED_BASE!r} or models.backend to 'transformers'"
    )


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise AssistantError(
            f"models.backend is 'llama_cpp' but llama-cpp-python is not installed: run `{INSTALL}`,"
            " or set models.backend to 'transformers'"
        ) from None
    return llama_cpp


class LlamaEngine:
    """One llama.cpp model and context, the packs' GGUF LoRAs, and the tokens in its KV cache."""

    def __init__(self, loaded: LoadedSettings, n_ctx: int) -> None:
        import os

        from assistant.models import load_tokenizer

        llama_cpp = _import_llama_cpp()
        self.loaded = loaded
        self.tokenizer = load_tokenizer(loaded)
        threads = loaded.settings.models.threads or os.cpu_count() or 1
        self.llm = llama_cpp.Llama(
            model_path=str(base_gguf(loaded)),
            n_ctx=n_ctx,
            n_batch=N_BATCH,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self._llama_cpp = llama_cpp
        self.n_vocab = self.llm.n_vocab()
        self.adapters: dict[str, Any] = {}
        self.active: str | None = None  # the adapter the KV cache was computed with
        self.lock = threading.Lock()

    def load_adapter(self, pack: DomainPack) -> str:
        """Export the pack's adapter to a GGUF LoRA (once per adapter file) and load it."""
        from assistant.gguf_lora import export_pack_adapter
        from assistant.models import _file_fingerprint

        with self.lock:
            if pack.name in self.adapters:
                return pack.name
            weights = pack.adapter_dir / "adapter_model.safetensors"
            fingerprint = _file_fingerprint(weights) if weights.is_file() else "missing"
            target = (
                cache_dir(self.loaded.settings) / "gguf-lora" / f"{pack.name}-{fingerprint}.gguf"
            )
            if not target.is_file():
                export_pack_adapter(pack, self.loaded, target)
            adapter = self._llama_cpp.llama_adapter_lora_init(self.llm.model, str(target).encode())
            if not adapter:
                raise AssistantError(
                    f"llama.cpp could not load the adapter of pack {pack.name!r} ({target}):"
                    f" delete that file, or answer with --no-adapter"
                )
            self.adapters[pack.name] = adapter
            return pack.name

    def _use_adapter(self, name: str | None) -> None:
        if name == self.active:
            return
        lib = self._llama_cpp
        if name is None:
            status = lib.llama_set_adapters_lora(self.llm.ctx, None, 0, None)
        else:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self.adapters[name])
            status = lib.llama_set_adapters_lora(
                self.llm.ctx, adapters, 1, (ctypes.c_float * 1)(1.0)
            )
        if status != 0:
            raise AssistantError(f"llama.cpp could not switch to adapter {name!r}")
        self.llm.reset()  # keys and values computed under another adapter are not reusable
        self.active = name

    def _prefill(self, ids: list[int]) -> None:
        """Evaluate the prompt, reusing the longest prefix already in the KV cache (the
        system turn, when the last answer came from the same pack and adapter)."""
        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens].tolist()
        common = 0
        for a, b in zip(cached, ids[:-1], strict=False):  # keep >= 1 token to produce logits
            if a != b:
                break
            common += 1
        llm.n_tokens = common  # eval() drops the cache beyond n_tokens before it decodes
        llm.eval(ids[common:])

    def _logits(self) -> Any:
        import numpy as np

        row = np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,))
        return row.copy()

    def produce(
        self,
        ids: list[int],
        adapter: str | None,
        options: GenerationOptions,
        end_ids: set[int],
        cancel: threading.Event,
        out: TokenQueue,
    ) -> None:
        """Generate into `out` until an end token, the token limit or `cancel`."""
        import torch

        processors = _processors(self.tokenizer, options, len(ids))
        generator = torch.Generator().manual_seed(0)
        min_new = int(options.extra.get("min_new_tokens", 0))
        with self.lock:
            self._use_adapter(adapter)
            self._prefill(ids)
            sequence = torch.tensor([ids], dtype=torch.long)
            for step in range(options.max_new_tokens):
                scores = torch.from_numpy(self._logits()).unsqueeze(0)
                if step < min_new:
                    scores[0, sorted(end_ids)] = float("-inf")
                for processor in processors:
                    scores = processor(sequence, scores)
                if options.temperature > 0:
                    probs = scores.softmax(-1)
                    token = int(torch.multinomial(probs[0], 1, generator=generator))
                else:
                    token = int(scores[0].argmax())
                out.push(token)
                if token in end_ids or cancel.is_set():
                    break
                sequence = torch.cat([sequence, torch.tensor([[token]])], dim=1)
                self.llm.eval([token])


def _processors(tokenizer: Any, options: GenerationOptions, prompt_length: int) -> list[Any]:
    """The processors transformers' `generate` would apply, in its order: repetition penalty,
    the answer path's own, then temperature and top-p when sampling."""
    from transformers import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    processors: list[Any] = []
    if options.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(options.repetition_penalty))
    processors += logits_processors(tokenizer, options, prompt_length)
    if options.temperature > 0:
        processors += [
            TemperatureLogitsWarper(options.temperature),
            TopPLogitsWarper(options.top_p),
        ]
    return processors


def engine_for(loaded: LoadedSettings, n_ctx: int) -> LlamaEngine:
    """The process's llama.cpp engine for these settings (loaded once, shared)."""
    models = loaded.settings.models
    key = (models.base_model, models.threads, n_ctx)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = LlamaEngine(loaded, n_ctx)
        return _engines[key]


def stream_tokens(
    engine: LlamaEngine,
    ids: list[int],
    options: GenerationOptions,
    *,
    adapter: str | None,
    cancel: threading.Event | None = None,
    stats: GenerationStats | None = None,
) -> Iterator[str]:
    """Yield the answer's text pieces as llama.cpp produces them (see generation.stream_text)."""
    from assistant.generation import end_token_ids

    cancel = cancel or threading.Event()
    end_ids = end_token_ids(engine.tokenizer)
    return stream_text(
        lambda out: engine.produce(ids, adapter, options, end_ids, cancel, out),
        engine.tokenizer,
        end_ids,
        len(ids),
        cancel=cancel,
        stats=stats,
    )
