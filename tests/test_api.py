"""The Python API (`from assistant import Assistant`) and its runnable example."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.answering.answers import Answer

EXAMPLE = Path(__file__).parent.parent / "examples" / "python_api.py"


@pytest.fixture(scope="module", autouse=True)
def one_thread(base_model, embedder):
    """One torch thread: the test machine's 2 cores are shared with other jobs (see
    tests/test_router.py). The API reuses the session's cached models."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_the_example_runs(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--max-tokens", "8"])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert out.startswith("packs: contracts, diabetes, penguin-wood, support")
    assert "[diabetes] " in out and "docs/" in out
    assert "(pack: support, first token after" in out
    assert "declined: True - I can only answer questions the packs cover" in out


def test_ask_stream_and_packs() -> None:
    a = Assistant()
    assert {"contracts", "diabetes", "penguin-wood", "support"} <= {p.name for p in a.packs()}

    stream = a.stream("penguin-wood", "Which glue should I use?", max_tokens=6)
    pieces = list(stream)
    assert pieces and all(isinstance(p, str) for p in pieces)
    final = stream.answer
    assert isinstance(final, Answer) and final.pack == "penguin-wood"
    assert final.answer == "".join(pieces).strip() or final.removed_citations

    answer = a.ask(None, "What's a good recipe for banana bread?")
    assert answer.declined and answer.pack is None

    history = [{"role": "user", "content": "What glue works for penguin wood?"}]
    answer = a.ask("penguin-wood", "How long should it cure?", history, mode="extractive")
    assert answer.sources[0].path == "docs/07_adhesives.md"


def test_over_long_question_fits_the_prompt_budget() -> None:
    """The generate path with a question far over the model's context: cut, with a notice."""
    huge = "How long does penguin wood take in the kiln? " + "kiln moisture schedule " * 5000
    answer = Assistant().ask("penguin-wood", huge, k=1, max_tokens=2)
    assert any("only the first 1000 were used" in n for n in answer.notices)
    assert 1000 <= answer.timings.prompt_tokens <= 4096 and answer.timings.answer_tokens <= 2
