"""The whole system on the production actor base: the sandbox and run.py as real processes,
driven through their JSON APIs, killed with SIGKILL mid-burst, restarted, and checked for loss
and duplicates."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from bench.procs import parent_of
from tests.e2e import Bot, group_members, leftover_processes, listening_sockets, Sandbox, sandbox_and_bot, wait_for

pytestmark = pytest.mark.e2e

DELIVERED = "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 10 ডায়মন্ড\n💰 ৳1000\n🆔 A1"
ALICE, BOB = "76210050711676@lid", "76210050711677@lid"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sandbox, Bot]]:
    with sandbox_and_bot(tmp_path, start=False) as world:
        yield world


def receipts(sandbox: Sandbox, group: str) -> dict[str, int]:
    """quoted message id -> number of order receipts the bot posted for it."""
    counts: dict[str, int] = {}
    for m in sandbox.messages(group):
        if m["from_bot"] and m["text"].startswith("📥"):
            counts[m["quoted_id"]] = counts.get(m["quoted_id"], 0) + 1
    return counts


def zombie_children(pid: int) -> list[int]:
    """Exited children of pid that nobody waited for."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == b"Z" and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_order_lifecycle_survives_sigkill_and_downtime(world: tuple[Sandbox, Bot]) -> None:
    sandbox, bot = world
    bot.start()
    group = sandbox.create_group("Rahim Store")

    # Every socket of the running system listens on loopback only.
    sockets = listening_sockets(bot.pids())
    assert sockets, "found no listening sockets at all: the check itself is broken"
    assert [s for s in sockets if s[1] not in ("127.0.0.1", "::1")] == []
    assert any(port == bot.admin_port for _, _, port in sockets)
    # No <defunct> child beside the bot (Thespian's admin starter is waited for).
    assert wait_for(lambda: not zombie_children(bot.proc.pid), 5, "no zombie children")


    # A reseller orders; the bot confirms quoting the message; the admin approves; delivered.
    first = sandbox.post(group, ALICE, ".10", "Alice")
    [order] = wait_for(lambda: bot.orders(), 15, "the first order")
    assert (order["id"], order["status"], order["amount"], order["message_id"]) == \
        ("A1", "pending", "1000.00", first["id"])
    wait_for(lambda: receipts(sandbox, group).get(first["id"]), 15, "the receipt")
    status, body = bot.api.post("/api/approve/A1")
    assert status == 200, body
    wait_for(lambda: any(m["text"] == DELIVERED and m["quoted_id"] == first["id"]
                         for m in sandbox.messages(group)), 15, "the delivery message")
    wait_for(lambda: bot.api.get("/api/orders/A1")["status"] == "completed", 15, "A1 completed")
    status, body = bot.api.post("/api/orders/A1/cancel")
    assert status == 409, body

    # A burst of orders; the bot's whole process group is killed in the middle of it.
    posted = [sandbox.post(group, BOB, f".{n}", "Bob")["id"] for n in range(11, 31)]
    actor_group = bot.system_pgid()
    acknowledged = set(receipts(sandbox, group))  # confirmed to a user before the kill
    bot.kill_process_group()
    posted += [sandbox.post(group, BOB, f".{n}", "Bob")["id"] for n in range(31, 41)]
    # The actor processes notice their owner is gone and exit by themselves.
    wait_for(lambda: not group_members(actor_group), 10, "the orphaned actor processes to exit")

    # Orders posted while the bot was down: these must come back as recovered orders.
    down = [sandbox.post(group, ALICE, f".{n}", "Alice")["id"] for n in (50, 60)]
    bot.start()
    expected = {first["id"], *posted, *down}
    orders = wait_for(lambda: (lambda os_: os_ if len(os_) >= len(expected) else None)(bot.orders()),
                      30, "every posted order")
    by_message = {}
    for o in orders:
        assert o["message_id"] not in by_message, f"duplicate order for message {o['message_id']}"
        by_message[o["message_id"]] = o
    assert set(by_message) == expected
    assert acknowledged <= set(by_message)
    assert all(by_message[m]["recovered"] for m in down)
    assert sorted(int(o["id"][1:]) for o in orders) == list(range(1, len(expected) + 1))
    # Every order is confirmed to its user (at least once; at-least-once delivery).
    wait_for(lambda: expected <= set(receipts(sandbox, group)), 30, "a receipt for every order")

    # The restarted system takes commands for recovered orders.
    recovered = by_message[down[0]]
    status, body = bot.api.post(f"/api/orders/{recovered['id']}/approve")
    assert status == 200, body
    wait_for(lambda: bot.api.get(f"/api/orders/{recovered['id']}")["status"] == "completed", 15,
             "the recovered order completed")

    # A clean stop is quick and leaves nothing running.
    actor_group = bot.system_pgid()
    assert bot.stop() < 10
    wait_for(lambda: not group_members(actor_group), 5, "the actor processes to exit after stop")
    assert not (bot.data_dir / "actor-system.json").exists()


