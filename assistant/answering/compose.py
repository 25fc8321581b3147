"""Composing the prompt: the numbered sources from the retrieved passages, the conversation
turns, and the chat messages trimmed to fit the model's context."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from assistant.answering.answers import Source
from assistant.answering.prompts import PromptPassage, build_messages
from assistant.packs.format import PackConfig

Messages = list[dict[str, str]]


def sources_from_hits(pack: str, hits: Sequence[Any]) -> list[Source]:
    """The answer's numbered sources, one per retrieved passage, in prompt order."""
    return [
        Source(
            number=i,
            pack=pack,
            path=h.path,
            title=h.title,
            section=h.section,
            page=h.page,
            start=h.start,
            end=h.end,
            score=round(h.score, 5),
            dense_score=None if h.dense_score is None else round(h.dense_score, 4),
            text=h.text,
        )
        for i, h in enumerate(hits, start=1)
    ]


def history_messages(history: Sequence[Any]) -> Messages:
    """The user and assistant turns of a conversation (dicts or objects with role/content)."""
    turns = []
    for turn in history:
        role = turn.get("role") if isinstance(turn, dict) else getattr(turn, "role", None)
        content = turn.get("content") if isinstance(turn, dict) else getattr(turn, "content", "")
        if role in ("user", "assistant") and content:
            turns.append({"role": role, "content": str(content)})
    return turns


def fit_history(
    tokenizer: Any, messages_for: Callable[[Messages], Messages], history: Messages, budget: int
) -> tuple[Messages, int]:
    """Drop the oldest turns until the prompt fits the budget."""
    turns = list(history)
    while True:
        messages = messages_for(turns)
        size = len(
            tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        )
        if size <= budget or not turns:
            return messages, size
        turns = turns[2:] if len(turns) >= 2 else []


def prompt_messages(
    config: PackConfig,
    question: str,
    sources: list[Source] | None,
    turns: Messages,
    tokenizer: Any,
    budget: int,
) -> tuple[Messages, bool]:
    """The chat messages for the pack's answer (persona, passages, recent turns, question),
    and whether older turns had to be left out to fit `budget` tokens."""
    passages = None
    if sources is not None:
        passages = [PromptPassage(s.text, s.path, s.section or "") for s in sources]

    def messages_for(kept: Messages) -> Messages:
        return build_messages(
            config.persona, question, passages, kept, config.retrieval.passage_words
        )

    messages, _size = fit_history(tokenizer, messages_for, turns, budget)
    return messages, bool(turns) and len(messages) - 2 < len(turns)
