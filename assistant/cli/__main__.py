"""`python -m assistant.cli` runs the command line (used by tests and when no script is on PATH)."""

from assistant.cli import main

main()
