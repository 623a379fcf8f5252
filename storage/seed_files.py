"""Reading the old bot's files for `run.py import-json`: which files, in which encoding, and
whether each holds what the import expects. Nothing here writes anything.

The old Node bots kept `database.json` (groups, their entries, sometimes payments) and, in
the bots with reseller balances, `payment-transactions.json` beside it. Shops copy them off
Windows machines, so a file may be UTF-8 with or without a byte-order mark, or UTF-16/UTF-32
with one, with CRLF line ends. A file in any other encoding is refused, saying what it looks
like: the import never guesses a code page (a wrong guess would change names and notes).
"""

from __future__ import annotations

import codecs
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

DATABASE_NAME = "database.json"
PAYMENTS_NAME = "payment-transactions.json"
# Other files the old bots kept beside database.json that hold money; named in the report
# when found in the folder, since the import does not read them.
OTHER_MONEY_FILES = ("payments.json", "users.json")
# The largest file the import reads (it is parsed in memory): far above any shop's database.json.
MAX_FILE_BYTES = 256 * 1024 * 1024
# Deeper than this no record of the old bots goes; orjson writes at most 254 levels.
MAX_DEPTH = 64
EXPECTED = ('the seed\'s database.json: a JSON object {"groups": {"<group id>@g.us": {"groupName": …, '
            '"rate": …, "entries": [ … ]}, …}, "payments": [ … ]}')
EXPECTED_PAYMENTS = ("the old bot's payment-transactions.json: a JSON array of payments [{\"id\", \"userId\" or "
                     "\"phone\", \"amount\", \"method\", \"type\", \"status\", \"orderId\", \"createdAt\"}, …], or "
                     "an object holding one as \"payments\" or \"transactions\"")
ENCODINGS = "UTF-8 (with or without a byte-order mark), or UTF-16 or UTF-32 with a byte-order mark"
_SAVE_AS_UTF8 = (f"The import reads {ENCODINGS}: open the file in a text editor and save it as UTF-8 (Notepad: "
                 "File → Save as → Encoding: UTF-8), then run the import again")
# Byte-order marks, longest first: UTF-32-LE's begins with UTF-16-LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 (little-endian)"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 (big-endian)"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8 with a byte-order mark"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 (little-endian)"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 (big-endian)"),
)
# How JSON text starts without a BOM in each encoding: its first character is ASCII (RFC 4627 §3).
_NO_BOM = (
    (lambda b: b[1:4] == b"\0\0\0", "UTF-32 (little-endian)"),
    (lambda b: b[:3] == b"\0\0\0", "UTF-32 (big-endian)"),
    (lambda b: b[1:2] == b"\0", "UTF-16 (little-endian)"),
    (lambda b: b[:1] == b"\0", "UTF-16 (big-endian)"),
)


class SeedImportError(Exception):
    """The import did not run; the message says why and what to do. exit_code: 1 or 2."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class SeedFile:
    """One file read: its parsed document and how its text was encoded."""

    path: Path
    doc: Any
    encoding: str  # "UTF-8", "UTF-16 (little-endian)" …


@dataclass(slots=True)
class Sources:
    """What one import reads: the database file, the payments file if any, and what was noticed."""

    database: Path
    payments: Path | None = None
    notes: list[str] = field(default_factory=list)


def sources(path: str | os.PathLike[str], payments: str | os.PathLike[str] | None = None) -> Sources:
    """The files to read for `import-json PATH [--payments FILE]`; PATH may be the old bot's folder
    (its database.json, and its payment-transactions.json when there)."""
    path = Path(path)
    explicit = Path(payments) if payments is not None else None
    if not path.is_dir():
        return Sources(path, explicit)
    database = path / DATABASE_NAME
    if not database.is_file():
        raise SeedImportError(f"{path} is a folder without a {DATABASE_NAME}: give the old bot's folder that holds "
                              f"it (its config folder), or the file itself")
    found = Sources(database)
    beside = path / PAYMENTS_NAME
    if explicit is not None:
        found.payments = explicit
        if beside.is_file() and beside.resolve() != explicit.resolve():
            found.notes.append(f"{beside} was not read: --payments names {explicit}")
    elif beside.is_file():
        found.payments = beside
    else:
        found.notes.append(f"{path} has no {PAYMENTS_NAME}: no payments file read")
    for name in OTHER_MONEY_FILES:
        if (path / name).is_file():
            found.notes.append(f"{path / name} was not read: the import reads {DATABASE_NAME} and {PAYMENTS_NAME} "
                               f"only (pass another payments file with --payments)")
    return found


def read_json(path: Path, expected: str, blank_as: list[Any] | None = None) -> SeedFile:
    """A file's JSON document, numbers with a fraction as exact Decimals (`blank_as`, if given, for
    a file of nothing but white space); SeedImportError (exit 1)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            # It is parsed in memory: a file this size would end in MemoryError, not an import.
            raise SeedImportError(f"{path} is {size / 2**20:.0f} MB, more than the {MAX_FILE_BYTES // 2**20} MB "
                                  f"the import reads; the old bot's files are far smaller: is it the right "
                                  f"file? Expected {expected}")
        raw = path.read_bytes()
    except OSError as e:
        raise SeedImportError(f"cannot read {path}: {e.strerror or e}") from None
    except MemoryError:
        raise SeedImportError(f"{path} does not fit in memory; expected {expected}") from None
    text, encoding = decode(path, raw)
    if blank_as is not None and not text.strip():
        return SeedFile(path, blank_as, encoding)
    try:
        # parse_float: 2.3 stays the Decimal 2.3 its text says, never the binary float near it.
        doc = json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except json.JSONDecodeError as e:
        raise SeedImportError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                              f"expected {expected}") from None
    except RecursionError:
        raise SeedImportError(f"{path} is nested too deeply to be the old bot's file; expected {expected}") from None
    if _depth(doc) > MAX_DEPTH:
        raise SeedImportError(f"{path} is nested more than {MAX_DEPTH} levels deep, which no file of the old bot "
                              f"is; expected {expected}")
    return SeedFile(path, doc, encoding)


