"""Security of several machines (issue 16): nothing of Thespian beyond loopback without a role,
a shared secret only its owner can read, and every Thespian message signed — checked before it
is unpickled, so a pickle from a machine without the secret never runs."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.system import SecretError, SignedPickle, read_secret
from config import ConfigError, load_config
from tests.e2e import free_port

NODE = Path(__file__).with_name("cluster_node.py")


class _Creates:
    """A pickle that, when unpickled, creates a file: the proof of code running on arrival."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.path), "w"))


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.secret"
    path.write_bytes(os.urandom(32).hex().encode())
    path.chmod(0o600)
    return path


# -- the serializer --------------------------------------------------------------------------


def test_a_signed_message_round_trips() -> None:
    signed = SignedPickle(b"k" * 32)
    assert signed.loads(signed.dumps(("to", {"order": 1}))) == ("to", {"order": 1})


@pytest.mark.parametrize("make", [
    lambda body: body,  # no HMAC at all
    lambda body: SignedPickle(b"x" * 32).dumps(pickle.loads(body)) if False else b"\0" * 32 + body,  # a wrong one
    lambda body: SignedPickle(b"another secret of 32 bytes......").dumps(None)[:32] + body,  # another key's
], ids=["none", "zeros", "other-key"])
def test_a_message_without_a_valid_hmac_is_never_unpickled(tmp_path: Path, make, caplog) -> None:  # type: ignore[no-untyped-def]
    from thespian.system.transport.streamBuffer import ackDataErrPacket

    marker = tmp_path / "ran"
    body = pickle.dumps(_Creates(marker))
    assert SignedPickle(b"k" * 32).loads(make(body)) == ackDataErrPacket
    assert not marker.exists()
    assert "without a valid HMAC" in caplog.text
    pickle.loads(body)  # the same bytes unpickled plainly do run: the check above can fail
    assert marker.exists()


def test_the_key_never_shows() -> None:
    assert "k" * 8 not in repr(SignedPickle(b"k" * 32))


# -- the secret's file -----------------------------------------------------------------------


def test_the_secret_is_read_from_a_private_file(secret: Path) -> None:
    assert read_secret(secret) == secret.read_bytes().strip()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_secret_others_can_read_is_refused(secret: Path, mode: int) -> None:
    secret.chmod(mode)
    with pytest.raises(SecretError, match="chmod 600") as e:
        read_secret(secret)
    assert secret.read_text().strip() not in str(e.value)


def test_a_short_or_missing_secret_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("too short")
    short.chmod(0o600)
    with pytest.raises(SecretError, match="at least 32"):
        read_secret(short)
    with pytest.raises(SecretError, match="cannot be read"):
        read_secret(tmp_path / "missing")


# -- the configuration -----------------------------------------------------------------------


def test_one_machine_never_binds_beyond_loopback() -> None:
    with pytest.raises(ConfigError, match="cluster.address.*cluster.role is not set"):
        load_config(overrides={"cluster.address": "10.0.0.5"})
    with pytest.raises(ConfigError, match="actors.convention_address.*run.py member"):
        load_config(overrides={"actors.convention_address": "10.0.0.5:1900"})


def test_a_role_needs_a_secret_and_a_member_its_leader(secret: Path) -> None:
    with pytest.raises(ConfigError, match="cluster.secret_file"):
        load_config(overrides={"cluster.role": "leader", "cluster.address": "10.0.0.5"})
    with pytest.raises(ConfigError, match="leader's \"host:port\""):
        load_config(overrides={"cluster.role": "member", "cluster.secret_file": str(secret)})
    with pytest.raises(ConfigError, match="multiprocTCPBase"):
        load_config(overrides={"cluster.role": "leader", "cluster.secret_file": str(secret),
                               "actors.system_base": "simpleSystemBase"})
    cfg = load_config(overrides={"cluster.role": "member", "cluster.secret_file": str(secret),
                                 "cluster.address": "10.0.0.6", "cluster.shard": "b",
                                 "actors.convention_address": "10.0.0.5:1900"})
    assert (cfg.cluster.address, cfg.cluster.shard, cfg.actors.convention_address) == ("10.0.0.6", "b", "10.0.0.5:1900")


