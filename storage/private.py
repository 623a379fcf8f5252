"""The data directory is its owner's alone: customers' phone numbers, keys and orders live there.

run.py sets the umask to 077 so that everything created from then on is private; `tighten` fixes
what an older version (or a copy made with other modes) left readable by others.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

UMASK = 0o077  # new directories 0700, new files 0600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def tighten(directory: str | os.PathLike[str]) -> list[Path]:
    """Take group and other permissions off `directory` and everything in it; returns what changed.

    Symbolic links are neither followed nor changed. A path that cannot be changed (another
    owner) is logged and left as it is.
    """
    root = Path(directory)
    changed: list[Path] = []
    if not root.is_dir() or root.is_symlink():
        return changed
    _tighten_one(root, changed)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            _tighten_one(Path(dirpath) / name, changed)
    return changed


def _tighten_one(path: Path, changed: list[Path]) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return  # removed meanwhile (a temp file)
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & _OTHERS:
        return
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~_OTHERS)
    except FileNotFoundError:
        return
    except OSError as e:
        log.warning("cannot make %s private (%s); others may read it", path, e.strerror or e)
        return
    changed.append(path)
