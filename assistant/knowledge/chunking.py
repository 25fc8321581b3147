"""Structure-following chunking with exact character offsets.

Each section of a loaded document (a Markdown/HTML heading, a DOCX heading, a PDF page) is split
on its own with langchain's RecursiveCharacterTextSplitter, sized in the embedder's tokens, so a
chunk never straddles two sections or pages. The splitter returns substrings of the section; each
is located in the document text, so `document.text[chunk.start:chunk.end] == chunk.text`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.knowledge.loaders import LoadedDocument, Section

# Bumped whenever chunk boundaries or embedding inputs change, so old indexes are rebuilt.
CHUNKER_VERSION = 1


@dataclass(frozen=True)
class Chunk:
    """One piece of a document: its text and where it sits."""

    text: str
    start: int
    end: int
    section: str | None
    page: int | None


def merge_heading_only(text: str, sections: list[Section]) -> list[Section]:
    """A heading followed directly by another heading is folded into the next section, so it
    does not become a chunk of its own; the more specific (later) title wins."""
    merged: list[Section] = []
    pending_start: int | None = None
    for section in sections:
        body = text[section.start : section.end]
        first, _, rest = body.partition("\n")
        heading_only = section.title is not None and not rest.strip() and section.page is None
        if heading_only and section is not sections[-1]:
            pending_start = section.start if pending_start is None else pending_start
            continue
        if pending_start is not None:
            section = Section(pending_start, section.end, section.title, section.page)
            pending_start = None
        merged.append(section)
    return merged


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    """Counts tokens the way the embedder does (no special tokens). Uses the Rust tokenizer
    directly when there is one: the splitter calls this thousands of times per document, and
    the transformers wrapper costs four times as much per call."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(backend.to_str())  # a copy without padding/truncation
        backend.no_padding()
        backend.no_truncation()

        def count(text: str) -> int:
            return len(backend.encode(text, add_special_tokens=False).ids)

    else:

        def count(text: str) -> int:
            return len(tokenizer.tokenize(text))

    return functools.lru_cache(maxsize=16384)(count)


class Chunker:
    """Splits documents into chunks of at most `chunk_tokens` embedder tokens."""

    def __init__(self, tokenizer: Any, chunk_tokens: int, chunk_overlap: int) -> None:
        if chunk_overlap >= chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.count_tokens = token_counter(tokenizer)
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_tokens, chunk_overlap=chunk_overlap, length_function=self.count_tokens
        )

    def chunk(self, doc: LoadedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in merge_heading_only(doc.text, doc.sections):
            span = doc.text[section.start : section.end]
            cursor = 0
            stripped = span.strip()
            if self.count_tokens(stripped) <= self.chunk_tokens:
                pieces = [stripped]  # the splitter would return it whole; skip its many calls
            else:
                pieces = self.splitter.split_text(span)
            for piece in pieces:
                if not piece.strip():
                    continue
                # Pieces come in order and each starts after the previous one's start; the
                # first occurrence from there is the piece (or an identical copy of it).
                where = span.find(piece, cursor)
                if where < 0:
                    where = span.find(piece)
                if where < 0:  # pragma: no cover - the splitter only returns substrings
                    raise AssertionError("text splitter returned text not in the document")
                start = section.start + where
                chunks.append(Chunk(piece, start, start + len(piece), section.title, section.page))
                cursor = where + 1
        return chunks


def embedding_input(chunk_text: str, title: str, section: str | None) -> str:
    """What is embedded for a chunk: its text under a short header naming the document and
    section, since a chunk from the middle of a section no longer contains its heading."""
    header = title if not section or section == title else f"{title}: {section}"
    return f"{header}\n{chunk_text}"
