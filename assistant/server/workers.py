"""The app of one `assistant serve --workers N` process. uvicorn starts each worker from an
import string, so what the command was given travels in one environment variable (the API
key stays in ASSISTANT_API_KEY, never in this JSON); every worker builds its own router.
With `models.backend = "openai"` the workers share one generation engine instead of loading
N models."""

from __future__ import annotations

import json
import os
from typing import Any

OPTIONS_ENV = "ASSISTANT_SERVE_WORKER"


def worker_environment(
    config_file: str | None, queue_size: int, concurrency: int, allowed_hosts: list[str]
) -> str:
    """The value of OPTIONS_ENV for the workers."""
    options = {
        "config": config_file,
        "queue_size": queue_size,
        "concurrency": concurrency,
        "allowed_hosts": allowed_hosts,
    }
    return json.dumps(options)


def app() -> Any:
    """The app factory uvicorn calls in each worker process."""
    from assistant.answering.router import Router
    from assistant.server import create_app
    from assistant.settings import load_settings

    options = json.loads(os.environ[OPTIONS_ENV])
    router = Router(load_settings(options["config"]))
    return create_app(
        router,
        api_key=os.environ.get("ASSISTANT_API_KEY") or None,
        queue_size=options["queue_size"],
        concurrency=options["concurrency"],
        allowed_hosts=options["allowed_hosts"],
    )
