"""The transformers engine (`models.backend = "transformers"`): the base model in torch, each
pack's LoRA adapter switched by name in the adapter bank.

`model.generate` runs in a worker thread and hands each new token to the shared `TokenQueue`
(`assistant.runtime.generation.stream_text` turns them into text).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from assistant.packs.locate import DomainPack
from assistant.runtime.generation import (
    GenerationOptions,
    GenerationStats,
    TextStream,
    TokenQueue,
    chat_token_ids,
    end_token_ids,
    stream_text,
)
from assistant.runtime.models import LoadedModel
from assistant.runtime.processors import logits_processors
from assistant.settings import LoadedSettings


class _Cancelled:
    """A stopping criterion that ends generation as soon as the event is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self._answers: dict[tuple[int, bool], Any] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        # Called once per token: reuse the answer tensor instead of allocating one each time.
        key = (input_ids.shape[0], self.event.is_set())
        if key not in self._answers:
            self._answers[key] = torch.full((key[0],), key[1], dtype=torch.bool)
        return self._answers[key]


_generate_lock = threading.Lock()


def encode_chat(handle: LoadedModel, messages: Sequence[dict[str, str]]) -> Any:
    """Token ids (1 x n tensor) of the chat with the assistant turn opened; the same ids as
    `chat_token_ids`, which the llama.cpp backend uses."""
    import torch

    return torch.tensor([chat_token_ids(handle.tokenizer, messages)], dtype=torch.long)


def generate_kwargs(handle: LoadedModel, options: GenerationOptions) -> dict[str, Any]:
    """The keyword arguments for `model.generate` that the streaming path uses."""
    tokenizer = handle.tokenizer
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "eos_token_id": sorted(end_token_ids(tokenizer)),
        "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
        "repetition_penalty": options.repetition_penalty,
    }
    if options.temperature > 0:
        kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    kwargs.update(options.extra)
    return kwargs


def _prefilled_system_turn(handle: LoadedModel, generator: Any, input_ids: Any) -> dict[str, Any]:
    """`past_key_values` holding the prompt's system turn, from the handle's prefix cache."""
    from assistant.runtime.prefix_cache import PrefixCache, system_prefix_length

    end_of_turn = handle.tokenizer.convert_tokens_to_ids("<|im_end|>")
    length = system_prefix_length(input_ids, end_of_turn) if isinstance(end_of_turn, int) else 0
    if not length:
        return {}
    if handle.prefix_cache is None:
        handle.prefix_cache = PrefixCache()
    adapter = handle.bank.in_use if handle.bank is not None else None
    return {"past_key_values": handle.prefix_cache.prefilled(generator, input_ids, length, adapter)}


def stream_tokens(
    handle: LoadedModel,
    input_ids: Any,
    options: GenerationOptions,
    *,
    cancel: threading.Event | None = None,
    stats: GenerationStats | None = None,
    model: Any = None,
) -> Iterator[str]:
    """Yield text pieces as the model produces them. `model` is what generates (the router
    passes the adapter bank's model); None means the base model alone, with any loaded adapter
    disabled. Closing the iterator cancels generation."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    from assistant.runtime.adapters import bank_for

    cancel = cancel or threading.Event()
    kwargs = generate_kwargs(handle, options)
    processors = logits_processors(handle.tokenizer, options, int(input_ids.shape[-1]))
    if processors:
        kwargs["logits_processor"] = LogitsProcessorList(processors)

    def produce(streamer: TokenQueue) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_generate_lock)
            stack.enter_context(torch.inference_mode())
            generator = model
            if generator is None:
                generator = stack.enter_context(bank_for(handle).using(None))
            if options.reuse_system_prefix:
                kwargs.update(_prefilled_system_turn(handle, generator, input_ids))
            generator.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
                **kwargs,
            )

    return stream_text(
        produce,
        handle.tokenizer,
        set(kwargs["eos_token_id"]),
        int(input_ids.shape[-1]),
        cancel=cancel,
        stats=stats,
    )


def stream_chat(
    handle: LoadedModel,
    messages: Sequence[dict[str, str]],
    options: GenerationOptions,
    *,
    cancel: threading.Event | None = None,
    stats: GenerationStats | None = None,
    model: Any = None,
) -> Iterator[str]:
    """Stream the assistant's reply to `messages` (dicts with role and content)."""
    return stream_tokens(
        handle, encode_chat(handle, messages), options, cancel=cancel, stats=stats, model=model
    )


class TorchGenerator:
    """The `Generator` of the transformers engine: the shared base model and its adapter bank."""

    def __init__(self, loaded: LoadedSettings) -> None:
        from assistant.runtime.models import load_tokenizer

        self.loaded = loaded
        self.tokenizer = load_tokenizer(loaded)

    def _base(self) -> LoadedModel:
        from assistant.runtime.models import load_base_model

        return load_base_model(self.loaded)

    @property
    def load_seconds(self) -> float:
        return self._base().load_seconds

    def warm_up(self, packs: Sequence[DomainPack] = ()) -> None:
        self._base()  # adapters load on a pack's first answer: each costs memory in torch

    def load_adapter(self, pack: DomainPack) -> str:
        from assistant.runtime.adapters import bank_for

        return bank_for(self._base()).load(pack, self.loaded)

    def generate(
        self,
        token_ids: list[int],
        options: GenerationOptions,
        *,
        adapter: str | None = None,
        cancel: threading.Event | None = None,
    ) -> TextStream:
        import torch

        from assistant.runtime.adapters import bank_for

        base = self._base()
        stats = GenerationStats()
        input_ids = torch.tensor([token_ids], dtype=torch.long)

        def pieces() -> Iterator[str]:
            # The bank's lock is held while the reply streams: another answer cannot switch
            # the adapter under this one.
            with bank_for(base).using(adapter) as model:
                yield from stream_tokens(
                    base, input_ids, options, cancel=cancel, stats=stats, model=model
                )

        return TextStream(pieces(), stats)
