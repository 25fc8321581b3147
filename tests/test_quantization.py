"""`models.quantize = "int8"` on the real packaged model: int8 linear layers except the tied
output layer, adapters still load and act on top, and the float weights come back unchanged."""

from __future__ import annotations

import os

import pytest
import torch
from model_cache import SHARED_CACHE

from assistant.adapters import bank_for
from assistant.generation import GenerationOptions, stream_chat
from assistant.models import load_base_model
from assistant.packs import find_pack

GREEDY = GenerationOptions(max_new_tokens=24, temperature=0.0, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def int8_model():
    from assistant.settings import load_settings

    saved = {k: os.environ.get(k) for k in ("ASSISTANT_QUANTIZE", "ASSISTANT_CACHE_DIR")}
    os.environ.update(ASSISTANT_QUANTIZE="int8", ASSISTANT_CACHE_DIR=str(SHARED_CACHE))
    try:
        loaded = load_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return loaded, load_base_model(loaded)


def _layer_types(model) -> dict[str, type]:
    return {name: type(module) for name, module in model.named_modules()}


def _logits(handle, adapter: str | None, text: str = "How do I share a folder?") -> torch.Tensor:
    ids = handle.tokenizer(text, return_tensors="pt")["input_ids"]
    with bank_for(handle).using(adapter) as model, torch.inference_mode():
        return model(ids).logits[0, -1]


def test_int8_quantizes_every_linear_layer_but_the_tied_output(int8_model) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    _, handle = int8_model
    types = _layer_types(handle.model)
    quantized = [name for name, kind in types.items() if kind is DynamicInt8Linear]
    layers = handle.model.config.num_hidden_layers
    assert len(quantized) == 7 * layers  # q, k, v, o, gate, up, down in every layer
    assert types["lm_head"] is torch.nn.Linear
    assert not any(kind is torch.nn.Linear for name, kind in types.items() if "layers." in name)


def test_int8_model_still_answers(int8_model) -> None:
    _, handle = int8_model
    question = [{"role": "user", "content": "What is the capital of France?"}]
    assert "Paris" in "".join(stream_chat(handle, question, GREEDY))


def test_adapter_loads_onto_int8_weights_and_changes_the_output(int8_model) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    loaded, handle = int8_model
    bank = bank_for(handle)
    name = bank.load(find_pack("penguin-wood"), loaded)
    types = _layer_types(handle.model)
    wrapped = [n for n in types if n.endswith("q_proj.base_layer")]
    assert wrapped  # PEFT wrapped the layers while they were float ...
    assert all(types[n] is DynamicInt8Linear for n in wrapped)  # ... and they are int8 again
    assert all(types[n] is torch.nn.Linear for n in types if ".lora_A." in n)
    assert (_logits(handle, name) - _logits(handle, None)).abs().max() > 1e-3


def test_float_weights_are_restored_exactly_and_int8_stays_close(int8_model, base_model) -> None:
    _, handle = int8_model
    reference = _logits(base_model, None)
    with handle.int8.float_weights():
        restored = _logits(handle, None)
    int8 = _logits(handle, None)
    assert torch.allclose(restored, reference, atol=1e-5)
    assert not torch.allclose(int8, reference, atol=1e-5)  # int8 is really in use again
    assert int8.argmax() == reference.argmax()
    top = set(reference.topk(10).indices.tolist())
    assert len(top & set(int8.topk(10).indices.tolist())) >= 7
