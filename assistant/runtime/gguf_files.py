"""The GGUF files llama.cpp answers from: the base model as llama.cpp runs it, and each pack's
adapter as a GGUF LoRA, both made once into the cache.

SmolLM2 ships as Q4_1. It is re-encoded once as F16, which holds the Q4_1 values as the
transformers path does (float16 weights): measured on the packs' eval sets (bench/RESULTS.md),
F16 gave the transformers answers on 42 of 42 penguin-wood questions where Q8_0 gave 18, and
Q4_1 itself (8-bit activations) differs too. The other known bases (`bases.py`) and a user's
own GGUF run as they are.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from assistant.errors import AssistantError
from assistant.fsio import atomic_output
from assistant.packs.locate import DomainPack, adapter_key
from assistant.settings import LoadedSettings, cache_dir


def base_gguf(loaded: LoadedSettings) -> Path:
    """The GGUF file the base model comes from: a known base's, or `base_model` if it is a
    .gguf file."""
    from assistant.runtime.bases import BASES
    from assistant.runtime.models import source_gguf

    source = source_gguf(loaded)
    if source is None:
        name = loaded.settings.models.base_model
        raise AssistantError(
            f"the llama_cpp backend needs a GGUF base model, and base_model is {name!r}: set"
            f" base_model to one of {', '.join(BASES)} or a .gguf file, or models.backend to"
            " 'transformers'"
        )
    return source


def runtime_gguf(loaded: LoadedSettings) -> Path:
    """The GGUF llama.cpp loads: SmolLM2 re-encoded once as F16 into the cache, any other base
    as it is."""
    from assistant.runtime.bases import configured_base
    from assistant.runtime.models import converted_name

    source = base_gguf(loaded)
    base = configured_base(loaded)
    if base is None or not base.f16_for_llama_cpp:
        return source
    target = cache_dir(loaded.settings) / "models" / f"{converted_name(loaded)}.f16.gguf"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        reencode_f16(source, target)
    return target


def reencode_f16(source: Path, target: Path) -> Path:
    """Write `source` with every quantized tensor dequantized to float16 (atomically).

    By hand on the `gguf` package because llama.cpp's quantize tool is not in the prebuilt
    engine's Python API, and the copy is short: the metadata as it is, each tensor dequantized.
    """
    import gguf
    import numpy as np
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    keep_as_is = (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
    with atomic_output(target) as partial:
        writer = gguf.GGUFWriter(str(partial), arch)
        for field in reader.fields.values():
            if field.name.startswith("GGUF.") or field.name == "general.architecture":
                continue
            kind = field.types[0]
            item_kind = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, field.contents(), kind, sub_type=item_kind)
        for tensor in reader.tensors:
            if tensor.tensor_type in keep_as_is:
                writer.add_tensor(tensor.name, np.array(tensor.data), raw_dtype=tensor.tensor_type)
            else:
                values = dequantize(tensor.data, tensor.tensor_type).astype(np.float16)
                writer.add_tensor(tensor.name, values)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return target


def lora_file_name(pack: DomainPack, loaded: LoadedSettings) -> str:
    """The GGUF LoRA's file name: the pack's name and a hash of its adapter's files, so an
    engine started with an older export of the adapter is told apart."""
    from assistant.runtime.bases import pack_adapter

    adapter = pack_adapter(pack, loaded)
    digest = hashlib.sha256()
    for file in (adapter.config, adapter.weights):
        digest.update(file.read_bytes())
    return f"{pack.name}-{digest.hexdigest()[:16]}.gguf"


def exported_lora(pack: DomainPack, loaded: LoadedSettings) -> Path:
    """The pack's adapter for the configured base as a GGUF LoRA, exported once per adapter
    content into a folder per base (a retrained adapter of the same size gets a new file; the
    older exports of that pack for that base are removed)."""
    from assistant.runtime.bases import pack_adapter
    from assistant.runtime.gguf_lora import export_pack_adapter

    adapter = pack_adapter(pack, loaded)
    folder = cache_dir(loaded.settings) / "gguf-lora" / adapter_key(adapter.base)
    target = folder / lora_file_name(pack, loaded)
    if target.is_file():
        return target
    export_pack_adapter(pack, loaded, target)
    earlier = re.compile(rf"{re.escape(pack.name)}-[0-9a-f]{{16}}\.gguf")
    for old in folder.glob(f"{pack.name}-*.gguf"):
        if old != target and earlier.fullmatch(old.name):
            old.unlink(missing_ok=True)
    return target
