"""SIGKILL during `assistant index add-docs`, `remove` and `rebuild`, at randomized points: the
pack afterwards holds either the previous index or the finished one (never a mix), it loads,
searches and passes `validate_pack`, every indexed document's file is intact, and rerunning the
command finishes the work and leaves no temporary files behind.

Each command is run once unkilled to measure its duration and its file-system write operations,
then DELAYS times killed after a random delay within that duration and OP_KILLS times killed
right before or after a random one of its write operations (seeded; FAULTS_SEED=n explores other
points), plus the four targeted points around the two renames that publish a generation. Up to
CHAIN kills hit the same crashed pack in a row (leftovers of one crash under the next), then a
rerun must finish the work and the pack is restored from a pristine copy. See conftest.py for
the fork server.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from assistant.knowledge import open_index
from assistant.knowledge.pipeline import file_sha256
from assistant.packs.locate import DomainPack
from assistant.packs.scaffold import create_pack
from assistant.packs.validation import validate_pack

if TYPE_CHECKING:
    from conftest import ForkServer, Run

SEED = int(os.environ.get("FAULTS_SEED", "10"))
DELAYS = 10
OP_KILLS = 10
TARGETED = 4
CHAIN = 4  # kills in a row on the crashed state before a rerun must finish the work
NAME = "kb-faults"
NOTES = {
    "compost.md": "# Compost\n\nTurn the compost heap every week so air reaches the microbes.",
    "n1.md": "# Lighthouses\n\nA lighthouse lamp turns once every ten seconds.",
    "n2.md": "# Glaciers\n\nGlaciers carve U-shaped valleys as they creep downhill.",
    "n3.md": "# Beekeeping\n\nBees need a water source within a short flight of the hive.",
    "n4.md": "# Origami\n\nA crane takes one square sheet and no cuts.",
}
BATCH = {
    f"b{n}.md": f"# {topic}\n\nA short note about {topic} number {n}."
    for n, topic in enumerate(["tidal pools", "meteorites", "kites", "sourdough", "moss", "ferns"])
}

Snapshot = dict[str, str]  # indexed document path -> sha256


class Lab:
    """The pack in the server's home, restored from a pristine copy before each run."""

    def __init__(self, server: ForkServer, settings, embedder) -> None:
        self.server = server
        self.home = home = server.home
        self.settings = settings
        self.embedder = embedder
        self.pristine = home.parent / f"{home.name}-pristine"
        self.pack = DomainPack(NAME, home / "packs" / NAME)

    def snapshot(self) -> Snapshot:
        index = open_index(self.pack, self.settings, embedder=self.embedder)
        return {d.path: d.sha256 for d in index.documents()}

    def save_pristine(self) -> None:
        shutil.rmtree(self.pristine, ignore_errors=True)
        shutil.copytree(self.home, self.pristine, symlinks=True)

    def restore(self) -> None:
        for part in ("packs", "indexes"):
            shutil.rmtree(self.home / part / NAME)
            shutil.copytree(self.pristine / part / NAME, self.home / part / NAME, symlinks=True)

    def check(self, states: list[Snapshot], files_match: bool) -> int:
        """The index is one of `states` (returns which), loads, searches and validates."""
        index = open_index(self.pack, self.settings, embedder=self.embedder)
        state = {d.path: d.sha256 for d in index.documents()}
        assert state in states, sorted(state)
        assert index.search("how often do I turn the compost heap", k=1)[0].path == (
            "docs/compost.md"
        )
        assert validate_pack(self.pack) == []
        if files_match:
            for path, sha in state.items():
                assert file_sha256(self.pack.root / path)[0] == sha, path
        return states.index(state)

    def doc_files(self) -> set[str]:
        docs = self.pack.docs_dir
        return {
            f"docs/{p.relative_to(docs).as_posix()}"
            for p in docs.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }

    def leftovers(self) -> list[str]:
        index_dir = self.pack.index_dir
        found = [p.name for p in index_dir.iterdir() if p.name.startswith((".tmp", ".CURRENT"))]
        found += [p.name for p in self.pack.docs_dir.rglob(".*.partial")]
        generations = [p for p in index_dir.iterdir() if p.name.startswith("g")]
        return found + (["too many generations"] if len(generations) > 2 else [])


