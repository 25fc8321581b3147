"""The answer path's own decoding rules, applied by every engine: the decline margin at the first
tokens and no repeated runs of tokens within the answer. Each rule is written once on plain token
lists and probabilities; the transformers engine applies them as logits processors, the
llama.cpp engine between its requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assistant.runtime.generation import GenerationOptions

# The fixed reply that says the passages do not hold the answer. Training teaches it, the
# answer path recognises it, and the decline margin below holds back its first tokens: it is
# defined here, in the lowest layer that needs it.
# Starts with a word answers never start with: under greedy decoding a refusal that shares its
# first token ("The") with many answers wins that token and then the whole reply (measured:
# the adapter refused 70% of in-scope questions, even its own training prompts).
NOT_COVERED = "Sorry, the documents I have do not cover this question."


class DeclineMargin:
    """The rule that the reply saying the documents do not cover the question may start only
    if the model gives it at least `min_prob`; every engine applies it to the first tokens.

    Greedy decoding takes the single likeliest token. The decline always opens the same way,
    while answers spread their mass over many opening words, so a model that is 22 % sure it
    should decline beats an answer it is 78 % sure of (measured: diabetes adapter, "What is
    Hyperglycemia?", "Sorry" 0.22 against "People" 0.20). The adapters learned two openings,
    "Sorry, the documents ..." (one token) and "The documents ..." (two tokens), so the
    decline's probability is P(Sorry) + P(The) x P(documents | The): "Sorry" is held back at
    the first token unless it alone reaches `min_prob`, and " documents" after a first "The"
    unless the sum does."""

    def __init__(self, sorry: int, the: int, documents: int, min_prob: float) -> None:
        self.sorry, self.the, self.documents = sorry, the, documents
        self.min_prob = min_prob
        self.first = (0.0, 0.0)  # (P(Sorry), P(The)) at the first token

    def watching(self, answer: Sequence[int]) -> bool:
        """Whether the next token after `answer` (the new tokens so far) is under the rule."""
        return not answer or (len(answer) == 1 and answer[0] == self.the)

    def banned(self, answer: Sequence[int], probs: Mapping[int, float]) -> set[int]:
        """The tokens the rule holds back after `answer`, given the next token's probabilities
        (after the repetition penalty; a token left out has probability 0)."""
        if not answer:
            self.first = (probs.get(self.sorry, 0.0), probs.get(self.the, 0.0))
            return {self.sorry} if self.first[0] < self.min_prob else set()
        if self.watching(answer):
            sorry, the = self.first
            if sorry + the * probs.get(self.documents, 0.0) < self.min_prob:
                return {self.documents}
        return set()

    def ids(self) -> tuple[int, int, int]:
        return self.sorry, self.the, self.documents


class RepeatGuard:
    """The rule that no run of `size` tokens appears twice in the answer; every engine applies it.

    transformers' `no_repeat_ngram_size` also counts the prompt, so it would forbid copying a
    passage's words, which is how the adapters carry facts; this one looks at the new tokens
    only. It ends the loops a 135M model falls into ("Type 1 diabetes is a metabolic disorder
    ..." over and over until the token limit) and lets the answer move on to its end. The runs
    seen so far are indexed by their first size - 1 tokens, so each check is one lookup."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._next: dict[tuple[int, ...], set[int]] = {}
        self._indexed = 0  # how many tokens of the answer are in the index

    def add(self, answer: Sequence[int]) -> None:
        """Index the runs that end in the tokens of `answer` not yet seen."""
        if self.size <= 0:
            return
        for end in range(max(self._indexed, self.size), len(answer) + 1):
            run = answer[end - self.size : end]
            self._next.setdefault(tuple(run[:-1]), set()).add(run[-1])
        self._indexed = len(answer)

    def banned(self, answer: Sequence[int]) -> set[int]:
        """The tokens that would end a run already in `answer`."""
        if self.size <= 0 or len(answer) < self.size:
            return set()
        if self.size == 1:
            return self._next.get((), set())
        return self._next.get(tuple(answer[1 - self.size :]), set())


class _DeclineMarginProcessor:
    """`DeclineMargin` as a transformers logits processor."""

    def __init__(self, rule: DeclineMargin, prompt_length: int) -> None:
        self.prompt_length = prompt_length
        self.rules: list[DeclineMargin] = []
        self.template = rule

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if input_ids.shape[-1] - self.prompt_length > 1:
            return scores
        probs = scores.softmax(-1)
        for row, tokens in enumerate(input_ids[:, self.prompt_length :].tolist()):
            if row == len(self.rules):
                self.rules.append(DeclineMargin(*self.template.ids(), self.template.min_prob))
            rule = self.rules[row]
            if not rule.watching(tokens):
                continue
            seen = {token: float(probs[row, token]) for token in rule.ids()}
            for token in rule.banned(tokens, seen):
                scores[row, token] = float("-inf")
        return scores


class _RepeatGuardProcessor:
    """`RepeatGuard` as a transformers logits processor."""

    def __init__(self, size: int, prompt_length: int) -> None:
        self.size = size
        self.prompt_length = prompt_length
        self.guards: list[RepeatGuard] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        for row, tokens in enumerate(input_ids[:, self.prompt_length :].tolist()):
            if row == len(self.guards):
                self.guards.append(RepeatGuard(self.size))
            guard = self.guards[row]
            guard.add(tokens)
            banned = guard.banned(tokens)
            if banned:
                scores[row, sorted(banned)] = float("-inf")
        return scores


def decline_token(tokenizer: Any) -> int:
    """The first token of the "not covered" reply, as it opens an assistant turn."""
    return int(tokenizer.encode(NOT_COVERED, add_special_tokens=False)[0])


def decline_margin(tokenizer: Any, min_prob: float) -> DeclineMargin:
    the, documents = tokenizer.encode("The documents", add_special_tokens=False)[:2]
    return DeclineMargin(decline_token(tokenizer), the, documents, min_prob)


def logits_processors(tokenizer: Any, options: GenerationOptions, prompt_length: int) -> list[Any]:
    """The answer path's own rules as transformers logits processors (decline margin, no
    repeats in the answer)."""
    processors: list[Any] = []
    if options.decline_min_prob > 0:
        rule = decline_margin(tokenizer, options.decline_min_prob)
        processors.append(_DeclineMarginProcessor(rule, prompt_length))
    if options.no_repeat_ngram > 0:
        processors.append(_RepeatGuardProcessor(options.no_repeat_ngram, prompt_length))
    return processors
