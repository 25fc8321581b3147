"""Where a pack's dense vectors live, behind one protocol (base.py), one module per store:

- "faiss" (faiss_store.py, the default): a vectors.faiss file in each generation's folder;
- "milvus" (milvus_store.py): a Milvus collection per generation, in a local milvus-lite file
  or on a Milvus server.

A pack's pack.toml ([retrieval] store) picks the store new generations are written to, once,
through `STORES`; a published generation is read from the store its manifest names, so an index
always opens as it was written, and `assistant index migrate` is a write whose base generation
lives in the other store. The docstore and BM25 stay in the generation folder for every store.
"""

from __future__ import annotations

from typing import Any

from assistant.knowledge.vectors.base import (
    StorePlace,
    StoreSettings,
    Vectors,
    VectorsBuilder,
    VectorStore,
)
from assistant.knowledge.vectors.faiss_store import FaissStore
from assistant.knowledge.vectors.milvus_store import MilvusStore

STORES: dict[str, type[FaissStore] | type[MilvusStore]] = {
    "faiss": FaissStore,
    "milvus": MilvusStore,
}

__all__ = [
    "STORES",
    "StorePlace",
    "StoreSettings",
    "VectorStore",
    "Vectors",
    "VectorsBuilder",
    "open_store",
    "recorded_store",
]


def open_store(place: StorePlace, name: str | None = None) -> VectorStore:
    """The store `name` (default: the one the pack's settings name) for the pack at `place`."""
    return STORES[name or place.settings.name](place)


def recorded_store(manifest: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The store a generation's manifest says holds its vectors, and its record; manifests
    written before stores existed hold FAISS vectors."""
    record = manifest.get("vectors") or {"store": "faiss"}
    name = record.get("store") if isinstance(record, dict) else None
    if name not in STORES:
        raise ValueError(f"names an unknown vector store {name!r}")
    return str(name), record
