"""Errors as the HTTP API reports them: OpenAI's error JSON with a status, never a traceback.

`ApiError` is an error of the HTTP layer (a bad body, a wrong key, a full queue). An
`AssistantError` from the library becomes one with the error's `http_status`
(`from_assistant_error`); a 5xx message shows no absolute path, which would tell any client how
the server's disk is laid out (the log keeps the full message). `install_error_handlers` is the
one place where exceptions become responses.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.errors import AssistantError
from assistant.server.schemas import error_body

log = logging.getLogger("assistant.server")

INTERNAL_ERROR = "internal server error (see the server log)"
CLIENT_CLOSED = 499  # nginx's status for a client that left before its answer
# A POSIX path from the root, or a Windows one from a drive letter, up to the next space or
# quote; not the `/or` of `and/or`, nor the `//` of a URL.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:-])(?:/|[A-Za-z]:[\\/])[^\s'\"`]*")


class ApiError(Exception):
    """An error with its HTTP status, rendered as OpenAI's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type_,
            param,
            code,
        )
        self.headers = headers

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


class ClientGone(Exception):
    """The client disconnected while its request waited or streamed."""


def without_paths(message: str) -> str:
    """The message with each absolute path cut to its last part (`…/manifest.json`)."""

    def last_part(match: re.Match[str]) -> str:
        parts = [p for p in re.split(r"[\\/]", match.group()) if p]
        return f"…/{parts[-1]}" if parts else "…"

    return ABSOLUTE_PATH.sub(last_part, message)


def from_assistant_error(exc: AssistantError) -> ApiError:
    """The library's error with its `http_status`: the user's mistake (4xx) says what to fix;
    a server-side one (5xx: damaged data, a missing model) keeps its repair command. Neither
    shows an absolute path of the server's; the log has the whole message."""
    message = " ".join(str(exc).splitlines())
    if exc.http_status < 500:
        # an index error names the server's files ("/srv/home/packs/x/docs/a.md"): the client
        # gets the message without them, the log keeps it whole
        log.info("%s: %s", type(exc).__name__, message)
        return ApiError(exc.http_status, without_paths(message))
    log.error("%s: %s", type(exc).__name__, message)
    return ApiError(exc.http_status, without_paths(message), "server_error")


def validation_error(errors: list[dict]) -> ApiError:
    """400 with the first problem in a sentence (OpenAI answers 400 where FastAPI says 422)."""
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        message = f"the request body is not valid JSON ({first.get('msg', '')})"
    elif first.get("type") == "missing":
        message = f"missing field {'.'.join(loc)!r}"
    else:
        where = ".".join(loc) or "body"
        message = f"invalid {where}: {first.get('msg', 'bad value')}"
    return ApiError(400, message, param=".".join(loc) or None)


def install_error_handlers(app: FastAPI) -> None:
    """Every error reaches the client as OpenAI's error JSON; tracebacks only go to the log."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(AssistantError)
    async def _assistant_error(request: Request, exc: AssistantError) -> JSONResponse:
        return from_assistant_error(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(list(exc.errors())).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        message = str(exc.detail) if exc.status_code != 404 else f"no route {request.url.path}"
        return ApiError(exc.status_code, message, code=code, headers=exc.headers).response()

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("error on %s %s", request.method, request.url.path, exc_info=exc)
        return ApiError(500, INTERNAL_ERROR, "server_error").response()
