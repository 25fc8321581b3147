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


# Turns further back than this are never considered: the model's context holds far fewer, and
# a client can send many (33,000 tiny turns fit in serve's 1 MB body).
MAX_TURNS = 64


def _prompt_size(tokenizer: Any, messages: Messages) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    return len(ids)


def fit_history(
    tokenizer: Any, messages_for: Callable[[Messages], Messages], history: Messages, budget: int
) -> tuple[Messages, int]:
    """The prompt with as many of the newest turns as fit the budget (oldest dropped two at a
    time, so a question stays with its answer). Each turn is tokenized once for an estimate,
    which the whole prompt then confirms (a step or two either way): re-tokenizing the whole
    conversation after every drop took minutes on a long history."""
    turns = list(history)
    if len(turns) > MAX_TURNS:
        turns = turns[len(turns) - MAX_TURNS :]
    # the suffixes that may be kept, shortest first: as many turns as there are, less pairs
    sizes = sorted({0, *range(len(turns) % 2, len(turns) + 1, 2)})

    def prompt(keep: int) -> tuple[Messages, int]:
        messages = messages_for(turns[len(turns) - keep :])
        return messages, _prompt_size(tokenizer, messages)

    messages, size = prompt(0)
    if not turns:
        return messages, size
    lengths = [len(tokenizer.encode(t["content"], add_special_tokens=False)) for t in turns]
    overhead = _prompt_size(tokenizer, messages_for(turns[-1:])) - size - lengths[-1]
    newest_first = [0]
    for length in reversed(lengths):
        newest_first.append(newest_first[-1] + length + overhead)
    index = max(i for i, keep in enumerate(sizes) if size + newest_first[keep] <= budget or i == 0)
    messages, size = prompt(sizes[index])
    while size > budget and index > 0:  # the estimate was short
        index -= 1
        messages, size = prompt(sizes[index])
    while index + 1 < len(sizes):  # the estimate was generous
        wider, wider_size = prompt(sizes[index + 1])
        if wider_size > budget:
            break
        index, messages, size = index + 1, wider, wider_size
    return messages, size


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
