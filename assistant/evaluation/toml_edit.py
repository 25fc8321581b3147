"""A minimal in-place edit of one value in a TOML file (`--calibrate --write` stores the new
thresholds in pack.toml this way): comments, order and formatting elsewhere are kept."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from assistant.errors import AssistantError
from assistant.fsio import atomic_write_text


def set_toml_value(path: Path, section: str, key: str, value: float) -> None:
    """Set `key = value` in `[section]` of a TOML file with a minimal text edit (comments,
    order and formatting elsewhere kept), written atomically; the file keeps its permissions."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    rendered = f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    new_text = _with_value(text, section, key, rendered)
    try:
        parsed = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise AssistantError(f"{path}: editing {key} would break the file ({exc})") from None
    if parsed.get(section, {}).get(key) != float(rendered):
        raise AssistantError(f"{path}: could not set [{section}] {key}; edit it by hand")
    atomic_write_text(path, new_text)


def _with_value(text: str, section: str, key: str, rendered: str) -> str:
    """`text` with `key = rendered` in `[section]`: the existing line's value replaced (its
    comment and line ending kept), else a new line under the header, else a new section."""
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^\s*\[{re.escape(section)}\]\s*(#.*)?$")
    assignment = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)([^#\r\n]*?)(\s*(?:#.*)?)(\r?\n?)$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        lines.append(f"{sep}\n[{section}]\n{key} = {rendered}\n")
        return "".join(lines)
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    for i in range(start + 1, end):
        match = assignment.match(lines[i])
        if match:
            lines[i] = f"{match.group(1)}{rendered}{match.group(3)}{match.group(4)}"
            break
    else:
        lines.insert(start + 1, f"{key} = {rendered}\n")
    return "".join(lines)
