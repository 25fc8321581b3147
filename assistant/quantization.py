"""Smaller weights for the generator's linear layers on the CPU (`models.quantize`), reversible.

- "fp16": every linear layer keeps its weights in float16, packed for fbgemm, and computes in
  float32 (`torch.ao` dynamic fp16 linear). Half the bytes to read per token; measured on the
  packs' answers it agrees with float32 on every token (bench/quant_agreement.py).
- "int8": int8 weights with one scale per output channel, activations quantized per batch at
  run time. Faster still, but torch's kernel quantizes activations to 7 bits, which changes
  what a 135M model says (bench/RESULTS.md): offered for bigger models, not the default.

The output layer is never touched: SmolLM2 ties it to the token embedding, and quantizing it
garbles the text (MODELS.md). LoRA's own small A/B matrices stay float32, so adapters work
unmerged on top. PEFT cannot wrap a converted layer, so loading an adapter goes through
`float_weights()`: the original float32 layers (kept, unchanged) are put back for the load and
converted again after.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal

Weights = Literal["fp16", "int8"]

# Module names never converted: the tied output layer and LoRA's own matrices.
_KEEP_FLOAT = ("lm_head", "lora_")


def _is_kept_float(name: str) -> bool:
    return any(part.startswith(_KEEP_FLOAT) for part in name.split("."))


def _set_submodule(model: Any, name: str, module: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


class QuantizedLinears:
    """The converted state of one model's linear layers; `apply` and `restore` switch between
    the converted layers and the original float ones."""

    def __init__(
        self, model: Any, weights: Weights = "fp16", keep_float: Callable[[str], bool] | None = None
    ) -> None:
        self.model = model
        self.weights = weights
        # more module names to leave float (bench/quant_agreement.py compares choices)
        self.keep_float = keep_float or (lambda name: False)
        self.float_layers: dict[str, Any] = {}
        self._lock = threading.RLock()

    @property
    def applied(self) -> bool:
        return bool(self.float_layers)

    def apply(self) -> int:
        """Convert every eligible float Linear (again); returns how many were swapped."""
        import torch
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
        from torch.ao.quantization import float16_dynamic_qconfig, per_channel_dynamic_qconfig

        qconfig = float16_dynamic_qconfig if self.weights == "fp16" else per_channel_dynamic_qconfig
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
                _set_submodule(self.model, name, DynamicLinear.from_float(module))
                del module.qconfig
                self.float_layers[name] = module
                swapped += 1
            return swapped

    def restore(self) -> None:
        """Put the original float layers back (the converted copies are dropped)."""
        with self._lock:
            for name, module in self.float_layers.items():
                _set_submodule(self.model, name, module)
            self.float_layers.clear()

    @contextlib.contextmanager
    def float_weights(self) -> Iterator[None]:
        """The model with float layers for the duration (PEFT loads an adapter), converted
        again after."""
        with self._lock:
            was_applied = self.applied
            self.restore()
            try:
                yield
            finally:
                if was_applied:
                    self.apply()


def quantize(model: Any, weights: Weights) -> QuantizedLinears:
    """Convert `model`'s linear layers in place and return the handle that can undo it."""
    state = QuantizedLinears(model, weights)
    state.apply()
    return state
