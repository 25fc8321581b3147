"""`assistant pack ...` through click: exit 0 when valid, 2 with file:line problems when not,
JSON output, and the new -> validate -> export -> import round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_pack_helpers import line_of, replace_in

from assistant.cli import cli
from assistant.packs.locate import user_packs_dir


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def only_user_packs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide the project's shipped packs so listings hold only what a test creates."""
    monkeypatch.setattr(
        "assistant.packs.locate.project_domains_dir", lambda: tmp_path / "no-domains"
    )


def test_new_then_validate_in_a_folder(tmp_path: Path) -> None:
    docs = tmp_path / "src"
    (docs / "deep").mkdir(parents=True)
    (docs / "guide.md").write_text("# Guide\nSome text.", "utf-8")
    (docs / "deep" / "page.html").write_text("<p>Hello</p>", "utf-8")
    (docs / "image.png").write_bytes(b"\x89PNG")
    (docs / ".secret.md").write_text("hidden", "utf-8")
    parent = tmp_path / "domains"
    result = run(
        "pack",
        "new",
        "my-pack",
        "--dir",
        str(parent),
        "--from",
        str(docs),
        "--title",
        "My pack",
        "--no-index",
        "--no-draft",  # its two short documents give no question
        "--json",
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    root = parent / "my-pack"
    assert created["path"] == str(root.resolve())
    assert sorted(Path(p).relative_to(root.resolve()).as_posix() for p in created["documents"]) == [
        "docs/deep/page.html",
        "docs/guide.md",
    ]
    for relative in ("pack.toml", "docs/welcome.md", "sft/train.jsonl", "eval/qa.jsonl"):
        assert (root / relative).is_file(), relative
    assert "docs/guide.md" in (root / "SOURCES.md").read_text("utf-8")
    result = run("pack", "validate", str(root))
    assert result.exit_code == 0, result.output
    assert "my-pack: valid" in result.stdout
    assert [p.name for p in parent.iterdir()] == ["my-pack"]  # no staging folder left


def test_new_refuses_existing_and_bad_names(tmp_path: Path) -> None:
    assert run("pack", "new", "twice", "--no-index").exit_code == 0
    result = run("pack", "new", "twice", "--no-index")
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    result = run("pack", "new", "twice", "--dir", str(tmp_path), "--no-index")
    assert result.exit_code == 2
    result = run("pack", "new", "../escape", "--no-index")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "invalid pack name" in result.stderr
    result = run("pack", "new", "empty", "--from", str(tmp_path / "nothing"), "--no-index")
    assert result.exit_code == 2


def test_validate_exit_codes_and_problem_lines(only_user_packs: None) -> None:
    assert run("pack", "new", "good", "--no-index").exit_code == 0
    assert run("pack", "new", "bad", "--no-index").exit_code == 0
    assert run("pack", "validate").exit_code == 0
    toml = user_packs_dir() / "bad" / "pack.toml"
    replace_in(toml, "seed = 7", "seed = 7\nsneed = 8")
    result = run("pack", "validate")
    assert result.exit_code == 2
    assert "good: valid" in result.stdout
    expected = f"pack.toml:{line_of(toml, 'sneed')}: unknown key 'training.sneed'"
    assert expected in result.stderr
    assert run("pack", "validate", "good").exit_code == 0
    result = run("pack", "validate", "bad", "--json")
    assert result.exit_code == 2
    (report,) = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["problems"][0]["key"] == "training.sneed"


def test_validate_unknown_pack_is_one_line(only_user_packs: None) -> None:
    run("pack", "new", "alpha", "--no-index")
    result = run("pack", "validate", "alpah")
    assert result.exit_code == 2
    assert "Did you mean 'alpha'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_list_and_show_json(only_user_packs: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # a pack made when SmolLM2 was the base, with SmolLM2 configured
    monkeypatch.setenv("ASSISTANT_BASE_MODEL", "smollm2-135m")
    assert json.loads(run("pack", "list", "--json").stdout) == []
    run("pack", "new", "alpha", "--title", "Alpha things", "--no-index")
    # a pack from before adapters were kept per base: its one adapter in adapter/ itself,
    # recorded with the old name of the base
    adapter = user_packs_dir() / "alpha" / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "x"}', "utf-8")
    (adapter / "training.json").write_text('{"base_model": "smollm2-135m-instruct"}', "utf-8")
    (row,) = json.loads(run("pack", "list", "--json").stdout)
    assert row["name"] == "alpha"
    assert row["title"] == "Alpha things"
    assert row["documents"] == 1
    assert row["chunks"] is None
    assert row["adapter"]["trained"] is True
    assert row["adapter"]["base_model"] == "smollm2-135m"
    assert row["adapter"]["path"] == str(adapter.resolve())
    assert row["adapter"]["stale"] is None
    (adapter / "training.json").write_text('{"base_model": "other-7b"}', "utf-8")
    (row,) = json.loads(run("pack", "list", "--json").stdout)
    assert row["adapter"]["trained"] is False  # answers use the base alone
    assert [a["base_model"] for a in row["adapters"]] == ["other-7b"]
    shown = run("pack", "show", "alpha").stdout
    assert "adapter: none for smollm2-135m (base model answers); also for other-7b" in shown
    (adapter / "training.json").write_text('{"base_model": "smollm2-135m-instruct"}', "utf-8")
    assert row["eval_questions"] == 2
    result = run("pack", "list")
    assert result.exit_code == 0 and "alpha" in result.stdout
    shown = json.loads(run("pack", "show", "alpha", "--json").stdout)
    assert shown["valid"] is True
    assert shown["config"]["retrieval"]["k"] == 4
    assert shown["paths"]["pack_toml"].endswith("alpha/pack.toml")
    assert shown["paths"]["adapter"] == str(adapter.resolve())
    text = run("pack", "show", "alpha")
    assert text.exit_code == 0
    assert "trained on smollm2-135m" in text.stdout


