"""What an operator installs on a server: the systemd unit (deploy/diamondbot.service) and the
container image (Dockerfile). No service manager or Docker engine runs here: the unit is verified
by systemd's own checker where it exists, and both are read and held to what run.py, the
settings and the security rules need."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from dockerfile_parse import DockerfileParser

import run
from config import load_config

ROOT = Path(__file__).parent.parent
UNIT = ROOT / "deploy" / "diamondbot.service"
DOCKERFILE = ROOT / "Dockerfile"
VENV_PYTHON = "/opt/diamond-bot/.venv/bin/python"


# --- the systemd unit ---------------------------------------------------------------------------


def unit_entries(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's entries per section, in order (systemd keeps every value of a repeated key)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, line in enumerate(text.replace("\\\n", " ").splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()), \
            f"line {number} is not `Key=value` inside a section: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    """section -> key -> its values."""
    result: dict[str, dict[str, list[str]]] = {}
    for section, entries in unit_entries(UNIT.read_text()).items():
        for key, value in entries:
            result.setdefault(section, {}).setdefault(key, []).append(value)
    return result


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    [value] = unit[section][key]
    return value


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` (Debian's systemd) reads every key and value; a key it does not
    know or a value it cannot parse is a warning, which fails the test. Without systemd's tools
    the unit is still read with the section/key grammar (see `unit_entries`)."""
    text = UNIT.read_text()
    assert VENV_PYTHON in text
    verifier = shutil.which("systemd-analyze")
    if verifier is None:
        assert set(unit_entries(text)) == {"Unit", "Service", "Install"}
        return
    # The checker wants ExecStart's program to exist: the unit as installed, with this Python.
    copy = tmp_path / "diamondbot.service"
    copy.write_text(text.replace(VENV_PYTHON, sys.executable))
    check = subprocess.run([verifier, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    assert (check.returncode, check.stdout + check.stderr) == (0, ""), check.stderr


def test_systemd_rates_the_hardening(tmp_path: Path) -> None:
    """systemd's own exposure score for the service (0 = locked down, 10 = fully exposed)."""
    verifier = shutil.which("systemd-analyze")
    if verifier is None:
        unit = unit_entries(UNIT.read_text())["Service"]
        assert ("NoNewPrivileges", "yes") in unit and ("ProtectSystem", "strict") in unit
        return
    copy = tmp_path / "diamondbot.service"
    copy.write_text(UNIT.read_text().replace(VENV_PYTHON, sys.executable))
    check = subprocess.run([verifier, "security", "--offline=yes", "--no-pager", str(copy)], capture_output=True,
                           text=True, timeout=60)
    score = re.search(r"Overall exposure level for diamondbot\.service: (\d+\.\d)", check.stdout)
    assert score is not None, check.stdout + check.stderr
    assert float(score[1]) <= 4.0, check.stdout


def test_the_service_restarts_a_bot_that_lost_its_actors_but_not_one_that_cannot_start(unit: dict) -> None:
    service = unit["Service"]
    assert one(unit, "Service", "Restart") == "on-failure"
    assert str(run.EXIT_SYSTEM_LOST) in one(unit, "Service", "RestartForceExitStatus").split()
    assert one(unit, "Service", "RestartPreventExitStatus").split() == ["2"]  # cannot start: main() returns 2
    assert float(one(unit, "Service", "RestartSec")) >= 1
    assert "StartLimitBurst" in unit["Unit"] and "StartLimitIntervalSec" in unit["Unit"]
    # run.py stops everything within STOP_DEADLINE of SIGTERM, sent to it alone; the rest is killed after.
    assert float(one(unit, "Service", "TimeoutStopSec")) >= run.STOP_DEADLINE + 5
    assert one(unit, "Service", "KillMode") == "mixed"
    assert "ExecStop" not in service  # SIGTERM is the way to stop it


def test_the_service_runs_as_its_own_user_on_a_data_dir_it_owns(unit: dict) -> None:
    user = one(unit, "Service", "User")
    assert user not in ("root", "0", "") and one(unit, "Service", "Group") == user
    state = one(unit, "Service", "StateDirectory")
    assert one(unit, "Service", "StateDirectoryMode") == "0700" and one(unit, "Service", "UMask") == "0077"
    env = dict(value.split("=", 1) for value in unit["Service"]["Environment"])
    config = load_config(env=env)
    assert config.bot.data_dir == Path(f"/var/lib/{state}")  # systemd creates it, owned by User=
    assert config.panel.host == "127.0.0.1"
    command = shlex.split(one(unit, "Service", "ExecStart"))
    assert command == [VENV_PYTHON, "run.py", "--config", "/etc/diamondbot/diamondbot.toml"]  # the bot itself
    assert one(unit, "Service", "WorkingDirectory") == "/opt/diamond-bot"


def test_the_service_keeps_its_privileges_low(unit: dict) -> None:
    service = {key: values[-1] for key, values in unit["Service"].items()}
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome", "ProtectKernelTunables",
                "ProtectKernelModules", "ProtectControlGroups", "RestrictSUIDSGID", "LockPersonality"):
        assert service.get(key) == "yes", key
    assert service["ProtectSystem"] == "strict" and service["CapabilityBoundingSet"] == ""
    families = set(service["RestrictAddressFamilies"].split())
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= families  # WhatsApp, the panel, Thespian, multiprocessing
    assert "MemoryDenyWriteExecute" not in service  # would break neonize's ctypes callbacks


# --- the backup service and its timer ----------------------------------------------------------

BACKUP_UNIT = ROOT / "deploy" / "diamondbot-backup.service"
BACKUP_TIMER = ROOT / "deploy" / "diamondbot-backup.timer"


def entries_of(path: Path) -> dict[str, dict[str, list[str]]]:
    result: dict[str, dict[str, list[str]]] = {}
    for section, entries in unit_entries(path.read_text()).items():
        for key, value in entries:
            result.setdefault(section, {}).setdefault(key, []).append(value)
    return result


def test_systemd_accepts_the_backup_service_and_timer(tmp_path: Path) -> None:
    verifier = shutil.which("systemd-analyze")
    if verifier is None:
        assert set(unit_entries(BACKUP_TIMER.read_text())) == {"Unit", "Timer", "Install"}
        assert set(unit_entries(BACKUP_UNIT.read_text())) == {"Unit", "Service"}
        return
    for path in (BACKUP_UNIT, BACKUP_TIMER):
        (tmp_path / path.name).write_text(path.read_text().replace(VENV_PYTHON, sys.executable))
    check = subprocess.run([verifier, "verify", "--man=no", str(tmp_path / BACKUP_TIMER.name),
                            str(tmp_path / BACKUP_UNIT.name)], capture_output=True, text=True, timeout=60)
    assert (check.returncode, check.stdout + check.stderr) == (0, ""), check.stderr


def test_the_backup_service_backs_up_the_bots_data_dir_as_its_user(unit: dict, tmp_path: Path) -> None:
    """Its commands, run here on a data dir and a backups dir of the test's (as systemd runs them:
    `%%` is a literal %): a new directory named by the time, a restorable backup; older ones pruned."""
    backup = entries_of(BACKUP_UNIT)
    assert one(backup, "Service", "User") == one(unit, "Service", "User")
    assert backup["Service"]["Environment"] == [v for v in unit["Service"]["Environment"] if "DATA_DIR" in v]
    assert one(unit, "Service", "StateDirectory") in one(backup, "Service", "StateDirectory").split()
    assert one(backup, "Service", "UMask") == "0077" and one(backup, "Service", "Type") == "oneshot"
    data, backups = tmp_path / "data", tmp_path / "backups"
    backups.mkdir()
    made_user = subprocess.run([sys.executable, "run.py", "--data-dir", str(data), "set-password", "admin"],
                               cwd=ROOT, input="a-long-password\n", capture_output=True, text=True, timeout=60)
    assert made_user.returncode == 0, made_user.stderr  # something to back up: a user in the journal

    def as_here(command: str) -> str:
        return (command.replace("%%", "%").replace(VENV_PYTHON, sys.executable)
                .replace("--config /etc/diamondbot/diamondbot.toml", f"--data-dir {data}")
                .replace("/var/lib/diamondbot-backups", str(backups)))

    [start] = shlex.split(one(backup, "Service", "ExecStart"))[2:]  # /bin/sh -c '…'
    done = subprocess.run(["/bin/sh", "-c", as_here(start)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [made] = backups.iterdir()
    assert re.fullmatch(r"20\d{6}-\d{6}", made.name) and list(made.glob("orders.journal.*"))
    old, other = backups / "20200101-000000", backups / "keep-me"
    old.mkdir(), other.mkdir()
    os.utime(old, (0, 0)), os.utime(other, (0, 0))
    pruned = subprocess.run(shlex.split(as_here(one(backup, "Service", "ExecStartPost"))), capture_output=True,
                            text=True, timeout=60)
    assert pruned.returncode == 0, pruned.stderr
    assert sorted(p.name for p in backups.iterdir()) == sorted([made.name, "keep-me"])
    timer = entries_of(BACKUP_TIMER)
    assert one(timer, "Timer", "Persistent") == "yes" and one(timer, "Install", "WantedBy") == "timers.target"


# --- the container image ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


def instructions(image: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in image.structure if i["instruction"] == name]


def test_the_image_builds_on_a_supported_python(image: DockerfileParser) -> None:
    [base] = instructions(image, "FROM")
    match = re.fullmatch(r"python:(3\.\d+)-slim-\w+", base)
    assert match is not None, f"pin the base image's Python and Debian release: {base}"
    classifiers = configparser.ConfigParser()
    classifiers.read(ROOT / "setup.cfg")
    requires = classifiers["options"]["python_requires"]
    assert requires == ">=3.11,<3.14" and match[1] in ("3.11", "3.12", "3.13")


def test_the_image_installs_the_project_and_so_its_neonize_pin(image: DockerfileParser) -> None:
    runs = " ".join(instructions(image, "RUN"))
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", runs), "install the project: setup.cfg pins neonize"
    assert "neonize==" not in runs and not re.search(r"pip install[^&]*\bneonize\b", runs)  # no second pin
    copied = {Path(source) for value in instructions(image, "COPY") for source in value.split()[:-1]}
    for source in copied:
        assert (ROOT / source).exists(), f"COPY of a path the repository does not have: {source}"
    packages = configparser.ConfigParser()
    packages.read(ROOT / "setup.cfg")
    wanted = {Path(name.rstrip("*")) for name in packages["options.packages.find"]["include"].split()}
    assert wanted | {Path("setup.cfg"), Path("pyproject.toml"), Path("README.md"), Path("run.py")} <= copied


def test_the_image_runs_under_an_init_that_reaps_as_a_user_that_owns_the_data(image: DockerfileParser) -> None:
    [entrypoint] = instructions(image, "ENTRYPOINT")
    assert orjson.loads(entrypoint)[:4] == ["/usr/bin/tini", "--", "python", "run.py"]
    assert re.search(r"apt-get install [^&]*\btini\b", " ".join(instructions(image, "RUN")))
    users = instructions(image, "USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    user = users[-1].split(":")[0]
    # USER comes after every RUN: nothing the bot runs is root's.
    order = [i["instruction"] for i in image.structure]
    assert max(n for n, name in enumerate(order) if name == "RUN") < order.index("USER")
    [volume] = instructions(image, "VOLUME")
    data_dir = orjson.loads(volume)[0]
    assert load_config(env=image.envs).bot.data_dir == Path(data_dir)
    assert f"install -d -o {user} -g {user} -m 0700 {data_dir}" in " ".join(instructions(image, "RUN"))


def test_the_image_exposes_nothing_and_the_panel_stays_on_loopback(image: DockerfileParser) -> None:
    assert instructions(image, "EXPOSE") == []
    config = load_config(env=image.envs)
    assert config.panel.host == "127.0.0.1"
    [health] = instructions(image, "HEALTHCHECK")
    assert "http://127.0.0.1:" in health and "/healthz" in health
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data"} <= set(ignored)  # no session keys or virtualenvs in the build context
