"""Reusing the system turn's key/value cache: same answers, prefilled once per adapter."""

from __future__ import annotations

import torch

from assistant.runtime.generation import GenerationOptions
from assistant.runtime.prefix_cache import PrefixCache, system_prefix_length
from assistant.runtime.torch_engine import encode_chat, stream_tokens

SYSTEM = "You are a friendly workshop mentor. Answer in one short sentence and be precise."
QUESTIONS = ["What is the capital of France?", "Name three primary colours."]


def _answer(handle, question: str, reuse: bool) -> str:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    options = GenerationOptions.plain(max_new_tokens=24, reuse_system_prefix=reuse)
    return "".join(stream_tokens(handle, encode_chat(handle, messages), options))


def test_reused_prefix_gives_the_same_greedy_answers(base_model) -> None:
    base_model.prefix_cache = PrefixCache()
    for question in QUESTIONS:
        assert _answer(base_model, question, reuse=True) == _answer(base_model, question, False)
    cache = base_model.prefix_cache
    assert cache.misses == 1 and cache.hits == len(QUESTIONS) - 1  # one system turn, prefilled once


def test_prefix_is_the_first_turn_only(base_model) -> None:
    end = base_model.tokenizer.convert_tokens_to_ids("<|im_end|>")
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi"}]
    ids = encode_chat(base_model, messages)
    length = system_prefix_length(ids, end)
    assert ids[0, length - 1].item() == end
    assert "Hi" not in base_model.tokenizer.decode(ids[0, :length])
    assert system_prefix_length(torch.tensor([[5, 6, 7]]), end) == 0  # no end of turn
    assert system_prefix_length(torch.tensor([[5, 6, end]]), end) == 0  # nothing after it


def test_cache_entries_are_keyed_by_adapter_and_bounded() -> None:
    calls = []

    class Model:
        # A stand-in for the model: only the cache bookkeeping is under test here.
        def __call__(self, input_ids, use_cache):
            calls.append(input_ids.shape[-1])
            return type("Out", (), {"past_key_values": {"len": input_ids.shape[-1]}})()

    cache = PrefixCache(max_entries=2)
    ids = torch.tensor([[5, 6, 7, 8]])
    assert cache.prefilled(Model(), ids, 3, "a") == {"len": 3}
    cache.prefilled(Model(), ids, 3, "a")
    cache.prefilled(Model(), ids, 3, None)
    assert calls == [3, 3] and cache.hits == 1
    cache.prefilled(Model(), ids, 2, "b")  # evicts the least recently used ("a")
    cache.prefilled(Model(), ids, 3, "a")
    assert calls == [3, 3, 2, 3]
