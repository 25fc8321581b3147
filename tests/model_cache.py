"""Where the tests keep converted models: the developer's normal cache, or one under CI's temp.
A module of its own (not conftest.py) so test modules can import it: tests/reliability has a
conftest.py too, and `from conftest import ...` would pick whichever was imported last."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

SHARED_CACHE = Path(
    os.environ.get("ASSISTANT_TEST_CACHE") or platformdirs.user_cache_dir("assistant")
)
