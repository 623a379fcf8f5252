"""Shared fixtures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from argon2 import PasswordHasher

from tests.harness import ChatBot, actor_config
from web import auth


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id at its minimum cost, for panel tests about the API and pages rather than the
    hash's strength (test_web_security checks the production parameters)."""
    monkeypatch.setattr(auth, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_bot(data_dir: Path) -> Iterator[Callable[..., ChatBot]]:
    """Start ChatBots (one at a time, like real restarts); every one is shut down at teardown."""
    bots: list[ChatBot] = []

    def make(start: bool = True, clock=None, fake=None, supervisor=None, **overrides: str) -> ChatBot:
        kw = {"supervisor": supervisor} if supervisor is not None else {}
        bot = ChatBot(actor_config(data_dir, **overrides), clock=clock, fake=fake, **kw)
        bots.append(bot)
        if start:
            bot.start()
        return bot

    yield make
    for bot in bots:
        try:
            bot.stop()
        except Exception:
            pass


@pytest.fixture
def bot(make_bot: Callable[..., ChatBot]) -> ChatBot:
    return make_bot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test run must leave no process behind (Thespian admins and actors above all)."""
    from tests.e2e import kill_leftovers

    time.sleep(0.5)  # actor processes whose owner died exit within a second by themselves
    left = kill_leftovers()
    if left:
        lines = "\n".join(f"  {pid}: {cmd}" for pid, cmd in left)
        session.config.get_terminal_writer().line(
            f"\nERROR: processes left behind by the tests (now killed):\n{lines}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
