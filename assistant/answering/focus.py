"""Clause-level retrieval: when a question names one document ("... the Promotion Agreement
between Go Call, Inc and PageMaster Corporation ..."), find that document, then search inside
it for what is asked, with the naming words left out of the query.

Without this, the naming words dominate both rankings: the contract's title-and-parties header
and its preamble (which repeat the names) fill the passages, and the clause that answers is
not among them. A question names a document when one of its capitalised words (a name, not
the question's first word) is in that document's head (its title and first lines) alone; the
naming words are then all the question's words in that head.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from assistant.knowledge.retrieval import RRF_K
from assistant.text import terms

# A document's head: its title and first characters (past a first line naming the source and
# licence, a contract's title-and-parties line).
HEAD_CHARS = 1000
# How much the whole question's ranking counts next to what is asked.
QUESTION_WEIGHT = 0.5
# Chunks of the named document ranked by each query before fusing.
FOCUS_CANDIDATES = 50


# A name as a question writes it: a capitalised word after the first ("Go Call", "KIROMIC").
_CAPITALISED = re.compile(r"(?<=\s)[A-Z][\w&'.-]*")


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
        names = terms(" ".join(_CAPITALISED.findall(question)))
        if not any(self.frequency[word] == 1 for word in asked & names):
            return set()
        return asked


def without_words(question: str, words: set[str]) -> str:
    """The question with the words whose term is in `words` taken out."""
    kept = [w for w in question.split() if not (terms(w) and terms(w) <= words)]
    return " ".join(kept)


def focused_hits(
    index: Any,
    heads: DocumentHeads,
    question: str,
    hits: list[Any],
    k: int,
    question_vector: Any = None,
) -> list:
    """`hits` (the question's own top k), or, when the question names the document of the
    best hit, the k best chunks of that document for what is asked, a chunk of its head at
    most once. `question_vector`: the question already embedded (it is not embedded again)."""
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
        index.search_document(asked, path, k=FOCUS_CANDIDATES),
        index.search_document(question, path, k=FOCUS_CANDIDATES, query_vector=question_vector),
    ]
    fused: dict[int, float] = {}
    by_id: dict[int, Any] = {}
    for ranking, weight in zip(rankings, (1.0, QUESTION_WEIGHT), strict=True):
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight / (RRF_K + rank)
            by_id.setdefault(hit.chunk_id, hit)
    chosen = [by_id[i] for i in sorted(fused, key=lambda i: -fused[i])]
    head = [h for h in chosen if h.start < HEAD_CHARS][:1]
    body = [h for h in chosen if h.start >= HEAD_CHARS]
    return (body[: k - 1] + head + body[k - 1 :])[:k] if head else body[:k]