@pytest.mark.parametrize("leader", ["10.0.0.5:1900", "[fd00::1]:1900", "leader.lan:1900"])
def test_a_member_names_its_leader_by_address_or_name(secret: Path, leader: str) -> None:
    cfg = load_config(overrides={"cluster.role": "member", "cluster.secret_file": str(secret),
                                 "cluster.shard": "b", "actors.convention_address": leader})
    assert cfg.actors.convention_address == leader


def test_a_member_without_a_shard_of_its_own_is_refused(secret: Path) -> None:
    """cluster.shard defaults to "leader", the leader's own shard, whose name the leader ignores
    from a member: started without --shard, a member ran and never joined (a trial run)."""
    with pytest.raises(ConfigError, match=r'cluster.shard = "leader".*--shard NAME'):
        load_config(overrides={"cluster.role": "member", "cluster.secret_file": str(secret),
                               "actors.convention_address": "10.0.0.5:1900"})


# -- a running member's port -----------------------------------------------------------------


def _start_node(tmp_path: Path, overrides: dict[str, str]) -> subprocess.Popen[str]:
    env = {**os.environ, "THESPLOG_FILE": str(tmp_path / "thespian.log")}
    args = [f"{k}={v}" for k, v in {"bot.data_dir": str(tmp_path / "data"), **overrides}.items()]
    node = subprocess.Popen([sys.executable, str(NODE), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=(tmp_path / "node.err").open("w"), text=True, env=env, start_new_session=True)
    assert node.stdout is not None and node.stdout.readline().strip() == "ready"
    return node


def _stop_node(node: subprocess.Popen[str], port: int) -> None:
    assert node.stdin is not None
    node.stdin.close()
    try:
        node.wait(timeout=15)
    finally:
        if node.poll() is None:
            os.killpg(node.pid, 9)
    deadline = time.monotonic() + 5
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _send_raw(port: int, payload: bytes) -> bytes:
    """What Thespian's TCP framing carries: "<length>>" then the bytes; returns the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"{len(payload)}>".encode() + payload)
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return path.exists()


def test_a_pickle_without_the_hmac_sent_to_a_members_port_runs_nothing(tmp_path: Path, secret: Path) -> None:
    port = free_port()
    node = _start_node(tmp_path, {"cluster.role": "leader", "cluster.secret_file": str(secret),
                                  "actors.admin_port": str(port)})
    try:
        marker = tmp_path / "ran"
        answer = _send_raw(port, pickle.dumps(("sender", _Creates(marker))))
        assert not _wait_for(marker, 1.5)
        assert b"ACK+DATAERR" in answer and b"ACK\x94" not in answer  # refused as bad data, not acknowledged
        signed = SignedPickle(secret.read_bytes().strip())
        assert signed.loads(answer[answer.index(b">") + 1:]) == "ACK+DATAERR"  # the refusal itself is signed
    finally:
        _stop_node(node, port)
    logged = (tmp_path / "node.err").read_text()
    assert "dropped a Thespian message of" in logged and "without a valid HMAC" in logged
    assert secret.read_text().strip() not in logged + (tmp_path / "thespian.log").read_text()


def test_without_a_role_the_same_pickle_would_run(tmp_path: Path) -> None:
    """The control: Thespian as it comes unpickles what reaches its port (loopback only here)."""
    port = free_port()
    node = _start_node(tmp_path, {"actors.admin_port": str(port)})
    try:
        marker = tmp_path / "ran"
        _send_raw(port, pickle.dumps(("sender", _Creates(marker))))
        assert _wait_for(marker, 5)
    finally:
        _stop_node(node, port)
