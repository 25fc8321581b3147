"""Damaged files are detected when the index is opened: `assistant index search` (the same path
a chat or `ask` takes) fails with a DamagedDataError, one line naming the damaged file and the
repair command, never a traceback and never an answer from altered data; the repair command
then works. Cases: truncated vectors.faiss, a docstore row altered in place (a wrong answer if
unchecked), a docstore page overwritten, a truncated BM25 file, a manifest that is not JSON, a
manifest naming another embedder, a docstore row missing or a page damaged in an index whose
manifest predates the checksums, and a pack.toml with invalid UTF-8.

An adapter cut in half is covered by tests/test_training.py (library) and
test_faults_train.py (through the CLI); `pack validate` on invalid UTF-8 by
tests/test_pack_validation.py.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from index_helpers import FIXTURES, make_pack

from assistant.cli import commands  # noqa: F401  (registers the commands)
from assistant.cli.app import cli
from assistant.errors import DamagedDataError
from assistant.knowledge import open_index, store
from assistant.packs.locate import DomainPack

QUERY = "how often should I turn the compost heap"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def alter_row(path: Path) -> None:
    """Same-length edit of a chunk's text: SQLite reads it happily, the answer would be wrong."""
    raw = path.read_bytes()
    assert raw.count(b"Compost turns kitchen") >= 1
    path.write_bytes(raw.replace(b"Compost turns kitchen", b"Asphalt turns kitchen"))


def garble_page(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    page = len(raw) // 4096 - 1  # the last page holds rows
    raw[page * 4096 : page * 4096 + 600] = bytes(range(200)) * 3
    path.write_bytes(bytes(raw))


def drop_row(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("DELETE FROM chunks WHERE text LIKE 'Compost%'")
    db.commit()
    db.close()


def edit_manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return edit


def forget_checksums(manifest: dict) -> None:
    del manifest["files"]


def other_embedder(manifest: dict) -> None:
    manifest["embedder"]["name"] = "bge-large-en"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """A home with pack kb indexed from the fixture documents, built once per module."""
    home = tmp_path_factory.mktemp("built")
    pack = DomainPack("kb", home / "packs" / "kb")
    (pack.docs_dir).mkdir(parents=True)
    shutil.copytree(FIXTURES, pack.docs_dir, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASSISTANT_HOME", str(home))
        result = run("index", "rebuild", "kb")
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def pack(built: Path) -> DomainPack:
    pack = make_pack("kb")
    shutil.copytree(built / "packs" / "kb", pack.root, dirs_exist_ok=True)
    shutil.copytree(built / "indexes" / "kb", pack.index_dir)
    return pack


def live(pack: DomainPack) -> Path:
    generation = store.current_generation(pack.index_dir)
    assert generation is not None
    return generation


@pytest.mark.parametrize(
    ("file", "damage", "expected"),
    [
        (store.VECTORS, truncate, "vectors.faiss has"),
        (store.DOCSTORE, alter_row, "docstore.sqlite does not match"),
        (store.DOCSTORE, garble_page, "docstore.sqlite does not match"),
        ("bm25/vocab.index.json", truncate, "vocab.index.json has"),
        (store.MANIFEST, lambda p: p.write_text('{"format_version": 1, "embed'), "cannot be read"),
        (store.MANIFEST, edit_manifest(other_embedder), "embedder 'bge-large-en'"),
    ],
    ids=[
        "faiss-truncated",
        "row-altered",
        "page-garbled",
        "bm25-truncated",
        "manifest-json",
        "manifest-embedder",
    ],
)
def test_damaged_index_is_named_with_the_repair_command(
    pack: DomainPack, settings, file: str, damage: Callable[[Path], None], expected: str
) -> None:
    generation = live(pack)
    damage(generation / file)
    with pytest.raises(DamagedDataError, match=r"run `assistant index rebuild kb`"):
        open_index(pack, settings).search(QUERY)
    result = run("index", "search", "kb", QUERY)
    assert result.exit_code == DamagedDataError.exit_code, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(generation / file.split("/")[0]) in result.stderr
    assert expected in result.stderr
    assert "run `assistant index rebuild kb`" in result.stderr
    assert "Asphalt" not in result.output

    repaired = run("index", "rebuild", "kb")
    assert repaired.exit_code == 0, repaired.output
    result = run("index", "search", "kb", QUERY, "-k", "1")
    assert result.exit_code == 0 and result.output.startswith("1. docs/notes.txt")
    assert "Compost turns kitchen" in result.output


@pytest.mark.parametrize(
    ("damage", "expected"),
    [(drop_row, "has no row for chunk"), (garble_page, "database disk image is malformed")],
    ids=["row-missing", "page-garbled"],
)
def test_damaged_docstore_of_an_index_without_checksums(
    pack: DomainPack, settings, embedder, damage: Callable[[Path], None], expected: str
) -> None:
    """Indexes built before the manifest carried checksums: damage found while reading rows."""
    generation = live(pack)
    edit_manifest(forget_checksums)(generation / store.MANIFEST)
    damage(generation / store.DOCSTORE)
    with pytest.raises(DamagedDataError, match=expected):
        open_index(pack, settings, embedder=embedder).search(QUERY)
    result = run("index", "search", "kb", QUERY)
    assert result.exit_code == DamagedDataError.exit_code, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{generation / store.DOCSTORE} " in result.stderr and expected in result.stderr
    assert "run `assistant index rebuild kb`" in result.stderr


def test_unreadable_manifest_in_stats_points_at_rebuild(pack: DomainPack) -> None:
    manifest = live(pack) / store.MANIFEST
    manifest.write_bytes(b"\x00" * 40)
    result = run("index", "stats", "kb")
    assert result.exit_code == 3, result.output  # damaged data
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"damaged: {manifest} cannot be read" in result.stderr
    assert "run `assistant index rebuild kb`" in result.stderr


def test_pack_toml_with_invalid_utf8_is_named_on_load(pack: DomainPack) -> None:
    pack.pack_toml.write_bytes(b'name = "kb"\ntitle = "caf\xe9"\n')
    result = run("index", "search", "kb", QUERY)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{pack.pack_toml}:2: not valid UTF-8" in result.stderr
    assert "re-save the file as UTF-8" in result.stderr
