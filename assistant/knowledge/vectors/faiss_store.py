"""The default store: each generation's vectors in its own folder, as vectors.faiss, an
IndexIDMap2(IndexFlatIP) of normalised vectors whose ids are the chunk ids.

The file is part of the generation, so the generation folder's rename and CURRENT's switch
(store.py) publish it; there is nothing to sweep beyond the folders.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.knowledge.vectors.base import (
    COPY_BATCH,
    StorePlace,
    Vectors,
    check_count,
)

VECTORS = "vectors.faiss"


class FaissVectors:
    """A FAISS index in memory."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.dimension = int(index.d)

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        scores, ids = self.index.search(query, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dimension), np.float32)
        return np.stack([self.index.reconstruct(int(i)) for i in ids])

    def batches(self, size: int = COPY_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import faiss

        ids = faiss.vector_to_array(self.index.id_map)
        flat = self.index.index  # row n of the inner index is chunk ids[n]
        for start in range(0, len(ids), size):
            stop = min(start + size, len(ids))
            yield ids[start:stop], flat.reconstruct_n(start, stop - start)


class FaissBuilder:
    def __init__(self, dimension: int, base: Vectors | None, drop: Sequence[int]) -> None:
        import faiss

        if isinstance(base, FaissVectors):
            index = faiss.clone_index(base.index)
            if len(drop):
                index.remove_ids(np.asarray(drop, dtype=np.int64))
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
            if base is not None:  # a migration from another store
                dropped = np.asarray(drop, dtype=np.int64)
                for ids, vectors in base.batches():
                    keep = ~np.isin(ids, dropped)
                    index.add_with_ids(np.ascontiguousarray(vectors[keep]), ids[keep])
        self.vectors = FaissVectors(index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.vectors.index.add_with_ids(vectors, ids)

    def save(self, folder: Path) -> dict[str, Any]:
        import faiss

        # Serialized in memory and written by Python: faiss.write_index only prints a warning
        # when closing the file fails (a full disk), leaving a truncated file behind.
        (folder / VECTORS).write_bytes(faiss.serialize_index(self.vectors.index).tobytes())
        return {"store": "faiss", "file": VECTORS}

    def opened(self) -> FaissVectors:
        return self.vectors

    def discard(self) -> None:
        """Nothing outside the generation's folder, which the writer removes."""


class FaissStore:
    name = "faiss"

    def __init__(self, place: StorePlace) -> None:
        self.place = place

    def builder(
        self, generation: str, dimension: int, base: Vectors | None, drop: Sequence[int]
    ) -> FaissBuilder:
        return FaissBuilder(dimension, base, drop)

    def load(
        self, generation: Path, record: dict[str, Any], manifest: dict[str, Any]
    ) -> FaissVectors:
        import faiss

        path = generation / VECTORS
        index = faiss.read_index(str(path))
        check_count("the file", int(index.d), int(index.ntotal), manifest)
        return FaissVectors(index)

    def sweep(self, keep: set[str]) -> None:
        """The vectors went with their generation's folder."""

    def source(self, generation: Path) -> Path:
        return generation / VECTORS
