"""The streaming generation primitive on the real base model."""

from __future__ import annotations

import threading

import torch

from assistant.runtime.adapters import bank_for
from assistant.runtime.generation import GenerationOptions, GenerationStats
from assistant.runtime.torch_engine import encode_chat, generate_kwargs, stream_chat

GREEDY = GenerationOptions.plain(max_new_tokens=48, temperature=0.0, repetition_penalty=1.0)


def ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def test_base_model_knows_the_capital_of_france(base_model) -> None:
    answer = "".join(stream_chat(base_model, ask("What is the capital of France?"), GREEDY))
    assert "Paris" in answer


def test_stream_concatenation_equals_the_plain_generate_answer(base_model) -> None:
    messages = ask("Name three colours of the rainbow.")
    stats = GenerationStats()
    pieces = list(stream_chat(base_model, messages, GREEDY, stats=stats))
    assert len(pieces) > 3

    input_ids = encode_chat(base_model, messages)
    # Through the bank: once any test has loaded an adapter, PEFT's layers sit inside the base
    # model's modules and only the bank can switch them off for "the base alone".
    with bank_for(base_model).using(None) as model, torch.inference_mode():
        output = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            **generate_kwargs(base_model, GREEDY),
        )
    expected = base_model.tokenizer.decode(
        output[0, input_ids.shape[-1] :], skip_special_tokens=True
    )
    assert "".join(pieces) == expected
    assert stats.new_tokens >= len(pieces)
    assert stats.prompt_tokens == input_ids.shape[-1]
    assert stats.finish_reason in ("stop", "length")


def test_cancel_from_another_thread_stops_early(base_model) -> None:
    cancel = threading.Event()
    stats = GenerationStats()
    options = GenerationOptions.plain(max_new_tokens=200, temperature=0.0)
    pieces = []
    for piece in stream_chat(
        base_model, ask("Write a long story about a dragon."), options, cancel=cancel, stats=stats
    ):
        pieces.append(piece)
        if len(pieces) == 5:
            threading.Thread(target=cancel.set).start()
    assert stats.cancelled
    assert stats.finish_reason == "cancelled"
    assert stats.new_tokens < 50


def test_closing_the_iterator_frees_the_generator(base_model) -> None:
    stream = stream_chat(
        base_model,
        ask("Count from one to one hundred."),
        GenerationOptions.plain(max_new_tokens=200),
    )
    next(stream)
    stream.close()  # must not hang, and the next generation runs normally
    answer = "".join(stream_chat(base_model, ask("What is the capital of France?"), GREEDY))
    assert "Paris" in answer


def test_sampling_follows_the_settings(base_model) -> None:
    options = GenerationOptions.plain(max_new_tokens=24, temperature=1.2, top_p=0.95)
    torch.manual_seed(1)
    first = "".join(stream_chat(base_model, ask("Say something about cats."), options))
    torch.manual_seed(2)
    second = "".join(stream_chat(base_model, ask("Say something about cats."), options))
    assert first and second and first != second


def test_the_not_covered_reply_starts_only_when_the_model_is_sure_enough(base_model) -> None:
    from assistant.answering.prompts import NOT_COVERED, says_not_covered
    from assistant.runtime.processors import decline_token

    # A turn answered with the decline makes the model likely to decline the next one.
    messages: list[dict[str, str]] = []
    for question in ("What colour is the kiln?",):  # Qwen: 0.69 after one turn, 0.985 after three
        messages += [*ask(question), {"role": "assistant", "content": NOT_COVERED}]
    messages += ask("How tall is the tower?")
    token = decline_token(base_model.tokenizer)
    with bank_for(base_model).using(None) as model, torch.inference_mode():
        logits = model(encode_chat(base_model, messages)).logits[0, -1]
    chance = float(logits.softmax(-1)[token])
    assert 0.05 < chance < 0.98, chance

    def reply(min_prob: float) -> str:
        options = GenerationOptions.plain(max_new_tokens=12, repetition_penalty=1.0,
                                    decline_min_prob=min_prob)  # fmt: skip
        return "".join(stream_chat(base_model, messages, options))

    opening = base_model.tokenizer.decode([token])
    assert reply(0.0).startswith(opening)
    assert reply(chance - 0.02).startswith(opening)  # sure enough: the decline stays
    assert not reply(chance + 0.02).startswith(opening)  # not sure enough: an answer instead
    assert not says_not_covered(reply(1.0))  # nor the decline's other opening, "The documents"


def test_no_run_of_tokens_repeats_within_an_answer_but_the_prompt_can_be_copied(
    base_model,
) -> None:
    def answer(question: str, size: int) -> tuple[list[int], str]:
        options = GenerationOptions.plain(max_new_tokens=60, repetition_penalty=1.0,
                                    no_repeat_ngram=size)  # fmt: skip
        text = "".join(stream_chat(base_model, ask(question), options))
        return base_model.tokenizer.encode(text, add_special_tokens=False), text

    def repeated(ids: list[int], size: int) -> bool:
        runs = [tuple(ids[i : i + size]) for i in range(len(ids) - size + 1)]
        return len(runs) != len(set(runs))

    looping = "What is penguin wood? Penguin wood is penguin wood is penguin wood is"
    ids, text = answer(looping, 0)
    assert repeated(ids, 6), text  # left alone, the model goes round in circles
    ids, text = answer(looping, 6)
    assert not repeated(ids, 6), text
    _, text = answer("Repeat after me: the kiln dries penguin wood slowly.", 6)
    assert "kiln dries penguin wood slowly" in text.lower()  # copying the prompt stays allowed
