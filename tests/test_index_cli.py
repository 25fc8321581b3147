"""`assistant index ...` through click: text and --json output, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from index_helpers import FIXTURES, make_pack

from assistant.cli import cli


@pytest.fixture
def run(embedder):  # the session embedder is loaded once; the CLI reuses the cached handle
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_add_docs_stats_search_remove_rebuild(run, tmp_path: Path) -> None:
    pack = make_pack("cli-pack")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 broken")
    result = run("index", "add-docs", "cli-pack", str(FIXTURES), str(bad), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["added"], data["updated"], data["unchanged"]) == (3, 0, 0)
    assert data["skipped"][0]["path"] == str(bad) and "PDF" in data["skipped"][0]["reason"]

    result = run("index", "add-docs", "cli-pack", str(FIXTURES), "--exclude", "*.html")
    assert result.exit_code == 0
    assert result.output.startswith("added 0, updated 0, unchanged 2, skipped 0")

    stats = json.loads(run("index", "stats", "cli-pack", "--json").output)
    assert stats["documents"] == 3 and stats["chunks"] >= 3 and stats["bytes"] > 0
    assert stats["embedder"] == "all-minilm-l6-v2+onnx_int8" and stats["updated"]
    assert "chunks" in run("index", "stats", "cli-pack").output

    hits = json.loads(
        run("index", "search", "cli-pack", "volcanic ash", "-k", "2", "--json").output
    )
    assert len(hits) == 2 and hits[0]["path"] == "docs/guide/page.html"
    assert {"score", "dense_score", "bm25_score", "section", "start", "end"} <= set(hits[0])
    text = run("index", "search", "cli-pack", "herring for penguins").output
    assert text.startswith("1. docs/guide/penguins.md § Feeding  [rrf")

    result = run("index", "remove", "cli-pack", "docs/notes.txt", "--json")
    assert json.loads(result.output)["removed"] == 1
    assert not (pack.docs_dir / "notes.txt").exists()
    result = run("index", "rebuild", "cli-pack")
    assert result.output.startswith("added 2, updated 0, unchanged 0, skipped 0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "add-docs", "cli-pack", "/no/such/file.md"], "does not exist"),
        (["index", "search", "no-such-pack", "q"], "unknown pack 'no-such-pack'"),
        (["index", "search", "cli-pack", "q"], "run `assistant index rebuild cli-pack`"),
        (["index", "remove", "cli-pack", "docs/a.md"], "run `assistant index rebuild cli-pack`"),
    ],
)
def test_bad_input_is_one_line_exit_2(run, args: list[str], message: str) -> None:
    make_pack("cli-pack")
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_damaged_index_is_one_line_exit_3_with_the_repair_command(run) -> None:
    pack = make_pack("cli-pack")
    assert run("index", "add-docs", "cli-pack", str(FIXTURES)).exit_code == 0
    (manifest,) = pack.index_dir.rglob("manifest.json")
    manifest.write_text('{"documents": 3, "chun')  # cut short, as by a full disk
    result = run("index", "stats", "cli-pack")
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the index of pack 'cli-pack'")
    assert "run `assistant index rebuild cli-pack`" in lines[0]
