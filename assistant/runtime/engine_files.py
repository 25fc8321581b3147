"""What an engine that serves the packs needs (`assistant engine prepare`): each pack's adapter
in the engine's format in one folder, and the exact line that starts the engine.

    <folder>/
      lora/<pack>-<hash>.gguf   llama.cpp's LoRA format (llama-server --lora, `engine run`)
      peft/<pack>/              the adapter as trained (PEFT safetensors: vLLM --lora-modules)
      launch.txt                the launch lines below, for this folder

The GGUF LoRA's name carries a hash of the adapter, so the remote backend refuses an engine
that still runs an older adapter of a pack (`remote_engine`).
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import AssistantError
from assistant.fsio import atomic_write_bytes
from assistant.packs.locate import DomainPack
from assistant.runtime.engine import CONTEXT_TOKENS
from assistant.settings import LoadedSettings

LORA_DIR = "lora"
PEFT_DIR = "peft"
LAUNCH_FILE = "launch.txt"
DEFAULT_PORT = 8080
DEFAULT_SLOTS = 4  # answers the engine runs at once


@dataclass
class PreparedEngine:
    """The files `prepare` wrote and the lines that start an engine on them."""

    folder: Path
    model: Path  # the base GGUF llama.cpp loads
    loras: dict[str, Path] = field(default_factory=dict)  # pack -> GGUF LoRA
    peft: dict[str, Path] = field(default_factory=dict)  # pack -> PEFT adapter folder
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (pack, why)
    hub_id: str | None = None  # the base's Hugging Face id, for vLLM

    def llama_server_line(self, port: int = DEFAULT_PORT, slots: int = DEFAULT_SLOTS) -> str:
        words = ["llama-server", "-m", str(self.model), "--host", "127.0.0.1"]
        words += ["--port", str(port), "-c", str(CONTEXT_TOKENS * slots), "-np", str(slots)]
        for path in self.loras.values():
            words += ["--lora", str(path)]
        return shlex.join([*words, "--lora-init-without-apply"])

    def run_line(self, port: int = DEFAULT_PORT, slots: int = DEFAULT_SLOTS) -> str:
        return shlex.join(
            ["assistant", "engine", "run", "--dir", str(self.folder), "--port", str(port)]
            + ["--slots", str(slots)]
        )

    def vllm_line(self, port: int = DEFAULT_PORT) -> str:
        modules = [f"{name}={path}" for name, path in self.peft.items()]
        words = ["vllm", "serve", self.hub_id or "<the base model's Hugging Face folder>"]
        words += ["--host", "127.0.0.1", "--port", str(port), "--enable-lora"]
        return shlex.join([*words, "--lora-modules", *modules, "--max-lora-rank", "64"])

    def launch_text(self) -> str:
        return "\n".join(
            [
                "# llama.cpp's server (a llama-server binary):",
                self.llama_server_line(),
                "# the same server from the xllamacpp wheel `assistant` installs:",
                self.run_line(),
                "# vLLM on a GPU server (serves each pack's adapter as the model named like"
                " the pack; `assistant` answers through llama.cpp's API only, see"
                " docs/deploy.md):",
                self.vllm_line(),
                '# then, where `assistant` runs: models.backend = "openai",'
                f' models.base_url = "http://127.0.0.1:{DEFAULT_PORT}"',
                "",
            ]
        )


def prepare_engine(
    folder: Path, packs: Sequence[DomainPack], loaded: LoadedSettings
) -> PreparedEngine:
    """Export each pack's trained adapter for the configured base into `folder` (GGUF LoRA
    and PEFT), drop exports of adapters that changed since, and write launch.txt."""
    from assistant.runtime.bases import configured_base, pack_adapter
    from assistant.runtime.gguf_files import exported_lora, lora_file_name, runtime_gguf

    prepared = PreparedEngine(folder=folder.resolve(), model=runtime_gguf(loaded))
    base = configured_base(loaded)
    if base is not None and "huggingface.co/" in base.source:
        prepared.hub_id = base.source.split("huggingface.co/", 1)[1].removesuffix("-GGUF")
    lora_dir, peft_dir = folder / LORA_DIR, folder / PEFT_DIR
    lora_dir.mkdir(parents=True, exist_ok=True)
    peft_dir.mkdir(parents=True, exist_ok=True)
    for pack in packs:
        adapter = pack_adapter(pack, loaded)
        if not adapter.trained:
            prepared.skipped.append((pack.name, "no adapter trained for this base"))
            continue
        name = lora_file_name(pack, loaded)
        target = lora_dir / name
        if not target.is_file():
            shutil.copyfile(exported_lora(pack, loaded), target)
        for old in lora_dir.glob(f"{pack.name}-*.gguf"):
            if old != target and old.stem.rsplit("-", 1)[0] == pack.name:
                old.unlink(missing_ok=True)
        shutil.copytree(adapter.dir, peft_dir / pack.name, dirs_exist_ok=True)
        prepared.loras[pack.name] = target.resolve()
        prepared.peft[pack.name] = (peft_dir / pack.name).resolve()
    if not prepared.loras:
        raise AssistantError(
            "no pack has an adapter for this base to serve: train one (`assistant train PACK`)"
        )
    atomic_write_bytes(folder / LAUNCH_FILE, prepared.launch_text().encode("utf-8"))
    return prepared


def prepared_loras(folder: Path) -> list[Path]:
    """The GGUF LoRA files of a prepared folder, in name order (their ids in the engine)."""
    found = sorted((folder / LORA_DIR).glob("*.gguf"))
    if not found:
        raise AssistantError(
            f"{folder} holds no prepared adapters: run `assistant engine prepare --dir {folder}`"
        )
    return found