def test_list_survives_a_broken_pack(only_user_packs: None) -> None:
    run("pack", "new", "broken", "--no-index")
    (user_packs_dir() / "broken" / "pack.toml").write_text("name = ", "utf-8")
    (row,) = json.loads(run("pack", "list", "--json").stdout)
    assert row["title"] is None and "not valid TOML" in row["error"]
    assert run("pack", "list").exit_code == 0
    shown = run("pack", "show", "broken", "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["valid"] is False


def test_export_import_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run("pack", "new", "share", "--no-index")
    archive = tmp_path / "share.tar.gz"
    result = run("pack", "export", "share", "-o", str(archive), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == 5
    original = user_packs_dir() / "share"
    before = {p.relative_to(original): p.read_bytes() for p in original.rglob("*") if p.is_file()}
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "other-home"))
    result = run("pack", "import", str(archive), "--json")
    assert result.exit_code == 0, result.output
    installed = Path(json.loads(result.stdout)["path"])
    after = {p.relative_to(installed): p.read_bytes() for p in installed.rglob("*") if p.is_file()}
    assert after == before
    assert run("pack", "import", str(archive)).exit_code == 2
    result = run("pack", "import", str(archive), "--force")
    assert result.exit_code == 0 and "Replaced" in result.stdout
    assert run("pack", "import", str(tmp_path / "missing.tar.gz")).exit_code == 2


@pytest.mark.slow
def test_new_from_folder_indexes_the_documents(tmp_path: Path, only_user_packs: None) -> None:
    docs = tmp_path / "src"
    docs.mkdir()
    (docs / "insulin.md").write_text("# Insulin\n\nInsulin is a hormone made by the pancreas.\n")
    result = run("pack", "new", "indexed", "--from", str(docs))
    assert result.exit_code == 0, result.output
    assert "indexed:" in result.stdout
    (row,) = json.loads(run("pack", "list", "--json").stdout)
    assert row["chunks"] and row["chunks"] >= 2
