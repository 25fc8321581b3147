"""`assistant eval` end to end with the real router, embedder and base model (kept small: at
most two generated answers of 8 tokens; calibration needs retrieval only)."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.packs.locate import PROJECT_ROOT

PENGUIN = {
    "question": "How many islands make up the Calloway Archipelago?",
    "answer": "It is a chain of 23 cold, windswept islands in the far southern ocean.",
    "source": "docs/01_origin_and_species.md",
    "facts": ["23 cold, windswept islands", "far southern ocean"],
}


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def _packs_at(tmp_path: Path, monkeypatch, names: list[str], copy: bool = False) -> Path:
    """Only these packs, under tmp_path/domains (symlinked, or copied when `copy`), with their
    built indexes linked in tmp_path/indexes where DomainPack.index_dir looks."""
    domains, indexes = tmp_path / "domains", tmp_path / "indexes"
    domains.mkdir()
    indexes.mkdir()
    for name in names:
        if copy:
            shutil.copytree(PROJECT_ROOT / "domains" / name, domains / name,
                            ignore=shutil.ignore_patterns("adapter"))  # fmt: skip
        else:
            (domains / name).symlink_to(PROJECT_ROOT / "domains" / name)
        (indexes / name).symlink_to(PROJECT_ROOT / "indexes" / name)
    monkeypatch.setattr("assistant.packs.locate.search_dirs", lambda: [domains])
    return domains


def _run(args: list[str]):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result


def test_pack_eval_json_schema_and_malformed_line(tmp_path):
    qa = _write_jsonl(
        tmp_path / "qa.jsonl",
        [PENGUIN, "{broken", {"question": "What is the population of Canada?",
                              "out_of_scope": True}],
    )  # fmt: skip
    result = _run(["eval", "penguin-wood", "--qa", str(qa), "--max-tokens", "8", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert f"{qa}:2: not valid JSON" in result.stderr
    data = json.loads(result.stdout)  # JSON alone on stdout; the table goes to stderr
    assert "answer_fact_recall" in result.stderr
    assert data["pack"] == "penguin-wood" and data["n"] == 2
    (problem,) = data["problems"]
    assert problem["line"] == 2 and "not valid JSON" in problem["message"]
    metrics = data["metrics"]
    for name in (
        "hit_at_k",
        "mrr",
        "context_fact_recall",
        "answer_fact_recall",
        "token_f1",
        "rouge_l",
        "oos_decline_rate",
        "in_scope_answer_rate",
        "latency_p50_ms",
    ):
        assert isinstance(metrics[name], float), name  # fmt: skip
    assert metrics["hit_at_k"] == 1.0  # the archipelago passage is retrieved
    first, second = data["items"]
    for key in ("question", "answer", "declined", "pack", "sources", "facts_found", "scores"):
        assert key in first
    assert first["sources"] and first["sources"][0]["path"].startswith("docs/")
    assert second["scores"] == {} and second["question"].startswith("What is the population")


def test_extractive_mode_quotes_the_facts_and_cites_the_source(tmp_path):
    qa = _write_jsonl(tmp_path / "qa.jsonl", [PENGUIN])
    result = _run(["eval", "penguin-wood", "--qa", str(qa), "--mode", "extractive", "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    item = data["items"][0]
    assert "23 cold, windswept islands" in item["answer"]  # quoted verbatim from the passage
    assert data["metrics"]["answer_fact_recall"] > 0
    assert data["metrics"]["source_cited_rate"] == 1.0


def test_auto_routing_accuracy_on_three_lines(tmp_path, monkeypatch):
    _packs_at(tmp_path, monkeypatch, ["penguin-wood", "support"])
    qa = _write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"question": "Why does it use so much CPU?", "domain": "support",
             "source": "docs/users__faq-parts__troubleshooting.md", "facts": ["SHA-256"]},
            {"question": "What is the population of Canada?", "domain": None},
            {"question": "Who won the football world cup in 1998?", "domain": None},
        ],
    )  # fmt: skip
    out = tmp_path / "auto.json"
    result = _run(["eval", "--auto", "--qa", str(qa), "--max-tokens", "8", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["pack"] == "auto" and data["n"] == 3
    assert [i["pack"] for i in data["items"]] == ["support", None, None]
    assert data["metrics"]["routing_accuracy"] == 1.0
    assert data["confusion"] == {"support": {"support": 1}, "none": {"none": 2}}
    assert "routing_accuracy" in result.stdout and "expected (rows)" in result.stdout


@pytest.mark.parametrize(("start", "direction"), [(0.95, "down"), (-0.5, "up")])
def test_calibrate_write_moves_the_threshold_in_pack_toml(tmp_path, monkeypatch, start, direction):
    domains = _packs_at(tmp_path, monkeypatch, ["penguin-wood"], copy=True)
    toml = domains / "penguin-wood" / "pack.toml"
    original = toml.read_text()
    mine = f"[retrieval]\ndecline_threshold = {start}  # mine\n"
    toml.write_text(original.replace("[retrieval]\n", mine))
    qa = _write_jsonl(
        tmp_path / "qa.jsonl",
        [
            PENGUIN,
            {"question": "How wide is the sapwood on a penguin wood log?", "source": "docs/x.md"},
            {"question": "What is the population of Canada?", "out_of_scope": True},
            {"question": "Who won the football world cup in 1998?", "out_of_scope": True},
        ],
    )  # fmt: skip
    result = _run(["eval", str(domains / "penguin-wood"), "--qa", str(qa), "--calibrate",
                   "--write", "--json", str(tmp_path / "cal.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    change = json.loads((tmp_path / "cal.json").read_text())["calibration"][0]
    assert change["written"] and change["accuracy_after"] == 1.0
    assert change["accuracy_after"] > change["accuracy_before"]
    new = tomllib.loads(toml.read_text())["retrieval"]["decline_threshold"]
    assert new == change["after"]
    assert (new < start) if direction == "down" else (new > start)
    assert f"decline_threshold = {new}  # mine\n" in toml.read_text()
    # Nothing else in the file changed.
    assert toml.read_text().replace(f"decline_threshold = {new}  # mine\n", "") == original
    assert (PROJECT_ROOT / "domains/penguin-wood/pack.toml").read_text() == original


def test_usage_errors_are_one_line(tmp_path):
    result = _run(["eval"])
    assert result.exit_code == 2 and "give one of" in result.stderr
    result = _run(["eval", "--auto"])
    assert result.exit_code == 2 and "--qa" in result.stderr
