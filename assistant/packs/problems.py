"""A problem found in a pack file (file, line, key, message), and the problems of a pydantic
validation error, each pointed at its line: shared by the pack.toml reader and the pack check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

TOO_DEEP = "nested too deeply to read (hundreds of arrays or tables inside each other)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pack: where (file, JSONL/TOML line, TOML key) and what."""

    file: str
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f" [{self.key}]" if self.key else ""
        return f"{where}:{key} {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pydantic_problems(
    exc: ValidationError, file: str, line_of: dict[str, int] | None = None, line: int | None = None
) -> list[Problem]:
    """One Problem per error of `exc`; `line_of` maps `section.key` to its line in a TOML
    file, `line` is the line of a JSONL record."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc) or None
        if error["type"] == "extra_forbidden":
            message = f"unknown key {key!r}"
        elif error["type"] == "missing":
            message = f"missing required key {key!r}"
        elif error["type"] == "string_too_short" and error.get("input", None) is not None:
            message = f"{key} must not be empty"
        else:
            message = error["msg"].removeprefix("Value error, ")
            if key:
                message = f"{key}: {message}"
        where = line
        if line_of is not None and key:
            # The key's own line, else its table's line, else the first key of the path.
            for candidate in (key, ".".join(loc[:2]), loc[0]):
                if candidate in line_of:
                    where = line_of[candidate]
                    break
        problems.append(Problem(file, where, key, message))
    return problems
