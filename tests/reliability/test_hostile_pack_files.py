"""Hostile pack files: a pack.toml and JSONL lines nested 100,000 levels deep (the parsers of
the standard library recurse once per level and raise RecursionError, which is no AssistantError
and used to end in a traceback). `assistant pack validate` reports each with its file and line
(exit code 2, as for any problem), commands that load the pack stop with one line and exit 2.

The same inputs reach the readers outside the pack layer: the eval runner, the training reader
and the settings loader report them too (these tests found them raising, and failing a line
holding U+2028, which json.dumps(ensure_ascii=False) writes raw)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_pack_helpers import new_pack

from assistant.cli import commands  # noqa: F401  (registers the commands)
from assistant.cli.app import cli
from assistant.packs.locate import DomainPack, user_packs_dir

DEPTH = 100_000
DEEP_ARRAY = "[" * DEPTH + "]" * DEPTH


@pytest.fixture
def pack() -> DomainPack:
    """A valid user pack (found by name) in this test's ASSISTANT_HOME."""
    return new_pack(user_packs_dir())


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert not isinstance(result.exception, RecursionError), "a traceback, not a report"
    return result.exit_code, result.output


@pytest.mark.parametrize("value", [DEEP_ARRAY, "{a = " * DEPTH + "1" + "}" * DEPTH])
def test_deep_pack_toml_is_reported_not_raised(pack: DomainPack, value: str) -> None:
    pack.pack_toml.write_text(pack.pack_toml.read_text("utf-8") + f"\nbomb = {value}\n", "utf-8")
    code, output = run("pack", "validate", "demo")
    assert code == 2 and f"{pack.pack_toml}: nested too deeply" in output
    code, output = run("index", "rebuild", "demo")
    assert code == 2 and output.count("\n") == 1 and "nested too deeply" in output


def test_deep_jsonl_lines_are_reported_with_their_line(pack: DomainPack) -> None:
    for path in (pack.sft_file, pack.eval_file):
        lines = path.read_text("utf-8").splitlines()
        lines.insert(1, '{"question": ' + DEEP_ARRAY + "}")
        path.write_text("\n".join(lines) + "\n", "utf-8")
    code, output = run("pack", "validate", "demo")
    assert code == 2
    assert f"{pack.sft_file}:2: nested too deeply" in output
    assert f"{pack.eval_file}:2: nested too deeply" in output


def test_eval_runner_reports_a_deep_line(tmp_path: Path) -> None:
    from assistant.evaluation.run import load_cases

    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": ' + DEEP_ARRAY + "}\n", "utf-8")
    cases, problems = load_cases(path)
    assert not cases and [p.line for p in problems] == [1]


def test_training_reads_a_line_validate_accepts(pack: DomainPack) -> None:
    from assistant.packs.validation import validate_pack
    from assistant.training.chat_data import read_sft_lines

    rows = [json.loads(line) for line in pack.sft_file.read_text("utf-8").splitlines()]
    rows[0]["messages"][1]["content"] += " A line\u2028separator."
    pack.sft_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    assert validate_pack(pack) == []
    assert len(read_sft_lines(pack)) == len(rows)


def test_deep_config_file_is_one_error(tmp_path: Path) -> None:
    from assistant.errors import AssistantError
    from assistant.settings import load_settings

    config = tmp_path / "config.toml"
    config.write_text(f"bomb = {DEEP_ARRAY}\n", "utf-8")
    with pytest.raises(AssistantError, match="config.toml"):
        load_settings(config)
