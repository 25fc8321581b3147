"""A pack's index opened with the pack's own chunking settings: the one place that joins
pack.toml's [retrieval] chunking to the knowledge layer."""

from __future__ import annotations

from typing import Any

from assistant.knowledge.index import KnowledgeIndex, open_index
from assistant.packs.locate import DomainPack
from assistant.settings import LoadedSettings


def open_pack_index(pack: DomainPack, loaded: LoadedSettings, **options: Any) -> KnowledgeIndex:
    """The pack's index, chunked as its pack.toml says (global settings when it has none);
    `options` go to `open_index` (e.g. a shared `embedder`)."""
    tokens = overlap = None
    if pack.pack_toml.is_file():
        from assistant.packs.format import load_pack_config

        retrieval = load_pack_config(pack, loaded).retrieval
        tokens, overlap = retrieval.chunk_tokens, retrieval.chunk_overlap
    return open_index(pack, loaded, chunk_tokens=tokens, chunk_overlap=overlap, **options)
