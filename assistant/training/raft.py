"""RAFT-style training data: each SFT example becomes a prompt with retrieved passages.

For an answer example, the passage that holds the answer (from the example's source document,
the chunk with the most of its facts) is included with probability p; distractors from other
documents fill up to the pack's passage count; the passages are shuffled and numbered, and the
target reply cites the right passage's number after the sentence that carries the facts. Without
the right passage the target says the documents do not cover the question. Decline and
no-passage examples keep their written reply. Prompts come from `prompts.build_messages`, the
same function the router uses at answer time; a fact is found in a text by `text.fact_in`, the
rule eval scores answers by.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.answering.prompts import NOT_COVERED, PromptPassage, build_messages, trim_passage
from assistant.packs.format import PackConfig, SftLine
from assistant.packs.style import style_applies
from assistant.text import fact_in, reply_sentence_spans


@dataclass(frozen=True)
class TrainExample:
    """One chat prompt and the reply the adapter should learn for it."""

    prompt: list[dict[str, str]]
    completion: str
    kind: str
    right_included: bool
    right_number: int | None
    question: str


def insert_citation(reply: str, facts: Sequence[str], number: int) -> str:
    """Put `[number]` at the end of the sentence that carries the most facts (the first
    sentence when none does), before its closing punctuation."""
    # The citation goes into the text as it is: numbered steps and clause lines keep their lines.
    text = reply.strip()
    spans = reply_sentence_spans(text)
    scores = [sum(fact_in(f, text[start:end]) for f in facts) for start, end in spans]
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    start, end = spans[best]
    match = re.search(r"[.!?]+[\"')]*$", text[start:end])
    cut = start + match.start() if match else end
    return f"{text[:cut]} [{number}]{text[cut:]}"


def _passage(hit: Any) -> PromptPassage:
    return PromptPassage(text=hit.text, path=hit.path, section=hit.section or "")


def right_passage(index: Any, line: SftLine, question: str) -> Any | None:
    """The chunk of the source document that holds most of the example's facts."""
    if not line.source:
        return None
    query = " ".join([question, *line.facts])
    candidates = [h for h in index.search(query, k=40) if h.path == line.source]
    if not candidates:
        return None
    best = max(candidates, key=lambda h: sum(fact_in(f, h.text) for f in line.facts))
    if line.facts and not any(fact_in(f, best.text) for f in line.facts):
        return None
    return best


def build_example(
    line: SftLine,
    config: PackConfig,
    index: Any,
    rng: random.Random,
    fits: Any = None,
) -> TrainExample | None:
    """One RAFT example, or None when it is left out (training.trimmed_answer). `fits(messages,
    completion) -> bool` lets the caller drop distractors until the example fits the training
    length."""
    question = next(m.content for m in reversed(line.messages) if m.role == "user")
    reply = line.messages[-1].content
    history = [
        {"role": m.role, "content": m.content}
        for m in line.messages[:-1]
        if m.role != "system" and m.content != question
    ]
    kind = line.kind or ("answer" if line.source else "decline_offtopic")
    wanted = config.training.passages
    right = right_passage(index, line, question) if kind == "answer" else None
    include_right = right is not None and rng.random() < config.training.p_right_passage
    distractors = [
        h
        for h in index.search(question, k=wanted + 8)
        if h.path != line.source and not any(fact_in(f, h.text) for f in line.facts)
    ]
    chosen = distractors[: wanted - 1 if include_right else wanted]
    passages = [_passage(h) for h in chosen]
    right_number = None
    words = config.retrieval.passage_words
    shown = trim_passage(right.text, question, words) if right is not None else ""

    if include_right:
        passages.append(_passage(right))
        rng.shuffle(passages)
        right_number = passages.index(_passage(right)) + 1
        completion = insert_citation(reply, line.facts, right_number)
    elif kind == "answer":
        completion = NOT_COVERED
    else:
        completion = reply
    if include_right and line.facts and not any(fact_in(f, shown) for f in line.facts):
        # Trimming (the same as at answer time) cut the answer out: the model will not see it.
        # Either leave the example out, or (the first adapters) teach the honest reply that
        # the passages do not cover the question.
        if config.training.trimmed_answer == "drop":
            return None
        passages.remove(_passage(right))
        right_number, include_right, completion = None, False, NOT_COVERED
    messages = build_messages(config.persona, question, passages, history, words)
    while fits is not None and not fits(messages, completion) and len(passages) > 1:
        drop = next(i for i, p in enumerate(passages) if i + 1 != right_number)
        passages.pop(drop)
        if right_number is not None and drop + 1 < right_number:
            right_number -= 1
            completion = insert_citation(reply, line.facts, right_number)
        messages = build_messages(config.persona, question, passages, history, words)
    return TrainExample(messages, completion, kind, include_right, right_number, question)


REFUSAL_KINDS = ("decline_offtopic", "no_passage")


def cap_declines(lines: Sequence[SftLine], share: float, rng: random.Random) -> list[SftLine]:
    """Keep at most `share` x (answer examples) of each refusal kind (off-topic declines and
    "not in the documents" replies), chosen at random; the other examples all stay, in order."""
    answers = sum(1 for line in lines if (line.kind or "answer") == "answer")
    dropped: set[int] = set()
    for kind in REFUSAL_KINDS:
        refusals = [i for i, line in enumerate(lines) if line.kind == kind]
        keep = min(len(refusals), round(share * answers))
        dropped |= set(refusals) - set(rng.sample(refusals, keep))
    return [line for i, line in enumerate(lines) if i not in dropped]


def build_training_set(
    lines: Sequence[SftLine], config: PackConfig, index: Any, fits: Any = None, rounds: int = 1
) -> list[TrainExample]:
    """The RAFT examples of `rounds` passes over the kept lines; each pass draws its own
    passages, order and right-passage coin, so a second epoch is not a repeat of the first."""
    rng = random.Random(config.training.seed)
    kept = cap_declines(lines, config.training.decline_share, rng)
    repeat = config.training.style_repeat
    if repeat > 1:
        kept = [line for line in kept for _ in range(repeat if shows_style(line, config) else 1)]
    examples = (
        build_example(line, config, index, rng, fits) for _ in range(rounds) for line in kept
    )
    return [example for example in examples if example is not None]


def shows_style(line: SftLine, config: PackConfig) -> bool:
    """Whether the pack's style check applies to this answer example (its question and its
    written reply taken as the reference), as the eval would ask it."""
    if (line.kind or "answer") != "answer":
        return False
    style = config.style
    question = next((m.content for m in reversed(line.messages) if m.role == "user"), "")
    reply = line.messages[-1].content
    return style_applies(style.kind, style.marker, question, reply, style.triggers)
