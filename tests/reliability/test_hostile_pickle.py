"""No pickle: nothing in the package can turn a file into running code, and adapters are read
only as safetensors.

The source scan parses every module of `assistant/` (code only: a docstring saying "no pickle"
is fine) and fails on an import of pickle and its kin (dill, cloudpickle, joblib, shelve,
marshal), `torch.load` without `weights_only=True`, `allow_dangerous_deserialization=True`,
`allow_pickle=True`, `trust_remote_code=True`, and calls of `eval`/`exec`. The scanner is shown
a file with each of these first, so the scan cannot pass by finding nothing."""

from __future__ import annotations

import ast
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from settings_helpers import with_models

from assistant.errors import AssistantError
from assistant.packs.locate import DomainPack
from assistant.runtime.adapters import check_adapter

PACKAGE = Path(__file__).resolve().parents[2] / "assistant"
UNSAFE_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
}
UNSAFE_TRUE = {"allow_dangerous_deserialization", "allow_pickle", "trust_remote_code"}


def unsafe(source: str, filename: str = "<source>") -> list[str]:
    """Each unsafe use in the Python source, as 'file:line: what'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        found += [f"{where}: imports {name}" for name in names if name in UNSAFE_MODULES]
        false = isinstance(node, ast.keyword) and ast.unparse(node.value) == "False"
        if isinstance(node, ast.keyword) and node.arg in UNSAFE_TRUE and not false:
            found.append(f"{where}: {node.arg}={ast.unparse(node.value)}")
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
            found.append(f"{where}: calls {node.func.id}()")
        if ast.unparse(node.func) == "torch.load":
            safe = any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value
                for k in node.keywords
            )
            if not safe:
                found.append(f"{where}: torch.load without weights_only=True")
    return found


def test_the_scanner_finds_each_unsafe_use() -> None:
    bad = """
import pickle
import joblib.numpy_pickle
from dill import loads
import torch
state = torch.load(path)
other = torch.load(path, weights_only=False)
store = FAISS.load_local(path, embeddings, allow_dangerous_deserialization=True)
array = np.load(path, allow_pickle=True)
model = AutoModel.from_pretrained(name, trust_remote_code=flag)
eval(text)
"""
    good = """
state = torch.load(path, weights_only=True)
array = np.load(path, allow_pickle=False)
model.eval()
'''no pickle here'''
"""
    assert len(unsafe(bad)) == 9, unsafe(bad)
    assert unsafe(good) == []


def test_the_package_has_no_unsafe_deserialization() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 40  # the whole package, not an empty folder
    found = [hit for path in modules for hit in unsafe(path.read_text("utf-8"), str(path))]
    assert found == []


# ----- adapters: safetensors only ---------------------------------------------------------------

SHIPPED_BASE = "smollm2-135m"  # the loader is the same for every base; this one loads fast
SHIPPED_ADAPTER = PACKAGE.parent / "domains" / "penguin-wood" / "adapter" / SHIPPED_BASE


class _Marker:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def adapter_pack(root: Path, with_safetensors: bool) -> tuple[DomainPack, Path]:
    """A pack whose adapter folder holds a pickled adapter_model.bin that would create a marker
    file if anything unpickled it, with or without the real safetensors weights beside it."""
    pack = DomainPack("penguin-wood", root / "penguin-wood")
    folder = pack.adapter_dir_for(SHIPPED_BASE)
    shutil.copytree(SHIPPED_ADAPTER, folder)
    if not with_safetensors:
        (folder / "adapter_model.safetensors").unlink()
    marker = root / "UNPICKLED"
    (folder / "adapter_model.bin").write_bytes(pickle.dumps(_Marker(marker)))
    return pack, marker


def test_an_adapter_without_safetensors_is_refused(settings, tmp_path: Path) -> None:
    pack, marker = adapter_pack(tmp_path, with_safetensors=False)
    with pytest.raises(AssistantError, match="has no trained adapter"):
        check_adapter(pack, with_models(settings, base_model=SHIPPED_BASE))
    assert not marker.exists()


@pytest.mark.slow
def test_loading_an_adapter_never_reads_the_pickle_beside_it(tmp_path: Path) -> None:
    """The real loader (AdapterBank over PEFT, the packaged base model) in a fresh process."""
    pack, marker = adapter_pack(tmp_path, with_safetensors=True)
    (pack.root / "pack.toml").touch()
    script = (
        "import sys\n"
        "from assistant.runtime.adapters import AdapterBank\n"
        "from assistant.runtime.models import load_base_model\n"
        "from assistant.packs.locate import pack_at\n"
        "from assistant.settings import load_settings\n"
        "loaded = load_settings()\n"
        "bank = AdapterBank(load_base_model(loaded))\n"
        "print(bank.load(pack_at(sys.argv[1]), loaded), sorted(bank.peft_model.peft_config))\n"
    )
    # this test's home, the shared model cache, the small base the copied adapter was trained on
    env = {**os.environ, "ASSISTANT_THREADS": "1", "ASSISTANT_BASE_MODEL": SHIPPED_BASE}
    run = subprocess.run(
        [sys.executable, "-c", script, str(pack.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[0] == "penguin-wood"
    assert not marker.exists(), "the pickled adapter_model.bin was loaded"
