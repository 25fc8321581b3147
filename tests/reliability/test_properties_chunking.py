"""Property-based tests of the chunker (hypothesis, 1,000 generated documents per property, the
real embedder tokenizer): the pieces are langchain's own, every chunk maps back exactly
(`text[start:end] == chunk.text`), lies inside its section, chunks come in order, together they
cover every non-blank character of every section, and no chunk holds more non-blank characters
than `chunk_tokens` times the most characters one counted token stands for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from generated import property_settings
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.knowledge.chunking import MAX_CHARS_PER_TOKEN, Chunk, Chunker, merge_heading_only
from assistant.knowledge.loaders import LoadedDocument, Section, SkipFile, load_text

PROPERTY = property_settings(HealthCheck.data_too_large)

# Words that make repeats likely (the hard case for locating a piece), odd separators, long
# unsplittable runs (one unknown token to the embedder), and any Unicode text.
WORDS = st.sampled_from(["heron", "river", "the", "a", "Kayak", "[1]", "x" * 150, "é", "日本"])
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\n\n", "\t", " \n ", "\r\n", "\u00a0", ""])
LINES = st.lists(
    st.one_of(
        st.tuples(WORDS, SEPARATORS).map("".join),
        st.text(max_size=30),
        st.sampled_from(["# Title\n", "## Part\n", "```\n", "Source: x. License: y\n"]),
    ),
    max_size=30,
).map("".join)
# (chunk_tokens, chunk_overlap): the smallest size allowed, no overlap, the largest overlap.
SIZE_LIST = [(16, 0), (16, 1), (16, 7), (16, 15), (24, 4), (32, 0), (48, 12)]
SIZES = st.sampled_from(SIZE_LIST)


@pytest.fixture(scope="module")
def chunkers(settings: Any) -> dict[tuple[int, int], Chunker]:
    """A chunker per size over the embedder's own tokenizer (made once: each builds a copy of
    the Rust tokenizer)."""
    from transformers import AutoTokenizer

    from assistant.runtime.models import resolve_embedder_path

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_embedder_path(settings)))
    return {size: Chunker(tokenizer, *size) for size in SIZE_LIST}


@pytest.fixture(scope="module")
def chars_per_token(chunkers: dict[tuple[int, int], Chunker]) -> int:
    """The most characters one counted token stands for: the longest vocabulary entry, or a
    share of a run the embedder reads as one unknown token."""
    vocab = next(iter(chunkers.values())).tokenizer.get_vocab()
    return max(MAX_CHARS_PER_TOKEN, *(len(token.removeprefix("##")) for token in vocab))


def document(text: str, suffix: str) -> LoadedDocument:
    """The text loaded as a real .md or .txt file would be (sections from the loader)."""
    try:
        return load_text(Path(f"doc{suffix}"), text.encode("utf-8"))
    except SkipFile:  # blank, or NUL bytes: chunk the raw text as one section
        return LoadedDocument(text, "doc", [Section(0, len(text))], "text")


def check_chunks(doc: LoadedDocument, chunker: Chunker, chars_per_token: int) -> list[Chunk]:
    chunks = chunker.chunk(doc)
    sections = merge_heading_only(doc.text, doc.sections)
    covered = bytearray(len(doc.text))
    previous: dict[int, tuple[int, int]] = {}
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text
        assert len("".join(chunk.text.split())) <= chunker.chunk_tokens * chars_per_token
        owner = next(
            i
            for i, s in enumerate(sections)
            if s.start <= chunk.start and chunk.end <= s.end and s.title == chunk.section
        )
        last = previous.get(owner, (-1, -1))
        assert chunk.start >= last[0] and chunk.end > last[1], "chunks of a section in order"
        previous[owner] = (chunk.start, chunk.end)
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    for section in sections:
        for pos in range(section.start, section.end):
            if not doc.text[pos].isspace():
                assert covered[pos], f"character {pos} ({doc.text[pos]!r}) is in no chunk"
    return chunks


@PROPERTY
@given(text=LINES, suffix=st.sampled_from([".md", ".txt"]), size=SIZES)
def test_chunks_map_back_and_cover_the_text(
    chunkers: dict, chars_per_token: int, text: str, suffix: str, size: tuple[int, int]
) -> None:
    check_chunks(document(text, suffix), chunkers[size], chars_per_token)


@PROPERTY
@given(pages=st.lists(st.one_of(LINES, st.just("")), min_size=1, max_size=3), size=SIZES)
def test_pages_are_chunked_apart(
    chunkers: dict, chars_per_token: int, pages: list[str], size: tuple[int, int]
) -> None:
    """PDF-like documents: one section per non-blank page, each chunk on its own page."""
    parts, sections, pos = [], [], 0
    for number, page in enumerate(pages, start=1):
        if pos:
            parts.append("\n\n")
            pos += 2
        parts.append(page)
        if page.strip():
            sections.append(Section(pos, pos + len(page), None, number))
        pos += len(page)
    doc = LoadedDocument("".join(parts), "p", sections, "pdf")
    for chunk in check_chunks(doc, chunkers[size], chars_per_token):
        page = next(s for s in sections if s.page == chunk.page)
        assert page.start <= chunk.start and chunk.end <= page.end


@PROPERTY
@given(text=LINES, size=SIZES)
def test_pieces_are_langchains_own(chunkers: dict, text: str, size: tuple[int, int]) -> None:
    """The offset-keeping splitter returns exactly the pieces of langchain's splitter (so chunk
    boundaries, and the indexes built with them, are unchanged), each found at its start."""
    chunker = chunkers[size]
    reference = RecursiveCharacterTextSplitter(
        chunk_size=size[0], chunk_overlap=size[1], length_function=chunker.count_tokens
    )
    pieces = chunker.splitter.split_with_starts(text)
    assert [piece for piece, _ in pieces] == reference.split_text(text)
    for piece, start in pieces:
        assert text[start : start + len(piece)] == piece
