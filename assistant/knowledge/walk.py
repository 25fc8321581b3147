"""Expand the paths given to add-docs into files, with include/exclude globs.

Directories are walked recursively; symbolic links are followed as long as they stay inside the
directory given (a link to a file or folder outside it, say `~/.ssh` in a downloaded folder or in
a pack's docs/, is reported and not read), and a directory reached a second time (a link loop)
is reported and not entered again. Hidden files and folders (a leading dot) are passed over
silently. A name that is not valid UTF-8 or holds a control character (a newline) is reported
with the character escaped, never printed raw. Globs match the path relative to the directory
given, and the name.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Found:
    """A file to index: its real location, the directory given (or None) and its path inside."""

    path: Path
    base: Path | None
    relative: str


def printable(path: str | Path) -> str:
    """The path with control characters and undecodable bytes escaped, safe to print on a
    line of its own."""
    text = str(path)
    if text.isprintable():
        return text
    escaped = (ch if ch.isprintable() else f"<{_utf8(ch).hex(' ')}>" for ch in text)
    return "".join(escaped)


def _utf8(ch: str) -> bytes:
    return ch.encode("utf-8", "surrogateescape")


def _name_problem(name: str) -> str | None:
    """Why a file or folder name cannot go into a pack, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not valid UTF-8; rename it"
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        return "the name holds a control character (a newline or tab); rename it"
    return None


def matches(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]

    def hit(pattern: str) -> bool:
        return fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(name, pattern)

    if include and not any(hit(p) for p in include):
        return False
    return not any(hit(p) for p in exclude)


def _file_problem(path: Path) -> str | None:
    """Why this path cannot be read as a file, or None."""
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno == errno.ENOENT:
            return "broken symbolic link" if path.is_symlink() else "does not exist"
        return f"cannot read: {exc.strerror}"
    return None


def expand(
    paths: Iterable[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[Found], list[Skipped]]:
    """Files under `paths` that pass the globs, and the paths that were skipped with reasons."""
    found: list[Found] = []
    skipped: list[Skipped] = []
    for given in paths:
        given = Path(given)
        problem = _name_problem(given.name) or _file_problem(given)
        if problem:
            skipped.append(Skipped(printable(given), problem))
        elif given.is_dir():
            _walk(given, include, exclude, found, skipped)
        elif not given.is_file():
            skipped.append(Skipped(str(given), "not a regular file"))
        elif matches(given.name, include, exclude):
            found.append(Found(given, None, given.name))
    return found, skipped


def _walk(
    root: Path,
    include: Sequence[str],
    exclude: Sequence[str],
    found: list[Found],
    skipped: list[Skipped],
) -> None:
    seen: set[tuple[int, int]] = set()
    inside = root.resolve()
    outside = f"symbolic link to a place outside {printable(root)}; copy the file in instead"
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        stat = here.stat()
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            skipped.append(Skipped(printable(here), "symbolic link loop (folder already visited)"))
            dirs[:] = []
            continue
        seen.add(key)
        kept = []
        for name in sorted(d for d in dirs if not d.startswith(".")):
            link = (here / name).is_symlink()
            problem = _name_problem(name)
            if problem is None and link and not (here / name).resolve().is_relative_to(inside):
                problem = outside
            if problem:
                skipped.append(Skipped(printable(here / name), problem))
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = here / name
            relative = path.relative_to(root).as_posix()
            if not matches(relative, include, exclude):
                continue
            problem = _name_problem(name) or _file_problem(path)
            if problem is None and not path.resolve().is_relative_to(inside):
                problem = outside
            if problem:
                skipped.append(Skipped(printable(path), problem))
            elif not path.is_file():
                skipped.append(Skipped(printable(path), "not a regular file"))
            else:
                found.append(Found(path, root, relative))