@pytest.fixture(scope="module")
def lab(fork_server: ForkServer, settings, embedder) -> Lab:
    create_pack(NAME, parent=fork_server.home / "packs")
    lab = Lab(fork_server, settings, embedder)
    for name, text in NOTES.items():
        (lab.pack.docs_dir / name).write_text(text, "utf-8")
    assert fork_server.run("index", "rebuild", NAME).status == 0
    lab.save_pristine()
    return lab


def kill_points(rng: random.Random, measured: Run) -> list[tuple[str, float]]:
    """Random delays within the measured run and random write operations, then the points right
    before and after the generation rename and the CURRENT replace (TARGETED, from a clean
    pack, since a crashed pack shifts the operations)."""
    points = [("delay", round(rng.uniform(0.0, measured.seconds), 3)) for _ in range(DELAYS)]
    ops = len(measured.ops)
    points += [("op", n) for n in rng.sample(range(2, 2 * ops + 2), OP_KILLS)]
    rng.shuffle(points)
    for number, line in enumerate(measured.ops, start=1):
        _, name, target = line.split(" ", 2)
        if (name, Path(target).name[:6]) in {("rename", ".tmp-g"), ("replace", ".CURRE")}:
            points += [("op", 2 * number), ("op", 2 * number + 1)]
    assert len(points) == DELAYS + OP_KILLS + TARGETED
    return points


def exercise(
    lab: Lab,
    argv: list[str],
    finished: Callable[[Snapshot], Snapshot],
    *,
    files_match: bool = True,
    seed: int,
) -> None:
    lab.restore()
    before = lab.snapshot()
    measured = lab.server.run(*argv)
    assert measured.status == 0, measured.output
    after = lab.snapshot()
    assert after == finished(before) and after != before
    points = kill_points(random.Random(SEED * 1000 + seed), measured)
    outcomes: Counter[str] = Counter()
    lab.restore()
    for number, (how, value) in enumerate(points, start=1):
        if how == "delay":
            run = lab.server.run(*argv, kill_after=value)
        else:
            run = lab.server.run(*argv, kill_at=int(value))
        assert run.killed or run.status == 0, run.output
        state = lab.check([before, after], files_match)
        outcomes[f"{'killed' if run.killed else 'finished'} -> {('before', 'after')[state]}"] += 1
        if state == 0 and number % CHAIN and number < DELAYS + OP_KILLS:
            continue  # the next kill starts from this crashed state, leftovers and all
        rerun = lab.server.run(*argv)
        assert rerun.status == 0, rerun.output
        assert lab.check([after], files_match=True) == 0
        assert lab.doc_files() == set(after)  # every file in docs/ indexed, nothing more
        assert lab.leftovers() == []
        lab.restore()
    print(f"{argv[:2]}: {len(points)} kill points {dict(outcomes)}, run {measured.seconds:.2f} s")
    killed = sum(n for key, n in outcomes.items() if key.startswith("killed"))
    assert killed >= OP_KILLS + TARGETED  # a random delay may outlast a quick command
    assert outcomes["killed -> after"] >= 1  # some landed after the switch to the new index


def test_sigkill_during_add_docs(lab: Lab, tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    for name, text in BATCH.items():
        (batch / name).write_text(text, "utf-8")

    def finished(before: Snapshot) -> Snapshot:
        added = {f"docs/{n}": file_sha256(batch / n)[0] for n in BATCH}
        return {**before, **added}

    exercise(lab, ["index", "add-docs", NAME, str(batch)], finished, seed=1)


def test_sigkill_during_remove(lab: Lab) -> None:
    doomed = ["docs/n1.md", "docs/n2.md"]

    def finished(before: Snapshot) -> Snapshot:
        return {path: sha for path, sha in before.items() if path not in doomed}

    exercise(lab, ["index", "remove", NAME, *doomed], finished, seed=2)


def test_sigkill_during_rebuild(lab: Lab) -> None:
    """docs/ changed behind the index's back (one file new, one edited, one deleted)."""
    lab.restore()
    docs = lab.pack.docs_dir
    (docs / "n5.md").write_text("# Kites\n\nA box kite flies best in steady wind.", "utf-8")
    (docs / "n3.md").write_text("# Beekeeping\n\nA queen bee lays up to two thousand eggs.")
    (docs / "n4.md").unlink()
    lab.save_pristine()

    def finished(before: Snapshot) -> Snapshot:
        names = sorted(p.name for p in docs.iterdir() if p.is_file())
        return {f"docs/{n}": file_sha256(docs / n)[0] for n in names}

    exercise(lab, ["index", "rebuild", NAME], finished, files_match=False, seed=3)
