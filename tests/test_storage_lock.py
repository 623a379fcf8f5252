"""The data-directory lock: one holder, freed when the holder dies, never kept alive by forked children."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from storage import lock as lock_module
from storage.errors import StorageError
from storage.lock import FileLock, LockHeld, process_alive, process_start_time, read_lock_owner

REPO = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(REPO))
# How long a helper process may take to report in. Only a broken test ever waits this long; it then fails
# instead of hanging (a passing run never gets near it, even on a loaded machine).
DEADLINE = 10.0

HOLDER = textwrap.dedent("""
    import os, sys
    from storage.lock import FileLock

    def say(line):
        # Parent and forked child share this pipe. One write() of under PIPE_BUF bytes is atomic, so their
        # lines cannot interleave. print() would not do: with PYTHONUNBUFFERED set it does one write() per
        # piece ("locked", "\\n"), and the lines get mixed up ("lockedchild-ready 123\\n\\n").
        os.write(1, line.encode() + b"\\n")

    path, close_on_fork, mode = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
    lock = FileLock(path, close_on_fork=close_on_fork)
    lock.acquire()
    if mode in ("fork", "fork-release"):
        pid = os.fork()
        if pid == 0:
            # The at-fork hook has run by now; say so, then stay alive quietly.
            say(f"child-ready {os.getpid()}")
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.read(0, 1)  # lives until the test closes our stdin (or dies) or kills us
            os._exit(0)
        if mode == "fork-release":
            lock.release()
    say("locked")
    os.read(0, 1)
""")


def read_line(proc: subprocess.Popen[bytes], timeout: float = DEADLINE) -> bytes:
    """The next line `proc` writes to its stdout pipe, without the newline; fails after `timeout` seconds."""
    assert proc.stdout is not None
    fd, line = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            pytest.fail(f"pid {proc.pid} wrote no complete line within {timeout}s (got {line!r})")
        byte = os.read(fd, 1)  # one byte at a time: nothing is buffered past the line, so select() stays exact
        if not byte:
            pytest.fail(f"pid {proc.pid} exited early (got {line!r})")
        line += byte
    return line[:-1]


class Holder:
    """A process holding the lock, and the pid and start time of its forked child, if any."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.child: int | None = None
        self.child_start: int | None = None

    def kill(self) -> None:
        """The holder dies (its forked child, if any, lives on)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        # Dead (its files closed, its flock gone with them) but not reaped: its pid, which is also its process
        # group's id, cannot be reused before stop() has killed that group.
        os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT)

    def stop(self) -> None:
        """Kill the holder and everything it forked, then reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def start_holder() -> Iterator[Callable[..., Holder]]:
    """Starts lock holders; none of them, nor their forked children, outlives the test."""
    holders: list[Holder] = []

    def start(path: Path, *, close_on_fork: bool = True, mode: str = "plain") -> Holder:
        # A session of its own, so that stop() can kill its forked child too, even one whose pid it never learnt.
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "1" if close_on_fork else "0", mode],
                                cwd=REPO, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                start_new_session=True)
        holder = Holder(proc)
        holders.append(holder)
        locked = False
        while not locked or (mode != "plain" and holder.child is None):
            line = read_line(proc)
            if line == b"locked" and not locked:
                locked = True
            elif line.startswith(b"child-ready ") and mode != "plain" and holder.child is None:
                holder.child = int(line.split()[1])
                holder.child_start = process_start_time(holder.child)  # it waits on stdin: still alive
            else:
                pytest.fail(f"unexpected line from the holder: {line!r}")
        return holder

    yield start
    for holder in holders:
        holder.stop()


@pytest.fixture
def lock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "bot.lock"


def test_acquire_writes_owner_and_release_frees(lock_path: Path) -> None:
    lock_path.write_text(json.dumps({"pid": 1, "argv": ["x" * 5000]}))  # left by a killed owner
    with FileLock(lock_path) as held:
        assert held.held
        owner = read_lock_owner(lock_path)
        assert owner is not None
        assert owner["pid"] == os.getpid() and owner["argv"] == sys.argv
        assert owner["hostname"] == socket.gethostname() and owner["started_at"]
        assert process_alive(owner["pid"], owner["start_time"])
        with pytest.raises(RuntimeError):
            held.acquire()
    assert read_lock_owner(lock_path) is None
    with FileLock(lock_path):  # free again
        pass


def test_second_acquire_in_another_process_names_the_owner(lock_path: Path) -> None:
    probe = textwrap.dedent("""
        import json, sys
        from storage.lock import FileLock, LockHeld
        try:
            FileLock(sys.argv[1]).acquire()
        except LockHeld as e:
            print(json.dumps({"owner": e.owner, "message": str(e)}))
        else:
            print(json.dumps(None))
    """)
    with FileLock(lock_path):
        out = subprocess.run([sys.executable, "-c", probe, str(lock_path)], cwd=REPO, env=ENV,
                             capture_output=True, check=True, timeout=DEADLINE).stdout
    result = json.loads(out)
    assert result is not None, "the second process got the lock"
    assert result["owner"]["pid"] == os.getpid()
    assert f"pid {os.getpid()}" in result["message"] and shlex.join(sys.argv) in result["message"]