def decode(path: Path, raw: bytes) -> tuple[str, str]:
    """(the text, the encoding's name) of a file in one of ENCODINGS; SeedImportError for any other."""
    for bom, codec, name in _BOMS:
        if raw.startswith(bom):
            body = raw[len(bom):]
            try:
                return body.decode(codec), name
            except UnicodeDecodeError as e:
                why = _not_utf8(body, e) if codec == "utf-8" else f"starts with the byte-order mark of {name} but " \
                    f"is not valid {name} ({e.reason} at byte {e.start + len(bom)})"
                raise SeedImportError(f"{path} {why}. {_SAVE_AS_UTF8}") from None
    for looks, name in _NO_BOM:
        # NUL bytes are valid UTF-8 but never begin JSON text: UTF-16/32 without its mark.
        if len(raw) >= 4 and looks(raw[:4]):
            raise SeedImportError(f"{path} looks like {name} text without a byte-order mark, which cannot be told "
                                  f"apart from other encodings for sure. {_SAVE_AS_UTF8}")
    try:
        return raw.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as e:
        raise SeedImportError(f"{path} {_not_utf8(raw, e)}. {_SAVE_AS_UTF8}") from None


def _not_utf8(raw: bytes, e: UnicodeDecodeError) -> str:
    """Where the text stops being UTF-8, and what text like that usually is."""
    line = raw.count(b"\n", 0, e.start) + 1
    column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
    bad = raw[e.start:e.start + 1].hex().upper()
    return (f"is not UTF-8: byte 0x{bad} on line {line}, column {column} cannot be UTF-8 ({e.reason}). Text "
            "saved as \"ANSI\" (a Windows code page such as windows-1252) or in another legacy encoding looks like "
            "this, and which one it is cannot be told for sure")


def _depth(doc: Any) -> int:
    """How deep a parsed JSON document nests (iteratively: no recursion limit to hit)."""
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        stack.extend((child, level + 1) for child in children)
    return deepest


def json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def load_seed(path: str | os.PathLike[str]) -> SeedFile:
    """The old bot's database.json; SeedImportError (exit 1) when it is not one."""
    seed = read_json(Path(path), EXPECTED)
    doc = seed.doc
    if not isinstance(doc, dict):
        raise SeedImportError(f"{path} holds a JSON {json_type(doc)}; expected {EXPECTED}")
    if {"format", "journal_gen", "data"} <= doc.keys():
        raise SeedImportError(f"{path} is a snapshot of this bot's own data directory, not the seed's "
                              f"database.json; expected {EXPECTED}")
    if not isinstance(doc.get("groups"), dict):
        found = "no \"groups\"" if "groups" not in doc else f"\"groups\" is a JSON {json_type(doc['groups'])}"
        raise SeedImportError(f"{path} has {found}; expected {EXPECTED}")
    return seed


def load_payments(path: str | os.PathLike[str]) -> tuple[SeedFile, str]:
    """The old bot's payment-transactions.json and the key of its list of payments in it ("" when
    the document is the list); SeedImportError (exit 1) when it is not one. An empty file is no
    payments (the old bots create it empty)."""
    path = Path(path)
    found = read_json(path, EXPECTED_PAYMENTS, blank_as=[])
    doc = found.doc
    if isinstance(doc, list):
        return found, ""
    if isinstance(doc, dict):
        lists = [k for k in ("payments", "transactions") if isinstance(doc.get(k), list)]
        if len(lists) == 1:
            return found, lists[0]
        if len(lists) == 2:
            raise SeedImportError(f"{path} holds both \"payments\" and \"transactions\": which of them are the "
                                  f"payments cannot be told; give a file with one of them. Expected "
                                  f"{EXPECTED_PAYMENTS}")
    raise SeedImportError(f"{path} holds a JSON {json_type(doc)} without a list of payments; expected "
                          f"{EXPECTED_PAYMENTS}")