def test_second_instance_on_the_same_data_dir_refuses(world: tuple[Sandbox, Bot], tmp_path: Path) -> None:
    sandbox, bot = world
    bot.start()
    other = Bot(bot.data_dir, sandbox.url, tmp_path / "other.log")
    code, output = other.run_to_exit()
    assert code == 2
    assert "already running" in output and str(bot.data_dir) in output
    assert bot.api.call("GET", "/healthz")[0] == 200  # the first one is untouched


def test_killed_group_actor_is_restarted_with_its_orders(world: tuple[Sandbox, Bot]) -> None:
    sandbox, bot = world
    bot.start()
    group = sandbox.create_group("Karim Telecom")
    sandbox.post(group, ALICE, ".10")
    wait_for(lambda: bot.orders(), 15, "the order")

    def actor() -> dict:
        return next(a for a in bot.api.get("/api/status")["groups"]["actors"] if a["group_id"] == group)

    old = wait_for(lambda: (lambda a: a if a["ready"] and a["pid"] else None)(actor()), 10, "the group actor")
    os.kill(old["pid"], 9)
    started = time.monotonic()
    new = wait_for(lambda: (lambda a: a if a["ready"] and a["pid"] != old["pid"] else None)(actor()),
                   10, "the restarted group actor", interval=0.05)
    assert time.monotonic() - started < 1.5
    assert new["incarnation"] == old["incarnation"] + 1
    # The new incarnation owns the old orders and takes new ones.
    status, body = bot.api.post("/api/orders/A1/approve")
    assert status == 200, body
    sandbox.post(group, ALICE, ".20")
    wait_for(lambda: {o["id"] for o in bot.orders()} == {"A1", "A2"}, 15, "the next order")


def test_torn_journal_tail_is_repaired_and_corrupt_snapshot_stops_the_start(
        world: tuple[Sandbox, Bot], tmp_path: Path) -> None:
    sandbox, bot = world
    bot.start()
    group = sandbox.create_group("Store")
    sandbox.post(group, ALICE, ".10")
    wait_for(lambda: bot.orders(), 15, "the order")
    bot.stop()

    # A write cut by a crash: half a record at the end of the journal.
    [journal] = sorted(bot.data_dir.glob("orders.journal.*"))
    good = journal.read_bytes()
    journal.write_bytes(good + b'0badc0de 999 {"t":"order","g":"x","v":{"id":"Z')
    bot.start()
    assert [o["id"] for o in bot.orders()] == ["A1"]
    assert journal.read_bytes().startswith(good)
    bot.stop()

    # An unreadable snapshot stops the start, names the file, and is left exactly as it was.
    snapshot = bot.data_dir / "orders.snapshot.json"
    snapshot.write_bytes(b'{"format": 1, "journal_gen": 0, "data": {broken')
    before = snapshot.read_bytes()
    code, output = Bot(bot.data_dir, sandbox.url, tmp_path / "bad.log").run_to_exit()
    assert code == 2
    assert "orders.snapshot.json" in output and "cannot start" in output
    assert snapshot.read_bytes() == before
    assert re.search(r"untouched|left as it was", output)
    assert not leftover_actor_processes(bot)


def leftover_actor_processes(bot: Bot) -> list:
    return [p for p in leftover_processes() if "run.py" in p[1] and str(bot.data_dir) in p[1]]


