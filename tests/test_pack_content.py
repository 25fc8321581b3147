"""The shipped packs' content: facts are in their sources, kinds are present, eval is unseen,
and the generated files match a fresh build of scripts/build_packs.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKS = ["diabetes", "contracts", "support", "penguin-wood"]
CORPORA = REPO.parent / "shared" / "corpora"


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load(path: Path) -> list[dict]:
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"{path}:{i} is blank"
        rows.append(json.loads(line))
    return rows


@pytest.fixture(params=PACKS)
def pack(request) -> Path:
    return REPO / "domains" / request.param


def test_sft_lines(pack: Path):
    rows = load(pack / "sft" / "train.jsonl")
    assert len(rows) >= 150
    kinds = {r["kind"] for r in rows}
    assert kinds == {"answer", "decline_offtopic", "no_passage"}
    for r in rows:
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert all(m["content"].strip() for m in r["messages"])
        assert "[1]" not in r["messages"][2]["content"]
        if r["kind"] == "answer":
            assert r["source"].startswith("docs/")
            assert 1 <= len(r["facts"]) <= 4
            doc = (pack / r["source"]).read_text(encoding="utf-8")
            for f in r["facts"]:
                assert norm(f) in norm(doc), (r["source"], f)
                assert norm(f) in norm(r["messages"][2]["content"]), f
        else:
            assert "source" not in r
            assert r["facts"] == []


def test_eval_lines(pack: Path):
    rows = load(pack / "eval" / "qa.jsonl")
    oos = [r for r in rows if r["out_of_scope"]]
    ins = [r for r in rows if not r["out_of_scope"]]
    assert len(oos) >= 8 and len(ins) >= 12
    for r in oos:
        assert r["question"].strip() and r["facts"] == []
    for r in ins:
        assert {"question", "answer", "source", "facts", "out_of_scope"} <= set(r)
        assert 1 <= len(r["facts"]) <= 4
        doc = (pack / r["source"]).read_text(encoding="utf-8")
        for f in r["facts"]:
            assert norm(f) in norm(doc), (r["source"], f)


def test_eval_questions_not_in_sft(pack: Path):
    sft_q = {norm(r["messages"][1]["content"]) for r in load(pack / "sft" / "train.jsonl")}
    for r in load(pack / "eval" / "qa.jsonl"):
        assert norm(r["question"]) not in sft_q, r["question"]


def test_pack_files(pack: Path):
    import tomllib

    meta = tomllib.loads((pack / "pack.toml").read_text(encoding="utf-8"))
    assert meta["name"] == pack.name
    assert (pack / "SOURCES.md").is_file()
    docs = [p for p in (pack / "docs").rglob("*") if p.is_file()]
    assert docs
    for p in docs:
        first = p.read_text(encoding="utf-8").splitlines()[0]
        assert "ource" in first or first.startswith("#"), p


@pytest.mark.skipif(not CORPORA.is_dir(), reason="shared corpora not present")
def test_build_is_reproducible():
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_packs.py"),
            "--check",
            "--corpora",
            str(CORPORA),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
