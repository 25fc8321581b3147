"""The records an answer is made of (`Answer`, `Source`) and the citation checker.

Scripts rely on the JSON of these records (`assistant ask --json`, `/v1/ask`): keep names stable.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.text import CITATION


@dataclass
class Source:
    """One retrieved passage shown to the model, numbered as in the prompt."""

    number: int
    pack: str
    path: str  # relative to the pack folder
    title: str
    section: str | None
    page: int | None
    start: int  # character span in the document's extracted text
    end: int
    score: float  # fused (reciprocal rank fusion)
    dense_score: float | None  # raw cosine
    text: str
    cited: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timings:
    routing_ms: float = 0.0
    retrieval_ms: float = 0.0
    first_token_ms: float = 0.0  # the engine's first token
    first_shown_ms: float = 0.0  # the first text shown (a checked sentence, or the evidence)
    total_ms: float = 0.0
    tokens_per_s: float = 0.0
    prompt_tokens: int = 0
    answer_tokens: int = 0


@dataclass
class Answer:
    """One answer, or a decline, with everything a user or a script needs to check it."""

    question: str
    answer: str
    pack: str | None
    declined: bool = False
    decline_reason: str | None = None
    sources: list[Source] = field(default_factory=list)
    citations: list[int] = field(default_factory=list)
    removed_citations: list[int] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    adapter: str | None = None
    mode: str = "generate"
    grounding: str = "off"
    # Each generated sentence with "supported", "passage" and "reason" (answering.claims).
    claims: list[dict[str, Any]] = field(default_factory=list)
    route_scores: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnswerStream:
    """An answer being made: iterate it for the text pieces as they are produced; once the
    iteration ends, `answer` holds the final `Answer` (sources, citations, timings).
    `finish()` runs it to the end and returns the `Answer`; `close()` stops it early (the
    engine is cancelled at its next token)."""

    def __init__(self, steps: Generator[str, None, Answer]) -> None:
        self._steps = steps
        self._answer: Answer | None = None
        # One iterator for the stream's life: a loop left early and a later loop (or
        # `finish()`) go on where the first stopped.
        self._pieces = self._run()

    def _run(self) -> Iterator[str]:
        self._answer = yield from self._steps

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def __next__(self) -> str:
        return next(self._pieces)

    @property
    def done(self) -> bool:
        return self._answer is not None

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            raise RuntimeError("the answer is not finished: iterate the stream or call finish()")
        return self._answer

    def finish(self) -> Answer:
        for _ in self:
            pass
        return self.answer

    def close(self) -> None:
        self._steps.close()


def check_citations(text: str, sources: list[Source]) -> tuple[str, list[int], list[int]]:
    """Map each [n] to its passage. Returns the text with invented numbers removed, the valid
    numbers cited (in order of first use), and the invented numbers removed. Marks sources.

    Removal repeats until no invented number is left: taking "[9]" out of "[[9]9]" leaves an
    invented "[9]" of its own."""
    removed: list[int] = []

    def drop(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if 1 <= number <= len(sources):
            return match.group(0)
        removed.append(number)
        return ""

    cleaned, count = text, -1
    while count != len(removed):
        count = len(removed)
        cleaned = CITATION.sub(drop, cleaned)
    valid = list(dict.fromkeys(int(match.group(1)) for match in CITATION.finditer(cleaned)))
    for source in sources:
        source.cited = source.number in valid
    return cleaned, valid, removed
