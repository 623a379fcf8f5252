"""Several machines on this one (issue 16): a leader and two members as separate run.py
processes (own admin ports on loopback, own working directories), groups spread over the
shards, orders taken and approved on each; one member killed with SIGKILL and the other cut off
(SIGSTOP, as a partition does): their groups come back on the shards left within the detection
time, no acknowledged order lost or doubled, the cut-off member's late writes refused; a pickle
without the HMAC sent to a member's port runs nothing."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e import REPO, Bot, Sandbox, free_port, group_members, listening_sockets, process_env, wait_for
from tests.test_cluster_security import _Creates, _send_raw

pytestmark = pytest.mark.e2e

CHECK_IN = 1.0  # s: hosts' heartbeats; a member is declared lost after three missed
DETECTION = 3 * CHECK_IN + 10  # s: the check-ins, plus starting its groups elsewhere, on a loaded machine
ALICE = "76210050711676@lid"


class Member:
    """`run.py member` in its own session and working directory."""

    def __init__(self, root: Path, shard: str, leader_port: int, secret: Path) -> None:
        self.dir, self.shard = root / f"member-{shard}", shard
        self.admin_port = free_port()
        self.log = root / f"member-{shard}.log"
        self.args = [sys.executable, "run.py", "--data-dir", str(self.dir),
                     "--set", f"actors.admin_port={self.admin_port}", "--set", f"cluster.secret_file={secret}",
                     "--set", f"cluster.check_in={CHECK_IN}s", "--set", "actors.group_hosts=1",
                     "member", "--leader", f"127.0.0.1:{leader_port}", "--shard", shard]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True, env=process_env())
        wait_for(lambda: (self.dir / "actor-system.json").exists(), 30, f"member {self.shard} to start")

    def system_pgid(self) -> int:
        return int(json.loads((self.dir / "actor-system.json").read_text())["pgid"])

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *group_members(self.system_pgid())]

    def signal_all(self, sig: int) -> None:
        """The whole machine: run.py's session and the actor system's (Thespian setsids away)."""
        assert self.proc is not None
        for pgid in (self.proc.pid, self.system_pgid()):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.system_pgid() if (self.dir / "actor-system.json").exists() else 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if pgid > 1 and group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.secret"
    path.write_bytes(os.urandom(32).hex().encode())
    path.chmod(0o600)
    return path


@pytest.fixture
def fleet(tmp_path: Path, secret: Path) -> Iterator[tuple[Sandbox, Bot, dict[str, Member]]]:
    sandbox = Sandbox(tmp_path / "sandbox.json", tmp_path / "sandbox.log")
    sandbox.start()
    leader = Bot(tmp_path / "leader", sandbox.url, tmp_path / "leader.log",
                 "--set", "cluster.role=leader", "--set", f"cluster.secret_file={secret}",
                 "--set", f"cluster.check_in={CHECK_IN}s", "--set", "actors.group_hosts=1")
    members = {name: Member(tmp_path, name, leader.admin_port, secret) for name in ("a", "b")}
    try:
        yield sandbox, leader, members
    finally:
        try:
            for member in members.values():
                member.signal_all(signal.SIGCONT)
                member.stop()
            if leader.proc is not None:
                leader.stop()
        finally:
            sandbox.stop()


def status(bot: Bot) -> dict[str, Any]:
    return bot.api.get("/api/status")


def shards(bot: Bot) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in status(bot)["cluster"]["shards"]}


def placed(bot: Bot) -> dict[str, dict[str, Any]]:
    """group id -> its actor's row (shard, ready, pid, incarnation)."""
    return {a["group_id"]: a for a in status(bot)["groups"]["actors"]}


