"""Clause-level retrieval: when a question names one document ("... the Promotion Agreement
between Go Call, Inc and PageMaster Corporation ..."), find that document, then search inside
it for what is asked, with the naming words left out of the query.

Without this, the naming words dominate both rankings: the contract's title-and-parties header
and its preamble (which repeat the names) fill the passages, and the clause that answers is
not among them. A word names a document when it is in that document's head (its title and
first lines) and in few other documents' heads; a question names the document when at least
one of its words is in that head alone.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from assistant.knowledge.retrieval import RRF_K
from assistant.text import terms

HEAD_CHARS = 400  # a document's head: its title and first characters (a contract's parties)
# A naming word may be in this many documents' heads ("joint venture" names several).
NAMING_DOCUMENTS = 3
# Chunks searched before keeping those of the named document.
FOCUS_CANDIDATES = 200


@dataclass
class DocumentHeads:
    """The head words of every document of an index, and in how many heads each occurs."""

    heads: dict[str, set[str]]
    frequency: Counter[str]

    @classmethod
    def read(cls, index: Any) -> DocumentHeads:
        heads = {}
        for record in index.documents():
            head = f"{record.title} {record.path} {index.document_text(record.path)[:HEAD_CHARS]}"
            heads[record.path] = terms(re.sub(r"[_\-/.]", " ", head))
        return cls(heads, Counter(word for words in heads.values() for word in words))

    def naming_words(self, question: str, path: str) -> set[str]:
        """The question's words that name the document at `path` (empty: it names none)."""
        head = self.heads.get(path, set())
        asked = terms(question) & head
        if not any(self.frequency[word] == 1 for word in asked):
            return set()
        return {word for word in asked if self.frequency[word] <= NAMING_DOCUMENTS}


def without_words(question: str, words: set[str]) -> str:
    """The question with the words whose term is in `words` taken out."""
    kept = [w for w in question.split() if not (terms(w) and terms(w) <= words)]
    return " ".join(kept)


def focused_hits(index: Any, heads: DocumentHeads, question: str, hits: list[Any], k: int) -> list:
    """`hits` (the question's own top k), or, when the question names the document of the
    best hit, the k best chunks of that document for what is asked, its head chunk (offset 0)
    at most once."""
    if not hits:
        return hits
    path = hits[0].path
    naming = heads.naming_words(question, path)
    asked = without_words(question, naming)
    if not naming or not terms(asked):
        return hits
    # Both rankings inside the document, fused: what is asked (naming words left out) finds
    # the clause, the whole question keeps the words that were both name and topic.
    rankings = [
        [h for h in index.search(query, k=FOCUS_CANDIDATES) if h.path == path]
        for query in (asked, question)
    ]
    fused: dict[int, float] = {}
    by_id: dict[int, Any] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            by_id.setdefault(hit.chunk_id, hit)
    chosen = [by_id[i] for i in sorted(fused, key=lambda i: -fused[i])]
    head = [h for h in chosen if h.start == 0][:1]
    body = [h for h in chosen if h.start != 0]
    return (body[: k - 1] + head + body[k - 1 :])[:k] if head else body[:k]
