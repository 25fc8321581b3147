"""A pack keeps one adapter per base model, in adapter/<base>/; answers use the one for the
configured base. A pack from before that keeps its one adapter in adapter/ itself, and it counts
as the adapter of the base its training.json (or PEFT's config) names.

Lookup is file layout: these tests write stand-in adapter files, except the last one, which asks
the real model through a pack without an adapter for the configured base."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from index_helpers import FIXTURES
from test_pack_helpers import new_pack

from assistant.cli import cli
from assistant.packs.locate import Adapter, DomainPack, find_pack


def stand_in(folder: Path, base: str | None = None, peft_base: str | None = None) -> Path:
    """Adapter files (not real weights) recording `base` in training.json, or only PEFT's
    base_model_name_or_path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    (folder / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": peft_base or base}), "utf-8"
    )
    if base:
        (folder / "training.json").write_text(json.dumps({"base_model": base}), "utf-8")
    return folder


def test_each_base_has_its_own_folder(tmp_path: Path) -> None:
    pack = new_pack(tmp_path)
    stand_in(pack.root / "adapter" / "smollm2-135m", "smollm2-135m")
    stand_in(pack.root / "adapter" / "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b")
    qwen = pack.adapter("qwen2.5-coder-0.5b")
    assert qwen == Adapter("qwen2.5-coder-0.5b", pack.root / "adapter" / "qwen2.5-coder-0.5b")
    assert qwen.trained and qwen.weights.is_file() and qwen.record.is_file()
    # the old name of SmolLM2 finds its folder too
    assert pack.adapter("smollm2-135m-instruct").dir == pack.root / "adapter" / "smollm2-135m"
    missing = pack.adapter("qwen2.5-coder-1.5b")
    assert not missing.trained and missing.dir == pack.adapter_dir_for("qwen2.5-coder-1.5b")
    assert sorted(a.base for a in pack.adapters()) == ["qwen2.5-coder-0.5b", "smollm2-135m"]


def test_an_old_flat_adapter_belongs_to_the_base_it_was_trained_on(tmp_path: Path) -> None:
    pack = new_pack(tmp_path)
    flat = stand_in(pack.root / "adapter", "smollm2-135m-instruct")  # the old name
    assert pack.adapter("smollm2-135m").dir == flat and pack.adapter("smollm2-135m").trained
    assert not pack.adapter("qwen2.5-coder-0.5b").trained  # not Qwen's: the base answers alone
    assert [(a.base, a.dir) for a in pack.adapters()] == [("smollm2-135m", flat)]
    # training Qwen's adapter puts it beside; the flat one stays SmolLM2's
    stand_in(pack.adapter_dir_for("qwen2.5-coder-0.5b"), "qwen2.5-coder-0.5b")
    assert pack.adapter("smollm2-135m").dir == flat
    assert {a.base for a in pack.adapters()} == {"smollm2-135m", "qwen2.5-coder-0.5b"}
    # a retrained SmolLM2 adapter in its own folder takes over from the flat one
    stand_in(pack.adapter_dir_for("smollm2-135m"), "smollm2-135m")
    assert pack.adapter("smollm2-135m").dir == flat / "smollm2-135m"
    assert sorted(a.dir.name for a in pack.adapters()) == ["qwen2.5-coder-0.5b", "smollm2-135m"]


def test_a_flat_adapter_without_a_record_goes_by_peft_config(tmp_path: Path) -> None:
    pack = new_pack(tmp_path)
    own = str(tmp_path / "models" / "Mine-1B")
    flat = stand_in(pack.root / "adapter", peft_base=own)
    assert pack.adapter(own).dir == flat
    assert pack.adapter_dir_for(own) == flat / "mine-1b"
    assert not pack.adapter("smollm2-135m").trained


def test_an_exported_pack_keeps_every_base_adapter(tmp_path: Path) -> None:
    from assistant.packs.archive import export_pack, import_pack

    pack = new_pack(tmp_path / "src")
    stand_in(pack.adapter_dir_for("smollm2-135m"), "smollm2-135m")
    stand_in(pack.adapter_dir_for("qwen2.5-coder-0.5b"), "qwen2.5-coder-0.5b")
    report = import_pack(export_pack(pack, tmp_path / "demo.tar.gz").path)
    copy: DomainPack = report.pack
    assert sorted(a.base for a in copy.adapters()) == ["qwen2.5-coder-0.5b", "smollm2-135m"]
    assert report.problems == []


def test_without_an_adapter_for_the_configured_base_the_notice_names_it(embedder) -> None:
    runner = CliRunner()
    created = runner.invoke(cli, ["pack", "new", "no-adapter", "--from", str(FIXTURES)])
    assert created.exit_code == 0, created.output
    pack = find_pack("no-adapter")
    stand_in(pack.adapter_dir_for("smollm2-135m"), "smollm2-135m")  # not the default base's
    question = "How often should I turn the compost heap?"
    result = runner.invoke(cli, ["ask", pack.name, question, "--max-tokens", "1", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["adapter"] is None
    assert any(
        "no trained adapter for base qwen2.5-coder-0.5b" in notice for notice in answer["notices"]
    ), answer
