"""Shared fixtures. Every test gets its own ASSISTANT_HOME (user data, user packs), while the
converted base model cache is shared across the session so the one-time conversion is paid once.
Real packaged models are used; they load in seconds and are loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from model_cache import SHARED_CACHE

# The packs' source corpora live beside the repository (../shared/corpora), not in it: a clean
# clone has none, so a test that rebuilds the packs from them is deselected there (and said so),
# never skipped.
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CORPORA.is_dir():
        return
    needs = [item for item in items if item.get_closest_marker("needs_corpora")]
    if needs:
        config.hook.pytest_deselected(items=needs)
        items[:] = [item for item in items if item not in needs]
        print(f"\ndeselected {len(needs)} test(s) that need the shared corpora ({CORPORA})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under CI=true a skip is a failure: a missing precondition (no index, no tmux, no tmpfs)
    must show, not pass quietly."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every precondition must hold: {reason}"


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(SHARED_CACHE))
    for name in list(os.environ):
        if name.startswith("ASSISTANT_") and name not in ("ASSISTANT_HOME", "ASSISTANT_CACHE_DIR"):
            monkeypatch.delenv(name)
    return home


@pytest.fixture(scope="session")
def settings():
    """The packaged default settings with the shared model cache."""
    from assistant.settings import load_settings

    old = os.environ.get("ASSISTANT_CACHE_DIR")
    os.environ["ASSISTANT_CACHE_DIR"] = str(SHARED_CACHE)
    try:
        return load_settings()
    finally:
        if old is None:
            del os.environ["ASSISTANT_CACHE_DIR"]
        else:
            os.environ["ASSISTANT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def base_model(settings):
    from assistant.runtime.models import load_base_model

    return load_base_model(settings)


@pytest.fixture(scope="session")
def embedder(settings):
    from assistant.runtime.models import load_embedder

    return load_embedder(settings)
