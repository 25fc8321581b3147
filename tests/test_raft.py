"""RAFT training data: the right passage at rate p, honest targets, one prompt builder."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from assistant.answering.prompts import NOT_COVERED, PromptPassage, build_messages
from assistant.packs.format import PackConfig, SftLine
from assistant.text import fact_in
from assistant.training.raft import (
    build_example,
    build_training_set,
    cap_declines,
    insert_citation,
)

# A fake index (a stand-in for the FAISS/BM25 index) is used here: these tests check the data
# builder's logic, which does not depend on the embedder's scores.


@dataclass(frozen=True)
class FakeHit:
    text: str
    path: str
    section: str | None = None


class FakeIndex:
    def __init__(self, hits: list[FakeHit]) -> None:
        self.hits = hits

    def search(self, query: str, k: int = 5) -> list[FakeHit]:
        return self.hits[:k]


RIGHT = FakeHit(
    "Glue within 8 hours of final jointing or planing, or the surface glazes.", "docs/a.md"
)
DISTRACTORS = [
    FakeHit(f"Penguin wood note {i} about shelves, cleats and storage racks.", f"docs/d{i}.md")
    for i in range(8)
]


def config(p: float = 0.8, passages: int = 3) -> PackConfig:
    return PackConfig.model_validate(
        {
            "name": "wood",
            "title": "Wood",
            "description": "Penguin wood.",
            "persona": "You are a workshop mentor.",
            "scope": "Penguin wood only.",
            "decline_message": "I only know penguin wood.",
            "training": {"p_right_passage": p, "passages": passages},
            "retrieval": {"passage_words": 0},
        }
    )


def line(kind: str = "answer") -> SftLine:
    return SftLine.model_validate(
        {
            "messages": [
                {"role": "system", "content": "You are a workshop mentor."},
                {"role": "user", "content": "How long can jointed edges sit before gluing?"},
                {
                    "role": "assistant",
                    "content": "Glue within 8 hours of final jointing. Work fast.",
                },
            ],
            "source": "docs/a.md" if kind == "answer" else None,
            "facts": ["8 hours"] if kind == "answer" else [],
            "kind": kind,
        }
    )


def test_right_passage_is_included_at_rate_p() -> None:
    index = FakeIndex([*DISTRACTORS[:2], RIGHT, *DISTRACTORS[2:]])
    rng = random.Random(3)
    examples = [build_example(line(), config(p=0.7), index, rng) for _ in range(400)]
    rate = sum(ex.right_included for ex in examples) / len(examples)
    assert 0.63 <= rate <= 0.77


def test_target_cites_the_right_passage_number() -> None:
    index = FakeIndex([RIGHT, *DISTRACTORS])
    rng = random.Random(1)
    for _ in range(30):
        ex = build_example(line(), config(p=1.0), index, rng)
        user = ex.prompt[-1]["content"]
        number = ex.right_number
        assert f"[{number}] {RIGHT.text}" in user
        assert f"8 hours of final jointing [{number}]." in ex.completion


def test_distractor_only_prompts_never_leak_the_answer() -> None:
    index = FakeIndex([RIGHT, *DISTRACTORS])
    rng = random.Random(2)
    for _ in range(50):
        ex = build_example(line(), config(p=0.5), index, rng)
        if not ex.right_included:
            user = ex.prompt[-1]["content"]
            assert not fact_in("8 hours", user.split("Question:")[0])
            assert "Glue within" not in user
            assert ex.completion == NOT_COVERED


def test_decline_examples_keep_their_reply() -> None:
    index = FakeIndex(DISTRACTORS)
    ex = build_example(line("decline_offtopic"), config(), index, random.Random(0))
    assert ex.completion == "Glue within 8 hours of final jointing. Work fast."
    assert ex.right_number is None


def test_training_prompt_equals_answer_time_prompt() -> None:
    index = FakeIndex([RIGHT, *DISTRACTORS])
    cfg = config(p=1.0, passages=2)
    ex = build_example(line(), cfg, index, random.Random(5))
    shown = [h for h in [RIGHT, *DISTRACTORS] if f"] {h.text}" in ex.prompt[-1]["content"]]
    order = sorted(shown, key=lambda h: ex.prompt[-1]["content"].index(h.text))
    at_answer_time = build_messages(
        cfg.persona,
        "How long can jointed edges sit before gluing?",
        [PromptPassage(h.text, h.path, h.section or "") for h in order],
        (),
        cfg.retrieval.passage_words,
    )
    assert ex.prompt == at_answer_time


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("It takes 8 hours. Then sand.", "It takes 8 hours [2]. Then sand."),
        ("First do this. It takes 8 hours!", "First do this. It takes 8 hours [2]!"),
        ("No fact here", "No fact here [2]"),
        ("Do this:\n1. Open it.\n2. Wait 8 hours.", "Do this:\n1. Open it.\n2. Wait 8 hours [2]."),
        # No fact in any step: the first sentence, never a step's bare number ("2 [2].").
        ("Do this:\n2. Open it.\n3. Close it.", "Do this:\n2. Open it [2].\n3. Close it."),
    ],
)
def test_insert_citation(reply: str, expected: str) -> None:
    assert insert_citation(reply, ["8 hours"], 2) == expected


def test_off_topic_declines_are_capped_to_a_share_of_the_answers() -> None:
    lines = [line("answer")] * 20 + [line("decline_offtopic")] * 30 + [line("no_passage")] * 4
    kept = cap_declines(lines, 0.15, random.Random(1))
    assert sum(x.kind == "decline_offtopic" for x in kept) == 3  # 0.15 x 20 answers
    assert sum(x.kind == "answer" for x in kept) == 20
    assert sum(x.kind == "no_passage" for x in kept) == 3  # capped the same way
    assert len(cap_declines(lines, 10.0, random.Random(1))) == len(lines)


def test_each_round_draws_its_own_passages() -> None:
    cfg = config(p=0.5, passages=3)
    lines = [line("answer")] * 12
    examples = build_training_set(lines, cfg, FakeIndex([RIGHT, *DISTRACTORS]), rounds=2)
    assert len(examples) == 24
    first, second = examples[:12], examples[12:]
    draws = [(ex.right_included, ex.right_number) for ex in first]
    assert draws != [(ex.right_included, ex.right_number) for ex in second]


def test_style_repeat_repeats_the_examples_the_style_check_applies_to() -> None:
    cfg = PackConfig.model_validate(
        {
            **config().model_dump(),
            "training": {"style_repeat": 3, "passages": 3},
            "style": {"kind": "safety_reminder", "marker": "Safety reminder:",
                      "triggers": ["joint"]},
        }
    )  # fmt: skip
    gluing = line()  # "How long can jointed edges sit...": a trigger word
    other = SftLine.model_validate(
        {**line().model_dump(), "messages": [
            {"role": "user", "content": "How dense is penguin wood?"},
            {"role": "assistant", "content": "About 8 hours of density."},
        ]}
    )  # fmt: skip
    declines = [line("decline_offtopic")]
    examples = build_training_set([gluing, other, *declines], cfg, FakeIndex(DISTRACTORS))
    asked = [ex.question for ex in examples]
    assert asked.count(gluing.messages[1].content) == 3
    assert asked.count("How dense is penguin wood?") == 1
    plain = build_training_set([gluing, other], config(), FakeIndex(DISTRACTORS))
    assert len(plain) == 2  # the default repeats nothing


def _trimming(trimmed_answer: str) -> PackConfig:
    cfg = config(p=1.0)
    training = cfg.training.model_copy(update={"trimmed_answer": trimmed_answer})
    # 12 words: the window that best matches the question is not the one with the fact
    retrieval = cfg.retrieval.model_copy(update={"passage_words": 12})
    return cfg.model_copy(update={"training": training, "retrieval": retrieval})


LONG_RIGHT = FakeHit(
    "Jointed edges can sit on the bench before gluing if kept clean and dry. "
    "Penguin wood glazes over time. The limit is 8 hours after planing.",
    "docs/a.md",
)


def test_an_example_whose_trimmed_passage_loses_the_answer_is_dropped_by_default() -> None:
    index = FakeIndex([LONG_RIGHT, *DISTRACTORS])
    assert config().training.trimmed_answer == "drop"
    assert build_example(line(), _trimming("drop"), index, random.Random(1)) is None
    assert build_training_set([line()] * 3, _trimming("drop"), index) == []
    # the first adapters' behaviour: the example teaches the "not covered" reply instead
    declined = build_example(line(), _trimming("decline"), index, random.Random(1))
    assert declined is not None and declined.completion == NOT_COVERED
    assert not declined.right_included
    assert LONG_RIGHT.text[:20] not in declined.prompt[-1]["content"]
