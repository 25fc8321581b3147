"""Property-based tests of the eval metrics (hypothesis, 1,000 generated cases per property):
normalization is stable, fact matching finds a fact wherever it is written, token F1 and
ROUGE-L are symmetric scores in [0, 1] (ROUGE-L never above F1, both 1 on identical text),
percentiles agree with numpy, and the tuned threshold stays in [-1, 1] and never scores worse
than the current one."""

from __future__ import annotations

import numpy as np
import pytest
from generated import property_settings
from hypothesis import assume, given
from hypothesis import strategies as st

from assistant.evaluation import metrics as m
from assistant.text import fact_in, normalize

PROPERTY = property_settings()
# Text with what the metrics treat specially made likely: numbers with . and , inside, dashes,
# apostrophes, citation markers, NUL, and any Unicode (NFKC folds some of it).
TEXT = st.lists(
    st.one_of(
        st.text(max_size=10),
        st.sampled_from(
            ["3.5", "1,000", "15–25", "don't", "[1]", " [12]", "\x00", "\x01", ".", ",", "ﬁ"]
        ),
    ),
    max_size=12,
).map("".join)
SCORE = st.floats(-1.0, 1.0, allow_nan=False)


@PROPERTY
@given(text=TEXT)
def test_normalize_is_stable(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip() and "  " not in once
    assert all(token for token in m.tokens(text))


@PROPERTY
@given(fact=TEXT, before=TEXT, after=TEXT)
def test_a_fact_is_found_wherever_it_is_written(fact: str, before: str, after: str) -> None:
    assume(normalize(fact))
    assert fact_in(fact, f"{before} {fact} {after}")
    assert m.fact_recall([fact], f"{before}\n{fact}.") == 1.0
    assert m.fact_recall([], before) is None


@PROPERTY
@given(a=TEXT, b=TEXT)
def test_f1_and_rouge_are_symmetric_scores(a: str, b: str) -> None:
    f1, rouge = m.token_f1(a, b), m.rouge_l(a, b)
    assert 0.0 <= rouge <= f1 <= 1.0 or rouge == pytest.approx(f1)
    assert f1 == pytest.approx(m.token_f1(b, a)) and rouge == pytest.approx(m.rouge_l(b, a))
    assert m.token_f1(a, a) == 1.0 and m.rouge_l(a, a) == 1.0


@PROPERTY
@given(values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), q=st.floats(0, 100))
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    result = m.percentile(values, q)
    assert result == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-6)
    assert min(values) <= result <= max(values)


@PROPERTY
@given(inside=st.lists(SCORE, max_size=20), outside=st.lists(SCORE, max_size=20), current=SCORE)
def test_tuned_threshold_never_scores_worse(
    inside: list[float], outside: list[float], current: float
) -> None:
    best, accuracy = m.best_threshold(inside, outside, current)
    assert -1.0 <= best <= 1.0 and 0.0 <= accuracy <= 1.0
    assert accuracy == m.balanced_accuracy(inside, outside, best)
    assert accuracy >= m.balanced_accuracy(inside, outside, current)
