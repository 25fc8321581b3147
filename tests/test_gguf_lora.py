"""Exporting a pack's LoRA adapter for llama.cpp: the file holds every low-rank pair under
llama.cpp's names with the adapter's alpha, and the query/key rows are reordered exactly as the
GGUF base model's are (so a pair lines up with the weights it corrects): for llama (SmolLM2),
not for qwen2 (Qwen2.5), whose GGUF keeps Hugging Face's order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.errors import AssistantError
from assistant.packs.locate import list_packs
from assistant.runtime.gguf_lora import export_gguf_lora, rope_permute

SMOLLM2 = {"model_type": "llama", "num_attention_heads": 9, "num_key_value_heads": 3}
QWEN2 = {"model_type": "qwen2", "num_attention_heads": 14, "num_key_value_heads": 2}


@pytest.mark.parametrize(("heads", "rows"), [(9, 576), (3, 192)])
def test_rope_permute_is_undone_by_the_loader_the_base_model_came_through(heads, rows) -> None:
    """transformers reverses llama.cpp's row order when it loads the GGUF base model, so the
    adapter's B rows (trained on that model) must be put back into llama.cpp's order."""
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    weight = np.random.default_rng(0).standard_normal((rows, 16)).astype("float32")
    permuted = rope_permute(weight, heads)
    assert not np.array_equal(permuted, weight)
    restored = LlamaTensorProcessor()._reverse_permute_weights(permuted, 9, heads)
    assert np.array_equal(restored, weight)


def test_a_shipped_adapter_exports_every_pair_with_its_alpha(tmp_path) -> None:
    import gguf
    from safetensors.numpy import load_file

    pack = next(p for p in list_packs() if p.name == "penguin-wood")
    folder = pack.adapter("smollm2-135m").dir
    target = export_gguf_lora(folder, tmp_path / "penguin-wood.gguf", SMOLLM2)
    assert not list(tmp_path.glob("*.partial"))
    reader = gguf.GGUFReader(str(target))
    fields = {name: field.contents() for name, field in reader.fields.items()}
    config = json.loads((folder / "adapter_config.json").read_text())
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "llama"
    assert fields["adapter.lora.alpha"] == config["lora_alpha"]
    tensors = {t.name: t for t in reader.tensors}
    peft = load_file(str(folder / "adapter_model.safetensors"))
    assert len(tensors) == len(peft)
    block = config["layers_to_transform"][0]
    prefix = f"base_model.model.model.layers.{block}"
    down_a = peft[f"{prefix}.mlp.down_proj.lora_A.weight"]
    exported = tensors[f"blk.{block}.ffn_down.weight.lora_a"]
    assert np.array_equal(np.asarray(exported.data).reshape(down_a.shape), down_a)
    q_b = peft[f"{prefix}.self_attn.q_proj.lora_B.weight"]
    exported = np.asarray(tensors[f"blk.{block}.attn_q.weight.lora_b"].data).reshape(q_b.shape)
    assert np.array_equal(exported, rope_permute(q_b, 9))


def test_transformers_loads_a_qwen2_gguf_without_reordering_q_and_k() -> None:
    """The reason the qwen2 export keeps the rows as they are: transformers reorders only the
    architectures it has a tensor processor for, and qwen2 is not one."""
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS

    assert "llama" in TENSOR_PROCESSORS and "qwen2" not in TENSOR_PROCESSORS


def test_a_qwen2_adapter_exports_under_the_qwen2_architecture_unpermuted(tmp_path) -> None:
    """A synthetic adapter with Qwen2.5-0.5B's shapes (random values: the mapping does not
    depend on what was learned)."""
    import gguf
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    shapes = {"q_proj": (896, 896), "k_proj": (128, 896), "v_proj": (128, 896)}
    shapes |= {"o_proj": (896, 896)}
    peft = {}
    for block in (3, 23):
        for module, (rows, columns) in shapes.items():
            prefix = f"base_model.model.model.layers.{block}.self_attn.{module}"
            peft[f"{prefix}.lora_A.weight"] = rng.standard_normal((8, columns), dtype="float32")
            peft[f"{prefix}.lora_B.weight"] = rng.standard_normal((rows, 8), dtype="float32")
    save_file(peft, str(tmp_path / "adapter_model.safetensors"))
    (tmp_path / "adapter_config.json").write_text(json.dumps({"lora_alpha": 16}))
    target = export_gguf_lora(tmp_path, tmp_path / "qwen.gguf", QWEN2)
    reader = gguf.GGUFReader(str(target))
    assert reader.fields["general.architecture"].contents() == "qwen2"
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}
    expected = {
        f"blk.{block}.{name}.weight.lora_{side}"
        for block in (3, 23)
        for name in names.values()
        for side in "ab"
    }
    assert set(tensors) == expected
    for module in ("q_proj", "k_proj"):
        b = peft[f"base_model.model.model.layers.23.self_attn.{module}.lora_B.weight"]
        exported = tensors[f"blk.23.{names[module]}.weight.lora_b"].reshape(b.shape)
        assert np.array_equal(exported, b)  # not reordered


def test_an_unknown_architecture_is_refused_in_one_line(tmp_path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"lora_alpha": 8}))
    with pytest.raises(AssistantError, match="'gemma2' models have no GGUF form"):
        export_gguf_lora(tmp_path, tmp_path / "out.gguf", {**SMOLLM2, "model_type": "gemma2"})


def test_an_adapter_with_foreign_tensors_is_refused_in_one_line(tmp_path) -> None:
    from safetensors.numpy import save_file

    save_file(
        {"base_model.model.lm_head.lora_A.weight": np.zeros((4, 8), dtype="float32")},
        str(tmp_path / "adapter_model.safetensors"),
    )
    (tmp_path / "adapter_config.json").write_text(json.dumps({"lora_alpha": 8}))
    with pytest.raises(AssistantError, match="not a LoRA pair of an attention or MLP"):
        export_gguf_lora(tmp_path, tmp_path / "out.gguf", SMOLLM2)
    assert not (tmp_path / "out.gguf").exists()


def test_the_cli_writes_the_file_and_names_the_base_gguf_to_pair_it_with(tmp_path) -> None:
    from click.testing import CliRunner

    from assistant.cli import commands  # noqa: F401  (registers the commands)
    from assistant.cli.app import cli

    target = tmp_path / "support.gguf"
    result = CliRunner().invoke(
        cli, ["pack", "gguf-adapter", "support", "-o", str(target), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["path"] == str(target) and target.stat().st_size > 1_000_000
    assert report["base_gguf"].endswith(".gguf")


def test_a_pack_without_an_adapter_gets_one_line_and_exit_2(tmp_path) -> None:
    import shutil

    from click.testing import CliRunner

    from assistant.cli import commands  # noqa: F401
    from assistant.cli.app import cli

    source = next(p for p in list_packs() if p.name == "penguin-wood").root
    pack = tmp_path / "penguin-copy"
    shutil.copytree(source, pack, ignore=shutil.ignore_patterns("adapter"))
    result = CliRunner().invoke(cli, ["pack", "gguf-adapter", str(pack)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no trained adapter" in lines[0], result.stderr
    assert "assistant train" in lines[0]


def test_an_unwritable_output_gets_one_line_and_exit_2(tmp_path) -> None:
    from click.testing import CliRunner

    from assistant.cli import commands  # noqa: F401
    from assistant.cli.app import cli

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["pack", "gguf-adapter", "support", "-o", f"{blocker}/x.gguf"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not write" in lines[0] and "-o" in lines[0], result.stderr
    assert blocker.read_text() == "not a folder"
