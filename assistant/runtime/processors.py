"""The answer path's own logits processors, applied by every engine: the decline margin at the
first tokens and no repeated runs of tokens within the answer."""

from __future__ import annotations

from typing import Any

from assistant.runtime.generation import GenerationOptions

# The fixed reply that says the passages do not hold the answer. Training teaches it, the
# answer path recognises it, and the decline margin below holds back its first tokens: it is
# defined here, in the lowest layer that needs it.
# Starts with a word answers never start with: under greedy decoding a refusal that shares its
# first token ("The") with many answers wins that token and then the whole reply (measured:
# the adapter refused 70% of in-scope questions, even its own training prompts).
NOT_COVERED = "Sorry, the documents I have do not cover this question."


class _DeclineMargin:
    """A logits processor: the reply that says the documents do not cover the question may
    start only if the model gives it at least `min_prob`.

    Greedy decoding takes the single likeliest token. The decline always opens the same way,
    while answers spread their mass over many opening words, so a model that is 22 % sure it
    should decline beats an answer it is 78 % sure of (measured: diabetes adapter, "What is
    Hyperglycemia?", "Sorry" 0.22 against "People" 0.20). The adapters learned two openings,
    "Sorry, the documents ..." (one token) and "The documents ..." (two tokens), so the
    decline's probability is P(Sorry) + P(The) x P(documents | The): "Sorry" is held back at
    the first token unless it alone reaches `min_prob`, and " documents" after a first "The"
    unless the sum does."""

    def __init__(
        self, sorry: int, the: int, documents: int, prompt_length: int, min_prob: float
    ) -> None:
        self.sorry, self.the, self.documents = sorry, the, documents
        self.prompt_length = prompt_length
        self.min_prob = min_prob
        self.first: list[tuple[float, float]] = []  # per row: (P(Sorry), P(The)) at step one

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        step = input_ids.shape[-1] - self.prompt_length
        if step > 1:
            return scores
        probs = scores.softmax(-1)
        if step == 0:
            self.first = [(float(p[self.sorry]), float(p[self.the])) for p in probs]
            unsure = probs[:, self.sorry] < self.min_prob
            scores[unsure, self.sorry] = float("-inf")
            return scores
        for row, (sorry, the) in enumerate(self.first):
            if int(input_ids[row, -1]) != self.the:
                continue
            if sorry + the * float(probs[row, self.documents]) < self.min_prob:
                scores[row, self.documents] = float("-inf")
        return scores


class _NoRepeatInAnswer:
    """A logits processor: no run of `size` tokens appears twice in the answer.

    transformers' `no_repeat_ngram_size` also counts the prompt, so it would forbid copying a
    passage's words, which is how the adapters carry facts; this one looks at the new tokens
    only. It ends the loops a 135M model falls into ("Type 1 diabetes is a metabolic disorder
    ..." over and over until the token limit) and lets the answer move on to its end."""

    def __init__(self, size: int, prompt_length: int) -> None:
        self.size = size
        self.prompt_length = prompt_length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        answer_length = input_ids.shape[-1] - self.prompt_length
        if answer_length < self.size:
            return scores
        for row, tokens in enumerate(input_ids[:, self.prompt_length :].tolist()):
            tail = tokens[len(tokens) - self.size + 1 :]
            banned = {
                tokens[i + self.size - 1]
                for i in range(len(tokens) - self.size + 1)
                if tokens[i : i + self.size - 1] == tail
            }
            if banned:
                scores[row, list(banned)] = float("-inf")
        return scores


def decline_token(tokenizer: Any) -> int:
    """The first token of the "not covered" reply, as it opens an assistant turn."""
    return int(tokenizer.encode(NOT_COVERED, add_special_tokens=False)[0])


def decline_margin(tokenizer: Any, prompt_length: int, min_prob: float) -> _DeclineMargin:
    the, documents = tokenizer.encode("The documents", add_special_tokens=False)[:2]
    return _DeclineMargin(decline_token(tokenizer), the, documents, prompt_length, min_prob)


def logits_processors(tokenizer: Any, options: GenerationOptions, prompt_length: int) -> list[Any]:
    """The answer path's own logits processors (decline margin, no repeats in the answer)."""
    processors: list[Any] = []
    if options.decline_min_prob > 0:
        processors.append(decline_margin(tokenizer, prompt_length, options.decline_min_prob))
    if options.no_repeat_ngram > 0:
        processors.append(_NoRepeatInAnswer(options.no_repeat_ngram, prompt_length))
    return processors
