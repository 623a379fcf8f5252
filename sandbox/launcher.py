"""Start and stop the sandbox server as a child process (run.py's autostart, the e2e tests)."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (even by kill -9)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_sandbox(url: str, data_file: Path, *, tied_to_parent: bool = True,
                  log_file: Path | None = None, timeout: float = 15.0) -> subprocess.Popen[bytes]:
    """Run `python -m sandbox` for url and wait until it listens."""
    host, port = host_port(url)
    data_file.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--host", host, "--port", str(port),
             "--data-file", str(data_file)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if tied_to_parent else None,
            cwd=Path(__file__).resolve().parents[1],
        )
    finally:
        if log_file:
            out.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + timeout
    while not listening(host, port):
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited with status {proc.returncode} before listening on {url}")
        if time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"the sandbox did not listen on {url} within {timeout:.0f} s")
        time.sleep(0.05)
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
