"""Faults during `assistant train` (one step on a tiny scaffolded pack).

SIGKILL: afterwards the pack holds its previous adapter byte for byte or the complete new one,
which passes `check_adapter` and loads; the pack validates; a rerun trains and leaves no staged
or old adapter folder behind. A full disk while the adapter is saved (ENOSPC injected at random
write operations up to the swap, and a really full tmpfs under the pack): exit code 2, one line
naming the pack and `assistant train`, the old adapter byte for byte, nothing left behind. A
damaged adapter is refused by `assistant ask` in one line naming the file and `assistant train`.

Kill points (seeded; FAULTS_SEED=n explores others): DELAYS random delays within the first
FIRST_SECONDS of the run (data, model load, the training step), SAVE_KILLS random points right
before or after a write operation of the save phase, and the points right before and after each
rename or swap that installs the new adapter folder. Each kill starts from the adapter the
previous one left. See conftest.py for the fork server.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from safetensors.torch import load_file
from settings_helpers import with_models

from assistant.packs.locate import DomainPack
from assistant.packs.scaffold import create_pack
from assistant.packs.validation import validate_pack
from assistant.runtime.adapters import check_adapter

if TYPE_CHECKING:
    from conftest import ForkServer, Run

SEED = int(os.environ.get("FAULTS_SEED", "10"))
NAME = "tiny-faults"
DELAYS = 17
FIRST_SECONDS = 3.0
SAVE_KILLS = 3
SAVE_FAILURES = 2
# Operations a full disk can fail (creating an existing folder, deleting a file, cannot).
CAN_FAIL = {"open", "os.open", "copyfile", "fsync", "rename", "replace", "exchange"}
TRAIN = ["train", NAME, "--max-steps", "1"]
WEIGHTS = "adapter_model.safetensors"
STAGED = ".adapter.tmp-{pid}-"
# Training's faults on the small base: the same save path as any base, one step in seconds
# (on Qwen2.5-Coder-0.5B a step takes minutes and 8.5 GB, for every kill point).
BASE = "smollm2-135m"
SMALL = {"ASSISTANT_BASE_MODEL": BASE}


def adapter_dir(pack: DomainPack) -> Path:
    return pack.adapter_dir_for(BASE)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def baseline(fork_server: ForkServer) -> tuple[DomainPack, Run]:
    """The pack with its index and a first adapter, and the run that trained it."""
    pack = create_pack(NAME, parent=fork_server.home / "packs").pack
    toml = pack.pack_toml.read_text("utf-8")
    for old, new in [("layers = 10", "layers = 2"), ("passages = 3", "passages = 1")]:
        toml = toml.replace(old, new)
    pack.pack_toml.write_text(toml.replace("batch_size = 4", "batch_size = 2"), "utf-8")
    assert fork_server.run("index", "rebuild", NAME).status == 0
    run = fork_server.run(*TRAIN, env=SMALL)
    assert run.status == 0, run.output
    return pack, run


def adapter_state(pack: DomainPack, previous: dict[str, str], settings) -> str:
    """ "old" when the adapter is byte for byte `previous`, "new" when it is another complete
    adapter; either way it passes check_adapter and its weights load."""
    check_adapter(pack, with_models(settings, base_model=BASE))
    assert load_file(adapter_dir(pack) / WEIGHTS)
    files = digest(adapter_dir(pack))
    if files == previous:
        return "old"
    assert set(files) == set(previous)
    assert json.loads((adapter_dir(pack) / "training.json").read_text())["steps"] == 1
    return "new"


def leftovers(pack: DomainPack) -> list[str]:
    """Staged and set-aside folders, which the install keeps beside the adapter's folder."""
    return [p.name for p in pack.adapters_dir.iterdir() if p.name.startswith(".")]


def save_phase(measured: Run) -> list[list[str]]:
    """The write operations of the save phase: from the creation of the staged folder on."""
    ops = [line.split(" ", 2) for line in measured.ops]
    first = next(i for i, op in enumerate(ops) if Path(op[2]).name.startswith(".adapter.tmp-"))
    return ops[first:]


