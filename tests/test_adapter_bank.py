"""The adapter bank's fast switch: the shipped adapters, switched by name in any order, give
exactly the output PEFT's own `set_adapter` gives, and each adapter's output is its own."""

from __future__ import annotations

import itertools

import pytest
import torch

from assistant.packs.locate import list_packs
from assistant.runtime.adapters import bank_for
from assistant.runtime.models import load_base_model


@pytest.mark.slow
def test_switch_matches_peft_set_adapter(settings) -> None:
    handle = load_base_model(settings)
    bank = bank_for(handle)
    names = [bank.load(pack, settings) for pack in list_packs()]
    assert len(names) >= 2
    ids = handle.tokenizer("How do I share a folder?", return_tensors="pt")["input_ids"]
    seen: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for previous, name in itertools.permutations(names, 2):
            bank.switch(previous)
            bank.switch(name)
            with bank.using(name) as model:
                fast = model(ids).logits
            bank.peft_model.set_adapter(name)
            reference = bank.peft_model(ids).logits
            assert torch.equal(fast, reference), (previous, name)
            seen[name] = fast
        with bank.using(None) as model:
            plain = model(ids).logits
    outputs = [seen[name] for name in names] + [plain]
    for a, b in itertools.combinations(outputs, 2):
        assert (a - b).abs().max() > 1e-4


@pytest.mark.slow
def test_an_adapter_answers_from_the_moment_it_is_loaded(settings) -> None:
    """The router loads a pack's adapter on its first question and answers at once: that
    answer, and the ones after it, must come from that pack's adapter, not from the adapter
    PEFT had active before (which stayed in charge until some other pack was asked)."""
    handle = load_base_model(settings)
    bank = bank_for(handle)
    for name in list(bank.names):
        bank.unload(name)
    first, second = list_packs()[:2]
    ids = handle.tokenizer("How do I share a folder?", return_tensors="pt")["input_ids"]
    bank.load(first, settings)
    name = bank.load(second, settings)
    with torch.inference_mode():
        with bank.using(name) as model:
            answered = model(ids).logits
        bank.peft_model.set_adapter(name)
        reference = bank.peft_model(ids).logits
        with bank.using(first.name) as model:
            first_only = model(ids).logits
    assert torch.equal(answered, reference)
    assert not torch.equal(answered, first_only)
