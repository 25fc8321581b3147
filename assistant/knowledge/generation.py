"""Open one generation of an index for reading: its manifest checked against the settings, its
files against the checksums the manifest recorded, then the vectors, the BM25 index and the
docstore loaded. See store.py for what a generation holds."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.knowledge import store
from assistant.knowledge.config import IndexConfig
from assistant.knowledge.retrieval import BM25Index


@dataclass
class LoadedGeneration:
    """A generation ready to search: its folder, manifest, docstore, vectors and BM25 index."""

    generation: Path
    manifest: dict[str, Any]
    db: sqlite3.Connection
    vectors: Any
    bm25: BM25Index


class Unreadable(Exception):
    """A file of a generation that cannot be used: its path and why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason


def load_generation(generation: Path, config: IndexConfig) -> LoadedGeneration:
    """Read and check one generation. Unreadable names the file that failed; an index built with
    other settings is `config.mismatch`."""
    path = generation / store.MANIFEST
    try:
        manifest = store.read_manifest(generation)
        problem = config.problem(manifest)
        if problem:
            raise config.mismatch(problem, generation)
        damage = store.verify_generation(generation, manifest)
        if damage:
            raise Unreadable(*damage)
        path = generation / store.VECTORS
        vectors = _read_vectors(path, manifest)
        path = generation / store.BM25_DIR
        bm25 = BM25Index.load(path)
        path = generation / store.DOCSTORE
        db = store.connect_readonly(generation)
        store.count_chunks(db)
    except (OSError, RuntimeError, ValueError, KeyError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise Unreadable(path, f"cannot be read ({' '.join(reason.split())})") from None
    return LoadedGeneration(generation, manifest, db, vectors, bm25)


def _read_vectors(path: Path, manifest: dict[str, Any]) -> Any:
    """The FAISS index, which must hold as many vectors of the dimension as the manifest says."""
    import faiss

    vectors = faiss.read_index(str(path))
    dimension, chunks = manifest["embedder"].get("dimension"), manifest.get("chunks")
    if (vectors.d, vectors.ntotal) != (dimension, chunks):
        raise Unreadable(
            path,
            f"holds {vectors.ntotal} vectors of {vectors.d} dimensions, the"
            f" manifest says {chunks} of {dimension}",
        )
    return vectors
