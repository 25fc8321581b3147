"""The answer path's decoding rules on plain token lists (no model: the rules are pure logic,
and the engines' tests check that each engine applies them)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assistant.runtime.processors import DeclineMargin, RepeatGuard


def _banned_by_definition(tokens: list[int], size: int) -> set[int]:
    """The tokens that would complete a run of `size` already in `tokens`, by brute force."""
    if len(tokens) < size:
        return set()
    tail = tokens[len(tokens) - size + 1 :]
    return {
        tokens[i + size - 1]
        for i in range(len(tokens) - size + 1)
        if tokens[i : i + size - 1] == tail
    }


@given(st.lists(st.integers(0, 3), max_size=40), st.integers(1, 5))
def test_the_repeat_guard_bans_exactly_the_tokens_that_would_repeat_a_run(tokens, size) -> None:
    guard = RepeatGuard(size)
    for end in range(len(tokens) + 1):  # fed one token at a time, as an answer grows
        guard.add(tokens[:end])
        assert guard.banned(tokens[:end]) == _banned_by_definition(tokens[:end], size)


def test_a_guard_of_size_zero_bans_nothing() -> None:
    guard = RepeatGuard(0)
    guard.add([1, 1, 1, 1])
    assert guard.banned([1, 1, 1, 1]) == set()


SORRY, THE, DOCUMENTS = 10, 20, 30


def test_the_decline_opens_only_when_sure_enough() -> None:
    rule = DeclineMargin(SORRY, THE, DOCUMENTS, min_prob=0.5)
    assert rule.banned([], {SORRY: 0.4, THE: 0.3}) == {SORRY}
    assert rule.banned([], {SORRY: 0.5}) == set()
    assert rule.banned([], {7: 0.9}) == {SORRY}  # a decline not among the likeliest: held back


def test_the_second_opening_counts_both_ways_to_decline() -> None:
    rule = DeclineMargin(SORRY, THE, DOCUMENTS, min_prob=0.5)
    rule.banned([], {SORRY: 0.2, THE: 0.6})
    assert rule.watching([THE]) and not rule.watching([7]) and not rule.watching([THE, 1])
    assert rule.banned([THE], {DOCUMENTS: 0.4}) == {DOCUMENTS}  # 0.2 + 0.6 x 0.4 = 0.44
    assert rule.banned([THE], {DOCUMENTS: 0.6}) == set()  # 0.2 + 0.6 x 0.6 = 0.56
    assert rule.banned([7], {DOCUMENTS: 0.01}) == set()  # not after another first word
