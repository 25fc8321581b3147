"""The one protocol every vector store implements, and the settings a pack gives it.

A store holds the dense vectors of index generations (store.py describes generations). Per
generation it gives:

- a `Vectors` to read (search, fetch some vectors, iterate over all of them);
- a `VectorsBuilder` to write the next one: it starts as a copy of a base generation's vectors
  (from any store, so a migration is a build whose base lives in the other store) minus the
  dropped ids, takes new vectors, and `save`s them, returning the record the manifest keeps.

Nothing a builder writes is live until CURRENT names its generation; `sweep` removes what no
kept generation records, and `discard` what a failed write made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

COPY_BATCH = 4096  # vectors per batch when one generation's vectors are copied into the next


@dataclass(frozen=True)
class StoreSettings:
    """Where a pack's vectors go: the store's name and, for Milvus, the server or file, the
    environment variable holding its token and the collections' name prefix."""

    name: str = "faiss"
    milvus_uri: str = ""
    milvus_token_env: str = ""
    milvus_collection: str = ""


@dataclass(frozen=True)
class StorePlace:
    """One pack's store: its settings, the pack's name and its index folder."""

    settings: StoreSettings
    pack: str
    index_dir: Path


class Vectors(Protocol):
    """The vectors of one published generation; thread-safe reads."""

    dimension: int
    count: int

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The `k` (chunk id, inner product) nearest the (1, dimension) query, best first."""
        ...

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The vectors of chunks `ids`, one row each in that order."""
        ...

    def batches(self, size: int = COPY_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every (ids, vectors) of the generation, in batches of at most `size`."""
        ...


class VectorsBuilder(Protocol):
    """The vectors of the generation being written."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def save(self, folder: Path) -> dict[str, Any]:
        """Make the vectors durable (files go in the generation's `folder`); the record of where
        they are, for the manifest's "vectors"."""
        ...

    def opened(self) -> Vectors:
        """The saved vectors, ready to search without reading them back."""
        ...

    def discard(self) -> None:
        """Throw away what was written (the generation was not published)."""
        ...


class VectorStore(Protocol):
    """One kind of store for one pack."""

    name: str

    def builder(
        self, generation: str, dimension: int, base: Vectors | None, drop: Sequence[int]
    ) -> VectorsBuilder:
        """Start generation `generation`'s vectors: `base`'s without the ids `drop`."""
        ...

    def load(self, generation: Path, record: dict[str, Any], manifest: dict[str, Any]) -> Vectors:
        """A published generation's vectors as its manifest `record` names them; raises
        ValueError (or OSError) when they are missing or not what the manifest says."""
        ...

    def sweep(self, keep: set[str]) -> None:
        """Remove what generations other than `keep` (folder names) left in the store."""
        ...

    def source(self, generation: Path) -> Path | None:
        """The file of `generation` to name when its vectors cannot be read (None: the
        manifest, which says where they are)."""
        ...


def check_count(where: str, dimension: int, count: int, manifest: dict[str, Any]) -> None:
    """ValueError unless the vectors found match the manifest's dimension and chunk count."""
    expected = (manifest["embedder"].get("dimension"), manifest.get("chunks"))
    if (dimension, count) != expected:
        raise ValueError(
            f"{where} holds {count} vectors of {dimension} dimensions, the manifest says"
            f" {expected[1]} of {expected[0]}"
        )
