"""Durable writes: a writer that fails leaves the old file or folder as it was and nothing
beside it; one that succeeds leaves exactly the new content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant import fsio


def folder_with(path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


def contents(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("one_step", [True, False], ids=["exchange", "two-renames"])
def test_swap_folder_replaces_the_folder_and_leaves_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_step: bool
) -> None:
    if not one_step:
        monkeypatch.setattr(fsio, "exchange", lambda first, second: False)
    target = folder_with(tmp_path / "adapter", {"a.bin": "old", "gone.txt": "x"})
    staged = folder_with(tmp_path / ".adapter.tmp-1", {"a.bin": "new", "sub/b.txt": "b"})
    fsio.swap_folder(staged, target)
    assert contents(target) == {"a.bin": "new", "sub/b.txt": "b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
    fsio.swap_folder(folder_with(tmp_path / "staged", {"c": "c"}), tmp_path / "fresh")
    assert contents(tmp_path / "fresh") == {"c": "c"}


def test_a_failed_swap_leaves_the_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(fsio, "exchange", lambda first, second: False)
    target = folder_with(tmp_path / "adapter", {"a.bin": "old"})
    staged = folder_with(tmp_path / "staged", {"a.bin": "new"})
    real_rename = Path.rename

    def failing(self: Path, other: Path) -> Path:
        if self == staged:
            raise OSError(28, "No space left on device")
        return real_rename(self, other)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError):
        fsio.swap_folder(staged, target)
    assert contents(target) == {"a.bin": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "staged"]


def test_the_set_aside_name_is_the_one_the_adapter_sweep_looks_for(tmp_path: Path) -> None:
    from assistant.training.install import old_prefix

    aside = fsio.set_aside_path(tmp_path / "adapter")
    assert aside.name == f"{old_prefix(tmp_path / 'adapter')}{os.getpid()}"
    assert aside.parent == tmp_path


def test_atomic_output_replaces_only_on_success_and_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "pack.toml"
    target.write_text("old")
    target.chmod(0o640)
    with pytest.raises(RuntimeError), fsio.atomic_output(target) as partial:
        partial.write_text("half")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["pack.toml"]
    fsio.atomic_write_text(target, "new\r\n")
    assert target.read_bytes() == b"new\r\n" and os.listdir(tmp_path) == ["pack.toml"]
    assert target.stat().st_mode & 0o777 == 0o640


def test_publish_folder_never_replaces_an_existing_folder(tmp_path: Path) -> None:
    existing = folder_with(tmp_path / "pack", {"pack.toml": "mine"})
    staged = folder_with(tmp_path / "new", {"pack.toml": "other"})
    with pytest.raises(OSError):
        fsio.publish_folder(staged, existing)
    assert contents(existing) == {"pack.toml": "mine"}
    fsio.publish_folder(staged, tmp_path / "second")
    assert contents(tmp_path / "second") == {"pack.toml": "other"} and not staged.exists()
