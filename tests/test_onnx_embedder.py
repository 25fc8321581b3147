"""The ONNX Runtime int8 embedder (`models.embedder_runtime = "onnx_int8"`, the default): its
vectors stand in for the sentence-transformers model's, an index built with it finds the same
documents, an index built by the other runtime is refused until rebuilt, and a missing runtime
is one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from index_helpers import make_pack
from settings_helpers import with_models

from assistant.errors import AssistantError
from assistant.evaluation.run import load_cases
from assistant.knowledge.index import open_index
from assistant.packs.locate import find_pack
from assistant.settings import LoadedSettings


def _onnx(settings: LoadedSettings) -> LoadedSettings:
    return with_models(settings, embedder_runtime="onnx_int8")


def _torch(settings: LoadedSettings) -> LoadedSettings:
    return with_models(settings, embedder_runtime="torch")


@pytest.fixture(scope="module")
def sentence_transformer(settings):
    from assistant.runtime.models import load_embedder

    return load_embedder(_torch(settings))


@pytest.fixture(scope="module")
def onnx_embedder(settings):
    from assistant.runtime.models import load_embedder

    return load_embedder(_onnx(settings))


def test_vectors_stand_in_for_the_float32_model(onnx_embedder, sentence_transformer) -> None:
    texts = [c.question for c in load_cases(find_pack("diabetes").eval_file)[0][:16]]
    ours = onnx_embedder.encode(texts, batch_size=5, normalize_embeddings=True)
    theirs = sentence_transformer.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == theirs.shape
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert (ours * theirs).sum(axis=1).min() > 0.97
    # each question is still closest to itself among the others
    assert (np.argmax(ours @ theirs.T, axis=1) == np.arange(len(texts))).all()


def test_an_index_built_with_it_finds_the_source_documents(settings, onnx_embedder) -> None:
    source = find_pack("penguin-wood")
    pack = make_pack("penguin-copy")
    shutil.rmtree(pack.docs_dir)
    shutil.copytree(source.docs_dir, pack.docs_dir)
    index = open_index(pack, _onnx(settings), embedder=onnx_embedder)
    index.rebuild()
    cases = [c for c in load_cases(source.eval_file)[0] if not c.out_of_scope and c.source]
    found = [any(h.path == c.source for h in index.search(c.question, k=5)) for c in cases]
    assert sum(found) / len(found) >= 0.95  # the float32 index finds all of them (RESULTS.md)

    torch_index = open_index(pack, _torch(settings))
    with pytest.raises(AssistantError, match=r"embedder 'all-minilm-l6-v2\+onnx_int8'.*rebuild"):
        torch_index.search("kiln")


def test_without_onnx_runtime_it_is_one_line_naming_the_package(settings, monkeypatch) -> None:
    from assistant.runtime import models

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr(models, "_cache", {k: v for k, v in models._cache.items()
                                           if k[0] != "embedder-onnx-int8"})  # fmt: skip
    with pytest.raises(AssistantError, match=r"pip install onnxruntime") as raised:
        models.load_embedder(_onnx(settings))
    assert "\n" not in str(raised.value)


def test_export_leaves_the_root_logger_as_it_was(settings, tmp_path):
    """onnxruntime's quantizer calls logging.basicConfig on import: without the restore, every
    library's debug lines (bm25s building an index) reached the terminal after a first setup.
    In a fresh process, because pytest's own root handlers make basicConfig a no-op here."""
    script = f"""
import logging
from assistant.runtime.models import load_embedder
from assistant.runtime.onnx_embedder import export_int8
from assistant.settings import load_settings
from settings_helpers import with_models
model = load_embedder(with_models(load_settings(), embedder_runtime="torch"))
export_int8(model, __import__("pathlib").Path({str(tmp_path / "e.int8.onnx")!r}))
import bm25s  # sets its own logger to DEBUG
logging.getLogger("bm25s").debug("Building index from tokens")
"""
    tests = str(Path(__file__).parent)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": tests}, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "e.int8.onnx").is_file()
    assert "Building index" not in run.stderr
