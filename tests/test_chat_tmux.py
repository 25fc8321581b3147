"""End to end in a real terminal: `assistant chat penguin-wood` in a detached tmux session
(80x24), a question typed with send-keys, the screen polled until an answer and a source path
show. Skipped when tmux is not installed (`apt-get install -y tmux`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
ASSISTANT = Path(sys.executable).with_name("assistant")
QUESTION = "What respirator should I wear against sabline dust?"

pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed (apt-get install -y tmux)"
)


def tmux(*args: str) -> str:
    return subprocess.run(
        [TMUX, *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def capture(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session: str, condition, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(session)
        if condition(screen):
            return screen
        time.sleep(1)
    raise AssertionError(f"timed out; the screen was:\n{screen}")


def test_chat_in_tmux(isolated_home, tmp_path):
    session = f"assistant-chat-{uuid.uuid4().hex[:8]}"
    env = {
        "ASSISTANT_HOME": os.environ["ASSISTANT_HOME"],
        "ASSISTANT_CACHE_DIR": os.environ["ASSISTANT_CACHE_DIR"],
        "ASSISTANT_MAX_NEW_TOKENS": "12",
        "TERM": "xterm-256color",
    }
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    command = f"cd {tmp_path} && env {exports} {ASSISTANT} chat penguin-wood"
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
    try:
        wait_for(session, lambda s: "Ask a question" in s, timeout=60)
        tmux("send-keys", "-t", session, "-l", QUESTION)
        tmux("send-keys", "-t", session, "Enter")
        # the answer's first line may have scrolled away (24 rows): wait for the status line
        # of a finished answer and the sources, then look for the answer's own lines
        screen = wait_for(session, lambda s: "docs/" in s and "tok/s" in s, timeout=120)
        answer_lines = [line.split("▌", 1)[1] for line in screen.splitlines() if "▌" in line]
        assert any(line.strip("│ ").strip() for line in answer_lines), screen
        print(screen)  # shown with -s: a real exchange
        tmux("send-keys", "-t", session, "C-q")
        time.sleep(1)
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session], capture_output=True)
