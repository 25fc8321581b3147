"""Property-based tests of the citation mapper `check_citations` (hypothesis, 1,000 generated
answers): every [n] left in the answer names a passage that was shown, the valid numbers are
listed once each in order of first use, the invented ones are listed as removed, each source is
marked cited exactly when its number is, and mapping the cleaned answer again changes nothing."""

from __future__ import annotations

import re

from generated import property_settings
from hypothesis import given
from hypothesis import strategies as st

from assistant.answering.answers import Source, check_citations

PROPERTY = property_settings()
MARKER = re.compile(r"\[(\d{1,3})\]")

# Answers as a model writes them, and as it garbles them: markers valid and invented, nested and
# split ("[[9]1]"), four-digit numbers, brackets alone, any text between.
PART = st.one_of(
    st.integers(0, 12).map(lambda n: f"[{n}]"),
    st.integers(0, 1200).map(lambda n: f"[{n}]"),
    st.sampled_from(["[", "]", "[[", "]]", " ", "\n", "0", "1", "9", "[1000]", "[01]"]),
    st.text(max_size=8),
)
ANSWER = st.lists(PART, max_size=25).map("".join)


def sources(count: int) -> list[Source]:
    return [
        Source(n, "p", f"docs/{n}.md", "t", None, None, 0, 1, 0.1, 0.5, "text", cited=n % 2 == 0)
        for n in range(1, count + 1)
    ]


@PROPERTY
@given(text=ANSWER, count=st.integers(0, 6))
def test_only_shown_passages_stay_cited(text: str, count: int) -> None:
    shown = sources(count)
    cleaned, valid, removed = check_citations(text, shown)
    left = [int(n) for n in MARKER.findall(cleaned)]
    assert all(1 <= n <= count for n in left), f"invented citation left in {cleaned!r}"
    assert valid == list(dict.fromkeys(left)), "valid numbers in order of first use, once each"
    assert all(not 1 <= n <= count for n in removed)
    assert [s.cited for s in shown] == [s.number in valid for s in shown]
    assert check_citations(cleaned, sources(count)) == (cleaned, valid, [])
    if not removed:
        assert cleaned == text
