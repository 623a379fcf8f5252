#!/usr/bin/env python3
"""Diamond Bot.

    python run.py [--config FILE] [--set KEY=VALUE ...]     start the bot, gateway and panel
    python run.py [--config FILE] set-password USER         set a panel user's password (the bot stopped)
    python run.py [--config FILE] import-json PATH [--payments FILE]
                                                            import the old Node bot's database.json (and
                                                            payments file), or its folder holding both
    python run.py [--config FILE] check-data                read every data file, report any damage
    python run.py [--config FILE] repair-data               move damaged journal records into a side file
    python run.py [--config FILE] backup DEST               copy the data dir into DEST, also while the bot runs
    python run.py [--config FILE] restore [--force] SRC     put a backup in place as the data dir (bot stopped)
    python run.py [--config FILE] member --leader HOST:PORT --shard NAME
                                                            host groups for a leader on another machine
                                                            (README: Running on several machines)

Exit status of a start: 0 stopped cleanly; 2 refused to start (bad configuration, a data file that
cannot be read, a busy port, the bot already running), with the reason on the last line of stderr;
3 the actor system was lost while running (start it again). The commands: 0 done, 1 failed or
found damage (restore: also refused over data without --force), 2 refused because the bot is
running (backup runs beside it; set-password: change passwords in the panel then); import-json 3:
imported, except the entries its report lists as not imported.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import logging.config
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from config import Config, ConfigError, add_config_arguments, config_from_args

log = logging.getLogger("diamondbot")

START_TIMEOUT = 60.0
STOP_DEADLINE = 8.0  # SIGINT/SIGTERM must end everything within 10 s
WATCH_INTERVAL = 5.0
WATCH_FAILURES = 3  # unanswered status checks in a row before the bot gives up and exits
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_SYSTEM_LOST = 3
EXIT_IMPORT_PARTIAL = 3  # import-json: imported, except what the report lists as not imported


class StartError(Exception):
    """The bot cannot start; the message says why and what to do."""


class Bot:
    """One running bot: instance lock, sandbox child, actor system, panel."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.data_dir = Path(config.bot.data_dir).resolve()
        self.lock: Any = None
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.asys: Any = None
        self.supervisor: Any = None
        self.pgid = 0
        self.bridge: Any = None
        self.runner: Any = None
        self.lost = ""  # why the actor system was given up, if it was

    # -- start --------------------------------------------------------------------------------

    def acquire_instance(self) -> None:
        from actors.system import stop_stale_system
        from storage.lock import FileLock, LockHeld
        from storage.private import tighten

        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.data_dir / "bot.lock", close_on_fork=True)
        try:
            lock.acquire()
        except LockHeld as e:
            raise StartError(f"Diamond Bot is already running on {self.data_dir}: {e}. "
                             "Stop it first, or give this one another bot.data_dir.") from None
        self.lock = lock
        made_private = tighten(self.data_dir)
        if made_private:
            log.warning("made %d files and directories in %s readable by this user only (they were open to "
                        "others): %s", len(made_private), self.data_dir,
                        ", ".join(str(p.relative_to(self.data_dir)) or "." for p in made_private[:10])
                        + (" …" if len(made_private) > 10 else ""))
        stopped = stop_stale_system(self.data_dir)
        if stopped:
            log.warning("stopped %d actor processes left by a previous run that died", stopped)

    def check_ports(self) -> None:
        from sandbox.launcher import host_port, listening

        cfg = self.config
        if listening(cfg.cluster.address if cfg.cluster.role else "127.0.0.1", cfg.actors.admin_port):
            raise StartError(f"actors.admin_port {cfg.actors.admin_port} is in use by another program "
                             "(another bot on this machine?); choose a free port.")
        if listening(cfg.panel.host, cfg.panel.port):
            raise StartError(f"panel.port {cfg.panel.port} on {cfg.panel.host} is in use; "
                             "choose another with --port N.")
        if cfg.gateway.kind == "sandbox":
            _, sandbox_port = host_port(cfg.sandbox.url)
            if sandbox_port in (cfg.panel.port, cfg.actors.admin_port):
                raise StartError(f"sandbox.url {cfg.sandbox.url} uses the same port as the panel or "
                                 "the actor system; give it its own.")

    def start_sandbox(self) -> None:
        from sandbox.launcher import host_port, listening, start_sandbox

        cfg = self.config
        if cfg.gateway.kind != "sandbox" or not cfg.sandbox.autostart:
            return
        host, port = host_port(cfg.sandbox.url)
        if listening(host, port):
            log.info("using the sandbox already running at %s", cfg.sandbox.url)
            return
        log_file = self.data_dir / "logs" / "sandbox.log"
        logged = log_file.stat().st_size if log_file.exists() else 0
        try:
            self.sandbox = start_sandbox(cfg.sandbox.url, self.data_dir / "sandbox.json", log_file=log_file)
        except RuntimeError as e:
            # The sandbox says why on its last line (a corrupt sandbox.json, a port taken …).
            said = [line.strip() for line in _read_from(log_file, logged).splitlines() if line.strip()]
            why = f": {said[-1]}" if said else ""
            raise StartError(f"{e}{why} (see {log_file})") from None
        log.info("sandbox started at %s (chat page: %s/)", cfg.sandbox.url, cfg.sandbox.url)

    def start_actors(self) -> None:
        from actors.messages import Owner, StartSystem, SystemFailed, SystemStarted
        from actors.supervisor import Supervisor
        from actors.system import reap_admin_starter, record_system, start_actor_system, started_system_group
        from storage.lock import process_start_time
        from web.bridge import ThespianBridge

        from actors.system import SecretError

        try:
            self.asys = start_actor_system(self.config)
        except SecretError as e:
            raise StartError(str(e)) from None
        if self.config.actors.system_base != "simpleSystemBase":
            self.pgid = started_system_group()  # so a start refused half-way still stops all of it
        self.supervisor = self.asys.createActor(Supervisor)
        owner = Owner(os.getpid(), process_start_time(os.getpid()) or 0, os.getsid(0))
        reply = self.asys.ask(self.supervisor, StartSystem(self.config, owner),
                              timedelta(seconds=START_TIMEOUT))
        if isinstance(reply, SystemFailed):
            raise StartError(reply.error)
        if not isinstance(reply, SystemStarted):
            raise StartError(f"the actor system did not start within {START_TIMEOUT:.0f} s "
                             f"(see {self.data_dir / 'logs'})")
        self.pgid = reply.pgid
        if self.config.actors.system_base != "simpleSystemBase":
            record_system(self.data_dir, reply.pgid, self.config.actors.admin_port)
            reap_admin_starter(reply.pgid)
        self.bridge = ThespianBridge(self.asys, self.supervisor)

    async def start_panel(self) -> None:
        from aiohttp import web

        from web.app import create_app
        from web.auth import ensure_admin

        # The users are in the journal (an earlier version's panel-users.json was brought in when
        # the database opened); a first start makes `admin`.
        password = await ensure_admin(self.bridge, self.data_dir, os.environ)
        if password:
            # Printed once, never logged; also in a 0600 file for the operator.
            print(f"\n  First start: panel user 'admin', password: {password}\n"
                  f"  (also in {self.data_dir / 'initial-admin-password.txt'}; change it with "
                  f"'python run.py set-password admin')\n", file=sys.stderr, flush=True)
        app = create_app(self.config, self.bridge, started_at=time.time())
        # Requests still running at shutdown get 2 s (open event streams end at once).
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.panel.host, self.config.panel.port)
        await site.start()

    async def run(self) -> int:
        from storage.errors import StorageError
        from web.auth import PasswordError
        from web.bridge import BridgeError

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            self.acquire_instance()
            self.check_ports()
            check_panel_files(self.data_dir)  # before anything starts that would only be stopped again
            self.start_sandbox()
            await loop.run_in_executor(None, self.start_actors)
            await self.start_panel()
        except (StartError, StorageError, PasswordError, BridgeError) as e:
            log.error("cannot start: %s", e)
            await self.stop()
            # Last, so it is not buried under the shutdown's log lines.
            print(f"Diamond Bot cannot start: {e}", file=sys.stderr, flush=True)
            return EXIT_REFUSED
        cfg = self.config
        log.info("Diamond Bot is running: panel http://%s:%d/  gateway %s  data %s",
                 cfg.panel.host, cfg.panel.port, cfg.gateway.kind, self.data_dir)
        watcher = asyncio.create_task(self.watch(stop))
        await stop.wait()
        watcher.cancel()
        log.info("stopping")
        await self.stop()
        log.info("stopped")
        if self.lost:
            print(f"Diamond Bot stopped: {self.lost}", file=sys.stderr)
            return EXIT_SYSTEM_LOST
        return 0

    async def watch(self, stop: asyncio.Event) -> None:
        """Nobody restarts the Supervisor (a top-level actor): if it stops answering, stop
        everything and exit non-zero so the service manager starts a fresh bot."""
        from storage.lock import process_alive, process_start_time
        from web.bridge import BridgeError

        status = await self.bridge.status()
        pid = int(status.data["pids"]["supervisor"])
        started = process_start_time(pid)
        failures, last_ask = 0, time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(1.0)
            if not process_alive(pid, started):
                self.lost = "the actor system's Supervisor died; start the bot again (a service manager does it by itself)"
            elif time.monotonic() - last_ask >= WATCH_INTERVAL:
                last_ask = time.monotonic()
                try:
                    await self.bridge.status()
                    failures = 0
                except BridgeError as e:  # alive but hung
                    failures += 1
                    log.error("the actor system did not answer (%d of %d): %s", failures, WATCH_FAILURES, e)
                    if failures >= WATCH_FAILURES:
                        self.lost = "the actor system stopped answering; start the bot again"
            if self.lost:
                log.critical("%s", self.lost)
                stop.set()

    # -- stop ---------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Panel, then a flush of the actors, then the actor system, then the sandbox."""
        deadline = time.monotonic() + STOP_DEADLINE
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        if self.asys is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._stop_actors, deadline)
            self.asys = None
        if self.sandbox is not None:
            from sandbox.launcher import stop_process

            stop_process(self.sandbox, timeout=max(deadline - time.monotonic(), 0.5))
            self.sandbox = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _stop_actors(self, deadline: float) -> None:
        from actors.messages import StopSystem
        from actors.system import forget_system, group_members

        remaining = lambda: max(deadline - time.monotonic(), 0.1)  # noqa: E731
        if self.supervisor is not None:
            try:
                self.asys.ask(self.supervisor, StopSystem(), timedelta(seconds=min(7.0, remaining())))
            except Exception as e:  # a system that cannot flush still has everything acknowledged on disk
                log.warning("actors did not confirm their final flush: %s", e)
        # Thespian's shutdown can hang on an unresponsive actor: bound it, then kill the group.
        t = threading.Thread(target=self.asys.shutdown, daemon=True)
        t.start()
        t.join(remaining())
        # Processes exit just after shutdown() returns; orphans (children of a crashed actor)
        # are not reached by it at all. Give them a moment, then kill what is left.
        settle = time.monotonic() + min(1.5, remaining())
        while self.pgid > 1 and not t.is_alive() and group_members(self.pgid) and time.monotonic() < settle:
            time.sleep(0.05)
        if self.pgid > 1 and (t.is_alive() or group_members(self.pgid)):
            log.warning("actor processes still running after shutdown; killing them")
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        forget_system(self.data_dir)


