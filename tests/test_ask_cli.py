"""`assistant ask`: every bad input gives one line and exit 2 (never a traceback), an
over-long question is cut with a notice, and `--json` keeps its schema. Answers are capped at a
few tokens: these tests check the command, not the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli

ASSISTANT = Path(sys.executable).parent / "assistant"
QUESTION = "How long does 50 mm penguin wood stock take in the kiln?"


@pytest.fixture(scope="module", autouse=True)
def one_thread(base_model, embedder):
    """One torch thread: the test machine's 2 cores are shared with other jobs (see
    tests/test_router.py). The CLI reuses the session's cached models."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def run(*args: str, input: bytes | str | None = None):
    return CliRunner().invoke(cli, ["ask", *args], input=input, catch_exceptions=False)


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["diabetes", ""], None, "the question is empty"),
        (["diabetes", "   \n\t "], None, "the question is empty"),
        (["diabetes", "-"], "  \n", "the question is empty"),
        (["--auto", ""], None, "the question is empty"),
        (["diabetes", "What", "is insulin?"], None, "too many arguments"),
        (["--auto", "diabetes", "What is insulin?"], None, "--auto picks the pack itself"),
        (["diabetes", "-"], b"\xff\xfe caf\xe9", "stdin is not UTF-8"),
        (["diabtes", "What is insulin?"], None, "Did you mean 'diabetes'?"),
        (["../diabetes", "What is insulin?"], None, "invalid pack name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, stdin, expected) -> None:
    assert expected in one_error_line(run(*args, input=stdin))


def test_unknown_pack_lists_packs_and_closest_name_in_a_real_process() -> None:
    done = subprocess.run(
        [str(ASSISTANT), "ask", "pengiun-wood", "How do I glue it?"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "unknown pack 'pengiun-wood'" in lines[0] and "Did you mean 'penguin-wood'?" in lines[0]
    for name in ("contracts", "diabetes", "penguin-wood", "support"):
        assert name in lines[0]


def test_non_utf8_stdin_in_a_real_process() -> None:
    done = subprocess.run(
        [str(ASSISTANT), "ask", "diabetes", "-"],
        input=b"What is \xe9 insulin \xff?",
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == b""
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "stdin is not UTF-8 text (byte 8)" in lines[0]


def test_an_answer_in_a_real_process_prints_nothing_but_the_answer() -> None:
    done = subprocess.run(
        [str(ASSISTANT), "ask", "penguin-wood", QUESTION, "--max-tokens", "4", "--json"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "ASSISTANT_THREADS": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pack"] == "penguin-wood"
    # No library warnings (PEFT's deprecated `is_gradient_checkpointing` call printed one on
    # every answer) and no progress bars: a script reading stderr sees nothing.
    assert done.stderr == "", done.stderr


def test_question_over_the_context_is_cut_with_a_notice() -> None:
    words = "Penguin wood kiln drying schedule for thick boards and moisture content checks. "
    huge = (QUESTION + " " + words * 1200).strip()  # ~16k tokens, twice the model's context
    # Extractive mode: the cut happens before retrieval either way, and prefilling 1000 tokens
    # on a shared CPU costs ~20 s (the generate path's prompt budget is covered in test_api.py).
    result = run("penguin-wood", huge, "--json", "--mode", "extractive")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert any("only the first 1000 were used" in n for n in data["notices"]), data["notices"]
    assert data["pack"] == "penguin-wood" and not data["declined"] and data["citations"]
    assert len(data["question"]) < len(huge) // 5


def test_question_from_stdin_and_text_output() -> None:
    result = run("penguin-wood", "-", "--max-tokens", "8", input=QUESTION + "\n")
    assert result.exit_code == 0, result.output
    assert "penguin-wood · adapter penguin-wood ·" in result.stdout and "tok/s" in result.stdout


def test_auto_declines_off_topic_question_with_the_packs() -> None:
    result = run("--auto", "Who won the 2018 World Cup?")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("I can only answer questions the packs cover:")
    assert "declined: no pack covers this question" in result.stdout
    for name in ("contracts", "diabetes", "penguin-wood", "support"):
        assert name in result.stdout


def test_json_schema() -> None:
    result = run("penguin-wood", QUESTION, "--json", "--max-tokens", "8", "-k", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {
        "answer",
        "pack",
        "declined",
        "decline_reason",
        "sources",
        "citations",
        "timings",
        "adapter",
    } <= set(data)
    assert data["pack"] == "penguin-wood" and data["declined"] is False
    assert isinstance(data["answer"], str) and isinstance(data["citations"], list)
    assert data["adapter"] == "penguin-wood"  # the default engine answers with the adapter
    assert len(data["sources"]) == 3
    for source in data["sources"]:
        assert {
            "path",
            "section",
            "page",
            "start",
            "end",
            "score",
            "dense_score",
            "cited",
        } <= set(source)
        assert source["path"].startswith("docs/") and 0 <= source["start"] < source["end"]
        assert isinstance(source["cited"], bool)
    timings = data["timings"]
    assert {"routing_ms", "retrieval_ms", "first_token_ms", "total_ms", "tokens_per_s"} <= set(
        timings
    )
    assert timings["total_ms"] >= timings["first_token_ms"] > 0 and timings["retrieval_ms"] > 0


def test_json_of_an_auto_decline() -> None:
    result = run("--auto", "What's a good recipe for banana bread?", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["declined"] is True and data["pack"] is None and data["sources"] == []
    assert data["decline_reason"] == "no pack covers this question"
    assert data["timings"]["routing_ms"] > 0


def test_json_without_rag_or_pack_is_a_full_record() -> None:
    result = run("--no-rag", "What is insulin?", "--json", "--max-tokens", "4")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # was `{}`: the base-model-alone path made no Answer
    assert data["pack"] is None and data["sources"] == [] and data["adapter"] is None
    assert data["answer"] and data["timings"]["answer_tokens"] <= 4
    assert data["timings"]["first_token_ms"] > 0
