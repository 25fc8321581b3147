"""Every command with a `--json` option prints the JSON alone on stdout (tables, progress and
notes go to stderr), so `assistant ... --json | jq` works. The arguments are the cheapest that
run the command for real (one question, one token): these tests check the output channel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from index_helpers import FIXTURES, make_pack

from assistant.cli import cli

QUESTION = "How long does 50 mm penguin wood stock take in the kiln?"


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _indexed_pack(tmp_path: Path) -> None:
    """A user pack `json-pack` with the fixture documents indexed."""
    make_pack("json-pack")
    assert _invoke("index", "add-docs", "json-pack", str(FIXTURES)).exit_code == 0


def _pack_with_docs(tmp_path: Path) -> None:
    """A user pack `json-pack` with the fixture documents in docs/, not indexed yet."""
    shutil.copytree(FIXTURES, make_pack("json-pack").docs_dir, dirs_exist_ok=True)


def _small_pack(tmp_path: Path) -> None:
    """A new user pack `json-small`: the fixture documents, indexed, and the two example
    training lines (so `train --dry-run` retrieves for two lines, not a shipped pack's hundreds)."""
    new = ("pack", "new", "json-small", "--from", str(FIXTURES), "--no-draft")
    assert _invoke(*new).exit_code == 0


def _milvus_pack(tmp_path: Path) -> None:
    """A user pack `json-milvus` indexed with FAISS whose pack.toml now names Milvus."""
    from store_helpers import set_store, store_pack

    pack = store_pack("json-milvus", "faiss")
    assert _invoke("index", "add-docs", "json-milvus", str(FIXTURES)).exit_code == 0
    set_store(pack, "milvus")


def _archive(tmp_path: Path) -> None:
    """tmp_path/share.tar.gz: a new pack's export, for `pack import`."""
    assert _invoke("pack", "new", "share", "--no-index", "--dir", str(tmp_path)).exit_code == 0
    archive = str(tmp_path / "share.tar.gz")
    assert _invoke("pack", "export", str(tmp_path / "share"), "-o", archive).exit_code == 0


# The arguments of each command; "{tmp}" stands for the test's tmp_path, "{fixtures}" for the
# fixture documents.
COMMANDS = {
    "ask": ["ask", "penguin-wood", QUESTION, "--max-tokens", "1", "--json"],
    "eval": ["eval", "penguin-wood", "--limit", "1", "--max-tokens", "1", "--json", "-"],
    "eval --calibrate": ["eval", "penguin-wood", "--limit", "4", "--calibrate", "--json", "-"],
    "index add-docs": ["index", "add-docs", "json-pack", "{fixtures}", "--json"],
    "index remove": ["index", "remove", "json-pack", "docs/notes.txt", "--json"],
    "index rebuild": ["index", "rebuild", "json-pack", "--json"],
    "index stats": ["index", "stats", "penguin-wood", "--json"],
    "index search": ["index", "search", "penguin-wood", "kiln", "-k", "1", "--json"],
    "index migrate": ["index", "migrate", "json-milvus", "--to", "milvus", "--json"],
    "models": ["models", "--json"],
    "config": ["config", "--json"],
    "pack list": ["pack", "list", "--json"],
    "pack show": ["pack", "show", "penguin-wood", "--json"],
    "pack validate": ["pack", "validate", "penguin-wood", "--json"],
    "pack new": ["pack", "new", "json-new", "--from", "{fixtures}", "--json"],
    "pack draft": ["pack", "draft", "json-small", "--count", "4", "--json"],
    "pack export": ["pack", "export", "penguin-wood", "-o", "{tmp}/p.tar.gz", "--json"],
    "pack import": ["pack", "import", "{tmp}/share.tar.gz", "--json"],
    "pack gguf-adapter": ["pack", "gguf-adapter", "support", "-o", "{tmp}/s.gguf", "--json"],
    "train": ["train", "json-small", "--dry-run", "--json"],
}
PREPARE = {
    "index add-docs": _pack_with_docs,
    "index remove": _indexed_pack,
    "index rebuild": _pack_with_docs,
    "index migrate": _milvus_pack,
    "pack import": _archive,
    "pack draft": _small_pack,
    "train": _small_pack,
}


def _commands_with_json(group: click.Group, prefix: str = "") -> set[str]:
    found = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found |= _commands_with_json(command, f"{path} ")
        elif any("--json" in option.opts for option in command.params):
            found.add(path)
    return found


def test_every_command_with_json_is_checked() -> None:
    checked = {name.split(" --")[0] for name in COMMANDS}
    assert _commands_with_json(cli) == checked


@pytest.mark.parametrize("name", list(COMMANDS))
def test_json_alone_on_stdout(name: str, tmp_path: Path, embedder) -> None:
    if name in PREPARE:
        PREPARE[name](tmp_path)
    args = [a.format(tmp=tmp_path, fixtures=FIXTURES) for a in COMMANDS[name]]
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # the whole of stdout, nothing before or after the JSON
