"""The benches' actor system: one machine, or a leader (this process's system) and members on
this machine (tests/cluster_node.py, each its own process, admin port and working directory on
loopback, every Thespian message signed), the way `run.py` and `run.py member` start them.

Signing is process-wide state that stays once a convention ran (actors.system): a bench that
compares with one machine runs each in a process of its own (bench.hop)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import orjson

from actors.messages import GetStatus
from actors.system import quiet_log_config, start_actor_system
from config import Config, load_config
from domain.group import group_code
from domain.placement import PLACED_ON
from storage.atomic import atomic_write_bytes

NODE = Path(__file__).resolve().parents[1] / "tests" / "cluster_node.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def member_shards(members: int) -> list[str]:
    return [f"m{i}" for i in range(members)]


def write_snapshot(data: Path, snapshot: dict[str, Any]) -> None:
    """A stored database the system opens as it would after a stop (no journal written since)."""
    data.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(data / "orders.snapshot.json", orjson.dumps({"format": 1, "journal_gen": 0, "data": snapshot}))
    (data / "orders.journal.00000000").touch()


def placed_groups(group_ids: list[str], shards: list[str], rate: str = "100.00") -> dict[str, Any]:
    """A database with these groups and no orders, placed round robin on `shards` (so that new
    groups of a load are not spread by the Supervisor over the leader's shard too)."""
    now = time.time()
    groups = {gid: {"groupName": f"Load {n}", "code": group_code(n + 1), "rate": rate, "enabled": True,
                    "autoApprove": False, "autoApproveMax": 0, "dueLimit": None, "nextSeq": 1,
                    "watermark": now, "entries": [], PLACED_ON: shards[n % len(shards)]}
              for n, gid in enumerate(group_ids)}
    return {"format": 1, "meta": {"boot": 0, "installedAt": now - 86400}, "payments": [], "groups": groups}


def check_groups_on_members(asys: Any, supervisor: Any) -> None:
    """A run counts only if no group ran on the leader's shard (one whose member had not joined
    within cluster.join_wait would have been started there)."""
    shards = asys.ask(supervisor, GetStatus("placement"), timedelta(seconds=30)).data["cluster"]["shards"]
    on_leader = sum(s["groups"] for s in shards if s["name"] == "leader")
    if on_leader:
        raise RuntimeError(f"{on_leader} groups ran on the leader, not on a member: {shards}")


@contextmanager
def bot_system(overrides: dict[str, str], work: Path, members: int = 0,
               common: dict[str, str] | None = None) -> Iterator[tuple[Any, Config]]:
    """An actor system for `overrides` (its bot.data_dir included); with `members`, this
    process's system leads a convention that members m0, m1, ... have joined (their own
    settings: `common` and what a member needs). Everything started is shut down on exit."""
    if not members:
        config = load_config(env={}, overrides=overrides)
        asys = start_actor_system(config, quiet_log_config())
        try:
            yield asys, config
        finally:
            asys.shutdown()
        return
    work.mkdir(parents=True, exist_ok=True)
    secret = work / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    port = free_port()
    common = {**(common or {}), "cluster.secret_file": str(secret)}
    config = load_config(env={}, overrides={**overrides, **common, "cluster.role": "leader",
                                            "actors.admin_port": str(port)})
    # The leader's system first: a member that finds no leader retries only after Thespian's
    # restart period (3 min 22 s).
    asys = start_actor_system(config, quiet_log_config())
    nodes: list[subprocess.Popen[str]] = []
    try:
        for name in member_shards(members):
            args = {**common, "cluster.role": "member", "cluster.shard": name, "actors.admin_port": str(free_port()),
                    "actors.convention_address": f"127.0.0.1:{port}", "bot.data_dir": str(work / name)}
            node = subprocess.Popen([sys.executable, str(NODE), *(f"{k}={v}" for k, v in args.items())],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                    env={**os.environ, "THESPLOG_FILE": str(work / f"{name}.thespian.log")})
            nodes.append(node)
            assert node.stdout is not None
            if node.stdout.readline().strip() != "ready":
                raise RuntimeError(f"member {name} did not start (see {work / name})")
        yield asys, config
    finally:
        asys.shutdown()
        for node in nodes:
            assert node.stdin is not None
            node.stdin.close()
            node.wait(30)
