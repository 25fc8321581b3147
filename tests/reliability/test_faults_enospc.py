"""A full disk while `assistant index add-docs` writes the index: ENOSPC injected at random write
operations up to the switch of CURRENT, and a really full tmpfs under the index folder left with
0 to 90% of a generation's size free. Each time: exit code 2 and one line naming the pack, the
free space and what to do; the index files byte for byte as before (no temporary or unpublished
folder left); the index loads, searches and the pack validates; with space again, the rerun
indexes everything. The adapter's side is in test_faults_train.py.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from assistant.knowledge import open_index
from assistant.packs.locate import DomainPack
from assistant.packs.scaffold import create_pack
from assistant.packs.validation import validate_pack

if TYPE_CHECKING:
    from conftest import ForkServer, Run

SEED = int(os.environ.get("FAULTS_SEED", "10"))
NAME = "kb-full"
FAILURES = 8
FREE = (0.0, 0.3, 0.6, 0.9)  # of the live generation's size on disk
CAN_FAIL = {"open", "os.open", "copyfile", "fsync", "rename", "replace"}


class Full:
    """The pack, a batch of new documents, and a pristine copy to restore after each run."""

    def __init__(self, server: ForkServer, root: Path) -> None:
        self.server = server
        self.pack = create_pack(NAME, parent=server.home / "packs").pack
        for n, topic in enumerate(["compost heaps", "lighthouses", "glaciers"]):
            (self.pack.docs_dir / f"n{n}.md").write_text(f"# {topic}\n\nA note on {topic}.")
        assert server.run("index", "rebuild", NAME).status == 0
        self.batch = root / "batch"
        self.batch.mkdir()
        for n, topic in enumerate(["tidal pools", "meteorites", "kites", "sourdough"]):
            (self.batch / f"b{n}.md").write_text(f"# {topic}\n\nA short note about {topic}.")
        self.pristine = root / "pristine"
        shutil.copytree(self.pack.root, self.pristine / "pack")
        shutil.copytree(self.pack.index_dir, self.pristine / "index")
        self.before = index_files(self.pack.index_dir)

    def restore(self) -> None:
        for folder, copy in [(self.pack.root, "pack"), (self.pack.index_dir, "index")]:
            shutil.rmtree(folder)
            shutil.copytree(self.pristine / copy, folder)

    def add_docs(self, **options: object) -> Run:
        return self.server.run("index", "add-docs", NAME, str(self.batch), **options)


def index_files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def assert_write_failed(run: Run) -> None:
    assert run.status == 2, run.output
    lines = run.output.strip().splitlines()
    assert len(lines) == 1, run.output
    assert lines[0].startswith(f"error: cannot write the index of pack {NAME!r}")
    assert "MiB free there" in lines[0] and "run the command again" in lines[0]


def assert_intact(pack: DomainPack, settings, embedder) -> None:
    index = open_index(pack, settings, embedder=embedder)
    assert [d.path for d in index.documents()] == [
        "docs/n0.md",
        "docs/n1.md",
        "docs/n2.md",
        "docs/welcome.md",
    ]
    assert index.search("compost heaps", k=1)[0].path == "docs/n0.md"
    assert validate_pack(pack) == []


@pytest.fixture(scope="module")
def full(fork_server: ForkServer, tmp_path_factory: pytest.TempPathFactory) -> Full:
    return Full(fork_server, tmp_path_factory.mktemp("full"))


def test_injected_enospc_during_add_docs(full: Full, settings, embedder) -> None:
    full.restore()
    measured = full.add_docs()
    assert measured.status == 0, measured.output
    ops = [line.split(" ", 2) for line in measured.ops]
    switch = next(
        n for n, op in enumerate(ops, 1) if (op[1], Path(op[2]).name[:8]) == ("replace", ".CURRENT")
    )
    writes = [n for n, op in enumerate(ops[:switch], 1) if op[1] in CAN_FAIL]
    points = random.Random(SEED * 1000 + 6).sample(writes, FAILURES - 1) + [switch]
    failed_ops: list[str] = []
    for number in points:
        full.restore()
        run = full.add_docs(fail_at=number)
        assert_write_failed(run)
        failed_ops.append(f"{ops[number - 1][1]} {Path(ops[number - 1][2]).name}")
        assert index_files(full.pack.index_dir) == full.before, failed_ops[-1]
        assert_intact(full.pack, settings, embedder)
        rerun = full.add_docs()
        assert rerun.status == 0, rerun.output
        assert rerun.output.startswith("added 4, updated 0, unchanged 0")
    print(f"ENOSPC injected at: {failed_ops}")


def test_really_full_disk_during_add_docs(full: Full, settings, embedder, tmp_path: Path) -> None:
    full.restore()
    generation = next(p for p in full.pack.index_dir.iterdir() if p.name.startswith("g"))
    size = sum(-(-p.stat().st_size // 4096) * 4096 for p in generation.rglob("*") if p.is_file())
    for fraction in FREE:
        out = tmp_path / f"free-{fraction}"
        tmpfs = {"dir": str(full.pack.index_dir), "free": int(size * fraction), "out": str(out)}
        run = full.add_docs(tmpfs=tmpfs)
        if run.status == full.server.setup_failed:
            pytest.skip(f"cannot mount a small tmpfs here: {run.output.strip().splitlines()[-1]}")
        assert_write_failed(run)
        assert index_files(out) == full.before, run.output
        print(f"{fraction:.0%} of {size} bytes free: {run.output.strip()[:160]}")
    assert index_files(full.pack.index_dir) == full.before  # the tmpfs was the child's own
    assert_intact(full.pack, settings, embedder)
