"""Chunking: structure-following sections, token sizes, overlap and exact offsets."""

from __future__ import annotations

from pathlib import Path

from index_helpers import DIABETES, FIXTURES, write_docx, write_pdf

from assistant.knowledge.chunking import Chunker, embedding_input
from assistant.knowledge.loaders import load_document


def tokens(embedder, text: str) -> int:
    return len(embedder.tokenizer.tokenize(text))


def test_offsets_are_exact_for_every_type(embedder, tmp_path: Path) -> None:
    chunker = Chunker(embedder.tokenizer, 40, 8)
    files = [
        FIXTURES / "guide" / "penguins.md",
        FIXTURES / "guide" / "page.html",
        FIXTURES / "notes.txt",
        write_pdf(tmp_path / "p.pdf", ["Page one about insulin.", "Page two about glucagon."]),
        write_docx(tmp_path / "d.docx"),
        *sorted((DIABETES / "docs").glob("*.md"))[:5],
    ]
    for path in files:
        doc = load_document(path)
        chunks = chunker.chunk(doc)
        assert chunks, path
        for chunk in chunks:
            assert doc.text[chunk.start : chunk.end] == chunk.text
            assert tokens(embedder, chunk.text) <= 40


def test_sections_pages_and_source_line(embedder, tmp_path: Path) -> None:
    chunker = Chunker(embedder.tokenizer, 200, 30)
    md = chunker.chunk(load_document(FIXTURES / "guide" / "penguins.md"))
    assert [c.section for c in md] == ["Penguin Care", "Feeding", "Housing"]
    assert all("Source:" not in c.text for c in md)
    pdf = chunker.chunk(load_document(write_pdf(tmp_path / "p.pdf", ["one here", "two here"])))
    assert [(c.page, c.text) for c in pdf] == [(1, "one here"), (2, "two here")]


def test_long_section_splits_with_overlap(embedder) -> None:
    doc = load_document(DIABETES / "docs" / "gard_brittle-diabetes.md")
    chunks = Chunker(embedder.tokenizer, 50, 20).chunk(doc)
    same_section = [
        (a, b) for a, b in zip(chunks, chunks[1:], strict=False) if a.section == b.section
    ]
    assert same_section
    # consecutive pieces of one section share text: the overlap
    assert any(b.start < a.end for a, b in same_section)
    assert all(b.start > a.start for a, b in same_section)


def test_heading_only_sections_fold_into_the_next(embedder) -> None:
    doc = load_document(DIABETES / "docs" / "gard_brittle-diabetes.md")
    chunks = Chunker(embedder.tokenizer, 200, 30).chunk(doc)
    assert chunks[0].section == "What is Brittle diabetes?"
    assert chunks[0].text.startswith("# Brittle diabetes")


def test_embedding_input_names_document_and_section() -> None:
    assert embedding_input("body", "Doc", "Part") == "Doc: Part\nbody"
    assert embedding_input("body", "Doc", None) == "Doc\nbody"
