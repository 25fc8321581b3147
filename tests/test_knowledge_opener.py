"""The one index opener: every caller gets the pack's own chunking from pack.toml."""

from __future__ import annotations

import pytest
from index_helpers import FIXTURES

from assistant.knowledge import KnowledgeIndex, index_stats, open_index
from assistant.knowledge.types import IndexStats
from assistant.packs.locate import DomainPack
from assistant.packs.scaffold import create_pack


def chunked_pack(tokens: int = 120, overlap: int = 20) -> DomainPack:
    """A user pack whose pack.toml sets its own chunking, unlike the global 200/30."""
    pack = create_pack("kb-chunks").pack
    text = pack.pack_toml.read_text("utf-8")
    chunking = f"[retrieval]\nchunk_tokens = {tokens}\nchunk_overlap = {overlap}\n"
    pack.pack_toml.write_text(text.replace("[retrieval]\n", chunking, 1), "utf-8")
    return pack


def test_the_index_is_built_with_the_packs_chunking(settings, embedder) -> None:
    assert settings.settings.retrieval.chunk_tokens != 120
    pack = chunked_pack()
    open_index(pack, settings, embedder=embedder).add_docs([FIXTURES / "notes.txt"])
    stats = open_index(pack, settings).stats()
    assert (stats.chunk_tokens, stats.chunk_overlap, stats.problem) == (120, 20, None)


def test_pack_info_reads_the_index_with_the_packs_chunking(
    settings, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`assistant pack list/show` opened the index with the global chunking: a pack chunked its
    own way looked built with the wrong settings."""
    pack = chunked_pack()
    built = open_index(pack, settings, embedder=embedder, chunk_tokens=120, chunk_overlap=20)
    built.add_docs([FIXTURES / "notes.txt"])
    seen: list[IndexStats] = []
    real_stats = KnowledgeIndex.stats

    def spy(index: KnowledgeIndex) -> IndexStats:
        seen.append(real_stats(index))
        return seen[-1]

    monkeypatch.setattr(KnowledgeIndex, "stats", spy)
    assert index_stats(pack, settings) == {"documents": 1, "chunks": seen[0].chunks}
    assert seen[0].problem is None


def test_explicit_chunking_overrides_the_pack(settings) -> None:
    pack = chunked_pack()
    index = open_index(pack, settings, chunk_tokens=300, chunk_overlap=0)
    assert (index.chunk_tokens, index.chunk_overlap) == (300, 0)
    default = open_index(pack, settings)
    assert (default.chunk_tokens, default.chunk_overlap) == (120, 20)
