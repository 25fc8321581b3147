"""Routing: which pack answers a question, or none.

Every pack is scored by its best dense passage, the question's similarity to the pack's
description, and a penalty when the question's words are missing from its best BM25 passages;
below every pack's `route_threshold` the router declines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.packs.format import PackConfig
from assistant.packs.locate import DomainPack
from assistant.text import terms

DESCRIPTION_WEIGHT = 0.25  # how much the pack description counts next to the best passage
# How much is taken off a pack's score when the question's words are missing from its best
# BM25 passages: an everyday question ("How do I knit a scarf?") can sit close to a pack in
# embedding space while sharing none of its words; in-pack questions nearly always share most.
LEXICAL_WEIGHT = 0.2
LEXICAL_PASSAGES = 3


@dataclass
class PackHandle:
    """A pack opened for answering: its settings, its index and its description's vector."""

    pack: DomainPack
    config: PackConfig
    index: Any
    description_vector: Any = None
    _heads: tuple[Any, Any] | None = None  # (index generation, its DocumentHeads)

    def document_heads(self) -> Any:
        """The head words of the index's documents (`answering.focus`), read once per index
        generation."""
        from assistant.answering.focus import DocumentHeads

        generation = self.index.reader.current().generation
        if self._heads is None or self._heads[0] != generation:
            self._heads = (generation, DocumentHeads.read(self.index))
        return self._heads[1]


@dataclass
class RouteDecision:
    pack: str | None
    scores: dict[str, float]
    reason: str | None = None


def pack_score(handle: PackHandle, question: str, question_vector: Any) -> float:
    """How well the pack covers the question (higher is better)."""
    hits = handle.index.dense_search(question, k=1, query_vector=question_vector)
    best = hits[0].dense_score if hits else 0.0
    score = best + DESCRIPTION_WEIGHT * float(handle.description_vector @ question_vector)
    words = terms(question)
    if words:
        found = set().union(
            *(terms(x.text) for x in handle.index.bm25_search(question, k=LEXICAL_PASSAGES))
        )
        score -= LEXICAL_WEIGHT * (1 - len(words & found) / len(words))
    return score


def decide(handles: list[PackHandle], question: str, question_vector: Any) -> RouteDecision:
    """The pack whose score clears its own threshold by the most, or a decline."""
    scores: dict[str, float] = {}
    margins: dict[str, float] = {}
    for handle in handles:
        score = pack_score(handle, question, question_vector)
        scores[handle.pack.name] = round(score, 4)
        margins[handle.pack.name] = score - handle.config.retrieval.route_threshold
    best_pack = max(margins, key=lambda name: margins[name])
    if margins[best_pack] < 0:
        return RouteDecision(None, scores, "no pack covers this question")
    return RouteDecision(best_pack, scores)
