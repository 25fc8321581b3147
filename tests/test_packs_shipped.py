"""Every pack shipped under domains/ validates: one test per pack found, failing with its list
of problems (file:line: message)."""

from __future__ import annotations

import tomllib

import pytest

from assistant.packs.format import PackConfig, load_pack_config
from assistant.packs.locate import DomainPack, project_domains_dir
from assistant.packs.validation import validate_pack


def shipped_packs() -> list[DomainPack]:
    folder = project_domains_dir()
    if not folder.is_dir():
        return []
    return [
        DomainPack(child.name, child)
        for child in sorted(folder.iterdir())
        if child.is_dir() and not child.name.startswith(".")
    ]


SHIPPED = shipped_packs()


@pytest.mark.skipif(not SHIPPED, reason="domains/ holds no packs yet")
@pytest.mark.parametrize("pack", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_pack_is_valid(pack: DomainPack) -> None:
    problems = validate_pack(pack)
    assert not problems, "\n".join(str(p) for p in problems)
    config = load_pack_config(pack)
    assert config.name == pack.name


@pytest.mark.skipif(not SHIPPED, reason="domains/ holds no packs yet")
@pytest.mark.parametrize("pack", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_adapter_matches_its_pack(pack: DomainPack, settings) -> None:
    """The committed adapter was trained from the pack's current examples and settings (a
    changed pack.toml [training] or sft file without retraining shows as stale)."""
    from assistant.packs.info import adapter_info

    info = adapter_info(pack, settings, load_pack_config(pack))
    assert info["trained"], f"{pack.name} ships no adapter"
    assert info["stale"] is None, info["stale"]


IDENTITY = ("name", "title", "description", "persona", "scope", "decline_message")


@pytest.mark.skipif(not SHIPPED, reason="domains/ holds no packs yet")
@pytest.mark.parametrize("pack", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_pack_toml_sets_only_what_differs_from_the_defaults(pack: DomainPack) -> None:
    """A default repeated in a pack.toml would hide a later change of the default."""
    data = tomllib.loads(pack.pack_toml.read_text("utf-8"))
    defaults = PackConfig.model_validate({key: data[key] for key in IDENTITY}).model_dump()
    repeated = [
        f"{section}.{key}"
        for section, body in data.items()
        if isinstance(body, dict)
        for key, value in body.items()
        if defaults[section][key] == value
    ]
    repeated += [
        key
        for key, value in data.items()
        if key not in IDENTITY and not isinstance(value, dict) and defaults[key] == value
    ]
    assert not repeated, f"{pack.pack_toml} repeats the defaults of {repeated}"


@pytest.mark.skipif(not SHIPPED, reason="domains/ holds no packs yet")
@pytest.mark.parametrize("pack", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_eval_set_has_a_dev_and_a_test_half_each_with_off_topic_questions(
    pack: DomainPack,
) -> None:
    from assistant.evaluation.run import in_split, load_cases

    cases, problems = load_cases(pack.eval_file)
    assert not problems
    for split in ("dev", "test"):
        half = in_split(cases, split)
        assert sum(c.out_of_scope for c in half) >= 5, split
        assert sum(not c.out_of_scope for c in half) >= 8, split
