"""Open one generation of an index for reading: its manifest checked against the settings, its
files against the checksums the manifest recorded, then the vectors (from the store the manifest
names, vectors/), the BM25 index and the docstore loaded. See store.py for what a generation
holds."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.knowledge import store
from assistant.knowledge.config import IndexConfig
from assistant.knowledge.retrieval import BM25Index
from assistant.knowledge.vectors import Vectors, open_store, recorded_store


@dataclass
class LoadedGeneration:
    """A generation ready to search: its folder, manifest, docstore, vectors and BM25 index."""

    generation: Path
    manifest: dict[str, Any]
    db: sqlite3.Connection
    vectors: Vectors
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
        name, record = recorded_store(manifest)
        vector_store = open_store(config.place, name)
        path = vector_store.source(generation) or generation / store.MANIFEST
        vectors = vector_store.load(generation, record, manifest)
        path = generation / store.BM25_DIR
        bm25 = BM25Index.load(path)
        path = generation / store.DOCSTORE
        db = store.connect_readonly(generation)
        store.count_chunks(db)
    except (OSError, RuntimeError, ValueError, KeyError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise Unreadable(path, f"cannot be read ({' '.join(reason.split())})") from None
    return LoadedGeneration(generation, manifest, db, vectors, bm25)
