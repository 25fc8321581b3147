"""Export a pack's PEFT LoRA adapter as a GGUF LoRA adapter, the format llama.cpp loads.

The base model ships as a GGUF, and llama.cpp runs it with 4-bit weights several times faster
than torch decodes on a laptop CPU. llama.cpp applies a LoRA adapter from its own file format:
the same low-rank pairs under llama.cpp's tensor names, with the adapter's alpha in the header.
llama.cpp's own converter (convert_lora_to_gguf.py) lives in its source tree, not in a package,
and needs the base model's Hugging Face folder; the mapping for the two architectures of the
known bases (llama: SmolLM2; qwen2: Qwen2.5) is short, so it is written here on the `gguf`
package's writer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.fsio import atomic_output
from assistant.packs.locate import ADAPTER_CONFIG, ADAPTER_WEIGHTS, DomainPack
from assistant.settings import LoadedSettings

# PEFT module name -> llama.cpp tensor name (per block), the same for llama and qwen2
_GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_PEFT_KEY = re.compile(r"(?:.*\.)?layers\.(\d+)\.(.+)\.lora_([AB])\.weight$")
# transformers model_type -> (llama.cpp architecture, whether llama.cpp's converter permutes the
# rows of q and k for its rotary embedding: it does for llama, not for qwen2, whose GGUF keeps
# Hugging Face's order)
ARCHITECTURES = {"llama": ("llama", True), "qwen2": ("qwen2", False)}


def rope_permute(weight: Any, n_head: int) -> Any:
    """Reorder the output rows of a query or key projection the way llama.cpp's converter does
    (its rotary embedding pairs neighbouring features, Hugging Face's pairs the two halves of
    each head). A LoRA pair's B matrix holds those output rows, so it moves with them."""
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def gguf_lora_tensors(
    adapter_dir: Path, n_head: int, n_kv_head: int, permute: bool = True
) -> dict[str, Any]:
    """The adapter's tensors as float32 numpy arrays under llama.cpp's names; `permute`
    reorders q and k the way llama.cpp's converter does for the architecture."""
    from safetensors.numpy import load_file

    weights = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    tensors: dict[str, Any] = {}
    for key, value in weights.items():
        match = _PEFT_KEY.match(key)
        if match is None or match.group(2) not in _GGUF_NAMES:
            raise AssistantError(
                f"{adapter_dir}: tensor {key!r} is not a LoRA pair of an attention or MLP"
                " projection, so"
                " llama.cpp could not apply this adapter"
            )
        block, module, side = match.groups()
        name = _GGUF_NAMES[module]
        value = value.astype("float32")
        if permute and side == "B" and name in ("attn_q", "attn_k"):
            value = rope_permute(value, n_head if name == "attn_q" else n_kv_head)
        tensors[f"blk.{block}.{name}.weight.lora_{side.lower()}"] = value
    return tensors


def export_gguf_lora(adapter_dir: Path, target: Path, model_config: dict[str, Any]) -> Path:
    """Write `adapter_dir`'s LoRA as a GGUF adapter at `target` (atomically) and return it.
    `model_config` is the base model's config.json (its architecture and head counts)."""
    import gguf

    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    if config.get("use_rslora") or config.get("use_dora"):
        raise AssistantError(f"{adapter_dir}: rsLoRA and DoRA adapters have no GGUF form here")
    model_type = model_config.get("model_type", "llama")
    if model_type not in ARCHITECTURES:
        raise AssistantError(
            f"{adapter_dir}: adapters of {model_type!r} models have no GGUF form here (only"
            f" {', '.join(ARCHITECTURES)}): answer with models.backend = 'transformers'"
        )
    arch, permute = ARCHITECTURES[model_type]
    n_head = int(model_config["num_attention_heads"])
    n_kv_head = int(model_config.get("num_key_value_heads", n_head))
    tensors = gguf_lora_tensors(adapter_dir, n_head, n_kv_head, permute)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(target) as partial:
            writer = gguf.GGUFWriter(str(partial), arch=arch)
            writer.add_type(gguf.GGUFType.ADAPTER)
            writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
            writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
            for name, value in tensors.items():
                writer.add_tensor(name, value)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
    except OSError as exc:
        raise AssistantError(
            f"could not write {target} ({exc.strerror or exc}): choose another path with -o"
        ) from None
    return target


def export_pack_adapter(pack: DomainPack, loaded: LoadedSettings, target: Path) -> Path:
    """Check pack's adapter for the configured base model, then export it to `target`."""
    from assistant.runtime.adapters import check_adapter
    from assistant.runtime.bases import pack_adapter
    from assistant.runtime.models import resolve_base_path

    check_adapter(pack, loaded)
    model_config = json.loads((resolve_base_path(loaded) / "config.json").read_text("utf-8"))
    return export_gguf_lora(pack_adapter(pack, loaded).dir, target, model_config)
