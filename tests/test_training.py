"""`assistant train` on a tiny pack with the real models: the adapter is written atomically,
loads, changes the model's output, and damaged or mismatched adapters are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from assistant.errors import AssistantError
from assistant.packs.locate import pack_at
from assistant.runtime.adapters import bank_for, check_adapter

SHIPPED = Path(__file__).resolve().parent.parent / "domains" / "penguin-wood"


@pytest.fixture(scope="module")
def settings(settings):
    """Training's mechanics on the small base: the same code path as any base, in a minute and
    1.5 GB (two steps on Qwen2.5-Coder-0.5B take 8.5 GB)."""
    from settings_helpers import with_models

    return with_models(settings, base_model="smollm2-135m")


@pytest.fixture(scope="module")
def trained_pack(tmp_path_factory, settings):
    """A two-document copy of penguin-wood with eight examples, trained for two steps."""
    from assistant.knowledge import open_index
    from assistant.training.trainer import train

    root = tmp_path_factory.mktemp("packs") / "domains" / "tiny-wood"
    (root / "docs").mkdir(parents=True)
    for name in ("07_adhesives.md", "02_physical_properties.md"):
        shutil.copy(SHIPPED / "docs" / name, root / "docs" / name)
    toml = (SHIPPED / "pack.toml").read_text()
    toml = toml.replace('name = "penguin-wood"', 'name = "tiny-wood"')
    small = "[training]\nbatch_size = 2\npassages = 1\nmax_length = 384\n"
    assert toml.count("[training]\n") == 1
    toml = toml.replace("[training]\n", small)
    (root / "pack.toml").write_text(toml)
    lines = [
        ln
        for ln in (SHIPPED / "sft" / "train.jsonl").read_text().splitlines()
        if '"docs/07_adhesives.md"' in ln or '"docs/02_physical_properties.md"' in ln
    ][:6]
    declines = [
        ln
        for ln in (SHIPPED / "sft" / "train.jsonl").read_text().splitlines()
        if '"decline_offtopic"' in ln
    ][:2]
    (root / "sft").mkdir()
    (root / "sft" / "train.jsonl").write_text("\n".join(lines + declines) + "\n")
    pack = pack_at(root)
    open_index(pack, settings).rebuild()
    report = train(pack, settings, max_steps=2)
    return pack, report


@pytest.mark.slow
def test_training_writes_a_complete_adapter(trained_pack, settings) -> None:
    pack, report = trained_pack
    folder = pack.adapter_dir_for(settings.settings.models.base_model)
    assert folder == pack.root / "adapter" / "smollm2-135m"
    for name in ("adapter_model.safetensors", "adapter_config.json", "training.json", "loss.png"):
        assert (folder / name).is_file(), name
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] == 2 == report.steps
    assert info["base_model"] == settings.settings.models.base_model
    assert len(info["loss_curve"]) == 2
    assert info["data_hash"] and info["base_fingerprint"]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m"  # no machine paths
    assert not list(pack.adapters_dir.glob(".adapter.tmp-*"))


@pytest.mark.slow
def test_adapter_loads_and_changes_the_output(trained_pack, settings) -> None:
    from assistant.runtime.models import load_base_model

    pack, _ = trained_pack
    base = load_base_model(settings)
    # The process-wide bank: other tests may already have loaded the shipped adapters onto the
    # shared base model, so "the base alone" is always taken through the bank.
    bank = bank_for(base)
    ids = base.tokenizer("Penguin wood glue-ups need", return_tensors="pt")["input_ids"]
    with torch.inference_mode(), bank.using(None) as model:
        before = model(ids).logits
    name = bank.load(pack, settings)
    try:
        with torch.inference_mode(), bank.using(name) as model:
            adapted = model(ids).logits
        with torch.inference_mode(), bank.using(None) as model:
            plain = model(ids).logits
    finally:
        bank.unload(name)
    assert (adapted - before).abs().max() > 1e-4
    assert torch.allclose(plain, before, atol=1e-5)


@pytest.mark.slow
def test_damaged_adapter_is_refused_with_the_repair_command(trained_pack, settings, tmp_path):
    pack, _ = trained_pack
    copy = tmp_path / "domains" / "tiny-wood"
    shutil.copytree(pack.root, copy)
    weights = copy / "adapter" / "smollm2-135m" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(AssistantError, match=r"damaged.*assistant train tiny-wood"):
        check_adapter(pack_at(copy), settings)


@pytest.mark.slow
def test_adapter_from_another_base_is_refused(trained_pack, settings, tmp_path):
    pack, _ = trained_pack
    copy = tmp_path / "domains" / "tiny-wood"
    shutil.copytree(pack.root, copy)
    info_file = copy / "adapter" / "smollm2-135m" / "training.json"
    info = json.loads(info_file.read_text())
    info["base_fingerprint"] = "0000deadbeef0000"
    info_file.write_text(json.dumps(info))
    with pytest.raises(AssistantError, match=r"trained on base model.*--no-adapter"):
        check_adapter(pack_at(copy), settings)


def test_missing_adapter_names_the_pack_and_the_command(tmp_path, settings):
    root = tmp_path / "domains" / "bare"
    root.mkdir(parents=True)
    with pytest.raises(AssistantError, match=r"pack 'bare' has no trained adapter.*train bare"):
        check_adapter(pack_at(root), settings)


@pytest.mark.slow
def test_reply_only_loss_equals_the_models_own_loss(settings) -> None:
    """The faster loss (LM head on reply positions only) must train the same objective."""
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq

    from assistant.runtime.models import load_base_model, resolve_base_path
    from assistant.training.raft import TrainExample
    from assistant.training.sft import reply_only_loss, tokenize_example

    tokenizer = load_base_model(settings).tokenizer
    model = AutoModelForCausalLM.from_pretrained(resolve_base_path(settings), dtype=torch.float32)
    examples = [
        TrainExample(
            [{"role": "user", "content": question}], reply, "answer", False, None, question
        )
        for question, reply in [
            ("What is the capital of France?", "Paris is the capital of France."),
            ("Name a colour.", "Blue, like a clear sky on a long summer afternoon [1]."),
        ]
    ]
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    batch = collate([tokenize_example(tokenizer, ex) for ex in examples])
    with torch.no_grad():
        expected = model(**batch).loss
        actual = reply_only_loss(model, batch)
    assert torch.allclose(actual, expected, atol=1e-5)
