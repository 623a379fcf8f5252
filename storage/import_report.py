"""What an import did, for the operator: the report (printed, and kept in the data dir's logs)
and the progress bar while it runs."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from collections.abc import Iterable
from typing import TextIO

PROGRESS_LINE_EVERY = 1000  # without a terminal: one progress line per this many items


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "group 1203…@g.us (name) entry 1765040834207", "payment #3 (id …)"
    what: str
    # "refused" (not imported: it cannot come in as the seed had it), "skipped" (a duplicate),
    # "flagged" (imported; reconciliation raises `invalid`), "note"
    kind: str


@dataclass(slots=True)
class Report:
    source: str = ""
    payments_source: str = ""  # the payments file, if one was read
    data_dir: str = ""
    groups_created: list[str] = field(default_factory=list)  # "B Karim Telecom (<id>)"
    groups_updated: list[str] = field(default_factory=list)
    groups_unchanged: list[str] = field(default_factory=list)
    groups_skipped: int = 0
    groups_without_rate: list[str] = field(default_factory=list)  # the file's groups the bot has no rate for
    orders_imported: int = 0
    orders_flagged: int = 0
    orders_already: int = 0
    orders_refused: int = 0
    orders_duplicate: int = 0
    deliveries_due: int = 0  # approved orders whose delivery message the bot will now send
    payments_imported: int = 0
    payments_void: int = 0  # imported, but void: the old bot did not count them
    payments_already: int = 0
    payments_refused: int = 0
    payments_duplicate: int = 0
    settings_refused: int = 0  # a group's setting (its due limit) that could not be taken as written
    notes: Counter[str] = field(default_factory=Counter)  # conversions that need no one's attention
    # ("orders"|"groups"|"payments", field name) -> how many records keep it in "imported"
    kept: Counter[tuple[str, str]] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)  # what was read and how ("database.json (UTF-16 …)")
    unread: list[str] = field(default_factory=list)  # parts of the files the import has no place for
    problems: list[Problem] = field(default_factory=list)
    log_path: str = ""

    def problem(self, where: str, what: str, kind: str) -> None:
        self.problems.append(Problem(where, what, kind))

    def keep(self, kind: str, fields: Iterable[str]) -> None:
        """Count fields kept verbatim on a record of `kind` ("groups", "orders", "payments")."""
        for name in fields:
            self.kept[(kind, name)] += 1

    @property
    def refused(self) -> list[Problem]:
        return [p for p in self.problems if p.kind == "refused"]


class Progress:
    """A progress bar on a terminal; elsewhere one line per PROGRESS_LINE_EVERY items."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.done = 0
        self.drawn = 0.0

    def update(self, n: int = 1) -> None:
        before, self.done = self.done, self.done + n
        if self.tty:
            if time.monotonic() - self.drawn >= 0.1 or self.done >= self.total:
                self._draw()
        elif self.done // PROGRESS_LINE_EVERY > before // PROGRESS_LINE_EVERY:
            self.stream.write(f"{self.label}: {self.done // PROGRESS_LINE_EVERY * PROGRESS_LINE_EVERY}"
                              f"/{self.total}\n")
            self.stream.flush()

    def _draw(self) -> None:
        self.drawn = time.monotonic()
        width = 30
        share = self.done / self.total if self.total else 1.0
        bar = "█" * int(share * width) + "░" * (width - int(share * width))
        self.stream.write(f"\r{self.label} {bar} {share:4.0%} {self.done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def write_log(data_dir: Path, report: Report, tz: tzinfo, now: float) -> Path:
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(now, tz).strftime("%Y%m%d-%H%M%S")
    n = 1
    while True:
        path = logs / (f"import-{stamp}.txt" if n == 1 else f"import-{stamp}-{n}.txt")
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(format_report(report, full=True) + "\n")
            return path
        except FileExistsError:
            n += 1


def format_report(report: Report, full: bool = False) -> str:
    """The summary; unless `full`, long lists are cut short with a pointer to the report file."""
    r = report

    def listed(items: list[str], limit: int) -> list[str]:
        if full or len(items) <= limit:
            return items
        return items[:limit] + [f"  … and {len(items) - limit} more in {r.log_path or 'the report file'}"]

    lines = [f"Imported {r.source or 'the seed file'} into {r.data_dir or 'the data directory'}"]
    if r.files:
        lines.append("  read:     " + "; ".join(r.files))
    groups = [f"{len(r.groups_created)} created", f"{len(r.groups_updated)} updated",
              f"{len(r.groups_unchanged)} unchanged"]
    if r.groups_skipped:
        groups.append(f"{r.groups_skipped} unreadable")
    lines.append("  groups:   " + ", ".join(groups))
    lines.extend(listed([f"            created {g}" for g in r.groups_created], 20))
    lines.extend(listed([f"            updated {g}" for g in r.groups_updated], 20))
    flagged = f" ({r.orders_flagged} flagged invalid for review)" if r.orders_flagged else ""
    lines.append(f"  orders:   {r.orders_imported} imported{flagged}; {r.orders_refused} NOT imported; skipped: "
                 f"{r.orders_already} already imported, {r.orders_duplicate} duplicate")
    void = f" ({r.payments_void} of them void: not counted, as in the old bot)" if r.payments_void else ""
    lines.append(f"  payments: {r.payments_imported} imported{void}; {r.payments_refused} NOT imported; skipped: "
                 f"{r.payments_already} already imported, {r.payments_duplicate} duplicate")
    if not r.orders_imported and not r.payments_imported and not r.groups_created and not r.groups_updated:
        lines.append("  Nothing new to import: everything readable in the file is already here.")
    if r.deliveries_due:
        lines.append(f"  {r.deliveries_due} approved orders have no delivery recorded in the seed: the bot will "
                     "send their delivery message when it starts.")
    if r.notes:
        lines.append("Conversions:")
        lines.extend(f"  {what}" + (f" ({n})" if n > 1 else "") for what, n in r.notes.items())
    if r.kept:
        lines.append("Kept as they were (fields Diamond Bot has no use for, in each record's \"imported\"):")
        for kind in ("groups", "orders", "payments"):
            names = [f"{name} ({n})" for (k, name), n in sorted(r.kept.items()) if k == kind]
            if names:
                lines.append(f"  {kind}: " + ", ".join(names))
    if r.unread:
        lines.append("Not read:")
        lines.extend(f"  {what}" for what in r.unread)
    others = [p for kind in ("skipped", "flagged", "note") for p in r.problems if p.kind == kind]
    if others:
        lines.append(f"Problems ({len(others)}):")
        lines.extend(listed([f"  [{p.kind}] {p.where}: {p.what}" for p in others], 200))
    if r.groups_without_rate:
        lines.append(f"WITHOUT A RATE ({len(r.groups_without_rate)}): set each one's rate on the panel's Groups page "
                     "(their orders are answered \"rate not set yet\" until then):")
        lines.extend(listed([f"  {g}" for g in r.groups_without_rate], 200))
    if r.refused:
        # Last, where the eye lands: what did not come in and has to be entered another way.
        lines.append(f"NOT IMPORTED ({len(r.refused)}): these cannot come in as the seed had them, and were left "
                     "out rather than changed. Correct them in the file and run the import again (what came in "
                     "is not imported twice), or enter them in the panel:")
        lines.extend(listed([f"  {p.where}: {p.what.removeprefix('not imported: ')}" for p in r.refused], 200))
    if not full and r.log_path:
        lines.append(f"This report is also in {r.log_path}")
    return "\n".join(lines)


def not_imported(report: Report) -> str:
    """What the import left out, counted by kind: "1 group, 9 entries and 5 payments"."""
    counts = [(report.groups_skipped, "group", "groups"), (report.orders_refused, "entry", "entries"),
              (report.payments_refused, "payment", "payments"),
              (report.settings_refused, "group setting", "group settings")]
    parts = [f"{n} {one if n == 1 else many}" for n, one, many in counts if n]
    if not parts:
        return "nothing"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
