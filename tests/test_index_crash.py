"""A writer killed with SIGKILL mid-way leaves the previous index intact; a rerun finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from index_helpers import FIXTURES, make_pack

from assistant.knowledge import open_index
from assistant.knowledge.store import current_generation

CHILD = """
import sys, time
from pathlib import Path
from assistant.knowledge import open_index, store
from assistant.packs.locate import DomainPack
from assistant.settings import load_settings

mode, root, source = sys.argv[1:4]

def hang():
    print("HANG", flush=True)
    time.sleep(600)

if mode == "publish":  # stop after the new generation is in place, before CURRENT switches
    real = store.atomic_write_bytes
    def patched(path, data):
        if path.name == store.CURRENT:
            hang()
        return real(path, data)
    store.atomic_write_bytes = patched

def progress(done, total, label):
    if mode == "embed" and done >= 2:  # files copied and embedded, nothing published yet
        hang()

index = open_index(DomainPack("kb", Path(root)), load_settings(), commit_chunks=10**9)
index.add_docs([Path(source)], progress=progress)
print("DONE", flush=True)
"""


@pytest.mark.parametrize("mode", ["embed", "publish"])
def test_sigkill_mid_add_docs_keeps_previous_index(
    settings, embedder, tmp_path: Path, mode: str
) -> None:
    pack = make_pack()
    idx = open_index(pack, settings, embedder=embedder)
    idx.add_docs([FIXTURES / "notes.txt"])
    before = current_generation(pack.index_dir)
    source = tmp_path / "batch"
    source.mkdir()
    topics = ["lighthouses", "glaciers", "beekeeping", "origami", "tidal pools", "meteorites"]
    for n, topic in enumerate(topics):
        (source / f"topic{n}.md").write_text(f"# {topic}\n\nA short note about {topic}.")

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(pack.root), str(source)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "HANG"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    assert current_generation(pack.index_dir) == before
    fresh = open_index(pack, settings, embedder=embedder)
    assert [d.path for d in fresh.documents()] == ["docs/notes.txt"]
    assert fresh.search("compost heap", k=1)[0].path == "docs/notes.txt"

    report = fresh.add_docs([source])
    assert len(report.added) == 6
    assert fresh.search("tidal pools", k=1)[0].path == "docs/topic4.md"
    leftovers = [p.name for p in pack.index_dir.iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []
    assert len([p for p in pack.index_dir.iterdir() if p.name.startswith("g")]) <= 2
