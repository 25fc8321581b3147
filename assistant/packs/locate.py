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
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, NotFoundError
from assistant.settings import base_name, home_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The files of a trained adapter in its folder, as PEFT writes them.
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_RECORD = "training.json"  # what `assistant train` records: the base, data, settings
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


def adapter_key(base: str) -> str:
    """The folder under a pack's adapter/ for the base_model value `base`: a known base's name
    as it is, a user's model folder or .gguf file by its name in lowercase."""
    name = Path(base_name(base)).expanduser().name.lower()
    return re.sub(r"[^a-z0-9._-]+", "-", name).strip(".-") or "base"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Adapter:
    """A pack's LoRA adapter for one base model: its folder and the files in it."""

    base: str  # the base_model value it belongs to
    dir: Path

    @property
    def weights(self) -> Path:
        return self.dir / ADAPTER_WEIGHTS

    @property
    def config(self) -> Path:
        return self.dir / ADAPTER_CONFIG

    @property
    def record(self) -> Path:
        return self.dir / ADAPTER_RECORD

    @property
    def trained(self) -> bool:
        return self.weights.is_file()


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
    def adapters_dir(self) -> Path:
        """adapter/: one folder per base model the pack has an adapter for."""
        return self.root / "adapter"

    def adapter_dir_for(self, base: str) -> Path:
        """Where the adapter trained on `base` lives, and where training writes it."""
        return self.adapters_dir / adapter_key(base)

    def adapter(self, base: str) -> Adapter:
        """The pack's adapter for the base_model value `base` (trained or not). A pack from
        before adapters were kept per base has its one adapter in adapter/ itself; it counts
        as the adapter of the base its training.json names."""
        folder = self.adapter_dir_for(base)
        if not folder.is_dir() and self._flat_adapter_base() == base_name(base):
            return Adapter(base_name(base), self.adapters_dir)
        return Adapter(base_name(base), folder)

    def adapters(self) -> list[Adapter]:
        """Every trained adapter of the pack, one per base."""
        found = []
        if self.adapters_dir.is_dir():
            for child in sorted(self.adapters_dir.iterdir()):
                if child.is_dir() and not child.name.startswith("."):
                    recorded = _json(child / ADAPTER_RECORD).get("base_model")
                    base = recorded if isinstance(recorded, str) and recorded else child.name
                    found.append(Adapter(base_name(base), child))
        flat = self._flat_adapter_base()
        if flat and adapter_key(flat) not in {a.dir.name for a in found}:
            found.append(Adapter(flat, self.adapters_dir))
        return [a for a in found if a.trained]

    def _flat_adapter_base(self) -> str | None:
        """The base of an adapter kept in adapter/ itself (the layout before per-base folders):
        from its training.json, else PEFT's adapter_config.json; None without one."""
        if not (self.adapters_dir / ADAPTER_WEIGHTS).is_file():
            return None
        base = _json(self.adapters_dir / ADAPTER_RECORD).get("base_model") or _json(
            self.adapters_dir / ADAPTER_CONFIG
        ).get("base_model_name_or_path")
        return base_name(base) if isinstance(base, str) and base else None

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
