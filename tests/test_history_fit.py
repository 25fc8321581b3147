"""Trimming a conversation to the model's context (`compose.fit_history`) with the real base
tokenizer: the newest turns that fit are kept, in pairs, and a very long history is trimmed in
one pass (issue [5/7]: 33,000 tiny turns fit in serve's 1 MB body and were re-tokenized whole
after every two dropped)."""

from __future__ import annotations

import pytest

from assistant.answering.compose import MAX_TURNS, fit_history
from assistant.runtime.models import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer(settings):
    return load_tokenizer(settings)


def conversation(count: int, words: int = 3) -> list[dict[str, str]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "ok " * words}
        for i in range(count)
    ]


def messages_for(kept):
    return [{"role": "system", "content": "Be brief."}, *kept, {"role": "user", "content": "Q?"}]


class CountingTokenizer:
    """The real tokenizer, counting how often the whole prompt is tokenized."""

    def __init__(self, real) -> None:
        self.real, self.prompts = real, 0

    def encode(self, text, add_special_tokens=True):
        return self.real.encode(text, add_special_tokens=add_special_tokens)

    def apply_chat_template(self, messages, **kwargs):
        self.prompts += 1
        return self.real.apply_chat_template(messages, **kwargs)


def test_the_newest_turns_that_fit_are_kept_in_pairs(tokenizer) -> None:
    history = conversation(20, words=20)
    everything = len(
        tokenizer.apply_chat_template(messages_for(history), tokenize=True, return_dict=True)[
            "input_ids"
        ]
    )
    messages, size = fit_history(tokenizer, messages_for, history, everything)
    assert messages == messages_for(history) and size == everything  # all fit: nothing dropped
    messages, size = fit_history(tokenizer, messages_for, history, everything // 2)
    kept = messages[1:-1]
    assert size <= everything // 2
    assert kept == history[len(history) - len(kept) :] and len(kept) % 2 == 0
    # not too eager: two more turns would not have fitted
    more = history[len(history) - len(kept) - 2 :]
    prompt = tokenizer.apply_chat_template(messages_for(more), tokenize=True, return_dict=True)
    assert len(prompt["input_ids"]) > everything // 2
    messages, _ = fit_history(tokenizer, messages_for, history, 10)
    assert messages == messages_for([])  # nothing fits: the question alone


def test_a_huge_history_is_trimmed_in_one_pass(tokenizer) -> None:
    counting = CountingTokenizer(tokenizer)
    history = conversation(33_000, words=0)
    messages, size = fit_history(counting, messages_for, history, 1500)
    kept = messages[1:-1]
    assert size <= 1500 and 0 < len(kept) <= MAX_TURNS
    assert kept == history[-len(kept) :]
    assert counting.prompts <= 4  # the empty prompt, the estimate's confirmation, a correction
