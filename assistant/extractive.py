"""Extractive answers: the passage sentences that best answer the question, quoted verbatim
with their citations. Nothing factual is generated, so nothing can be paraphrased wrongly."""

from __future__ import annotations

import re
from typing import Any

from assistant.answers import Source

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
MIN_WORDS = 5


def _sentences(source: Source) -> list[tuple[str, int]]:
    found = []
    for match in _SENTENCE.finditer(source.text):
        sentence = " ".join(match.group(0).split())
        if len(sentence.split()) >= MIN_WORDS:
            found.append((sentence, source.number))
    return found


def best_sentences(router: Any, question: str, sources: list[Source], count: int) -> list:
    """The `count` sentences of the passages closest to the question (embedder cosine), in
    the order they appear."""
    candidates = [s for source in sources for s in _sentences(source)]
    if not candidates:
        return []
    vectors = router._embed([question, *[text for text, _ in candidates]])
    scores = vectors[1:] @ vectors[0]
    ranked = sorted(range(len(candidates)), key=lambda i: -float(scores[i]))[:count]
    return [candidates[i] for i in sorted(ranked)]


def extractive_answer(router: Any, question: str, sources: list[Source], config: Any) -> str:
    chosen = best_sentences(router, question, sources, 2)
    if not chosen:
        return "The documents I have do not cover this question."
    quoted = " ".join(f"“{text}” [{number}]" for text, number in chosen)
    return f"Here is what the documents say: {quoted}"


def evidence_block(router: Any, question: str, sources: list[Source]) -> str:
    chosen = best_sentences(router, question, sources, 2)
    if not chosen:
        return ""
    lines = "\n".join(f"> {text} [{number}]" for text, number in chosen)
    return f"\n\nEvidence from the documents:\n{lines}"