def cmd_member(config: Config) -> int:
    """A member machine: an actor system that joins the leader's convention and runs the group
    hosts the leader's Supervisor places on its shard, until SIGINT/SIGTERM.

    The leader keeps the journal, the gateway and the panel; nothing here is written but logs."""
    from actors.host import MEMBER_OWNER
    from actors.system import (SecretError, forget_system, group_members, reap_admin_starter, record_system,
                               start_actor_system, started_system_group, stop_stale_system)
    from sandbox.launcher import listening
    from storage.lock import FileLock, LockHeld, process_start_time

    data_dir = Path(config.bot.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(data_dir / "bot.lock", close_on_fork=True)
    try:
        lock.acquire()
    except LockHeld as e:
        print(f"Diamond Bot cannot start: a bot or member already runs on {data_dir}: {e}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        stop_stale_system(data_dir)
        if listening(config.cluster.address, config.actors.admin_port):
            print(f"Diamond Bot cannot start: actors.admin_port {config.actors.admin_port} is in use on "
                  f"{config.cluster.address}; choose a free port.", file=sys.stderr)
            return EXIT_REFUSED
        # The group hosts forked here watch this process, not the leader's run.py (actors.host).
        os.environ[MEMBER_OWNER] = f"{os.getpid()}:{process_start_time(os.getpid()) or 0}:{os.getsid(0)}"
        try:
            asys = start_actor_system(config)
        except SecretError as e:
            print(f"Diamond Bot cannot start: {e}", file=sys.stderr)
            return EXIT_REFUSED
        pgid = started_system_group()
        if pgid:
            record_system(data_dir, pgid, config.actors.admin_port)
            reap_admin_starter(pgid)
        log.info("member of %s running: shard %s on %s:%d", config.actors.convention_address, config.cluster.shard,
                 config.cluster.address, config.actors.admin_port)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        log.info("member stopping")
        t = threading.Thread(target=asys.shutdown, daemon=True)
        t.start()
        t.join(STOP_DEADLINE / 2)
        if pgid > 1 and (t.is_alive() or group_members(pgid)):
            time.sleep(0.5)
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        forget_system(data_dir)
        return 0
    finally:
        lock.release()


def cmd_set_password(config: Config, user: str) -> int:
    """Set a panel user's password in the stopped bot's journal (an unknown user becomes an owner):
    0 set, 1 refused or failed, 2 the bot is running (change passwords in the panel then)."""
    from domain.users import UserError, check_username
    from storage.atomic import fsync_dir
    from storage.database import DatabaseError
    from storage.errors import StorageError
    from storage.lock import LockHeld
    from storage.users import set_password_stopped
    from web.auth import ADMIN, INITIAL_PASSWORD_FILE, check_password, hash_password

    data_dir = Path(config.bot.data_dir).resolve()
    try:
        check_username(user)
    except UserError as e:
        print(f"Password not set: {e}", file=sys.stderr)
        return EXIT_FAILED
    if sys.stdin.isatty():
        password = getpass.getpass(f"New password for {user}: ")
        if getpass.getpass("Again: ") != password:
            print("The passwords differ; nothing changed.", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        check_password(password)
        saved = set_password_stopped(data_dir, user, hash_password(password), "cli:set-password", time.time())
    except LockHeld:
        print(f"Password not set: Diamond Bot is running on {data_dir}. While it runs, passwords are changed "
              "in the panel: an owner resets anyone's on the Users page, everyone changes their own under "
              "Account. Or stop the bot and run this again.", file=sys.stderr)
        return EXIT_REFUSED
    except (ValueError, StorageError, DatabaseError) as e:
        print(f"Password not set: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Password for {user} ({saved.role.value}) set; sessions begun with the old one have ended.")
    initial = data_dir / INITIAL_PASSWORD_FILE
    if user == ADMIN and initial.exists():
        # It holds the first, generated password: wrong from now on, and a secret lying around.
        initial.unlink()
        fsync_dir(data_dir)
        print(f"Removed {initial}: the password in it no longer works.")
    return 0


def cmd_import_json(config: Config, path: str, payments: str | None = None) -> int:
    """Import the old bot's database.json (and payments file, or its folder holding both) into the
    stopped bot's data dir: 0 everything imported (or there already), 1 a file or the data dir
    cannot be read, 2 the bot is running, 3 imported except what the report lists as not imported."""
    from zoneinfo import ZoneInfo

    from storage.importer import SeedImportError, format_report, import_json, not_imported

    try:
        report = import_json(path, Path(config.bot.data_dir).resolve(), default_rate=config.orders.default_rate,
                             tz=ZoneInfo(config.bot.timezone), min_diamonds=config.orders.min_diamonds,
                             max_diamonds=config.orders.max_diamonds, payments=payments)
    except SeedImportError as e:
        print(f"import-json: {e}", file=sys.stderr)
        return e.exit_code
    print(format_report(report))
    if report.refused:
        print(f"import-json: {not_imported(report)} were not imported (listed above under NOT IMPORTED).",
              file=sys.stderr)
        return EXIT_IMPORT_PARTIAL
    return 0


def check_panel_files(data_dir: Path) -> None:
    """Read the panel's files as the panel will; CorruptFile naming the first that cannot be read
    (an earlier version's panel-users.json too: the database brings its users in when it opens)."""
    for _, check in _panel_files(data_dir):
        check()


LEGACY_USERS_FILE = "panel-users.json"


def _panel_files(data_dir: Path) -> list[tuple[str, Any]]:
    """(file name, a check that reads it without changing anything and says what it holds)."""
    from storage.users import legacy_users
    from web.auth import SECRET_FILE, session_key
    from web.sessions import REVOKED_FILE, load_revoked

    def users() -> str:
        found = legacy_users(data_dir)
        if found is None:
            return "not there (the panel's users are in the journal)"
        return (f"ok ({len(found)} user{'s' * (len(found) != 1)} of an earlier version: brought into the journal "
                "at the first start of this one, then no longer read)")

    def secret() -> str:
        if not (data_dir / SECRET_FILE).exists():
            return "not there yet"  # session_key would create it
        session_key(data_dir)
        return "ok"

    def revoked() -> str:
        load_revoked(data_dir / REVOKED_FILE)
        return "ok" if (data_dir / REVOKED_FILE).exists() else "not there (nobody logged out yet)"

    return [(LEGACY_USERS_FILE, users), (SECRET_FILE, secret), (REVOKED_FILE, revoked)]


def _other_files(data_dir: Path) -> list[tuple[str, str]]:
    """check-data's lines for the files beside the stores: (name, "ok …" or "CANNOT BE READ: …")."""
    from actors.system import SYSTEM_FILE, read_system_record
    from storage.errors import CorruptFile

    def system() -> str:
        return "not there (no actor system left running)" if read_system_record(data_dir) is None else \
            "ok (the next start stops the actor processes it names)"

    lines = []
    for name, check in [*_panel_files(data_dir), (SYSTEM_FILE, system)]:
        try:
            lines.append((name, check()))
        except CorruptFile as e:
            lines.append((name, f"CANNOT BE READ: {e}"))
    return lines


def cmd_check_data(config: Config) -> int:
    """Read every data file, changing nothing: 0 all readable, 1 damage found, 2 the bot is running."""
    from storage.check import check_data, format_damaged, format_stores
    from storage.lock import LockHeld, holding_locks

    data_dir = Path(config.bot.data_dir).resolve()
    if not data_dir.is_dir():
        print(f"check-data: there is no data directory at {data_dir} (are --config or --data-dir right?)",
              file=sys.stderr)
        return EXIT_FAILED
    try:
        with holding_locks(data_dir):  # its files change while a bot runs
            check = check_data(data_dir)
            others = _other_files(data_dir)
    except LockHeld as e:
        print(f"check-data: Diamond Bot is running on {data_dir}: {e}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"Data directory {data_dir}")
    for line in format_stores(check):
        print(line)
    for name, state in others:
        print(f"  {name}: {state}")
    unreadable = [name for name, state in others if state.startswith("CANNOT")]
    if check.damaged:
        print(f"\n{len(check.damaged)} damaged journal record{'s' * (len(check.damaged) != 1)}:")
        for d in check.damaged:
            for line in format_damaged(d):
                print(line)
        print("\nWith the bot stopped, `python run.py repair-data` (with the same --config or --data-dir) moves "
              "them into a side file, kept verbatim, and rewrites the journals without them; the bot then "
              "starts from the rest.")
    if check.problems:
        print("\nA snapshot or a journal generation cannot be read at all: repair-data cannot help there; "
              "restore the data directory from a backup.")
    if check.ok and not unreadable:
        print("\nEvery data file can be read.")
        return 0
    return EXIT_FAILED


def cmd_repair_data(config: Config) -> int:
    """Move damaged journal records into a side file: 0 repaired (or nothing to do), 1 failed, 2 bot running."""
    from storage.check import RepairRefused, check_data, format_damaged, repair_data
    from storage.errors import StorageError
    from storage.lock import LockHeld, holding_locks

    data_dir = Path(config.bot.data_dir).resolve()
    if not data_dir.is_dir():
        print(f"repair-data: there is no data directory at {data_dir} (are --config or --data-dir right?)",
              file=sys.stderr)
        return EXIT_FAILED
    try:
        with holding_locks(data_dir):
            check = check_data(data_dir)
            repair = repair_data(check, time.time())
            after = check_data(data_dir)
    except LockHeld as e:
        print(f"repair-data: Diamond Bot is running on {data_dir}: {e}. Nothing was changed.", file=sys.stderr)
        return EXIT_REFUSED
    except RepairRefused as e:
        print(f"repair-data: nothing was changed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except (StorageError, OSError) as e:
        print(f"repair-data failed: {e}. Run `python run.py check-data` to see where things stand: every "
              "original journal is still there (as it was, or kept beside as *.before-repair-*).", file=sys.stderr)
        return EXIT_FAILED
    if repair.side_file is None:
        print(f"Nothing to repair in {data_dir}: every journal record is intact.")
        return 0
    print(f"Moved {len(repair.moved)} damaged record{'s' * (len(repair.moved) != 1)} into {repair.side_file} "
          "(kept verbatim; nothing was deleted):")
    for d in repair.moved:
        for line in format_damaged(d):
            print(line)
    for journal, backup in repair.rewritten:
        print(f"Rewrote {journal.name} without them; the original is kept as {backup.name}.")
    if not after.ok:
        print("Still damaged after the repair: run `python run.py check-data`.", file=sys.stderr)
        return EXIT_FAILED
    print("The bot starts from the rest: orders, payments and settings as listed above, everything else as it "
          "was. Once it runs well, the *.before-repair-* files may be deleted; keep the side file.")
    return 0


def cmd_backup(config: Config, dest: str) -> int:
    """Copy the data dir into DEST consistently, also while the bot runs: 0 done, 1 failed."""
    from storage.backup import take_backup
    from storage.errors import StorageError

    data_dir = Path(config.bot.data_dir).resolve()
    sources, left_out = _backup_sources(config, data_dir)
    try:
        report = take_backup(data_dir, dest, sources, check=check_panel_files)
    except StorageError as e:
        print(f"backup: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Backed up {data_dir} into {report.path}: {report.groups} groups, {report.orders} orders, "
          f"{report.payments} payments; {len(report.files)} files, {sum(report.files.values())} bytes.")
    for note in left_out:
        print(f"Not in the backup: {note}", file=sys.stderr)
    return 0


def _backup_sources(config: Config, data_dir: Path) -> tuple[Any, list[str]]:
    """What a backup copies beside the stores, and what it cannot (said to the operator)."""
    from storage.backup import Sources
    from storage.users import LEGACY_FILE
    from web.auth import INITIAL_PASSWORD_FILE, SECRET_FILE
    from web.sessions import REVOKED_FILE

    session, left_out = config.whatsapp.session_db, []
    path = (data_dir / session).resolve()
    if "://" in session:
        left_out.append("the WhatsApp session is kept in a database server (whatsapp.session_db): back it up there")
    elif data_dir not in path.parents and path.exists():
        left_out.append(f"the WhatsApp session {path} is outside the data directory: back it up separately")
    inside = "://" not in session and data_dir in path.parents
    # The users are in the journal; an earlier version's panel-users.json is kept if it is there.
    return Sources(files=(LEGACY_FILE, SECRET_FILE, REVOKED_FILE, INITIAL_PASSWORD_FILE),
                   # repair-data's side files and originals, sessions moved aside, the sandbox's torn tails
                   patterns=("damaged-*.jsonl", "*.before-repair-*", "*.old-*", "*.torn-*"),
                   logs=("sandbox.json",),
                   sqlite=(path.relative_to(data_dir).as_posix(),) if inside else ()), left_out


def cmd_restore(config: Config, src: str, force: bool) -> int:
    """Put a backup in place as the data dir: 0 done, 1 failed or refused (data there and no
    --force), 2 the bot is running."""
    from storage.backup import restore_backup
    from storage.errors import StorageError
    from storage.lock import LockHeld

    data_dir = Path(config.bot.data_dir).resolve()
    try:
        report = restore_backup(src, data_dir, force=force)
    except LockHeld as e:
        print(f"restore: Diamond Bot is running on {data_dir}: {e}. Nothing was changed.", file=sys.stderr)
        return EXIT_REFUSED
    except (StorageError, OSError) as e:
        print(f"restore: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Restored {src} into {data_dir}: {report.groups} groups, {report.orders} orders, "
          f"{report.payments} payments; {len(report.files)} files.")
    if report.aside is not None:
        print(f"What was in {data_dir} before is kept in {report.aside} (delete it once the bot runs well).")
    return 0


def _read_from(path: Path, offset: int) -> str:
    """A text file from `offset` on ("" if it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(1 << 16).decode(errors="replace")
    except OSError:
        return ""


def setup_logging(config: Config) -> None:
    from actors.system import log_config

    logging.config.dictConfig(log_config(Path(config.bot.data_dir).resolve()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    sp = commands.add_parser("set-password", help="set a panel user's password (read from the terminal or stdin)")
    sp.add_argument("user")
    ij = commands.add_parser("import-json", help="import a database.json of the old Node bot (the bot must be "
                                                 "stopped; a second run imports nothing twice)")
    ij.add_argument("path", metavar="PATH", help="the Node bot's database.json, or its folder (config/) holding "
                                                 "database.json and payment-transactions.json")
    ij.add_argument("--payments", metavar="FILE", help="the Node bot's payments file (payment-transactions.json), "
                                                       "when PATH is database.json itself")
    commands.add_parser("check-data", help="read every data file without changing anything and report damaged "
                                           "journal records: where they are and what they held")
    commands.add_parser("repair-data", help="with the bot stopped, move damaged journal records into a side file "
                                            "(never deleting them) and rewrite the journals without them")
    bk = commands.add_parser("backup", help="copy the data directory into DEST (a new directory), consistently, "
                                            "also while the bot runs and takes orders")
    bk.add_argument("dest", metavar="DEST")
    rs = commands.add_parser("restore", help="with the bot stopped, put a backup in place as the data directory")
    rs.add_argument("src", metavar="SRC", help="a directory written by `run.py backup`")
    rs.add_argument("--force", action="store_true", help="restore over a data directory that holds data: it is "
                                                         "moved aside into before-restore-<time>/, not deleted")
    mb = commands.add_parser("member", help="join a leader's convention and host the groups it places on this "
                                            "machine's shard (README: Running on several machines)")
    mb.add_argument("--leader", metavar="HOST:PORT", required=True, help="the leader's actor admin address on the "
                                                                         "private network")
    mb.add_argument("--shard", metavar="NAME", help="this machine's shard (default: cluster.shard)")
    args = parser.parse_args(argv)
    if args.command == "member":
        # The role's keys, as if given with --set (so the loader checks them and names them).
        args.set = [*args.set, ("cluster.role", "member"), ("actors.convention_address", args.leader),
                    *((("cluster.shard", args.shard),) if args.shard else ())]
    try:
        config = config_from_args(args)
    except ConfigError as e:
        print(f"Configuration error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    if args.command == "set-password":
        return cmd_set_password(config, args.user)
    if args.command == "import-json":
        return cmd_import_json(config, args.path, args.payments)
    if args.command == "check-data":
        return cmd_check_data(config)
    if args.command == "repair-data":
        return cmd_repair_data(config)
    if args.command == "backup":
        return cmd_backup(config, args.dest)
    if args.command == "restore":
        return cmd_restore(config, args.src, args.force)
    setup_logging(config)
    if args.command == "member":
        return cmd_member(config)
    return asyncio.run(Bot(config).run())


if __name__ == "__main__":
    # First of all: everything this process and its children (actors, the sandbox) create in the
    # data directory (orders, logs with customers' numbers, keys) is the owner's alone.
    from storage.private import UMASK

    os.umask(UMASK)
    sys.exit(main())
