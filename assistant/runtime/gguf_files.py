"""The GGUF files llama.cpp answers from: the base model as llama.cpp runs it, and each pack's
adapter as a GGUF LoRA, both made once into the cache.

The packaged base ships as Q4_1. It is re-encoded once as F16, which holds the Q4_1 values as
the transformers path does (float16 weights): measured on the packs' eval sets
(bench/RESULTS.md), F16 gave the transformers answers on 42 of 42 penguin-wood questions where
Q8_0 gave 18, and Q4_1 itself (8-bit activations) differs too. A user's own GGUF runs as it is.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from assistant.errors import AssistantError
from assistant.fsio import atomic_output
from assistant.packs.locate import DomainPack
from assistant.settings import LoadedSettings, cache_dir


def base_gguf(loaded: LoadedSettings) -> Path:
    """The GGUF file the base model comes from: the packaged one, or `base_model` if it is a
    .gguf file."""
    from assistant.runtime.models import PACKAGED_BASE, packaged_gguf

    name = loaded.settings.models.base_model
    if name == PACKAGED_BASE:
        return packaged_gguf()
    path = Path(name).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path
    raise AssistantError(
        f"the llama_cpp backend needs a GGUF base model, and base_model is {name!r}: set"
        f" base_model to {PACKAGED_BASE!r} or models.backend to 'transformers'"
    )


def runtime_gguf(loaded: LoadedSettings) -> Path:
    """The GGUF llama.cpp loads: the packaged model re-encoded once as F16 into the cache, or
    the user's own GGUF as it is."""
    from assistant.runtime.models import PACKAGED_BASE, file_fingerprint

    source = base_gguf(loaded)
    if loaded.settings.models.base_model != PACKAGED_BASE:
        return source
    name = f"{source.stem}-{file_fingerprint(source)}.f16.gguf"
    target = cache_dir(loaded.settings) / "models" / name
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


def exported_lora(pack: DomainPack, loaded: LoadedSettings) -> Path:
    """The pack's adapter as a GGUF LoRA, exported once per adapter content (a retrained
    adapter of the same size gets a new file; the older exports of that pack are removed)."""
    from assistant.runtime.gguf_lora import export_pack_adapter

    digest = hashlib.sha256()
    for file in (pack.adapter_config, pack.adapter_weights):
        digest.update(file.read_bytes())
    folder = cache_dir(loaded.settings) / "gguf-lora"
    target = folder / f"{pack.name}-{digest.hexdigest()[:16]}.gguf"
    if target.is_file():
        return target
    export_pack_adapter(pack, loaded, target)
    earlier = re.compile(rf"{re.escape(pack.name)}-[0-9a-f]{{16}}\.gguf")
    for old in folder.glob(f"{pack.name}-*.gguf"):
        if old != target and earlier.fullmatch(old.name):
            old.unlink(missing_ok=True)
    return target
