"""The optional llama.cpp answer backend (`models.backend = "llama_cpp"`).

The packaged base model is a GGUF, so llama.cpp can run it (re-encoded once as F16); its
kernels decode several times faster than the transformers path on 2 cores (bench/RESULTS.md).
Adapters stay what `assistant train` writes; each is exported once to a GGUF LoRA in the cache
(`assistant.runtime.gguf_lora`) and set on the context per answer, so switching packs costs
microseconds. Prompts are tokenized by the same tokenizer and chat template as the transformers
path, and each next token is chosen by the same logits processors (repetition penalty, decline
margin, no repeats in the answer) from llama.cpp's logits, so the two backends differ only in
the numerics of the weights.

llama-cpp-python compiles llama.cpp when it installs, so it is an extra (`assistant[llama]`),
never a dependency: without it the setting gives a one-line error saying what to install.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, DamagedDataError, MissingDependencyError
from assistant.fsio import atomic_output
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
from assistant.runtime.prefix_cache import MAX_ENTRIES, system_prefix_length
from assistant.runtime.processors import logits_processors
from assistant.settings import LoadedSettings, cache_dir

INSTALL = "pip install 'assistant[llama]' (compiles llama.cpp: ~5-10 min)"
N_BATCH = 512

_engines_lock = threading.Lock()
_engines: dict[tuple[Any, ...], LlamaEngine] = {}


def base_gguf(loaded: LoadedSettings) -> Path:
    """The GGUF file the base model comes from: the packaged one, or `base_model` if it is a
    .gguf file."""
    from assistant.runtime.models import PACKAGED_BASE, packaged_gguf

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


# What the packaged model is re-encoded as (see runtime_gguf); "q8_0" for comparison runs.
RUNTIME_KIND = "f16"


def runtime_gguf(loaded: LoadedSettings) -> Path:
    """The GGUF llama.cpp loads. The packaged model ships as Q4_1; it is re-encoded once into
    the cache as F16, which holds the Q4_1 values as the transformers path does (float16
    weights). Measured on the packs' eval sets (bench/RESULTS.md): F16 gave the transformers
    float32 answers on 42 of 42 penguin-wood questions, where Q8_0 gave 18 and Q4_1 (8-bit
    activations) differs too; F16 prefills 1.6x faster than Q4_1 (1.4 vs 2.3 s for 4
    passages on 2 cores) and decodes ~0.85x of Q8_0's speed. A user's own GGUF runs as it is."""
    from assistant.runtime.models import PACKAGED_BASE, file_fingerprint

    source = base_gguf(loaded)
    if loaded.settings.models.base_model != PACKAGED_BASE:
        return source
    kind = RUNTIME_KIND
    name = f"{source.stem}-{file_fingerprint(source)}.{kind}.gguf"
    target = cache_dir(loaded.settings) / "models" / name
    if target.is_file():
        return target
    llama_cpp = _import_llama_cpp()
    from llama_cpp._logger import set_verbose

    set_verbose(False)  # llama.cpp logs every tensor it converts
    target.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {
        "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
        "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
    }[kind]
    params.allow_requantize = True
    with atomic_output(target) as partial:
        status = llama_cpp.llama_model_quantize(
            str(source).encode(), str(partial).encode(), ctypes.byref(params)
        )
        if status != 0:
            raise AssistantError(
                f"llama.cpp could not re-encode {source} as {kind} into {target.parent}: check"
                " that the cache folder is writable"
            )
    return target


def exported_lora_path(pack: DomainPack, loaded: LoadedSettings) -> Path:
    """Where the pack's adapter is kept as a GGUF LoRA: named by a hash of its content, so a
    retrained adapter (the same size, other weights) is exported again."""
    digest = hashlib.sha256()
    for file in (pack.adapter_config, pack.adapter_weights):
        digest.update(file.read_bytes())
    return cache_dir(loaded.settings) / "gguf-lora" / f"{pack.name}-{digest.hexdigest()[:16]}.gguf"


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise MissingDependencyError(
            f"models.backend is 'llama_cpp' but llama-cpp-python is not installed: run `{INSTALL}`,"
            " or set models.backend to 'transformers'"
        ) from None
    return llama_cpp


class LlamaEngine:
    """One llama.cpp model and context, the packs' GGUF LoRAs, and the tokens in its KV cache."""

    def __init__(self, loaded: LoadedSettings, n_ctx: int) -> None:
        from assistant.runtime.models import load_tokenizer

        llama_cpp = _import_llama_cpp()
        self.loaded = loaded
        self.tokenizer = load_tokenizer(loaded)
        threads = loaded.settings.models.threads or os.cpu_count() or 1
        self.llm = llama_cpp.Llama(
            model_path=str(runtime_gguf(loaded)),
            n_ctx=n_ctx,
            n_batch=N_BATCH,
            # Decoding leaves one core to the Python side that picks each token and streams
            # the text: llama.cpp's threads meet at a barrier in every layer, so one that loses
            # its core stalls them all (2 cores: 58 tok/s with one decode thread, 41 with two).
            n_threads=max(1, threads - 1),
            n_threads_batch=threads,
            verbose=False,
        )
        # Closed before the interpreter tears down llama_cpp's module, which would otherwise
        # print an ignored exception from its destructor at exit.
        atexit.register(self.llm.close)
        self._llama_cpp = llama_cpp
        self.n_vocab = self.llm.n_vocab()
        self.adapters: dict[str, Any] = {}
        self.active: str | None = None  # the adapter the KV cache was computed with
        self.end_of_turn = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        # (adapter, system turn ids) -> that turn's KV cache, as in assistant.runtime.prefix_cache
        self._system_turns: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self.lock = threading.Lock()

    def load_adapter(self, pack: DomainPack) -> str:
        """Export the pack's adapter to a GGUF LoRA (once per adapter content) and load it."""
        from assistant.runtime.adapters import check_adapter
        from assistant.runtime.gguf_lora import export_pack_adapter

        with self.lock:
            if pack.name in self.adapters:
                return pack.name
            check_adapter(pack, self.loaded)  # also when the export is cached: the base may differ
            target = exported_lora_path(pack, self.loaded)
            if not target.is_file():
                export_pack_adapter(pack, self.loaded, target)
                for old in target.parent.glob(f"{pack.name}-*.gguf"):  # earlier trainings
                    if old != target and re.fullmatch(
                        rf"{re.escape(pack.name)}-[0-9a-f]{{16}}\.gguf", old.name
                    ):
                        old.unlink(missing_ok=True)
            adapter = self._llama_cpp.llama_adapter_lora_init(self.llm.model, str(target).encode())
            if not adapter:
                raise DamagedDataError(
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

    def _prefill(self, ids: list[int], reuse_system_turn: bool) -> None:
        """Evaluate the prompt. With `reuse_system_turn`, the longest prefix already in the KV
        cache is kept (a follow-up in the same chat), and the system turn's keys and values
        come from a copy saved per adapter when the cache holds less than that (the last
        answer came from another pack): both are exact, so the answer does not change."""
        llm = self.llm
        if not reuse_system_turn:
            llm.reset()
            llm.eval(ids)
            return
        cached = llm.input_ids[: llm.n_tokens].tolist()
        common = 0
        for a, b in zip(cached, ids[:-1], strict=False):  # keep >= 1 token to produce logits
            if a != b:
                break
            common += 1
        system = system_prefix_length(ids, self.end_of_turn)
        key = (self.active, tuple(ids[:system]))
        if system and common < system:
            saved = self._system_turns.get(key)
            if saved is not None:
                self._system_turns.move_to_end(key)
                self._restore(saved, ids[:system])
            else:
                llm.n_tokens = common
                llm.eval(ids[common:system])
                self._system_turns[key] = self._save()
                while len(self._system_turns) > MAX_ENTRIES:
                    self._system_turns.popitem(last=False)
            common = system
        llm.n_tokens = common  # eval() drops the cache beyond n_tokens before it decodes
        llm.eval(ids[common:])

    def _save(self) -> bytes:
        """The KV cache of sequence 0 (the only one used), as bytes (~20 KB per token)."""
        lib, ctx = self._llama_cpp, self.llm.ctx
        size = lib.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = lib.llama_state_seq_get_data(ctx, buffer, size, 0)
        return bytes(buffer[:written])

    def _restore(self, saved: bytes, ids: list[int]) -> None:
        lib, llm = self._llama_cpp, self.llm
        llm._ctx.kv_cache_seq_rm(0, 0, -1)
        buffer = (ctypes.c_uint8 * len(saved)).from_buffer_copy(saved)
        if not lib.llama_state_seq_set_data(llm.ctx, buffer, len(saved), 0):
            raise AssistantError("llama.cpp could not restore a saved system turn")
        llm.input_ids[: len(ids)] = ids
        llm.n_tokens = len(ids)

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
            self._prefill(ids, options.reuse_system_prefix)
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


class LlamaCppGenerator:
    """The `Generator` of the llama.cpp engine: the process's shared `LlamaEngine`."""

    def __init__(self, loaded: LoadedSettings) -> None:
        from assistant.runtime.models import load_tokenizer

        self.loaded = loaded
        self.tokenizer = load_tokenizer(loaded)

    def _engine(self) -> LlamaEngine:
        return engine_for(self.loaded, CONTEXT_TOKENS)

    def warm_up(self) -> None:
        self._engine()

    def load_adapter(self, pack: DomainPack) -> str:
        return self._engine().load_adapter(pack)

    def generate(
        self,
        token_ids: list[int],
        options: GenerationOptions,
        *,
        adapter: str | None = None,
        cancel: threading.Event | None = None,
    ) -> TextStream:
        stats = GenerationStats()
        pieces = stream_tokens(
            self._engine(), token_ids, options, adapter=adapter, cancel=cancel, stats=stats
        )
        return TextStream(pieces, stats)
