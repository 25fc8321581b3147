"""Parsing that must stay linear in the input (issue [5/7]): a Markdown file under the size cap
must not run for hours in `add-docs`, `rebuild` or `setup`. Each case runs in a child process
with a hang guard two orders of magnitude above the linear time (the quadratic code took an
hour or more on these inputs); the time itself is measured by bench/loaders.py, not here."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Seconds a child may take: the linear code parses each input in well under a second.
HANG_GUARD = 120


def run_child(code: str) -> str:
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"parsing did not finish in {HANG_GUARD} s: not linear in the input")
    return done.stdout.strip()


def test_a_megabyte_heading_line_is_parsed_in_one_pass() -> None:
    """'# a', a million spaces, 'b': the lazy title before an optional tail backtracked
    (20,000 characters took 1.8 s, a million ~75 min)."""
    out = run_child(
        """
        from assistant.knowledge.loaders import markdown_sections
        sections, title = markdown_sections("# a" + " " * 1_000_000 + "b\\n\\ntext\\n", 0)
        print(len(sections), len(title))
        """
    )
    assert out == "1 1000002"


def test_many_fences_and_headings_are_parsed_in_one_pass() -> None:
    """80,000 fenced blocks each followed by a heading (2 MB): the fences before each heading
    were counted afresh (96 KB took 5.3 s, 2 MB ~40 min). Headings inside fences stay out."""
    out = run_child(
        """
        from assistant.knowledge.loaders import markdown_sections
        text = "".join(f"```\\n## in code {i}\\n```\\n## H{i}\\ntext\\n" for i in range(80_000))
        sections, _ = markdown_sections(text, 0)
        titled = [s.title for s in sections if s.title]
        print(len(titled), all(t.startswith("H") for t in titled))
        """
    )
    assert out == "80000 True"
