"""Install a fully written adapter folder in place of the old one: one atomic swap (Linux
renameat2 RENAME_EXCHANGE), else two renames that the next run repairs, so a process killed at
any moment leaves the old adapter or the new one."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
from pathlib import Path

from assistant.fsio import fsync_path


def _fsync_tree(folder: Path) -> None:
    for file in folder.iterdir():
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())


STAGED_PREFIX = ".adapter.tmp-"
OLD_PREFIX = ".adapter.old-"


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    platform or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange):
        number = ctypes.get_errno()
        if number in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise OSError(number, os.strerror(number), str(first))
    return True


def install_adapter(staged: Path, target: Path) -> None:
    """Swap a fully written adapter folder into place; the old one is removed only after. An
    OSError means the old adapter is still in place."""
    _fsync_tree(staged)
    if target.exists() and _exchange(staged, target):
        _settle(target.parent, staged)  # staged holds the old adapter now
        return
    old = None
    if target.exists():
        old = target.with_name(f"{OLD_PREFIX}{os.getpid()}")
        target.rename(old)  # a kill right here leaves no adapter/: sweep_adapter_leftovers
    try:
        staged.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    _settle(target.parent, old)


def _settle(folder: Path, old: Path | None) -> None:
    """After the swap: make it durable and remove the old adapter. The new adapter is live
    already, so a failure here changes nothing the user would see."""
    with contextlib.suppress(OSError):
        fsync_path(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
