"""A bare actor system for the cluster tests, in its own process: started with start_actor_system
from `--set` overrides, it prints "ready" and runs until its stdin closes, then shuts down.

A separate process because the patches (signing, binding) are process-wide module state, and
Thespian's admin is forked from the process that starts the system."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.system import quiet_log_config, start_actor_system  # noqa: E402
from config import load_config  # noqa: E402


def main() -> None:
    overrides = dict(arg.split("=", 1) for arg in sys.argv[1:])
    asys = start_actor_system(load_config(overrides=overrides), quiet_log_config())
    try:
        print("ready", flush=True)
        sys.stdin.read()
    finally:
        asys.shutdown()


if __name__ == "__main__":
    main()
