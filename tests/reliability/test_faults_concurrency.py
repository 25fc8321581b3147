"""Writers and readers of one pack's index in separate processes at the same time.

Two `assistant index add-docs` (and an add-docs racing a `remove`) started together: both
finish, no document is lost, every file in docs/ is indexed. A reader process searching in a
loop (one long-lived index like the chat's, and a fresh one each round like `ask`) while
add-docs runs again and again: it never fails, every hit belongs to the documents it sees, and
the number of documents it sees never goes down.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from assistant.knowledge import open_index
from assistant.packs.locate import DomainPack
from assistant.packs.scaffold import create_pack

if TYPE_CHECKING:
    from conftest import ForkServer

NAME = "kb-busy"
ROUNDS = 3
WRITES = 5

READER = """
import pathlib, time
from assistant.knowledge import open_index
from assistant.packs.locate import find_pack
from assistant.settings import load_settings

name, stop, query = argv
loaded = load_settings()
chat = open_index(find_pack(name), loaded)
deadline = time.monotonic() + 120
rounds = 0
while time.monotonic() < deadline and (rounds < 5 or not pathlib.Path(stop).exists()):
    index = chat if rounds % 2 else open_index(find_pack(name), loaded)
    paths = {d.path for d in index.documents()}
    hits = index.search(query, k=3)
    assert hits and all(h.path in paths for h in hits), (hits, sorted(paths))
    print(len(paths), flush=True)
    rounds += 1
"""


@pytest.fixture(scope="module")
def busy(fork_server: ForkServer) -> DomainPack:
    pack = create_pack(NAME, parent=fork_server.home / "packs").pack
    (pack.docs_dir / "compost.md").write_text("# Compost\n\nTurn the compost heap weekly.")
    assert fork_server.run("index", "rebuild", NAME).status == 0
    return pack


def batch(folder: Path, prefix: str, count: int) -> Path:
    folder.mkdir()
    for n in range(count):
        (folder / f"{prefix}{n}.md").write_text(f"# Note {prefix}{n}\n\nA note on {prefix} {n}.")
    return folder


def indexed(pack: DomainPack, settings, embedder) -> set[str]:
    return {d.path for d in open_index(pack, settings, embedder=embedder).documents()}


def on_disk(pack: DomainPack) -> set[str]:
    return {f"docs/{p.name}" for p in pack.docs_dir.iterdir() if not p.name.startswith(".")}


def test_two_writers_at_once_lose_nothing(
    fork_server: ForkServer, busy: DomainPack, settings, embedder, tmp_path: Path
) -> None:
    for round_ in range(ROUNDS):
        first = batch(tmp_path / f"a{round_}", f"a{round_}-", 3)
        second = batch(tmp_path / f"b{round_}", f"b{round_}-", 3)
        runs = [
            fork_server.start("index", "add-docs", NAME, str(first)),
            fork_server.start("index", "add-docs", NAME, str(second)),
        ]
        results = [fork_server.wait(run) for run in runs]
        for result in results:
            assert result.status == 0 and result.output.startswith("added 3,"), result.output
        assert indexed(busy, settings, embedder) == on_disk(busy)
    assert len(on_disk(busy)) == 2 + 6 * ROUNDS  # compost.md and welcome.md, then the batches

    doomed = "docs/a0-0.md"
    third = batch(tmp_path / "c", "c-", 3)
    runs = [
        fork_server.start("index", "add-docs", NAME, str(third)),
        fork_server.start("index", "remove", NAME, doomed),
    ]
    assert [fork_server.wait(run).status for run in runs] == [0, 0]
    assert doomed not in on_disk(busy)
    assert indexed(busy, settings, embedder) == on_disk(busy)


def test_reader_never_sees_a_half_written_index(
    fork_server: ForkServer, busy: DomainPack, settings, embedder, tmp_path: Path
) -> None:
    before = len(indexed(busy, settings, embedder))
    stop = tmp_path / "stop"
    reader = fork_server.start("-c", READER, NAME, str(stop), "compost heap")
    for n in range(WRITES):
        run = fork_server.run(
            "index", "add-docs", NAME, str(batch(tmp_path / f"w{n}", f"w{n}-", 2))
        )
        assert run.status == 0, run.output
    stop.touch()
    result = fork_server.wait(reader)
    assert result.status == 0, result.output
    seen = [int(line) for line in result.output.split()]
    print(f"reader: {len(seen)} rounds saw {sorted(set(seen))} documents")
    assert len(seen) >= 5 and seen == sorted(seen)
    assert seen[0] >= before and seen[-1] == before + 2 * WRITES
    assert len(set(seen)) >= 2  # it did read while the index changed
