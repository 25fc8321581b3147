"""`models.quantize` ("fp16", "int8") on the real packaged model: converted linear layers except
the tied output layer, adapters still load and act on top, the float weights come back
unchanged, and fp16 answers as float32 does."""

from __future__ import annotations

import os

import pytest
import torch
from model_cache import SHARED_CACHE

from assistant.packs.locate import find_pack
from assistant.runtime.adapters import bank_for
from assistant.runtime.generation import GenerationOptions
from assistant.runtime.models import load_base_model
from assistant.runtime.torch_engine import stream_chat

GREEDY = GenerationOptions.plain(max_new_tokens=24, temperature=0.0, repetition_penalty=1.0)


def _load(quantize: str):
    from assistant.settings import load_settings

    # On SmolLM2, whose answers the fp16/int8 figures of bench/RESULTS.md were measured on:
    # `quantize` only applies to the torch fallback, and its mechanics are the same for any base.
    names = ("ASSISTANT_QUANTIZE", "ASSISTANT_CACHE_DIR", "ASSISTANT_BASE_MODEL")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(ASSISTANT_QUANTIZE=quantize, ASSISTANT_CACHE_DIR=str(SHARED_CACHE),
                      ASSISTANT_BASE_MODEL="smollm2-135m")  # fmt: skip
    try:
        loaded = load_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return loaded, load_base_model(loaded)  # one handle per setting, shared by the tests


@pytest.fixture(scope="module", params=["fp16", "int8"])
def converted_model(request):
    return _load(request.param)


def _layer_types(model) -> dict[str, type]:
    return {name: type(module) for name, module in model.named_modules()}


def _logits(handle, adapter: str | None, text: str = "How do I share a folder?") -> torch.Tensor:
    ids = handle.tokenizer(text, return_tensors="pt")["input_ids"]
    with bank_for(handle).using(adapter) as model, torch.inference_mode():
        return model(ids).logits[0, -1]


def test_every_linear_layer_is_converted_but_the_tied_output(converted_model) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    loaded, handle = converted_model
    types = _layer_types(handle.model)
    assert handle.quantized.weights == loaded.settings.models.quantize
    quantized = [name for name, kind in types.items() if kind is DynamicLinear]
    layers = handle.model.config.num_hidden_layers
    assert len(quantized) == 7 * layers  # q, k, v, o, gate, up, down in every layer
    assert types["lm_head"] is torch.nn.Linear
    assert not any(
        kind is torch.nn.Linear
        for name, kind in types.items()
        if "layers." in name and "lora_" not in name  # LoRA's own matrices stay float
    )


def test_converted_model_still_answers(converted_model) -> None:
    _, handle = converted_model
    question = [{"role": "user", "content": "What is the capital of France?"}]
    assert "Paris" in "".join(stream_chat(handle, question, GREEDY))


def test_adapter_loads_onto_converted_weights_and_changes_the_output(converted_model) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    loaded, handle = converted_model
    bank = bank_for(handle)
    name = bank.load(find_pack("penguin-wood"), loaded)
    types = _layer_types(handle.model)
    wrapped = [n for n in types if n.endswith("q_proj.base_layer")]
    assert wrapped  # PEFT wrapped the layers while they were float ...
    assert all(types[n] is DynamicLinear for n in wrapped)  # ... and are converted again
    assert all(types[n] is torch.nn.Linear for n in types if ".lora_A." in n)
    assert (_logits(handle, name) - _logits(handle, None)).abs().max() > 1e-3


def test_converted_logits_stay_close_to_float32(converted_model) -> None:
    _, handle = converted_model
    reference = _logits(_load("none")[1], None)
    converted = _logits(handle, None)
    assert not torch.allclose(converted, reference, atol=1e-6)  # really converted
    assert converted.argmax() == reference.argmax()
    top = set(reference.topk(10).indices.tolist())
    assert len(top & set(converted.topk(10).indices.tolist())) >= 7


def test_loading_an_adapter_keeps_the_converted_layers_themselves(converted_model) -> None:
    loaded, handle = converted_model
    before = {id(layer) for layer in handle.quantized.converted.values()}
    base_alone = _logits(handle, None)
    bank_for(handle).load(find_pack("support"), loaded)
    assert {id(layer) for layer in handle.quantized.converted.values()} == before
    assert torch.equal(_logits(handle, None), base_alone)  # nothing was re-quantized


def test_loading_an_adapter_never_unpacks_the_converted_weights(
    converted_model, monkeypatch
) -> None:
    """Unpacking gives back every layer's float32 weight (0.4 GB in all): it showed up as
    +0.3 GB of the chat's peak memory when adapters loaded."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    def unpack(self):
        raise AssertionError("a converted layer's weights were unpacked")

    loaded, handle = converted_model
    bank = bank_for(handle)
    bank.unload("contracts")
    monkeypatch.setattr(DynamicLinear, "_weight_bias", unpack)
    name = bank.load(find_pack("contracts"), loaded)
    assert name in bank.names


def test_fp16_weights_answer_exactly_as_float32() -> None:
    _, handle = _load("fp16")
    _, float32 = _load("none")
    question = [{"role": "user", "content": "How do I keep a sourdough starter alive?"}]
    options = GenerationOptions.plain(max_new_tokens=40, temperature=0.0, repetition_penalty=1.0)
    # with no model given, stream_chat answers with the base alone (adapters switched off)
    assert "".join(stream_chat(handle, question, options)) == "".join(
        stream_chat(float32, question, options)
    )


def test_the_default_is_fp16_and_none_keeps_float32(settings) -> None:
    assert settings.settings.models.quantize == "fp16"
    _, float32 = _load("none")
    assert float32.quantized is None
    assert all(type(m) is not torch.nn.Linear or m.weight.dtype == torch.float32
               for m in float32.model.modules())  # fmt: skip


def test_unloading_the_only_adapter_leaves_the_base_alone_working() -> None:
    loaded, handle = _load("none")  # a handle no other test puts adapters on
    bank = bank_for(handle)
    base_alone = _logits(handle, None)
    name = bank.load(find_pack("penguin-wood"), loaded)
    assert list(bank.names) == [name]
    bank.unload(name)
    assert torch.equal(_logits(handle, None), base_alone)
    assert bank.load(find_pack("penguin-wood"), loaded) == name  # and it loads again
    assert (_logits(handle, name) - base_alone).abs().max() > 1e-3
    bank.unload(name)