def test_lock_held_is_a_storage_error_and_tolerates_missing_owner_info() -> None:
    err = LockHeld({}, "/data/bot.lock")
    assert isinstance(err, StorageError) and "pid unknown" in str(err)


def test_lock_is_free_after_the_owner_is_killed(lock_path: Path, start_holder: Callable[..., Holder]) -> None:
    holder = start_holder(lock_path)
    with pytest.raises(LockHeld) as info:
        FileLock(lock_path).acquire()
    owner = info.value.owner
    assert owner["pid"] == holder.proc.pid and process_alive(owner["pid"], owner["start_time"])
    holder.kill()
    assert not process_alive(owner["pid"], owner["start_time"])
    assert read_lock_owner(lock_path) == owner  # stale, and recognisably so
    with FileLock(lock_path):
        assert read_lock_owner(lock_path)["pid"] == os.getpid()  # type: ignore[index]


@pytest.mark.parametrize("close_on_fork", [True, False])
def test_forked_child_keeps_the_lock_only_without_close_on_fork(
        lock_path: Path, start_holder: Callable[..., Holder], close_on_fork: bool) -> None:
    holder = start_holder(lock_path, close_on_fork=close_on_fork, mode="fork")
    assert holder.child is not None and holder.child_start is not None
    holder.kill()  # the owner dies; its forked worker lives on
    assert process_alive(holder.child, holder.child_start)
    if close_on_fork:
        with FileLock(lock_path):
            pass
    else:
        # Proves the test can fail: an inherited fd keeps the dead owner's lock alive.
        with pytest.raises(LockHeld):
            FileLock(lock_path).acquire()


def test_release_frees_the_lock_even_if_a_child_kept_the_fd(lock_path: Path,
                                                            start_holder: Callable[..., Holder]) -> None:
    holder = start_holder(lock_path, close_on_fork=False, mode="fork-release")
    assert holder.child is not None and process_alive(holder.child, holder.child_start)
    with FileLock(lock_path):  # the child still has the fd, the holder still lives: only release() freed it
        pass


@pytest.mark.parametrize("close_on_fork", [True, False])
def test_release_in_a_forked_child_does_not_unlock_the_parent(lock_path: Path, close_on_fork: bool) -> None:
    with FileLock(lock_path, close_on_fork=close_on_fork) as held:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if held.held is not close_on_fork else 2
                held.release()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        if close_on_fork:
            with pytest.raises(LockHeld):
                FileLock(lock_path).acquire()
        else:
            # The hazard close_on_fork prevents: the child's unlock freed the parent's lock.
            with FileLock(lock_path):
                pass


def test_process_alive_rejects_dead_pids_zombies_and_reused_pids() -> None:
    me = os.getpid()
    assert process_alive(me, process_start_time(me))
    assert process_alive(me, None)
    assert not process_alive(me, process_start_time(me) + 1)  # type: ignore[operator]
    assert not process_alive(0, None) and not process_alive(-1, None)

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = process_start_time(proc.pid)
    assert start is not None and process_alive(proc.pid, start)
    proc.kill()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead but not reaped: a zombie
    assert not process_alive(proc.pid, start)
    proc.wait()
    assert not process_alive(proc.pid, start)
    assert process_start_time(proc.pid) is None


def test_start_time_with_spaces_and_parentheses_in_the_command_name(tmp_path: Path) -> None:
    weird = tmp_path / "a) b (c"
    weird.symlink_to(os.path.realpath(sys.executable))
    # Popen returns once execve() has closed its close-on-exec error pipe; the kernel sets the new command
    # name only after that. A line written by the new program proves its exec is over.
    sleeper = "import os, time; os.write(1, b'up\\n'); time.sleep(30)"
    normal = subprocess.Popen([sys.executable, "-c", sleeper], stdout=subprocess.PIPE, bufsize=0)
    odd = subprocess.Popen([str(weird), "-S", "-c", sleeper], stdout=subprocess.PIPE, bufsize=0)
    try:
        assert read_line(normal) == b"up" and read_line(odd) == b"up"
        assert Path(f"/proc/{odd.pid}/comm").read_text().strip() == "a) b (c"
        a, b = process_start_time(normal.pid), process_start_time(odd.pid)
        assert a is not None and b is not None
        assert 0 <= b - a < os.sysconf("SC_CLK_TCK") * 5  # started moments apart
        assert process_alive(odd.pid, b)
    finally:
        for p in (normal, odd):
            p.kill()
            p.wait()
            p.stdout.close()  # type: ignore[union-attr]
    synthetic = b"123 (x) 1 (y) S " + b" ".join(str(n).encode() for n in range(4, 22)) + b" 987654 0 0\n"
    assert lock_module._start_time_from_fields(lock_module._fields_after_comm(synthetic)) == 987654
