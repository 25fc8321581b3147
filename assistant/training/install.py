"""Install a fully written adapter folder in place of the old one with `fsio.swap_folder`: one
atomic swap where the platform allows it, else two renames, so a process killed at any moment
leaves the old adapter or the new one (`save.sweep_adapter_leftovers` repairs the gap)."""

from __future__ import annotations

from pathlib import Path

from assistant.fsio import swap_folder

STAGED_PREFIX = ".adapter.tmp-"


def old_prefix(target: Path) -> str:
    """How `fsio.set_aside_path` names the old `target` it sets aside, up to the process id."""
    return f".{target.name}.old-"


def install_adapter(staged: Path, target: Path) -> None:
    """Swap the staged adapter folder into place of `target`."""
    swap_folder(staged, target)
