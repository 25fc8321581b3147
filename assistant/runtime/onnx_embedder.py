"""The embedder in ONNX Runtime with int8 weights (`models.embedder_runtime = "onnx_int8"`).

Ingestion spends nearly all its time embedding chunks. ONNX Runtime's fused graph with dynamic
int8 matrix products (per-channel weight scales) embeds ~2x as many passages per second as the
float32 sentence-transformers model on 2 cores, with the same retrieval hit@5 on the packs'
eval questions (bench/RESULTS.md); torch's own int8 reached 1.45x. The model is exported from
the configured sentence-transformers folder once, into the cache; queries and chunks are then
embedded the same way (mean pooling, unit length). An index records which runtime built it, so
switching runtimes asks for a rebuild instead of mixing vectors.

ONNX Runtime is a dependency (prebuilt wheels, no compiler).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError, MissingDependencyError
from assistant.fsio import replace_file
from assistant.settings import LoadedSettings, cache_dir

log = logging.getLogger(__name__)

INSTALL = "pip install onnxruntime==1.32.0"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _require_onnx() -> Any:
    try:
        import onnxruntime
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
    level, handlers = root.level, list(root.handlers)
    try:
        # The exporter warns about tracing details and the quantizer logs advice to the root
        # logger; neither is anything a user can act on.
        root.setLevel(logging.ERROR)
        from onnxruntime.quantization import QuantType, quantize_dynamic

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
        # The quantizer also calls logging.basicConfig(level=DEBUG): every library's debug
        # lines (bm25s's among them) reached the terminal for the rest of the run.
        root.setLevel(level)
        root.handlers = handlers
        shutil.rmtree(work, ignore_errors=True)
    return target


class WordPieceTokenizer:
    """The embedder folder's tokenizer.json in the `tokenizers` library: what the ONNX model
    needs to embed (and chunking to count tokens) without transformers, which imports torch."""

    def __init__(self, folder: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.backend_tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.backend_tokenizer.no_padding()  # the file may carry the exporter's fixed padding
        self.backend_tokenizer.no_truncation()
        specials = _json(folder / "special_tokens_map.json")
        self.unk_token = _token(specials.get("unk_token")) or "[UNK]"
        pad_token = _token(specials.get("pad_token")) or "[PAD]"
        self._batches = Tokenizer.from_str(self.backend_tokenizer.to_str())
        self._batches.enable_truncation(max_length=max_length)
        pad_id = self._batches.token_to_id(pad_token) or 0
        self._batches.enable_padding(pad_id=pad_id, pad_token=pad_token)

    def tokenize(self, text: str) -> list[str]:
        return self.backend_tokenizer.encode(text, add_special_tokens=False).tokens

    def batch(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The model's inputs for `texts`, padded to the longest and cut at the maximum."""
        encodings = self._batches.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def _token(value: Any) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


class OnnxEmbedder:
    """Embeds like the sentence-transformers folder it was exported from (the subset of its
    interface that indexing and search use), with no torch once the export is in the cache."""

    def __init__(self, folder: Path, onnx_file: Path, threads: int) -> None:
        onnxruntime = _require_onnx()
        pooling = _json(folder / "1_Pooling" / "config.json")
        modes = [key for key, on in pooling.items() if key.startswith("pooling_mode") and on]
        if modes not in ([], ["pooling_mode_mean_tokens"]):
            raise AssistantError(
                f"the onnx_int8 embedder runtime supports mean pooling only, and this"
                f" embedder pools with {', '.join(modes)}: set models.embedder_runtime to 'torch'"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # no warnings about graph rewrites on stderr
        self.session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self.max_seq_length = int(
            _json(folder / "sentence_bert_config.json").get("max_seq_length", 512)
        )
        self.tokenizer = WordPieceTokenizer(folder, self.max_seq_length)
        self._dimension = int(
            pooling.get("word_embedding_dimension") or _json(folder / "config.json")["hidden_size"]
        )

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
            feed = self.tokenizer.batch([texts[i] for i in rows])
            hidden = self.session.run(None, feed)[0]
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            vectors[rows] = pooled / np.clip(
                np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None
            )
        return vectors[0] if single else vectors


def load_onnx_embedder(
    loaded: LoadedSettings, model_path: Path, source_model: Callable[[], Any]
) -> OnnxEmbedder:
    """The int8 ONNX twin of the sentence-transformers folder `model_path`, exported into the
    cache on first use from `source_model()` (the only time torch is needed)."""
    _require_onnx()
    name = f"{model_path.parent.name}-{model_path.name}-{_fingerprint(model_path)}.int8.onnx"
    target = cache_dir(loaded.settings) / "models" / name
    if not target.is_file():
        export_int8(source_model(), target)
    threads = loaded.settings.models.threads or os.cpu_count() or 1
    return OnnxEmbedder(model_path, target, threads)
