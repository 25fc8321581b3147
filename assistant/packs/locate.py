"""Domain packs: where they live and the paths inside one (the one place pack paths come from).

A pack is a folder `domains/<name>/` in the project, or `<ASSISTANT_HOME>/packs/<name>/` for the
user's own packs. Its built index lives beside the packs folder, in `../indexes/<name>/`, so the
project's packs index into `indexes/` (git-ignored) and user packs into `<ASSISTANT_HOME>/indexes/`.

The rest of the pack layer: `pack_format` (typed pack.toml and JSONL lines, `load_pack_config`),
`pack_validation` (`validate_pack`: every problem with file and line), `pack_scaffold`
(`create_pack`), `pack_archive` (`export_pack`, `import_pack`) and `pack_info` (counts, adapter).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import AssistantError, NotFoundError
from assistant.settings import home_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The files of a trained adapter in its folder, as PEFT writes them.
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def project_domains_dir() -> Path:
    return PROJECT_ROOT / "domains"


def user_packs_dir() -> Path:
    return home_dir() / "packs"


def search_dirs() -> list[Path]:
    return [project_domains_dir(), user_packs_dir()]


def check_name(name: str) -> str:
    """Pack names are lowercase letters, digits and hyphens; nothing that could leave the folder."""
    if not NAME_PATTERN.match(name):
        raise AssistantError(
            f"invalid pack name {name!r}: use lowercase letters, digits and hyphens (e.g. my-pack)"
        )
    return name


@dataclass(frozen=True)
class DomainPack:
    """A pack folder and the paths inside it."""

    name: str
    root: Path

    @property
    def pack_toml(self) -> Path:
        return self.root / "pack.toml"

    @property
    def docs_dir(self) -> Path:
        return self.root / "docs"

    @property
    def sft_file(self) -> Path:
        return self.root / "sft" / "train.jsonl"

    @property
    def eval_file(self) -> Path:
        return self.root / "eval" / "qa.jsonl"

    @property
    def adapter_dir(self) -> Path:
        return self.root / "adapter"

    @property
    def adapter_weights(self) -> Path:
        return self.adapter_dir / ADAPTER_WEIGHTS

    @property
    def adapter_config(self) -> Path:
        return self.adapter_dir / ADAPTER_CONFIG

    @property
    def sources_file(self) -> Path:
        return self.root / "SOURCES.md"

    @property
    def index_dir(self) -> Path:
        return self.root.parent.parent / "indexes" / self.name


def list_packs() -> list[DomainPack]:
    """Every pack folder found, project packs first; a user pack never shadows a project one."""
    packs: dict[str, DomainPack] = {}
    for folder in search_dirs():
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            if child.is_dir() and NAME_PATTERN.match(child.name) and child.name not in packs:
                packs[child.name] = DomainPack(child.name, child)
    return list(packs.values())


def pack_at(path: Path | str) -> DomainPack:
    """The pack in the folder `path` (any location); its folder name must be a valid pack name."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise NotFoundError(f"{root} is not a folder; a pack is a folder with a pack.toml")
    root = root.resolve()
    check_name(root.name)
    return DomainPack(root.name, root)


def find_pack(name: str | Path) -> DomainPack:
    """The pack called `name`, or an error that lists the packs and the closest name.

    A `str` is always a pack name (so `..` or `a/b` from an untrusted caller is refused); a
    `Path` names a pack folder anywhere.
    """
    if isinstance(name, Path):
        return pack_at(name)
    check_name(name)
    packs = {p.name: p for p in list_packs()}
    if name in packs:
        return packs[name]
    close = difflib.get_close_matches(name, list(packs), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    available = ", ".join(packs) or "none yet (create one with `assistant pack new NAME`)"
    raise NotFoundError(f"unknown pack {name!r}.{hint} Packs: {available}")


def pack_from_argument(argument: str) -> DomainPack:
    """A command-line PACK argument: a pack name, or a folder path (one with a slash, or `.`)."""
    if "/" in argument or "\\" in argument or argument in (".", ".."):
        return pack_at(argument)
    return find_pack(argument)