def test_killed_persistence_and_gateway_actors_are_restarted(world: tuple[Sandbox, Bot]) -> None:
    sandbox, bot = world
    bot.start()
    group = sandbox.create_group("Drill Store")
    sandbox.post(group, ALICE, ".10")
    wait_for(lambda: bot.orders(), 15, "the first order")

    def status() -> dict:
        return bot.api.get("/api/status")

    before = status()["actors"]
    os.kill(before["persistence"], 9)
    wait_for(lambda: (lambda s: s["actors"]["persistence"] != before["persistence"]
                      and s["groups"]["ready"] == s["groups"]["total"] == 1)(status()),
             15, "a new persistence actor and the group back")
    sandbox.post(group, ALICE, ".20")
    wait_for(lambda: {o["id"] for o in bot.orders()} == {"A1", "A2"}, 15, "an order after the restart")
    assert bot.api.post("/api/approve/A1")[0] == 200
    wait_for(lambda: bot.api.get("/api/orders/A1")["status"] == "completed", 15, "A1 delivered")

    os.kill(status()["actors"]["gateway"], 9)
    wait_for(lambda: (lambda s: s["actors"]["gateway"] != before["gateway"]
                      and s["gateway"]["state"] == "connected")(status()), 15, "a new gateway, connected")
    sandbox.post(group, BOB, ".30")
    wait_for(lambda: {o["id"] for o in bot.orders()} == {"A1", "A2", "A3"}, 15, "an order via the new gateway")
    assert bot.api.post("/api/approve/A2")[0] == 200
    wait_for(lambda: bot.api.get("/api/orders/A2")["status"] == "completed", 15,
             "A2 delivered through the new gateway")
    messages = [m["quoted_id"] for m in sandbox.messages(group) if m["from_bot"] and m["text"].startswith("📥")]
    assert len(set(messages)) == 3


def test_losing_the_supervisor_stops_the_bot_cleanly_for_a_restart(world: tuple[Sandbox, Bot]) -> None:
    sandbox, bot = world
    bot.start()
    actor_group = bot.system_pgid()
    supervisor = bot.api.get("/api/status")["actors"]["supervisor"]
    os.kill(supervisor, 9)
    assert bot.proc is not None
    code = bot.proc.wait(20)
    assert code == 3
    assert "Supervisor died" in bot.log.read_text()
    wait_for(lambda: not group_members(actor_group), 5, "every actor process to exit")
    bot.start()  # and a fresh start works
    assert bot.api.get("/api/status")["started"] is True


def running(pids: set[int]) -> set[int]:
    """Those of pids still alive (a zombie is dead: its parent has not reaped it yet)."""
    alive = set()
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        if raw[raw.rfind(b")") + 2:].split()[0] != b"Z":
            alive.add(pid)
    return alive


def test_every_actor_dies_with_the_actor_or_owner_that_started_it(tmp_path: Path) -> None:
    """Issue 15: a GroupHost killed with -9 takes its GroupActors with it (the kernel's
    PR_SET_PDEATHSIG; before, each lived on beside its restarted group until its next write was
    refused, up to a checkpoint interval), and run.py killed with -9 takes every actor process,
    GroupActors included, within a few seconds."""
    # Cycles and checkpoints rarer than the test: an orphaned group would not write, so nothing
    # but its tie to the host can end it.
    with sandbox_and_bot(tmp_path, "--set", "reconciliation.interval=60s",
                         "--set", "reconciliation.checkpoint_interval=10m", start=False) as (sandbox, bot):
        _every_actor_dies_with_its_starter(sandbox, bot)


def _every_actor_dies_with_its_starter(sandbox: Sandbox, bot: Bot) -> None:
    bot.start()
    groups = [sandbox.create_group(f"Store {n}") for n in range(4)]

    def actors() -> list[dict[str, Any]] | None:
        listed = [a for a in bot.api.get("/api/status")["groups"]["actors"] if a["group_id"] in groups]
        return listed if len(listed) == len(groups) and all(a["ready"] and a["pid"] for a in listed) else None

    before = wait_for(actors, 20, "every group's actor")
    hosts = {parent_of(a["pid"]) for a in before}
    assert len(hosts) == 2 and 0 not in hosts  # two hosts (one per core), each with groups
    host = parent_of(before[0]["pid"])
    its_groups = {a["pid"] for a in before if parent_of(a["pid"]) == host}
    os.kill(host, 9)
    wait_for(lambda: not running(its_groups), 2, "the killed host's group actors to exit")
    after = wait_for(lambda: (lambda a: a if a and not {x["pid"] for x in a} & its_groups else None)(actors()),
                     20, "the groups restarted under a new host")
    assert host not in {parent_of(a["pid"]) for a in after}

    status = bot.api.get("/api/status")
    everything = {*status["actors"].values(), *(a["pid"] for a in after), *(parent_of(a["pid"]) for a in after)}
    everything.discard(0)
    assert len(everything) >= 3 + 4 + 2  # supervisor, persistence, gateway, the groups, the hosts
    actor_group = bot.system_pgid()
    assert bot.proc is not None
    os.kill(bot.proc.pid, 9)  # the owner alone, not its process group
    bot.proc.wait()
    wait_for(lambda: not running(everything), 5, "every actor process to exit with its owner")
    wait_for(lambda: not group_members(actor_group), 5, "Thespian's own processes to exit too")


