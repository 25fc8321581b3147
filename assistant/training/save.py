"""Saving a trained adapter: PEFT's weights and config, `training.json` (base model and its
fingerprint, data hash, settings, steps, wall time, loss curve) and `loss.png`, written to a
hidden folder beside the configured base's adapter/<base>/ and swapped in by
`install.install_adapter`; the next run sweeps what a killed one left. A save that fails (a
full disk) is one AssistantError and the old adapter stays.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.packs.fingerprint import data_hash
from assistant.packs.format import PackConfig
from assistant.packs.locate import ADAPTER_CONFIG, ADAPTER_RECORD, DomainPack
from assistant.settings import LoadedSettings
from assistant.training.install import STAGED_PREFIX, install_adapter, old_prefix
from assistant.training.report import TrainReport


def _peak_rss_mb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _plot_losses(losses: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _portable_adapter_config(path: Path, loaded: LoadedSettings) -> None:
    """Record the base model by its configured name, not this machine's cache path."""
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = loaded.settings.models.base_model
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _dead(name: str, prefix: str) -> bool:
    """Whether the process whose id follows `prefix` in `name` has ended."""
    pid = name[len(prefix) :].split("-")[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def sweep_adapter_leftovers(target: Path) -> None:
    """Put back an old adapter that a killed two-rename install left aside beside `target`, and
    remove the staged and old folders of training runs that were killed."""
    root, prefix = target.parent, old_prefix(target)
    for path in sorted(root.glob(f"{prefix}*")):
        if path.is_dir() and _dead(path.name, prefix):
            if not target.exists():
                path.rename(target)
            else:
                shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(f"{STAGED_PREFIX}*"):
        if path.is_dir() and _dead(path.name, STAGED_PREFIX):
            shutil.rmtree(path, ignore_errors=True)


def _save_failed(pack: DomainPack, target: Path, exc: Exception) -> AssistantError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return AssistantError(
        f"cannot write the adapter of pack {pack.name!r} in {pack.root}:"
        f" {' '.join(reason.split())}; the adapter in {target} is unchanged; free some"
        f" disk space and run `assistant train {pack.name}` again"
    )


def save_adapter(
    pack: DomainPack,
    loaded: LoadedSettings,
    config: PackConfig,
    model: Any,
    report: TrainReport,
) -> None:
    """Write the trained `model`'s adapter and the run's record into a staged folder and swap
    it in for the pack's adapter for the configured base."""
    from safetensors import SafetensorError

    from assistant.runtime.models import base_model_fingerprint

    target = pack.adapter_dir_for(loaded.settings.models.base_model)
    try:
        target.parent.mkdir(exist_ok=True)
        sweep_adapter_leftovers(target)
        staged = Path(tempfile.mkdtemp(prefix=f"{STAGED_PREFIX}{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise _save_failed(pack, target, exc) from None
    try:
        staged.chmod(0o755)
        model.save_pretrained(staged)
        _portable_adapter_config(staged / ADAPTER_CONFIG, loaded)
        (staged / "README.md").unlink(missing_ok=True)  # PEFT's empty model card
        info = {
            "pack": pack.name,
            "base_model": loaded.settings.models.base_model,
            "base_fingerprint": base_model_fingerprint(loaded),
            "data_hash": data_hash(pack, config),
            "settings": config.training.model_dump(),
            "examples": report.examples,
            "with_right_passage": report.with_right_passage,
            "tokens": report.tokens,
            "steps": report.steps,
            "wall_seconds": report.wall_seconds,
            "peak_rss_mb": _peak_rss_mb(),
            "final_loss": report.final_loss,
            "loss_curve": [round(x, 4) for x in report.losses],
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (staged / ADAPTER_RECORD).write_text(json.dumps(info, indent=2) + "\n")
        if report.losses:
            _plot_losses(report.losses, staged / "loss.png", f"{pack.name} adapter")
        install_adapter(staged, target)
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise _save_failed(pack, target, exc) from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
