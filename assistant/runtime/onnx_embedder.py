"""The embedder in ONNX Runtime with int8 weights (`models.embedder_runtime = "onnx_int8"`).

Ingestion spends nearly all its time embedding chunks. ONNX Runtime's fused graph with dynamic
int8 matrix products (per-channel weight scales) embeds ~2x as many passages per second as the
float32 sentence-transformers model on 2 cores, with the same retrieval hit@5 on the packs'
eval questions (bench/RESULTS.md); torch's own int8 reached 1.45x. The model is exported from
the configured sentence-transformers folder once, into the cache; queries and chunks are then
embedded the same way (mean pooling, unit length). An index records which runtime built it, so
switching runtimes asks for a rebuild instead of mixing vectors.

The runtime comes with the `onnx` extra (prebuilt wheels, no compiler).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError, MissingDependencyError
from assistant.fsio import replace_file
from assistant.settings import LoadedSettings, cache_dir

log = logging.getLogger(__name__)

INSTALL = "pip install 'assistant[onnx]'"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _require_onnx() -> Any:
    try:
        import onnxruntime
        from onnxruntime.quantization import quantize_dynamic  # noqa: F401  (needs onnx)
    except ImportError:
        raise MissingDependencyError(
            f"models.embedder_runtime is 'onnx_int8' but ONNX Runtime is not installed: run"
            f" `{INSTALL}`, or set models.embedder_runtime to 'torch'"
        ) from None
    return onnxruntime


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def export_int8(model: Any, target: Path) -> Path:
    """Export the sentence-transformers model's encoder to ONNX and quantize it to int8
    (per-channel), atomically into `target`."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    encoder = model[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = model.tokenizer(["a sample", "a longer sample"], padding=True, return_tensors="pt")
    log.warning(
        "Exporting the embedder to ONNX with int8 weights into %s. This happens once and takes"
        " about 10 s.",
        target,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    root = logging.getLogger()
    level = root.level
    try:
        # The exporter warns about tracing details and the quantizer logs advice to the root
        # logger; neither is anything a user can act on.
        root.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            float_model = work / "float32.onnx"
            torch.onnx.export(
                LastHiddenState(),
                tuple(sample[name] for name in INPUTS),
                str(float_model),
                input_names=list(INPUTS),
                output_names=["hidden"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "hidden")},
                opset_version=17,
                dynamo=False,  # the TorchScript exporter needs no extra packages
            )
            quantized = work / "int8.onnx"
            quantize_dynamic(str(float_model), str(quantized), weight_type=QuantType.QInt8,
                             per_channel=True)  # fmt: skip
        replace_file(quantized, target)
    finally:
        root.setLevel(level)
        shutil.rmtree(work, ignore_errors=True)
    return target


class OnnxEmbedder:
    """Embeds like the sentence-transformers model it was exported from (the subset of its
    interface that indexing and search use)."""

    def __init__(self, model: Any, onnx_file: Path, threads: int) -> None:
        onnxruntime = _require_onnx()
        pooling = getattr(model[1], "pooling_mode", None) if len(model) > 1 else None
        if pooling not in (None, "mean"):
            raise AssistantError(
                f"the onnx_int8 embedder runtime supports mean pooling only, and this"
                f" embedder pools with {pooling!r}: set models.embedder_runtime to 'torch'"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # no warnings about graph rewrites on stderr
        self.session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = model.tokenizer
        self.max_seq_length = model.max_seq_length
        self._dimension = model.get_embedding_dimension()

    def get_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str] | str, batch_size: int = 32, **_: Any) -> np.ndarray:
        """Unit-length mean-pooled vectors (n x dimension), batched longest first as
        sentence-transformers does (a batch pads to its longest text)."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feed = {name: encoded[name].astype(np.int64) for name in INPUTS}
            hidden = self.session.run(None, feed)[0]
            mask = encoded["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            vectors[rows] = pooled / np.clip(
                np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None
            )
        return vectors[0] if single else vectors


def load_onnx_embedder(loaded: LoadedSettings, model: Any, model_path: Path) -> OnnxEmbedder:
    """The int8 ONNX twin of `model` (exported into the cache on first use)."""
    _require_onnx()
    name = f"{model_path.parent.name}-{model_path.name}-{_fingerprint(model_path)}.int8.onnx"
    target = cache_dir(loaded.settings) / "models" / name
    if not target.is_file():
        export_int8(model, target)
    threads = loaded.settings.models.threads or os.cpu_count() or 1
    return OnnxEmbedder(model, target, threads)