def test_the_shop_runs_from_the_chat_on_the_real_system(tmp_path: Path) -> None:
    """Edits, deletes and an admin's reply, through the sandbox and the production actors."""
    admin = "8801711111111"
    with sandbox_and_bot(tmp_path, "--set", f"whatsapp.admins={admin}", start=False) as (sandbox, bot):
        bot.start()
        group = sandbox.create_group("Chat Shop")
        first = sandbox.post(group, ALICE, ".10", "Alice")
        second = sandbox.post(group, BOB, ".20", "Bob")
        wait_for(lambda: len(bot.orders()) == 2, 15, "two orders")
        status, body = sandbox.api.call("PATCH", f"/api/groups/{group}/messages/{first['id']}",
                                        {"sender": ALICE, "text": ".100"})
        assert status == 200, body
        wait_for(lambda: bot.api.get("/api/orders/A1")["diamonds"] == 100, 15, "the edit to reach A1")
        status, body = sandbox.api.call("DELETE", f"/api/groups/{group}/messages/{second['id']}?sender={BOB}")
        assert status == 200, body
        wait_for(lambda: bot.api.get("/api/orders/A2")["status"] == "cancelled", 15, "A2 cancelled")
        status, body = sandbox.api.post(f"/api/groups/{group}/messages",
                                        {"sender": f"{admin}@s.whatsapp.net", "sender_name": "Admin",
                                         "text": "done", "quoted_id": first["id"]})
        assert status == 201, body
        wait_for(lambda: bot.api.get("/api/orders/A1")["status"] == "completed", 15, "A1 approved by reply")
        texts = [m["text"] for m in sandbox.messages(group) if m["from_bot"]]
        assert any(t.startswith("✏️") for t in texts) and any(t.startswith("🗑️") for t in texts)
        assert "✅ আপনার অর্ডার সম্পন্ন হয়েছে\n💎 100 ডায়মন্ড\n💰 ৳10,000\n🆔 A1" in texts


def test_a_done_from_someone_not_an_admin_is_refused_and_never_acts_later(tmp_path: Path) -> None:
    """Issue 10 (major), on the sandbox and the production actors: with no admins, the shop's
    admin replies done — refused at once. Another done is written while the bot is down. The
    bot restarts with that number as an admin: the history replay and the offline queue bring
    both back, and neither approves the order; a done written now does."""
    sandbox = Sandbox(tmp_path / "sandbox.json", tmp_path / "sandbox.log")
    sandbox.start()
    admin = "8801711111111"
    refusal = "⚠️ অর্ডার অনুমোদন বা বাতিল শুধু দোকানের অ্যাডমিনরা করতে পারেন"
    bot = Bot(tmp_path / "data", sandbox.url, tmp_path / "bot.log")
    again = Bot(tmp_path / "data", sandbox.url, tmp_path / "bot.log", "--set", f"whatsapp.admins={admin}")

    def reply_done(quoted: str) -> None:
        status, body = sandbox.api.post(f"/api/groups/{group}/messages",
                                        {"sender": f"{admin}@s.whatsapp.net", "sender_name": "Shop admin",
                                         "text": "done", "quoted_id": quoted})
        assert status == 201, body

    def refusals() -> int:
        return sum(m["from_bot"] and m["text"] == refusal for m in sandbox.messages(group))

    try:
        bot.start()
        group = sandbox.create_group("Authority Shop")
        first = sandbox.post(group, ALICE, ".10", "Alice")
        wait_for(lambda: receipts(sandbox, group).get(first["id"]), 15, "the receipt")
        reply_done(first["id"])
        wait_for(lambda: refusals() == 1, 15, "the refusal")
        bot.stop()
        reply_done(first["id"])  # written while the bot is down, before it has admins
        again.start()
        started = time.time()  # the start that made the number an admin happened before this
        wait_for(lambda: refusals() == 2, 20, "the offline done refused too")
        # A message posted now is handled after the offline queue and the history replay.
        later = sandbox.post(group, BOB, ".5", "Bob")
        wait_for(lambda: receipts(sandbox, group).get(later["id"]), 15, "the receipt of a later order")
        assert again.api.get("/api/orders/A1")["status"] == "pending"
        # Chat timestamps are whole seconds: a done stamped with the second in which the number
        # became an admin could have been written before that, and is refused. Write it in a
        # later second (on a fast machine all of the above fits in one).
        wait_for(lambda: int(time.time()) > started, 2, "the next second")
        reply_done(first["id"])  # now an admin
        wait_for(lambda: again.api.get("/api/orders/A1")["status"] == "completed", 15, "A1 approved")
        assert refusals() == 2
    finally:
        try:
            for b in (bot, again):
                if b.proc is not None and b.proc.poll() is None:
                    b.stop()
        finally:
            sandbox.stop()


