"""One base, many adapters: every pack's LoRA adapter loaded once by name onto the shared base
model, switched by name, with "no adapter" (the base alone) available for comparison.

An adapter is checked before it is loaded: its files must be present and readable safetensors
(never pickle), and it must have been trained on the configured base model.
"""

from __future__ import annotations

import contextlib
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, DamagedDataError
from assistant.packs.locate import DomainPack
from assistant.runtime.bases import pack_adapter
from assistant.runtime.models import LoadedModel, base_model_fingerprint
from assistant.settings import LoadedSettings


def check_adapter(pack: DomainPack, loaded: LoadedSettings) -> dict[str, Any]:
    """The training.json of the pack's adapter for the configured base, after checking its
    files and base model; raises AssistantError naming the pack and what to run."""
    adapter = pack_adapter(pack, loaded)
    retrain = f"run `assistant train {pack.name}`, or answer with --no-adapter"
    if not adapter.weights.is_file() or not adapter.config.is_file():
        raise AssistantError(
            f"pack {pack.name!r} has no trained adapter for base {adapter.base} in"
            f" {adapter.dir}: {retrain}"
        )
    try:
        from safetensors import safe_open

        with safe_open(str(adapter.weights), framework="numpy") as handle:
            keys = list(handle.keys())
        json.loads(adapter.config.read_text("utf-8"))
    except Exception:
        raise DamagedDataError(
            f"the adapter of pack {pack.name!r} is damaged ({adapter.weights}): {retrain}"
        ) from None
    if not keys:
        raise DamagedDataError(f"the adapter of pack {pack.name!r} holds no weights: {retrain}")
    info = json.loads(adapter.record.read_text("utf-8")) if adapter.record.is_file() else {}
    trained_on = info.get("fingerprint_base") or info.get("base_fingerprint")
    current = base_model_fingerprint(loaded)
    if trained_on and trained_on != current:
        raise AssistantError(
            f"the adapter of pack {pack.name!r} was trained on base model"
            f" {info.get('base_model')!r} ({trained_on}), but the configured base is"
            f" {loaded.settings.models.base_model!r} ({current}): {retrain}"
        )
    return info


@contextlib.contextmanager
def peft_wrapping_quietly() -> Iterator[None]:
    """Wrap a model with PEFT without its deprecation warning: peft 0.21 asks the model for
    `is_gradient_checkpointing`, which transformers 5 deprecates, and the warning would print
    on every `assistant ask`."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing`")
        yield


class AdapterBank:
    """The PEFT-wrapped base model with every loaded adapter; thread-safe switching."""

    def __init__(self, handle: LoadedModel) -> None:
        self.handle = handle
        self.peft_model: Any = None
        self.names: dict[str, Path] = {}
        self.active: str | None = None
        self.in_use: str | None = None  # what `using` yields: an adapter's name, None = base
        self._lock = threading.RLock()
        self._tuner_layers: list[Any] = []
        self._fast_switch = False

    def load(self, pack: DomainPack, loaded: LoadedSettings) -> str:
        """Load the pack's adapter under the pack's name (once); returns the name."""
        with self._lock:
            if pack.name in self.names:
                return pack.name
            check_adapter(pack, loaded)
            folder = pack_adapter(pack, loaded).dir
            float_weights = (
                self.handle.quantized.float_weights()
                if self.handle.quantized is not None
                else contextlib.nullcontext()
            )
            try:
                with float_weights:
                    self._load_with_peft(pack.name, folder)
            except Exception as exc:
                raise DamagedDataError(
                    f"the adapter of pack {pack.name!r} could not be loaded ({exc}): run"
                    f" `assistant train {pack.name}`, or answer with --no-adapter"
                ) from None
            self.names[pack.name] = folder
            self._index_layers()
            # PEFT's `load_adapter` leaves the adapter that was active before in charge, so the
            # new one is switched to (marking it active without that left the first-loaded
            # adapter answering for every pack loaded after it)
            self.active = None
            self.switch(pack.name)
            return pack.name

    def _load_with_peft(self, name: str, folder: Path) -> None:
        from peft import PeftModel

        if self.peft_model is None:
            with peft_wrapping_quietly():
                self.peft_model = PeftModel.from_pretrained(
                    self.handle.model, str(folder), adapter_name=name
                )
            self.peft_model.eval()
        else:
            self.peft_model.load_adapter(str(folder), adapter_name=name)

    def unload(self, name: str) -> None:
        """Remove a loaded adapter (the base stays; another adapter becomes active on use)."""
        with self._lock:
            if name not in self.names:
                return
            self.peft_model.delete_adapter(name)
            self.names.pop(name)
            self.active = None
            if not self.names:
                # PEFT keeps naming the deleted adapter as active when none is left, and then
                # fails to switch adapters off. The emptied LoRA wrappers stay in the model and
                # compute the base alone; the next load wraps the model again.
                self.peft_model = None
                self._tuner_layers = []
                return
            self._index_layers()

    def _index_layers(self) -> None:
        """Remember the LoRA layers so a switch need not walk the whole model.

        PEFT's `set_adapter` visits every module and resets `requires_grad` on every adapter's
        weights: ~10 ms for four adapters on 70 layers, paid on each switch. In inference only
        the active-adapter name of each LoRA layer matters, so a switch sets just that. Models
        with auxiliary modules (`modules_to_save`) keep PEFT's full path."""
        from peft.tuners.tuners_utils import BaseTunerLayer
        from peft.utils.other import AuxiliaryTrainingWrapper

        modules = list(self.peft_model.modules())
        self._tuner_layers = [m for m in modules if isinstance(m, BaseTunerLayer)]
        self._fast_switch = not any(isinstance(m, AuxiliaryTrainingWrapper) for m in modules)

    @contextlib.contextmanager
    def using(self, name: str | None) -> Iterator[Any]:
        """The model to generate with: the named adapter active, or the base alone (None).
        Holds the bank's lock so a concurrent switch cannot change it mid-answer."""
        with self._lock:
            if self.peft_model is None:
                yield self.handle.model
                return
            if name is None:
                with self.peft_model.disable_adapter():
                    self.in_use = None
                    yield self.peft_model
                return
            if name not in self.names:
                raise AssistantError(f"no adapter named {name!r} is loaded")
            self.switch(name)
            self.in_use = name
            try:
                yield self.peft_model
            finally:
                self.in_use = None

    def switch(self, name: str) -> None:
        with self._lock:
            if self.active == name:
                return
            if self._fast_switch:
                for layer in self._tuner_layers:
                    if layer.merged:
                        layer.unmerge()
                    layer._active_adapter = [name]
                self.peft_model.active_adapter = name
                self.peft_model.base_model.active_adapter = name
            else:
                self.peft_model.set_adapter(name)
            self.active = name


_banks_lock = threading.Lock()


def bank_for(handle: LoadedModel) -> AdapterBank:
    """The one adapter bank of a loaded base model (adapters are injected into its modules, so
    every generation on that model must go through the bank)."""
    with _banks_lock:
        if handle.bank is None:
            handle.bank = AdapterBank(handle)
        return handle.bank
