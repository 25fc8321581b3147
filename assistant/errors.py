"""The errors the library raises on purpose, by who can fix them.

Each type carries what the faces need: the CLI's exit code and the server's HTTP status. The
CLI (`assistant.cli.app`) and the server (`assistant.server.app`) map them in one place each;
the message is one line that says what to do.
"""

from __future__ import annotations


class AssistantError(Exception):
    """A problem the user can fix (a wrong argument, setting or file); the message says how."""

    exit_code = 2
    http_status = 400


class NotFoundError(AssistantError):
    """Something the user named does not exist: a pack, a document, a conversation."""

    http_status = 404


class TooLargeError(AssistantError):
    """The input is over a limit (a file, an archive, a question, a request body)."""

    http_status = 413


class DamagedDataError(AssistantError):
    """Stored data is unreadable or inconsistent (an index, a saved adapter, a history
    database); the message names the command that repairs it."""

    exit_code = 3
    http_status = 500


class MissingDependencyError(AssistantError):
    """A model, a package or an engine that the settings ask for is not installed or not
    reachable; the message says what to install or which setting to change."""

    exit_code = 4
    http_status = 503
