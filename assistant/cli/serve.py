"""`assistant serve`: the packs as an OpenAI-compatible HTTP service (see docs/serve.md)."""

from __future__ import annotations

import click

from assistant.cli.context import Context, pass_context
from assistant.errors import AssistantError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Answers a server process sends to a remote engine at once (an engine started by
# `assistant engine run` has 4 slots by default).
REMOTE_CONCURRENCY = 4
ALL_INTERFACES = ("0.0.0.0", "::", "")


def default_allowed_hosts(host: str) -> list[str]:
    """The Host names a server bound to `host` answers to unless told otherwise."""
    if host in ALL_INTERFACES:
        return ["*"]  # its names are not known here; --allowed-host narrows them
    return list(dict.fromkeys([*LOOPBACK, host]))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--api-key",
    envvar="ASSISTANT_API_KEY",
    help="Require `Authorization: Bearer KEY` on /v1/*. Prefer the environment variable"
    " ASSISTANT_API_KEY: a key given here is visible to every user in the process list.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name clients use to reach the server (repeatable; '*.example.com' for"
    " subdomains, '*' for any). Requests naming another host get 400, which stops a web page"
    " from reaching the server through DNS rebinding. Default: the loopback names, plus the"
    " address bound; any host when bound to all interfaces.",
)
@click.option(
    "--queue-size",
    default=8,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Requests that may wait for the generator; more get 503 with Retry-After.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    help="Answers each server process generates at once. Default: 1 with a model in this"
    " process; 4 with models.backend = 'openai' (the engine's slots decide the real number).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes behind the one address (uvicorn workers). Each loads the model"
    " unless models.backend = 'openai', where they share one engine (docs/deploy.md).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@pass_context
def serve(
    ctx: Context,
    host: str,
    port: int,
    api_key: str | None,
    allowed_hosts: tuple[str, ...],
    queue_size: int,
    concurrency: int | None,
    workers: int,
    log_level: str,
) -> None:
    """Serve the packs over HTTP: /v1/chat/completions, /v1/models, /v1/ask, /health.

    \b
    assistant serve                         (http://127.0.0.1:8000, no key)
    ASSISTANT_API_KEY=secret assistant serve --port 9000
    curl localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model": "diabetes", "messages": [{"role": "user", "content": "What is A1C?"}]}'
    """
    import logging

    import uvicorn

    from assistant.answering.router import Router
    from assistant.server import create_app

    if host not in LOOPBACK and not api_key:
        click.secho(
            f"warning: serving on {host} without --api-key: anyone who can reach it can use it",
            fg="yellow",
            err=True,
        )
    hosts = list(allowed_hosts) or default_allowed_hosts(host)
    router = Router(ctx.settings)
    if not router.packs():
        raise AssistantError("there are no packs to serve: create one with `assistant pack new`")
    logging.getLogger("assistant").setLevel(getattr(logging, log_level.upper()))
    click.secho(
        f"serving {', '.join(p.name for p in router.packs())} on http://{host}:{port}"
        f"{f' with {workers} workers' if workers > 1 else ''}"
        " (models load in the background; GET /health says when ready)",
        err=True,
    )
    remote = ctx.settings.settings.models.backend == "openai"
    concurrency = concurrency or (REMOTE_CONCURRENCY if remote else 1)
    if workers > 1:
        where = (host, port, workers)
        _serve_workers(ctx, api_key, hosts, (queue_size, concurrency), where, log_level)
        return
    app = create_app(
        router,
        api_key=api_key or None,
        queue_size=queue_size,
        concurrency=concurrency,
        allowed_hosts=hosts,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=3)


def _serve_workers(
    ctx: Context,
    api_key: str | None,
    hosts: list[str],
    queueing: tuple[int, int],
    where: tuple[str, int, int],
    log_level: str,
) -> None:
    """uvicorn's workers, each building its app from `server.workers` (options in the
    environment, the key in ASSISTANT_API_KEY)."""
    import os

    import uvicorn

    from assistant.server.workers import OPTIONS_ENV, worker_environment

    host, port, workers = where
    queue_size, concurrency = queueing
    if ctx.settings.settings.models.backend != "openai":
        click.secho(
            f"note: each of the {workers} workers loads its own model; with models.backend ="
            " 'openai' they share one engine (docs/deploy.md)",
            fg="yellow",
            err=True,
        )
    config = str(ctx.config_file) if ctx.config_file else None
    os.environ[OPTIONS_ENV] = worker_environment(config, queue_size, concurrency, hosts)
    if api_key:
        os.environ["ASSISTANT_API_KEY"] = api_key
    uvicorn.run(
        "assistant.server.workers:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=3,
    )
