"""The one exception type for errors a person can cause and fix."""


class AssistantError(Exception):
    """A problem the user can fix; the message says what to do. The CLI prints it in one line."""
