"""Smaller weights for the generator's linear layers on the CPU (`models.quantize`).

- "fp16": every linear layer keeps its weights in float16, packed for fbgemm, and computes in
  float32 (`torch.ao` dynamic fp16 linear). Half the bytes to read per token; measured on the
  packs' answers it agrees with float32 on every token (bench/quant_agreement.py).
- "int8": int8 weights with one scale per output channel, activations quantized per batch at
  run time. Faster still, but torch's kernel quantizes activations to 7 bits, which changes
  what a 135M model says (bench/RESULTS.md): offered for bigger models, not the default.

The output layer is never touched: SmolLM2 ties it to the token embedding, and quantizing it
garbles the text (MODELS.md). LoRA's own small A/B matrices stay float32, so adapters work
unmerged on top. PEFT cannot wrap a converted layer, so an adapter loads through
`float_weights()`, under which each converted layer is stood in for by a weightless float
placeholder of its shape; the converted layers themselves are never rebuilt, and the float
originals are dropped once converted (no extra memory).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal

Weights = Literal["fp16", "int8"]

# Module names never converted: the tied output layer and LoRA's own matrices.
_KEEP_FLOAT = ("lm_head", "lora_")


def _is_kept_float(name: str) -> bool:
    return any(part.startswith(_KEEP_FLOAT) for part in name.split("."))


def _mapped_weight_files() -> list[tuple[int, int]]:
    """Address ranges of this process's memory-mapped .safetensors files (Linux)."""
    ranges = []
    with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[-1].endswith(".safetensors"):
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((lo, hi))
    return ranges


def _drop_pages(tensor: Any, mapped: list[tuple[int, int]], libc: Any) -> None:
    """Let the kernel drop the pages of a float weight read from the mapped weights file.

    Converting reads every float weight, which pulls the whole file into RSS; the mapping stays
    until the last tensor in it (the embedding) goes, so without this the float and converted
    copies are resident together (+0.3 GB at peak). Only pages inside a read-only file mapping
    are dropped: touching them again would read them back from the file, never zeros."""
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    if not any(lo <= start and end <= hi for lo, hi in mapped):
        return
    page = mmap.PAGESIZE
    first, last = -(-start // page) * page, end // page * page
    if last > first:
        libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), mmap.MADV_DONTNEED)


def _placeholder(converted: Any, has_bias: bool) -> Any:
    """A float nn.Linear of the converted layer's shape whose weight is one shared zero
    (expanded, no memory): enough for PEFT to wrap it, never used for compute.

    `has_bias` is recorded at conversion: asking the converted layer (`converted.bias()`)
    unpacks its whole weight to float32, 0.4 GB over all layers, which glibc then kept."""
    import torch

    layer = torch.nn.Linear.__new__(torch.nn.Linear)
    torch.nn.Module.__init__(layer)
    layer.in_features, layer.out_features = converted.in_features, converted.out_features
    zero = torch.zeros(1)
    layer.weight = torch.nn.Parameter(zero.expand(layer.out_features, layer.in_features), False)
    layer.bias = torch.nn.Parameter(zero.expand(layer.out_features), False) if has_bias else None
    return layer


class QuantizedLinears:
    """The converted linear layers of one model. The float originals are dropped once
    converted (the converted copies are all that is kept), and `float_weights()` lets PEFT
    wrap the layers while they look like float ones."""

    def __init__(
        self, model: Any, weights: Weights = "fp16", keep_float: Callable[[str], bool] | None = None
    ) -> None:
        self.model = model
        self.weights = weights
        # more module names to leave float (bench/quant_agreement.py compares choices)
        self.keep_float = keep_float or (lambda name: False)
        self.converted: dict[str, Any] = {}  # module name -> converted layer
        self._has_bias: dict[Any, bool] = {}  # converted layer -> whether it has a bias
        self._lock = threading.RLock()

    def apply(self) -> int:
        """Convert every eligible float Linear; returns how many were converted."""
        import torch
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
        from torch.ao.quantization import float16_dynamic_qconfig, per_channel_dynamic_qconfig

        qconfig = float16_dynamic_qconfig if self.weights == "fp16" else per_channel_dynamic_qconfig
        with self._lock, warnings.catch_warnings():
            # torch 2.13 announces that its quantized tensor types will move out of core one
            # day; the pinned version has them, and users should not see this on every load.
            warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor")
            swapped = 0
            mapped = _mapped_weight_files() if sys.platform.startswith("linux") else []
            libc = ctypes.CDLL(None, use_errno=True) if mapped else None
            for name, module in list(self.model.named_modules()):
                kept = _is_kept_float(name) or self.keep_float(name)
                if type(module) is not torch.nn.Linear or kept:
                    continue
                module.qconfig = qconfig
                converted = DynamicLinear.from_float(module)
                del module.qconfig
                self.model.set_submodule(name, converted)
                self.converted[name] = converted
                self._has_bias[converted] = module.bias is not None
                if mapped and module.weight.data_ptr() != 0:
                    _drop_pages(module.weight, mapped, libc)
                swapped += 1
            return swapped

    @contextlib.contextmanager
    def float_weights(self) -> Iterator[None]:
        """For the duration, every converted layer is replaced by a float-looking placeholder
        of its shape (PEFT loads an adapter and wraps them); after, the converted layers go
        back, under the LoRA wrapper where PEFT put one."""
        with self._lock:
            placeholders = {}
            for name, converted in self.converted.items():
                placeholders[name] = _placeholder(converted, self._has_bias[converted])
                self.model.set_submodule(name, placeholders[name])
            try:
                yield
            finally:
                moved = {}
                for name, converted in self.converted.items():
                    module = self.model.get_submodule(name)
                    if module is placeholders[name]:
                        self.model.set_submodule(name, converted)
                        moved[name] = converted
                    elif getattr(module, "base_layer", None) is placeholders[name]:
                        module.base_layer = converted  # PEFT wrapped it: a LoRA layer now
                        moved[f"{name}.base_layer"] = converted
                    else:
                        raise RuntimeError(f"cannot find the converted layer {name} again")
                self.converted = moved


def _own_memory(model: Any) -> None:
    """Copy the float tensors that stay (embedding, norms) out of the weights file: transformers
    maps the safetensors file into memory, and while any tensor points into the mapping, every
    page of it that conversion read stays resident (~0.4 GB for SmolLM2-135M)."""
    import torch

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.data = tensor.data.clone()


def quantize(model: Any, weights: Weights) -> QuantizedLinears:
    """Convert `model`'s linear layers in place and return the handle that loads adapters."""
    state = QuantizedLinears(model, weights)
    state.apply()
    _own_memory(model)
    return state