def kill_points(rng: random.Random, measured: Run) -> list[tuple[str, float]]:
    """Delays, then write operations of the save phase numbered from the creation of the staged
    folder (STAGED): leftovers swept before it would shift absolute numbers. The first run had
    no adapter to replace, so it renamed where the runs below swap (one operation either way)."""
    save = save_phase(measured)
    points = [("delay", round(rng.uniform(0.0, FIRST_SECONDS), 3)) for _ in range(DELAYS)]
    points += [("op", n) for n in rng.sample(range(2, 2 * len(save) + 2), SAVE_KILLS)]
    for number, (_, name, _) in enumerate(save, 1):
        if name in ("rename", "replace", "exchange"):
            points += [("op", 2 * number), ("op", 2 * number + 1)]
    return points


def test_sigkill_during_train(
    fork_server: ForkServer, baseline: tuple[DomainPack, Run], settings
) -> None:
    pack, measured = baseline
    current = digest(adapter_dir(pack))
    points = kill_points(random.Random(SEED * 1000 + 4), measured)
    assert len(points) >= DELAYS + SAVE_KILLS + 2
    outcomes: Counter[str] = Counter()
    for how, value in points:
        if how == "delay":
            run = fork_server.run(*TRAIN, env=SMALL, kill_after=value)
        else:
            run = fork_server.run(*TRAIN, env=SMALL, kill_at=int(value), count_from=STAGED)
        assert run.killed or run.status == 0, run.output
        state = adapter_state(pack, current, settings)
        assert validate_pack(pack) == []
        outcomes[f"{'killed' if run.killed else 'finished'} -> {state}"] += 1
        current = digest(adapter_dir(pack))
    print(f"train: {len(points)} kill points {dict(outcomes)}, run {measured.seconds:.1f} s")
    assert outcomes["killed -> old"] >= DELAYS // 2 and outcomes["killed -> new"] >= 1

    rerun = fork_server.run(*TRAIN, env=SMALL)
    assert rerun.status == 0, rerun.output
    assert adapter_state(pack, current, settings) == "new"
    assert leftovers(pack) == []


def test_damaged_adapter_is_refused_by_ask(
    fork_server: ForkServer, baseline: tuple[DomainPack, Run]
) -> None:
    pack, _ = baseline
    weights = adapter_dir(pack) / WEIGHTS
    intact = weights.read_bytes()
    weights.write_bytes(intact[: len(intact) // 2])
    try:
        run = fork_server.run("ask", NAME, "What does the Tiny faults pack do?", env=SMALL)
    finally:
        weights.write_bytes(intact)
    assert run.status == 3, run.output  # damaged data (DamagedDataError)
    lines = run.output.strip().splitlines()
    assert len(lines) == 1 and str(weights) in lines[0]
    assert f"run `assistant train {NAME}`" in lines[0]


def assert_save_failed(run: Run) -> None:
    """Exit code 2 and, after the progress bar, one error line (no traceback)."""
    assert run.status == 2, run.output
    assert "Traceback" not in run.output
    error = run.output.strip().splitlines()[-1]
    assert error.startswith(f"error: cannot write the adapter of pack {NAME!r}")
    assert "No space left on device" in error and f"`assistant train {NAME}`" in error


def test_full_disk_while_saving_the_adapter(
    fork_server: ForkServer, baseline: tuple[DomainPack, Run], tmp_path: Path
) -> None:
    pack, measured = baseline
    current = digest(adapter_dir(pack))
    save = save_phase(measured)
    swap = next(n for n, op in enumerate(save, 1) if op[1] in ("rename", "exchange"))
    writes = [n for n, op in enumerate(save[:swap], 1) if op[1] in CAN_FAIL]
    for number in random.Random(SEED * 1000 + 5).sample(writes, SAVE_FAILURES):
        run = fork_server.run(*TRAIN, env=SMALL, fail_at=number, count_from=STAGED)
        assert_save_failed(run)
        assert digest(adapter_dir(pack)) == current and leftovers(pack) == []

    out = tmp_path / "after"
    tmpfs = {"dir": str(pack.root), "free": 256 << 10, "out": str(out)}
    run = fork_server.run(*TRAIN, env=SMALL, tmpfs=tmpfs)
    if run.status == fork_server.setup_failed:
        pytest.skip(f"cannot mount a small tmpfs here: {run.output.strip().splitlines()[-1]}")
    assert_save_failed(run)
    assert digest(out / "adapter" / adapter_dir(pack).name) == current
    assert [p.name for p in (out / "adapter").iterdir() if p.name.startswith(".")] == []
