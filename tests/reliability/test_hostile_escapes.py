"""Pack names and document paths that try to leave their folder are refused, in every command.

A PACK argument that is a name (`index add-docs | remove | rebuild | stats | search`, `ask`,
`chat`, `pack new`) must be a plain name: `../evil`, `/tmp/evil`, `a/../../b`, a newline, a NUL
are refused in one line with exit code 2 before anything is read or written. The commands that
also take a pack folder (`pack show | validate | export`, `train`, `eval`) read an argument with
a slash as a path the user chose; one naming no folder is refused the same way. `index remove`
never deletes outside the pack's indexed documents, whatever path it is given; a docs/ folder
that is a link out of the pack is reported by `pack validate`. Escapes through symbolic links
inside a folder are tested with the bad files (test_hostile_files.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_pack_helpers import new_pack

from assistant.cli import commands  # noqa: F401  (registers the commands)
from assistant.cli.app import cli
from assistant.packs.validation import validate_pack
from assistant.settings import home_dir

ESCAPES = [
    "../evil",
    "../../outside/evil",
    "evil/../../x",
    "/tmp/evil",
    "~/evil",
    "C:\\evil",
    "..\\evil",
    "two\nlines",
    "evil\x00",
    "/tmp/evil\x00",
    ".hidden",
    "EVIL",
    "",
]
NAMES_ONLY = [
    ["index", "add-docs", "{}", "{file}"],
    ["index", "remove", "{}", "docs/a.md"],
    ["index", "rebuild", "{}"],
    ["index", "stats", "{}"],
    ["index", "search", "{}", "query"],
    ["ask", "{}", "What is this?"],
    ["chat", "{}"],
    ["pack", "new", "{}", "--no-index"],
]
NAMES_OR_FOLDERS = [
    ["pack", "show", "{}"],
    ["pack", "validate", "{}"],
    ["pack", "export", "{}", "-o", "{out}"],
    ["train", "{}", "--dry-run"],
    ["eval", "{}"],
]


def tree(*roots: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_mtime_ns) for r in roots for p in r.rglob("*"))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A real pack folder outside the packs folders: the target an escape would reach."""
    pack = new_pack(tmp_path / "outside")
    return pack.root


def refused(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), args
    line = result.output.strip()
    assert line.startswith("error: ") and "\n" not in line.replace("\\n", ""), (args, line)
    return line


@pytest.mark.parametrize("command", NAMES_ONLY, ids=lambda c: " ".join(c[:2]))
def test_a_pack_name_never_leaves_the_packs_folder(
    command: list[str], outside: Path, tmp_path: Path
) -> None:
    (tmp_path / "a.md").write_text("# A\n\nherons", "utf-8")
    before = tree(outside.parent, home_dir())
    for name in ESCAPES:
        args = [part.format(name, file=tmp_path / "a.md") for part in command]
        assert "invalid pack name" in refused(args)
    assert tree(outside.parent, home_dir()) == before, "nothing read into or written anywhere"


@pytest.mark.parametrize("command", NAMES_OR_FOLDERS, ids=lambda c: " ".join(c[:2]))
def test_a_pack_argument_naming_no_folder_is_refused(
    command: list[str], outside: Path, tmp_path: Path
) -> None:
    before = tree(outside.parent, home_dir())
    for name in ESCAPES:
        if not name and command[1] == "validate":
            continue  # `pack validate ""` validates every pack, as with no name
        args = [part.format(name, out=tmp_path / "x.tar.gz") for part in command]
        line = refused(args)
        assert "invalid pack name" in line or "is not a folder" in line, line
    assert tree(outside.parent, home_dir()) == before
    assert not (tmp_path / "x.tar.gz").exists()


def test_remove_never_deletes_outside_the_indexed_documents(tmp_path: Path) -> None:
    pack = new_pack(home_dir() / "packs", "kb")
    source = tmp_path / "guide.md"
    source.write_text("# Guide\n\nHerons fish at dawn in the marsh.", "utf-8")
    outside = tmp_path / "outside.md"
    outside.write_text("keep me", "utf-8")
    assert CliRunner().invoke(cli, ["index", "add-docs", "kb", str(source)]).exit_code == 0
    before = tree(tmp_path, pack.root)
    escapes = [
        "../pack.toml",
        "pack.toml",
        "docs/../pack.toml",
        "docs/../../../outside.md",
        "../../outside.md",
        str(outside),
        str(pack.pack_toml),
        "/etc/passwd",
        "docs/guide.md/../../pack.toml",
        "docs",
        "",
    ]
    result = CliRunner().invoke(cli, ["index", "remove", "kb", *escapes, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["removed"] == 0
    assert [s["reason"] for s in report["skipped"]] == ["not in the index"] * len(escapes)
    assert tree(tmp_path, pack.root) == before, "no file deleted or changed"
    stats = CliRunner().invoke(cli, ["index", "stats", "kb", "--json"])
    assert json.loads(stats.stdout)["documents"] == 1


def test_docs_linked_out_of_the_pack_is_reported(tmp_path: Path) -> None:
    pack = new_pack(tmp_path / "packs")
    (tmp_path / "home-folder").mkdir()
    (tmp_path / "home-folder" / "private.md").write_text("SECRET-TOKEN", "utf-8")
    for doc in pack.docs_dir.iterdir():
        doc.unlink()
    pack.docs_dir.rmdir()
    pack.docs_dir.symlink_to(tmp_path / "home-folder")
    messages = [p.message for p in validate_pack(pack) if p.file == str(pack.docs_dir)]
    assert messages == [
        "docs/ is a symbolic link to a folder outside the pack; make it a real folder"
    ]


def test_index_refuses_docs_linked_out_of_the_pack(tmp_path: Path) -> None:
    pack = new_pack(home_dir() / "packs", "kb")
    (tmp_path / "home-folder").mkdir()
    (tmp_path / "home-folder" / "private.md").write_text("# Diary\n\nSECRET-TOKEN", "utf-8")
    shutil.rmtree(pack.docs_dir)
    pack.docs_dir.symlink_to(tmp_path / "home-folder")
    result = CliRunner().invoke(cli, ["index", "rebuild", "kb"])
    assert result.exit_code == 2 and "outside" in result.output