def test_the_panel_follows_every_cycle_across_processes(tmp_path: Path) -> None:
    """The cycle board is shared by forked actor processes (production base): with checkpoints
    an hour apart the panel still shows checks at most a cycle (1 s) old."""
    with sandbox_and_bot(tmp_path, "--set", "reconciliation.checkpoint_interval=1h", start=False) as (sandbox, bot):
        bot.start()
        group = sandbox.create_group("Live Shop")
        sandbox.post(group, ALICE, ".10", "Alice")
        wait_for(lambda: bot.orders(), 15, "the order")
        first = wait_for(lambda: bot.api.get("/api/orders/A1")["check_count"], 10, "a first check")
        wait_for(lambda: bot.api.get("/api/orders/A1")["check_count"] >= first + 3, 10, "three more checks")
        report = bot.api.get("/api/reconciliation")
        assert report["last_check"] is not None


def test_groups_are_known_before_their_first_order_on_the_real_system(tmp_path: Path) -> None:
    """Issue 12 end to end: a group created in the sandbox while the bot runs is known at once,
    its rate is set before anyone writes in it, and its first order (a player order) is billed at
    that rate, names the player in the chat, the API and the CSV; a group created while the bot is
    stopped is known after the start; one the bot is removed from is marked as left."""
    import csv
    import io

    # No default rate (the shipped default): a group's orders wait for its own rate.
    with sandbox_and_bot(tmp_path, "--set", "orders.default_rate=", start=False) as (sandbox, bot):
        bot.start()
        group = sandbox.create_group("Rahim Store")
        groups = wait_for(lambda: {g["id"]: g for g in bot.api.get("/api/groups")["groups"]
                                   if g["id"] == group}, 15, "the new group in the panel")
        assert (groups[group]["name"], groups[group]["rate"], groups[group]["rate_set"]) == ("Rahim Store", None, False)
        assert groups[group]["joined_at"] and not groups[group]["left"]
        assert sandbox.messages(group) == []  # nobody has written in it
        status, body = bot.api.call("PATCH", f"/api/groups/{group}", {"rate": "2.50"})
        assert status == 200, body

        posted = sandbox.post(group, ALICE, "576515275\n50", "Alice")
        [order] = wait_for(lambda: bot.orders(), 15, "the first order")
        assert (order["message_id"], order["diamonds"], order["rate"], order["amount"], order["player_id"]) == \
            (posted["id"], 50, "2.50", "125.00", "576515275")
        receipt = wait_for(lambda: [m for m in sandbox.messages(group)
                                    if m["from_bot"] and m["quoted_id"] == posted["id"]], 15, "the receipt")[0]
        assert "🎮 576515275" in receipt["text"] and "৳125" in receipt["text"]
        status, body = bot.api.post(f"/api/orders/{order['id']}/approve")
        assert status == 200, body
        delivered = wait_for(lambda: [m for m in sandbox.messages(group)
                                      if m["from_bot"] and m["text"].startswith("✅")], 15, "the delivery message")
        assert "🎮 576515275" in delivered[0]["text"] and delivered[0]["quoted_id"] == posted["id"]
        status, raw = bot.api.call("GET", "/api/export/orders.csv")
        assert status == 200
        [row] = list(csv.DictReader(io.StringIO(raw.lstrip("\ufeff"))))
        assert (row["id"], row["player_id"], row["amount"]) == (order["id"], "576515275", "125.00")

        # The bot's number is removed from the group: it stays in the ledger, marked as left.
        assert sandbox.api.post(f"/api/groups/{group}/bot", {"member": False})[0] == 200
        wait_for(lambda: [g for g in bot.api.get("/api/groups")["groups"] if g["id"] == group and g["left"]],
                 15, "the group marked as left")
        bot.stop()

        later = sandbox.create_group("Karim Telecom")  # while the bot is stopped
        bot.start()
        def known() -> dict[str, Any] | None:
            listed = {g["id"]: g for g in bot.api.get("/api/groups")["groups"]}
            return listed if later in listed else None

        groups = wait_for(known, 30, "the group created while the bot was stopped")
        assert groups[later]["name"] == "Karim Telecom" and groups[later]["rate"] is None
        assert not groups[later]["left"] and groups[group]["left"]

