"""int8 weights for the generator on the CPU (`models.quantize = "int8"`), reversible.

Every `nn.Linear` of the model becomes a dynamically quantized int8 linear layer (weights int8
with one scale per output channel, activations quantized per batch at run time), except the
output layer: SmolLM2 ties it to the token embedding, and quantizing it garbles the text
(MODELS.md). LoRA's own small A/B matrices stay float32, so adapters still work unmerged on top.

PEFT cannot wrap a quantized layer, so loading an adapter goes through `float_weights()`: the
original float32 layers (kept, unchanged) are put back for the load and quantized again after.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

# Module names never quantized: the tied output layer and LoRA's own matrices.
_KEEP_FLOAT = ("lm_head", "lora_")


def _is_kept_float(name: str) -> bool:
    return any(part.startswith(_KEEP_FLOAT) for part in name.split("."))


def _dynamic_type() -> Any:
    from torch.ao.nn.quantized.dynamic import Linear

    return Linear


@functools.cache
def _full_range_type() -> Any:
    import torch

    class FullRangeInt8Linear(_dynamic_type()):
        def forward(self, x: Any) -> Any:
            if self._packed_params.dtype != torch.qint8:
                return super().forward(x)
            packed = self._packed_params._packed_params
            return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)

    return FullRangeInt8Linear


def _set_submodule(model: Any, name: str, module: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


class Int8Linears:
    """The int8 state of one model's linear layers; `apply` and `restore` switch between the
    int8 layers and the original float ones."""

    def __init__(
        self,
        model: Any,
        keep_float: Callable[[str], bool] | None = None,
        weights: str = "int8",
        full_range: bool = False,
    ) -> None:
        self.model = model
        self.weights = weights  # "int8", or "float16" (fbgemm's fp16 weights; a probe)
        # torch's dynamic int8 linear quantizes activations to 7 bits (reduce_range), which
        # avoids int16 overflow in AVX2's u8 x s8 products; full_range uses all 8 bits
        self.full_range = full_range
        # more module names to leave float (bench/int8_agreement.py compares choices)
        self.keep_float = keep_float or (lambda name: False)
        self.float_layers: dict[str, Any] = {}
        self._lock = threading.RLock()

    @property
    def applied(self) -> bool:
        return bool(self.float_layers)

    def apply(self) -> int:
        """Quantize every eligible float Linear (again); returns how many were swapped."""
        import torch
        from torch.ao.quantization import float16_dynamic_qconfig, per_channel_dynamic_qconfig

        qconfig = (
            float16_dynamic_qconfig if self.weights == "float16" else per_channel_dynamic_qconfig
        )
        layer_type = _full_range_type() if self.full_range else _dynamic_type()

        with self._lock, warnings.catch_warnings():
            # torch 2.13 announces that its quantized tensor types will move out of core one
            # day; the pinned version has them, and users should not see this on every load.
            warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor")
            swapped = 0
            for name, module in list(self.model.named_modules()):
                kept = _is_kept_float(name) or self.keep_float(name)
                if type(module) is not torch.nn.Linear or kept:
                    continue
                module.qconfig = qconfig
                _set_submodule(self.model, name, layer_type.from_float(module))
                del module.qconfig
                self.float_layers[name] = module
                swapped += 1
            return swapped

    def restore(self) -> None:
        """Put the original float layers back (the int8 copies are dropped)."""
        with self._lock:
            for name, module in self.float_layers.items():
                _set_submodule(self.model, name, module)
            self.float_layers.clear()

    @contextlib.contextmanager
    def float_weights(self) -> Iterator[None]:
        """The model with float layers for the duration (PEFT loads an adapter), int8 after."""
        with self._lock:
            was_applied = self.applied
            self.restore()
            try:
                yield
            finally:
                if was_applied:
                    self.apply()


def quantize_int8(model: Any) -> Int8Linears:
    """Quantize `model`'s linear layers in place and return the handle that can undo it."""
    state = Int8Linears(model)
    state.apply()
    return state
