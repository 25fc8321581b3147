"""Extractive answers: the passage sentences that best answer the question, quoted verbatim
with their citations. Nothing factual is generated, so nothing can be paraphrased wrongly."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from assistant.answering.answers import Source
from assistant.answering.prompts import NOT_COVERED
from assistant.text import bm25_tokenize, sentences

MIN_WORDS = 5
# Texts -> their normalised vectors, one row each (the router's embedder).
Embed = Callable[[list[str]], Any]
# Quoted evidence is the documents' own words, so a sentence written to steer the assistant
# (a link to hand out, orders addressed to it) would be repeated verbatim: such sentences are
# never quoted. The generated part is protected by the prompt (passages are data).
_STEERING = re.compile(
    r"https?://|www\.|\b(?:system prompt|new instructions|ignore (?:all|any|previous|prior|"
    r"the above|your)|you are now|from now on|every answer|each answer)\b",
    re.IGNORECASE,
)


def _quotable(sentence: str) -> bool:
    """Long enough to say something, not a heading or a question (the MedQuAD pages' headings
    are questions: "## What causes Diabetes?" matches the question best and answers nothing),
    and not written to steer the assistant."""
    return (
        len(sentence.split()) >= MIN_WORDS
        and not sentence.startswith("#")
        and not sentence.endswith("?")
        and not _STEERING.search(sentence)
    )


def quotable_sentences(source: Source) -> list[tuple[str, int]]:
    """The sentences of a passage that may be quoted, each with the passage's number."""
    return [(sentence, source.number) for sentence in sentences(source.text) if _quotable(sentence)]


# Weight of the BM25 score (scaled to 0..1 over the candidates) next to the cosine: the
# embedder alone ranks a sentence on the topic above the one holding the asked-for number.
LEXICAL_WEIGHT = 0.5


def _lexical_scores(question: str, texts: list[str]) -> list[float]:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25_tokenize(texts), show_progress=False)
    query = bm25_tokenize([question])[0]
    scores = [float(x) for x in retriever.get_scores(query)] if query else [0.0] * len(texts)
    top = max(scores, default=0.0)
    return [x / top if top > 0 else 0.0 for x in scores]


def best_sentences(embed: Embed, question: str, sources: list[Source], count: int) -> list:
    """The `count` sentences of the passages that best answer the question (embedder cosine
    plus scaled BM25), in the order they appear."""
    candidates = [s for source in sources for s in quotable_sentences(source)]
    if not candidates:
        return []
    texts = [text for text, _ in candidates]
    vectors = embed([question, *texts])
    dense = vectors[1:] @ vectors[0]
    lexical = _lexical_scores(question, texts)
    scores = [float(d) + LEXICAL_WEIGHT * w for d, w in zip(dense, lexical, strict=True)]
    ranked = sorted(range(len(candidates)), key=lambda i: -scores[i])[:count]
    return [candidates[i] for i in sorted(ranked)]


def extractive_answer(embed: Embed, question: str, sources: list[Source], config: Any) -> str:
    chosen = best_sentences(embed, question, sources, 2)
    if not chosen:
        return NOT_COVERED
    quoted = " ".join(f"“{text}” [{number}]" for text, number in chosen)
    return f"Here is what the documents say: {quoted}"


EVIDENCE_HEADER = "\n\nEvidence from the documents:\n"


def own_words(answer: str) -> str:
    """A hybrid answer without its quoted evidence: what the model wrote itself."""
    return answer.split(EVIDENCE_HEADER.strip())[0]


def quoted_evidence(answer: str) -> str:
    """The quoted evidence of an answer ("" when it has none)."""
    _, _, evidence = answer.partition(EVIDENCE_HEADER.strip())
    return evidence


def evidence_block(embed: Embed, question: str, sources: list[Source]) -> str:
    chosen = best_sentences(embed, question, sources, 2)
    if not chosen:
        return ""
    lines = "\n".join(f"> {text} [{number}]" for text, number in chosen)
    return f"{EVIDENCE_HEADER}{lines}"
