"""The Python API for people who embed assistant in their own code.

from assistant import Assistant
a = Assistant()
answer = a.ask("diabetes", "What is hypoglycemia?")
stream = a.stream("diabetes", "What causes it?")
for piece in stream:
    print(piece, end="")
print(stream.answer.sources)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.answering.answers import Answer, AnswerStream
from assistant.packs.locate import DomainPack
from assistant.settings import load_settings


class Assistant:
    """Packs, one shared base model and its adapters, behind three calls."""

    def __init__(self, config_file: str | Path | None = None) -> None:
        from assistant.answering.router import Router

        self.settings = load_settings(config_file)
        self.router = Router(self.settings)

    def packs(self) -> list[DomainPack]:
        return self.router.packs()

    def ask(
        self, pack: str | None, question: str, history: Sequence[Any] = (), **options: Any
    ) -> Answer:
        """One answer from `pack` (None: the router picks the pack, or declines)."""
        return self.router.answer(question, pack, history, **options)

    def stream(
        self, pack: str | None, question: str, history: Sequence[Any] = (), **options: Any
    ) -> AnswerStream:
        """The answer as it is made: iterate for the text pieces; then `.answer` holds the
        `Answer` (sources, citations, timings)."""
        return self.router.stream(question, pack, history, **options)
