"""Lexical search (BM25 via bm25s) and reciprocal rank fusion with the dense ranking."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.text import bm25_tokenize

RRF_K = 60
IDS_FILE = "chunk_ids.npy"
EMPTY_MARKER = "empty.json"
# numpy parses each .npy header with ast.literal_eval, and CPython 3.11 (3.11.7 here) can fail
# two threads that parse at once ("SystemError: AST constructor recursion depth mismatch",
# see CPython gh-106905): a reader opening an index while `add-docs` reopens it hit this in CI.
_NPY_LOAD_LOCK = threading.Lock()


class BM25Index:
    """A bm25s index over chunk texts; position i holds chunk id `ids[i]`."""

    def __init__(self, model: object | None, ids: np.ndarray) -> None:
        self.model = model
        self.ids = ids

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> BM25Index:
        import bm25s

        id_array = np.asarray(ids, dtype=np.int64)
        if not len(id_array):
            return cls(None, id_array)
        model = bm25s.BM25()
        model.index(bm25_tokenize(texts), show_progress=False)
        return cls(model, id_array)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / IDS_FILE, self.ids, allow_pickle=False)
        if self.model is None:
            (folder / EMPTY_MARKER).write_text(json.dumps({"empty": True}))
        else:
            self.model.save(str(folder), show_progress=False)  # type: ignore[attr-defined]

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        import bm25s

        with _NPY_LOAD_LOCK:
            ids = np.load(folder / IDS_FILE, allow_pickle=False)
            if (folder / EMPTY_MARKER).exists():
                return cls(None, ids)
            return cls(bm25s.BM25.load(str(folder), allow_pickle=False), ids)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every chunk, in position order."""
        if self.model is None:
            return np.zeros(0, dtype=np.float32)
        tokens = bm25_tokenize([query])[0]
        vocab = self.model.vocab_dict  # type: ignore[attr-defined]
        tokens = [t for t in tokens if t in vocab]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return self.model.get_scores(tokens)  # type: ignore[attr-defined]

    def top(self, scores: np.ndarray, n: int) -> list[tuple[int, float]]:
        """The `n` best (chunk id, score) pairs with a positive score, best first."""
        if not len(scores):
            return []
        n = min(n, len(scores))
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in best if scores[i] > 0]


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: each ranking adds 1 / (k + rank) for every id it holds."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return fused
