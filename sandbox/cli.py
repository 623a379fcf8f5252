"""The sandbox server's command line: `python -m sandbox` (also `python -m gateway.sandbox`)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys

from aiohttp import web

from sandbox.server import make_app
from sandbox.state import DataFile, DataFileError, SandboxState

log = logging.getLogger("sandbox")


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: list[str] | None, prog: str = "python -m sandbox") -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Local WhatsApp-like group chat for Diamond Bot demos, training and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port (default 8090; 0 picks a free one)")
    parser.add_argument(
        "--data-file", default="./data/sandbox.json", help="event log (default ./data/sandbox.json)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host: the sandbox has no authentication",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be from 0 to 65535")
    if not args.allow_remote and not is_loopback(args.host):
        parser.error(
            f"--host {args.host} is reachable from other machines and the sandbox has no "
            "authentication; bind 127.0.0.1, or add --allow-remote on a network you trust"
        )
    return args


async def serve(data_file: DataFile, state: SandboxState, args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    app = make_app(data_file, state, loopback_only=not args.allow_remote)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = runner.addresses[0][1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before the "listening" line: whoever waits for it may send SIGTERM at once.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"sandbox listening on http://{host}:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m sandbox") -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(levelname)s %(message)s")
    data_file = DataFile(args.data_file)
    try:
        state = data_file.open()
    except DataFileError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sandbox: cannot use data file {args.data_file}: {exc}", file=sys.stderr)
        return 2
    if data_file.torn_tail is not None:
        size, copy = data_file.torn_tail
        log.warning("dropped a torn last line (%d bytes) of %s; a copy is in %s", size, args.data_file, copy)
    try:
        return asyncio.run(serve(data_file, state, args))
    except KeyboardInterrupt:  # before the signal handlers were installed
        return 0
    finally:
        data_file.close()
