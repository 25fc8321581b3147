"""Structure-following chunking with exact character offsets.

Each section of a loaded document (a Markdown/HTML heading, a DOCX heading, a PDF page) is split
on its own with langchain's RecursiveCharacterTextSplitter, sized in the embedder's tokens, so a
chunk never straddles two sections or pages. `OffsetSplitter` runs the splitter's own algorithm
while keeping where each piece came from (searching for a piece's text picks the wrong copy of
repeated text), so `document.text[chunk.start:chunk.end] == chunk.text` and the chunks of a
section cover every non-blank character of it.

The embedder reads a "word" of more than 100 characters (a base64 blob, a line of one letter) as
a single unknown token; the chunker counts such a token as one per `MAX_CHARS_PER_TOKEN`
characters, so the splitter cuts the run and no chunk, and so no passage in a prompt, holds more
than `chunk_tokens * MAX_CHARS_PER_TOKEN` characters of it.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter
from langchain_text_splitters.character import _split_text_with_regex

from assistant.knowledge.loaders import LoadedDocument, Section

# Bumped whenever chunk boundaries, spans or embedding inputs change, so old indexes are
# rebuilt (`assistant setup` does it). 2: spans of repeated text point at the right copy.
CHUNKER_VERSION = 2
# Real text has 4-9 characters per embedder token (the shipped packs at most 8.3); the longest
# token of the embedder's vocabulary has 18 characters.
MAX_CHARS_PER_TOKEN = 16


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
    """Counts tokens the way the embedder does (no special tokens), except that an unknown
    token standing for a long run of text counts one per `MAX_CHARS_PER_TOKEN` characters. Uses
    the Rust tokenizer directly when there is one: the splitter calls this thousands of times
    per document, and the transformers wrapper costs four times as much per call."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(backend.to_str())  # a copy without padding/truncation
        backend.no_padding()
        backend.no_truncation()

        unknown = backend.token_to_id(str(getattr(tokenizer, "unk_token", "[UNK]")))

        def count(text: str) -> int:
            encoding = backend.encode(text, add_special_tokens=False)
            n = len(encoding.ids)
            if unknown is not None and unknown in encoding.ids:
                for token, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
                    if token == unknown:
                        n += (end - start - 1) // MAX_CHARS_PER_TOKEN
            return n

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
        self.splitter = OffsetSplitter(
            chunk_size=chunk_tokens, chunk_overlap=chunk_overlap, length_function=self.count_tokens
        )

    def chunk(self, doc: LoadedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in merge_heading_only(doc.text, doc.sections):
            span = doc.text[section.start : section.end]
            stripped = span.strip()
            if not stripped:
                continue
            if self.count_tokens(stripped) <= self.chunk_tokens:
                # The splitter would return it whole; skip its many calls.
                pieces = [(stripped, len(span) - len(span.lstrip()))]
            else:
                pieces = self.splitter.split_with_starts(span)
            for piece, where in pieces:
                start = section.start + where
                chunks.append(Chunk(piece, start, start + len(piece), section.title, section.page))
        return chunks


Piece = tuple[str, int]  # a piece of text and where it starts


class OffsetSplitter(RecursiveCharacterTextSplitter):
    """langchain's recursive splitter (`split_text` unchanged) plus `split_with_starts`: the
    same pieces, each with its start in the text. It repeats the algorithm of langchain-text-
    splitters 1.1 (`_split_text`, `_merge_splits` with the separators kept, so the splits tile
    the text) carrying offsets along; tests check that the pieces equal `split_text`'s."""

    def split_with_starts(self, text: str) -> list[Piece]:
        return self._split_at(text, 0, self._separators)

    def _split_at(self, text: str, offset: int, separators: list[str]) -> list[Piece]:
        separator, rest = separators[-1], []
        for i, candidate in enumerate(separators):
            if not candidate:
                separator = candidate
                break
            if re.search(re.escape(candidate), text):
                separator, rest = candidate, separators[i + 1 :]
                break
        splits = _split_text_with_regex(text, re.escape(separator), keep_separator=True)
        pieces: list[Piece] = []
        good: list[Piece] = []
        at = offset
        for split in splits:  # with the separators kept, the splits tile the text
            if self._length_function(split) < self._chunk_size:
                good.append((split, at))
            else:
                pieces += self._merge_at(good)
                good = []
                pieces += self._split_at(split, at, rest) if rest else [(split, at)]
            at += len(split)
        return pieces + self._merge_at(good)

    def _merge_at(self, splits: list[Piece]) -> list[Piece]:
        """Consecutive splits joined into pieces of at most chunk_size (the separator between
        them is empty), each next piece starting with the previous one's last splits that fit
        in chunk_overlap; blanks around a piece are stripped."""
        pieces: list[Piece] = []
        current: deque[Piece] = deque()
        total = 0
        for split, at in splits:
            size = self._length_function(split)
            if total + size > self._chunk_size and current:
                pieces += _joined(current)
                while total > self._chunk_overlap or (total + size > self._chunk_size and total):
                    total -= self._length_function(current.popleft()[0])
            current.append((split, at))
            total += size
        return pieces + _joined(current)


def _joined(splits: deque[Piece]) -> list[Piece]:
    """The splits as one stripped piece (none if blank)."""
    text = "".join(split for split, _ in splits)
    stripped = text.strip()
    if not stripped:
        return []
    return [(stripped, splits[0][1] + len(text) - len(text.lstrip()))]


def embedding_input(chunk_text: str, title: str, section: str | None) -> str:
    """What is embedded for a chunk: its text under a short header naming the document and
    section, since a chunk from the middle of a section no longer contains its heading."""
    header = title if not section or section == title else f"{title}: {section}"
    return f"{header}\n{chunk_text}"
