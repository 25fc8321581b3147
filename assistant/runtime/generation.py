"""The streaming primitives every engine shares: decoding options and stats, the token queue a
worker thread fills, incremental detokenization, and `TextStream`, what an engine's
`generate()` returns.

An engine's worker thread hands each new token to a `TokenQueue`; `stream_text` turns the tokens
into text pieces as they arrive. Cancellation (an Event set from any thread, or the consumer
closing the stream) stops generation at the next token.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    """How one reply is decoded. The answer path builds it from a pack's effective
    `GenerationSettings` (`from_settings`: the settings' one set of defaults); `plain()` is
    decoding without the answer path's rules, for tests and benchmarks of the model itself."""

    max_new_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    reuse_system_prefix: bool
    decline_min_prob: float
    no_repeat_ngram: int
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: GenerationSettings, **overrides: Any) -> GenerationOptions:
        values = settings.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def plain(cls, max_new_tokens: int, **overrides: Any) -> GenerationOptions:
        """Greedy, no repetition penalty, no decline margin, no n-gram ban, no reused system
        turn; `overrides` change any of these."""
        values: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "temperature": 0.0,
            "top_p": 1.0,
            "repetition_penalty": 1.0,
            "reuse_system_prefix": False,
            "decline_min_prob": 0.0,
            "no_repeat_ngram": 0,
        }
        return cls(**{**values, **overrides})


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


def chat_token_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Token ids of the chat with the assistant turn opened, as a list."""
    encoded = tokenizer.apply_chat_template(
        list(messages), add_generation_prompt=True, return_dict=True
    )
    return list(encoded["input_ids"])


def end_token_ids(tokenizer: Any) -> set[int]:
    """The tokens that end an answer: end of sequence and end of turn."""
    ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    return {i for i in ids if isinstance(i, int) and i >= 0}


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
    detokenizing, cancelling and the stats work the same in all.

    One function on purpose (~75 lines): the detokenizer offsets, the stats and the worker's
    shutdown in `finally` share state that a split would have to pass around."""
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


class TextStream:
    """An answer being generated: iterate it for text pieces; `stats` is complete once the
    iteration ends. Closing it (or leaving the loop early and closing) cancels generation."""

    def __init__(self, pieces: Iterator[str], stats: GenerationStats) -> None:
        self._pieces = pieces
        self.stats = stats

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def __next__(self) -> str:
        return next(self._pieces)

    def text(self) -> str:
        """Run to the end and return the whole text."""
        return "".join(self._pieces)

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()
