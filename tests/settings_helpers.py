"""Settings variants for tests: the session's settings with some `[models]` keys changed."""

from __future__ import annotations

from typing import Any

from assistant.settings import LoadedSettings


def with_models(settings: LoadedSettings, **models: Any) -> LoadedSettings:
    """`settings` with these `[models]` keys replaced (e.g. backend="llama_cpp")."""
    updated = settings.settings.models.model_copy(update=models)
    return LoadedSettings(settings=settings.settings.model_copy(update={"models": updated}))
