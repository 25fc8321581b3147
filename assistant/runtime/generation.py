"""The streaming generation primitive: chat messages in, text pieces out as tokens are produced.

`model.generate` runs in a worker thread and hands each new token to a streamer; the caller's
iterator turns tokens into text. Cancellation (an Event set from any thread, or the consumer
closing the iterator) stops generation at the next token.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.runtime.models import LoadedModel
from assistant.settings import GenerationSettings

_DONE = object()


@dataclass
class GenerationStats:
    """Filled in while a stream runs; complete once the iterator is exhausted."""

    prompt_tokens: int = 0
    new_tokens: int = 0
    first_token_s: float = 0.0  # from the call until the first new token
    total_s: float = 0.0
    cancelled: bool = False
    finish_reason: str = ""  # "stop" (end of turn), "length" (max tokens) or "cancelled"

    @property
    def decode_tokens_per_s(self) -> float:
        decode_s = self.total_s - self.first_token_s
        return (self.new_tokens - 1) / decode_s if self.new_tokens > 1 and decode_s > 0 else 0.0


@dataclass
class GenerationOptions:
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 0.9
    repetition_penalty: float = 1.0
    reuse_system_prefix: bool = False
    decline_min_prob: float = 0.0
    no_repeat_ngram: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: GenerationSettings, **overrides: Any) -> GenerationOptions:
        values = settings.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class TokenQueue:
    """A transformers streamer: `generate` calls put() with the prompt, then each new token;
    other backends hand over new tokens one by one with push()."""

    def __init__(self) -> None:
        self.tokens: queue.Queue[Any] = queue.Queue()
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.tokens.put(token)

    def push(self, token: int) -> None:
        self.tokens.put(token)

    def end(self) -> None:
        self.tokens.put(_DONE)


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


class _DeclineMargin:
    """A logits processor: the reply that says the documents do not cover the question may
    start only if the model gives it at least `min_prob`.

    Greedy decoding takes the single likeliest token. The decline always opens the same way,
    while answers spread their mass over many opening words, so a model that is 22 % sure it
    should decline beats an answer it is 78 % sure of (measured: diabetes adapter, "What is
    Hyperglycemia?", "Sorry" 0.22 against "People" 0.20). The adapters learned two openings,
    "Sorry, the documents ..." (one token) and "The documents ..." (two tokens), so the
    decline's probability is P(Sorry) + P(The) x P(documents | The): "Sorry" is held back at
    the first token unless it alone reaches `min_prob`, and " documents" after a first "The"
    unless the sum does."""

    def __init__(
        self, sorry: int, the: int, documents: int, prompt_length: int, min_prob: float
    ) -> None:
        self.sorry, self.the, self.documents = sorry, the, documents
        self.prompt_length = prompt_length
        self.min_prob = min_prob
        self.first: list[tuple[float, float]] = []  # per row: (P(Sorry), P(The)) at step one

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        step = input_ids.shape[-1] - self.prompt_length
        if step > 1:
            return scores
        probs = scores.softmax(-1)
        if step == 0:
            self.first = [(float(p[self.sorry]), float(p[self.the])) for p in probs]
            unsure = probs[:, self.sorry] < self.min_prob
            scores[unsure, self.sorry] = float("-inf")
            return scores
        for row, (sorry, the) in enumerate(self.first):
            if int(input_ids[row, -1]) != self.the:
                continue
            if sorry + the * float(probs[row, self.documents]) < self.min_prob:
                scores[row, self.documents] = float("-inf")
        return scores


class _NoRepeatInAnswer:
    """A logits processor: no run of `size` tokens appears twice in the answer.

    transformers' `no_repeat_ngram_size` also counts the prompt, so it would forbid copying a
    passage's words, which is how the adapters carry facts; this one looks at the new tokens
    only. It ends the loops a 135M model falls into ("Type 1 diabetes is a metabolic disorder
    ..." over and over until the token limit) and lets the answer move on to its end."""

    def __init__(self, size: int, prompt_length: int) -> None:
        self.size = size
        self.prompt_length = prompt_length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        answer_length = input_ids.shape[-1] - self.prompt_length
        if answer_length < self.size:
            return scores
        for row, tokens in enumerate(input_ids[:, self.prompt_length :].tolist()):
            tail = tokens[len(tokens) - self.size + 1 :]
            banned = {
                tokens[i + self.size - 1]
                for i in range(len(tokens) - self.size + 1)
                if tokens[i : i + self.size - 1] == tail
            }
            if banned:
                scores[row, list(banned)] = float("-inf")
        return scores


def decline_token(tokenizer: Any) -> int:
    """The first token of the "not covered" reply, as it opens an assistant turn."""
    from assistant.answering.prompts import NOT_COVERED

    return int(tokenizer.encode(NOT_COVERED, add_special_tokens=False)[0])


def decline_margin(tokenizer: Any, prompt_length: int, min_prob: float) -> _DeclineMargin:
    the, documents = tokenizer.encode("The documents", add_special_tokens=False)[:2]
    return _DeclineMargin(decline_token(tokenizer), the, documents, prompt_length, min_prob)


_generate_lock = threading.Lock()


def chat_token_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Token ids of the chat with the assistant turn opened, as a list."""
    encoded = tokenizer.apply_chat_template(
        list(messages), add_generation_prompt=True, return_dict=True
    )
    return list(encoded["input_ids"])


def encode_chat(handle: LoadedModel, messages: Sequence[dict[str, str]]) -> Any:
    """Token ids (1 x n tensor) of the chat with the assistant turn opened; the same ids as
    `chat_token_ids`, which the llama.cpp backend uses."""
    import torch

    return torch.tensor([chat_token_ids(handle.tokenizer, messages)], dtype=torch.long)


def end_token_ids(tokenizer: Any) -> set[int]:
    """The tokens that end an answer: end of sequence and end of turn."""
    ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    return {i for i in ids if isinstance(i, int) and i >= 0}


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


def logits_processors(tokenizer: Any, options: GenerationOptions, prompt_length: int) -> list[Any]:
    """The answer path's own logits processors (decline margin, no repeats in the answer)."""
    processors: list[Any] = []
    if options.decline_min_prob > 0:
        processors.append(decline_margin(tokenizer, prompt_length, options.decline_min_prob))
    if options.no_repeat_ngram > 0:
        processors.append(_NoRepeatInAnswer(options.no_repeat_ngram, prompt_length))
    return processors


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


def stream_text(
    produce: Callable[[TokenQueue], None],
    tokenizer: Any,
    end_ids: set[int],
    prompt_tokens: int,
    *,
    cancel: threading.Event,
    stats: GenerationStats | None = None,
) -> Iterator[str]:
    """Run `produce` in a worker thread (it hands each new token to the queue it is given)
    and yield the answer's text as the tokens arrive. Shared by every generation backend, so
    detokenizing, cancelling and the stats work the same in all."""
    stats = stats if stats is not None else GenerationStats()
    stats.prompt_tokens = prompt_tokens
    streamer = TokenQueue()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            produce(streamer)
        except BaseException as exc:  # surfaced in the consumer's thread below
            errors.append(exc)
        finally:
            streamer.end()

    start = time.perf_counter()
    worker = threading.Thread(target=run, name="assistant-generate", daemon=True)
    worker.start()
    token_ids: list[int] = []
    emitted = ""
    # Incremental detokenization: decode only the tokens since the last emitted piece (plus the
    # one before, for context) instead of the whole answer at every token.
    prefix_offset = read_offset = 0
    finished_by_eos = False
    done = False
    try:
        while True:
            token = streamer.tokens.get()
            if token is _DONE:
                done = True
                break
            if stats.new_tokens == 0:
                stats.first_token_s = time.perf_counter() - start
            stats.new_tokens += 1
            if token in end_ids:
                finished_by_eos = True
                continue
            token_ids.append(token)
            before = tokenizer.decode(
                token_ids[prefix_offset:read_offset], skip_special_tokens=True
            )
            text = tokenizer.decode(token_ids[prefix_offset:], skip_special_tokens=True)
            # A multi-byte character split over tokens decodes to U+FFFD until it is complete.
            if text.endswith("\ufffd") or len(text) <= len(before):
                continue
            piece = text[len(before) :]
            emitted += piece
            prefix_offset, read_offset = read_offset, len(token_ids)
            yield piece
        text = tokenizer.decode(token_ids, skip_special_tokens=True)
        if len(text) > len(emitted) and text.startswith(emitted):
            yield text[len(emitted) :]
    finally:
        if not done:  # the consumer stopped early: stop the worker at its next token
            cancel.set()
        worker.join()
        stats.total_s = time.perf_counter() - start
        stats.cancelled = cancel.is_set() and not finished_by_eos
        if stats.cancelled:
            stats.finish_reason = "cancelled"
        elif finished_by_eos:
            stats.finish_reason = "stop"
        else:
            stats.finish_reason = "length"
    if errors:
        raise errors[0]


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
