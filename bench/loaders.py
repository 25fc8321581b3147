"""Benchmark: Markdown parsing stays linear on hostile input (issue [5/7]).

Run: `.venv/bin/python bench/loaders.py`

For two inputs that were quadratic (a heading line of N spaces; N/27 fenced blocks each followed
by a heading), `markdown_sections` is timed at size N and 4N. A linear parser takes ~4x as long
on 4x the input (a quadratic one 16x); the anchor in the same run is one regex pass over the
same text (`^#` in MULTILINE mode), which is linear by construction.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time

from assistant.knowledge.loaders import markdown_sections

ANCHOR = re.compile(r"^#", re.MULTILINE)


def best_of(run, text: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inputs(size: int) -> dict[str, str]:
    return {
        "long heading line": "# a" + " " * size + "b\n",
        "fences and headings": "".join(
            f"```\ncode\n```\n## H{i}\ntext\n" for i in range(size // 27)
        ),
    }


def main() -> None:
    size = 1_000_000
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}; N = {size:,} characters")
    small, large = inputs(size), inputs(4 * size)
    for name in small:
        parse_n = best_of(lambda t: markdown_sections(t, 0), small[name])
        parse_4n = best_of(lambda t: markdown_sections(t, 0), large[name])
        scan_4n = best_of(lambda t: ANCHOR.findall(t), large[name])
        print(
            f"{name}: {parse_n * 1000:.1f} ms at N, {parse_4n * 1000:.1f} ms at 4N"
            f" -> {parse_4n / parse_n:.1f}x (linear ~4x, quadratic 16x);"
            f" one regex pass at 4N {scan_4n * 1000:.1f} ms -> {parse_4n / scan_4n:.1f}x of it"
        )


if __name__ == "__main__":
    main()
