"""The fork server of the fault tests: real `assistant` commands in real child processes,
killed, starved of disk space or failed at chosen moments.

A fresh interpreter with torch, transformers and the embedder costs 10-15 s on 2 cores, too much
for dozens of kill points. So one server process per session (`serve`, started from this file)
imports everything once, loads the embedder and the base model single-threaded (so no OpenMP
pool exists that a child could inherit half-dead), and forks one child per command. The child
runs the real command line (`assistant.cli.app.cli`) on real files in the session's
ASSISTANT_HOME, its output in a log file, and then:

- `kill_after`: the server SIGKILLs it that many seconds after the fork;
- `kill_at`: it SIGKILLs itself right before (2n) or after (2n + 1) its n-th file-system write
  operation (write-mode open, fsync, rename, replace, unlink, mkdir, copy, rmtree, the adapter
  folder swap), counted from the first operation on a file whose name starts with
  `count_from` ("{pid}" is the child's pid) when given; this reaches the short publish and
  rename windows that random delays rarely hit;
- `fail_at`: its n-th write operation (counted the same way) raises OSError(ENOSPC) instead
  of running;
- `tmpfs`: it first moves a folder onto a private tmpfs (a user and mount namespace, so no root
  is needed where unprivileged namespaces are allowed) filled up to leave `free` bytes, runs the
  command on a really full disk, and copies the folder's final contents to `out`.

Every write operation is appended to a trace file with an unbuffered write, so a test can tell
where a kill landed. `start` and `wait` run children side by side (two writers, a reader during
writes), and the argv ("-c", CODE, ARGS...) runs a Python snippet instead of a command. A child
running for HANG_SECONDS fails its test. tqdm's lock, a semaphore that forked siblings would
share (one killed while holding it blocked every later child), is made private to each child;
separate interpreters never share it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import pytest

SETUP_FAILED = 3  # exit code of a child whose tmpfs could not be set up
HANG_SECONDS = 300  # a child still running after this is killed and reported as hung


# ----- the server side (runs in the server process and its children) --------------------------


def serve() -> None:
    """Read one JSON request per line, fork a child for it, reply with its exit status."""
    import gc
    import time

    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tqdm import std

    std.tqdm.monitor_interval = 0  # no monitor thread that could hold tqdm's lock at a fork
    import torch

    torch.set_num_threads(1)
    import bm25s  # noqa: F401
    import datasets  # noqa: F401
    import faiss  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import peft  # noqa: F401
    import transformers  # noqa: F401

    import assistant.history  # noqa: F401
    import assistant.knowledge  # noqa: F401
    import assistant.packs.info  # noqa: F401
    import assistant.packs.validation  # noqa: F401
    import assistant.training.trainer  # noqa: F401
    from assistant.cli import commands  # noqa: F401  (registers the subcommands)
    from assistant.runtime import models
    from assistant.settings import load_settings

    models.load_embedder(load_settings())
    models.load_base_model(load_settings())
    gc.freeze()  # children's collections skip the preloaded objects (no copy-on-write storm)
    print(json.dumps({"ready": True}), flush=True)
    background: dict[int, float] = {}  # pid -> start time of children nobody waits for yet
    for line in sys.stdin:
        request = json.loads(line)
        if "wait" in request:
            pid = request["wait"]
            print(json.dumps(_reap(pid, background.pop(pid), None)), flush=True)
            continue
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(request)
        if request.get("background"):
            background[pid] = started
            print(json.dumps({"pid": pid}), flush=True)
            continue
        print(json.dumps(_reap(pid, started, request.get("kill_after"))), flush=True)


def _reap(pid: int, started: float, kill_after: float | None) -> dict[str, Any]:
    """Wait for a child, SIGKILLing it `kill_after` seconds after its start, or after
    HANG_SECONDS (then the reply says it hung)."""
    import time

    hung = False
    while True:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        elapsed = time.monotonic() - started
        hung = elapsed >= HANG_SECONDS
        if hung or (kill_after is not None and elapsed >= kill_after):
            os.kill(pid, signal.SIGKILL)  # not reaped yet, so the pid cannot be reused
            raw = os.waitpid(pid, 0)[1]
            break
        time.sleep(0.002)
    status = os.waitstatus_to_exitcode(raw)
    return {"status": status, "seconds": time.monotonic() - started, "hung": hung}


def _child(request: dict[str, Any]) -> None:
    import io
    import traceback

    from assistant.cli.app import cli

    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    os.environ.update(request.get("env") or {})
    _private_tqdm_lock()
    tmpfs = request.get("tmpfs")
    if tmpfs:
        try:
            _onto_tmpfs(Path(tmpfs["dir"]), tmpfs["free"])
        except BaseException:
            traceback.print_exc()
            os._exit(SETUP_FAILED)
    trace = os.open(request["trace"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    count_from = (request.get("count_from") or "").replace("{pid}", str(os.getpid()))
    _install_hooks(request.get("kill_at"), request.get("fail_at"), count_from, trace)
    code = 0
    argv = request["argv"]
    try:
        if argv[0] == "-c":  # a Python snippet instead of a command; `argv` holds the rest
            exec(argv[1], {"argv": argv[2:]})
        else:
            cli.main(args=argv, prog_name="assistant", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    if tmpfs:
        import shutil

        shutil.copytree(tmpfs["dir"], tmpfs["out"], ignore=shutil.ignore_patterns(".filler"))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _private_tqdm_lock() -> None:
    """tqdm guards its bars with a multiprocessing lock, a semaphore shared with every forked
    sibling: one killed while holding it would block all later children. Each gets its own."""
    from tqdm import std

    std.TqdmDefaultWriteLock.mp_lock = None
    std.TqdmDefaultWriteLock.th_lock = std.TRLock()
    std.tqdm.set_lock(std.TqdmDefaultWriteLock())


def _install_hooks(
    kill_at: int | None, fail_at: int | None, count_from: str, trace_fd: int
) -> None:
    import builtins
    import errno
    import io
    import shutil

    count = [0]
    base: list[int | None] = [None if count_from else 0]  # kill_at, fail_at count from here
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def tick(name: str, when: int, target: str) -> None:
        if when == 0:
            count[0] += 1
            os.write(trace_fd, f"{count[0]} {name} {target}\n".encode())
            if base[0] is None and os.path.basename(target).startswith(count_from):
                base[0] = count[0] - 1
        if base[0] is None:
            return
        number = count[0] - base[0]
        if when == 0 and number == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)
        if 2 * number + when == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(name: str, fn: Any, counted: Any = None) -> Any:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            if counted is not None and not counted(*args, **kwargs):
                return fn(*args, **kwargs)
            target = str(args[0]) if args and isinstance(args[0], str | os.PathLike) else ""
            tick(name, 0, target)
            result = fn(*args, **kwargs)
            tick(name, 1, target)
            return result

        return hooked

    def writes(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> bool:
        return isinstance(mode, str) and any(c in mode for c in "wax+")

    def os_writes(path: Any, flags: int, *args: Any, **kwargs: Any) -> bool:
        return bool(flags & write_flags)

    for module, name in [
        (os, "fsync"),
        (os, "replace"),
        (os, "rename"),
        (os, "unlink"),
        (os, "mkdir"),
        (shutil, "copyfile"),
        (shutil, "rmtree"),
    ]:
        setattr(module, name, wrap(name, getattr(module, name)))
    builtins.open = io.open = wrap("open", io.open, writes)
    os.open = wrap("os.open", os.open, os_writes)
    from assistant import fsio

    fsio.exchange = wrap("exchange", fsio.exchange)  # the atomic swap of folders (a ctypes call)


def _onto_tmpfs(folder: Path, free: int) -> None:
    """Move `folder` onto a fresh tmpfs, in this process's own user and mount namespace, and
    fill the tmpfs until `free` bytes remain."""
    import ctypes
    import shutil

    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int) -> None:
        if result != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number))

    staging = folder.with_name(f"{folder.name}.staging-{os.getpid()}")
    shutil.copytree(folder, staging, symlinks=True)
    size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    uid, gid = os.getuid(), os.getgid()
    check(libc.unshare(0x10000000 | 0x00020000))  # CLONE_NEWUSER | CLONE_NEWNS
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    check(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None))  # MS_REC | MS_PRIVATE
    options = f"size={size + free + (8 << 20)}".encode()
    check(libc.mount(b"tmpfs", os.fsencode(folder), b"tmpfs", 0, options))
    shutil.copytree(staging, folder, symlinks=True, dirs_exist_ok=True)
    shutil.rmtree(staging)
    stat = os.statvfs(folder)
    filler = stat.f_bavail * stat.f_frsize - free
    with open(folder / ".filler", "wb") as handle:
        while filler > 0:
            filler -= handle.write(b"\0" * min(filler, 1 << 20))


# ----- the test side --------------------------------------------------------------------------


@dataclass
class Run:
    """One command run by the fork server."""

    status: int  # exit code, or -9 when it was killed
    seconds: float
    output: str  # stdout and stderr of the command
    ops: list[str]  # the file-system write operations it started, in order

    @property
    def killed(self) -> bool:
        return self.status == -signal.SIGKILL


class ForkServer:
    """Runs `assistant ARGV...` in forked children of one preloaded interpreter."""

    setup_failed = SETUP_FAILED

    def __init__(self, home: Path, work: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        env["ASSISTANT_HOME"] = str(home)
        env["ASSISTANT_THREADS"] = "1"
        # pyarrow (imported by `datasets`) starts jemalloc's background thread; a child forked
        # while it holds an allocator lock waits on that lock forever (seen in CI: a rebuild's
        # child stuck in futex_do_wait). Without the thread, forking the preloaded server is safe.
        env["JE_ARROW_MALLOC_CONF"] = "background_thread:false"
        cache = os.environ.get("ASSISTANT_TEST_CACHE") or platformdirs.user_cache_dir("assistant")
        env["ASSISTANT_CACHE_DIR"] = cache
        self.home = home
        self.work = work
        self.count = 0
        code = f"import runpy; runpy.run_path({str(Path(__file__))!r})['serve']()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert json.loads(self._reply()) == {"ready": True}

    def _reply(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server died (exit code {self.proc.wait()})")
        return line

    def run(self, *argv: str, **options: Any) -> Run:
        """Run one command and wait for it; `options` as in the module docstring (kill_after,
        kill_at, fail_at, count_from, tmpfs={"dir", "free", "out"}, env). ARGV may also be
        ("-c", CODE, ARGS...): a Python snippet run in the child with `argv` = ARGS."""
        assert self.proc.stdin is not None
        self.count += 1
        request = {"argv": list(argv), **self._files(self.count), **options}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._result(json.loads(self._reply()), self.count)

    def start(self, *argv: str, **options: Any) -> tuple[int, int]:
        """Start a command in the background; returns (pid, run number) for `wait`."""
        assert self.proc.stdin is not None
        self.count += 1
        request = {"argv": list(argv), "background": True, **self._files(self.count), **options}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._reply())["pid"], self.count

    def wait(self, started: tuple[int, int]) -> Run:
        """Wait for a command started with `start`."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"wait": started[0]}) + "\n")
        self.proc.stdin.flush()
        return self._result(json.loads(self._reply()), started[1])

    def _files(self, number: int) -> dict[str, str]:
        return {
            "log": str(self.work / f"run{number}.log"),
            "trace": str(self.work / f"run{number}.trace"),
        }

    def _result(self, reply: dict[str, Any], number: int) -> Run:
        files = self._files(number)
        log, trace = Path(files["log"]), Path(files["trace"])
        ops = trace.read_text().splitlines() if trace.exists() else []
        output = log.read_text(errors="replace") if log.exists() else ""  # killed before
        if reply["hung"]:
            raise AssertionError(f"run {number} hung; its log {log}, its trace {trace}")
        return Run(reply["status"], reply["seconds"], output, ops)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="session")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    """The session's fork server; its ASSISTANT_HOME is `fork_server.home`."""
    server = ForkServer(tmp_path_factory.mktemp("faults-home"), tmp_path_factory.mktemp("runs"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The checks in the test process embed one query at a time: one thread is ten times faster
    than two on a busy machine. The previous setting is restored for the rest of the session."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