def receipts(sandbox: Sandbox, group: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in sandbox.messages(group):
        if m["from_bot"] and m["text"].startswith("📥"):
            counts[m["quoted_id"]] = counts.get(m["quoted_id"], 0) + 1
    return counts


def test_a_lost_member_s_groups_come_back_on_the_others(fleet: tuple[Sandbox, Bot, dict[str, Member]],
                                                         tmp_path: Path) -> None:
    sandbox, leader, members = fleet
    leader.start()
    for member in members.values():
        member.start()
    wait_for(lambda: {n for n, s in shards(leader).items() if s["live"]} == {"leader", "a", "b"}, 30,
             "both members to join")

    # Nothing listens beyond loopback (cluster.address is 127.0.0.1 here).
    pids = leader.pids() + members["a"].pids() + members["b"].pids()
    sockets = listening_sockets(pids)
    assert any(port == members["a"].admin_port for _, _, port in sockets)
    assert [s for s in sockets if s[1] not in ("127.0.0.1", "::1")] == []

    # Six groups, spread over the three shards by load; an order in each, approved.
    groups = [sandbox.create_group(f"Shop {i}") for i in range(6)]
    posted: dict[str, list[str]] = {g: [sandbox.post(g, ALICE, ".10", "Alice")["id"]] for g in groups}
    rows = wait_for(lambda: (lambda p: p if all(g in p and p[g]["ready"] for g in groups) else None)(placed(leader)),
                    30, "every group running")
    by_shard: dict[str, list[str]] = {}
    for g in groups:
        by_shard.setdefault(rows[g]["shard"], []).append(g)
    assert {k: len(v) for k, v in by_shard.items()} == {"leader": 2, "a": 2, "b": 2}
    # A member's groups run in that member's processes.
    assert {rows[g]["pid"] for g in by_shard["a"]} <= set(members["a"].pids())
    assert {rows[g]["pid"] for g in by_shard["b"]} <= set(members["b"].pids())
    orders = wait_for(lambda: (lambda o: o if len(o) == 6 else None)(leader.orders()), 30, "six orders")
    for o in orders:
        status_code, body = leader.api.post(f"/api/orders/{o['id']}/approve")
        assert status_code == 200, body
    wait_for(lambda: all(o["status"] == "completed" for o in leader.orders()), 30, "every order completed")

    # A pickle without the HMAC, sent to a member's admin port, runs nothing.
    marker = tmp_path / "ran"
    _send_raw(members["b"].admin_port, pickle.dumps(("x", _Creates(marker))))
    time.sleep(1)
    assert not marker.exists()

    # Member a dies (SIGKILL, every process of it); orders keep coming meanwhile.
    moved_a = by_shard["a"]
    before = placed(leader)
    members["a"].signal_all(signal.SIGKILL)
    killed = time.monotonic()
    for g in moved_a:
        posted[g].append(sandbox.post(g, ALICE, ".20", "Alice")["id"])
    rows = wait_for(lambda: (lambda p: p if all(p[g]["ready"] and p[g]["shard"] in ("leader", "b")
                                                 for g in moved_a) else None)(placed(leader)),
                    DETECTION + 30, "member a's groups running on the others")
    took = time.monotonic() - killed
    assert not shards(leader)["a"]["live"]
    for g in moved_a:
        assert rows[g]["incarnation"] > before[g]["incarnation"]  # a new epoch: the old one is fenced
    assert took < DETECTION + 15, f"failover took {took:.1f} s"

    # Member b is cut off (frozen, as a partition leaves it): its groups move to the leader.
    moved_b = by_shard["b"]
    members["b"].signal_all(signal.SIGSTOP)
    for g in moved_b:
        posted[g].append(sandbox.post(g, ALICE, ".30", "Alice")["id"])
    wait_for(lambda: (lambda p: p if all(p[g]["ready"] and p[g]["shard"] == "leader"
                                         for g in moved_b) else None)(placed(leader)),
             DETECTION + 30, "member b's groups running on the leader")
    # Back, its old group actors (orphans) go on checkpointing: the journal refuses them.
    members["b"].signal_all(signal.SIGCONT)
    leader_log = leader.data_dir / "logs" / "bot.log"
    wait_for(lambda: "from stale incarnation" in leader_log.read_text(errors="replace"), 20,
             "a late write of the cut-off member refused")
    # It rejoins, and gets no groups back by itself.
    wait_for(lambda: shards(leader)["b"]["live"], 4 * CHECK_IN + 20, "member b back in the convention")
    time.sleep(2)
    assert all(placed(leader)[g]["shard"] == "leader" for g in moved_b)

    # Every posted order exists once, and every order has a receipt.
    expected = {m for ids in posted.values() for m in ids}
    orders = wait_for(lambda: (lambda o: o if len(o) >= len(expected) else None)(leader.orders()), 30,
                      "every posted order")
    by_message: dict[str, Any] = {}
    for o in orders:
        assert o["message_id"] not in by_message, f"duplicate order for message {o['message_id']}"
        by_message[o["message_id"]] = o
    assert set(by_message) == expected
    for g in groups:
        wait_for(lambda g=g: set(posted[g]) <= set(receipts(sandbox, g)), 30, f"receipts in {g}")
        # A group that stayed put answers each order once. One that moved may repeat a receipt
        # that was on its way when its member was lost (at least once, as the README says; seen
        # about once in five full runs), never more.
        most = 2 if g in moved_a or g in moved_b else 1
        assert all(n <= most for n in receipts(sandbox, g).values()), receipts(sandbox, g)
    # The moved groups take commands on their new shards.
    for o in orders:
        if o["status"] == "pending":
            status_code, body = leader.api.post(f"/api/orders/{o['id']}/approve")
            assert status_code == 200, body
    wait_for(lambda: all(o["status"] == "completed" for o in leader.orders()), 30, "every order completed")

    # An operator moves a group back to member b (owner only): it runs there, under a new epoch.
    g = moved_b[0]
    old = placed(leader)[g]
    code, body = leader.api.post(f"/api/groups/{g}/move", {"shard": "b"})
    assert code == 200, body
    new = wait_for(lambda: (lambda r: r if r["ready"] and r["shard"] == "b" else None)(placed(leader)[g]), 30,
                   "the moved group running on b")
    assert new["incarnation"] > old["incarnation"] and new["pid"] in members["b"].pids()
    code, body = leader.api.post(f"/api/groups/{g}/move", {"shard": "a"})
    assert code == 409, body  # a lost member takes nothing
    sandbox.post(g, ALICE, ".40", "Alice")
    wait_for(lambda: any(o["amount"] == "4000.00" for o in leader.orders()), 30, "an order on the moved group")
    time.sleep(4 * CHECK_IN)
    assert placed(leader)[g]["shard"] == "b"  # it stays put
    leader_text = (leader.data_dir / "logs" / "bot.log").read_text(errors="replace")
    assert leader_text.count("is gone: starting") == 2, leader_text  # a and b once each, no flapping
