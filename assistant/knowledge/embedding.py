"""The embedder an index turns texts into vectors with: loaded on first use (a removal or a BM25
search never loads it), always giving normalised float32 rows, so the inner product of the FAISS
index is the cosine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assistant.settings import LoadedSettings


class Embedding:
    """The shared embedder of the settings, or the one given (tests, benchmarks, the router's
    cache of recent questions)."""

    def __init__(self, loaded: LoadedSettings, model: Any = None) -> None:
        self.loaded = loaded
        self._model = model

    @property
    def model(self) -> Any:
        if self._model is None:
            from assistant.runtime.models import load_embedder

            self._model = load_embedder(self.loaded)
        return self._model

    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(getter())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised float32 row per text."""
        vectors = self.model.encode(
            list(texts),
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def query_vector(self, query: str) -> np.ndarray:
        """The normalised vector of a question, as dense and hybrid search use it."""
        return self.embed([query])[0]


def query_matrix(vector: Any, dimension: int) -> np.ndarray:
    """A precomputed query vector as the (1, dimension) float32 array FAISS searches with;
    ValueError when it has another dimension than the index."""
    matrix = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
    if matrix.shape[1] != dimension:
        raise ValueError(
            f"the query vector has {matrix.shape[1]} dimensions, the index {dimension}"
        )
    return matrix
