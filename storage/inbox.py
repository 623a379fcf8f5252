"""The bot's durable inbox: every inbound message worth handling is on disk before the
transport acknowledges it, and stays "unhandled" until its GroupActor made it durable as an
order (or decided it is nothing). A crash in between is recovered at the next start.

Thread-safe: transports record from their own threads, the GatewayActor marks handled.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable, Sequence

import orjson

from domain.chat import ChatMessage, Source
from storage.store import Store

STORE_NAME = "inbox"


def message_to_dict(m: ChatMessage) -> dict[str, Any]:
    return {
        "group_id": m.group_id, "group_name": m.group_name, "message_id": m.message_id,
        "sender": m.sender, "sender_alt": m.sender_alt, "sender_name": m.sender_name,
        "text": m.text, "timestamp": m.timestamp, "from_me": m.from_me,
        "source": m.source.value, "quoted_id": m.quoted_id,
    }


def message_from_dict(d: dict[str, Any], source: Source | None = None) -> ChatMessage:
    return ChatMessage(
        group_id=d["group_id"], group_name=d.get("group_name", ""), message_id=d["message_id"],
        sender=d["sender"], sender_alt=d.get("sender_alt", ""), sender_name=d.get("sender_name", ""),
        text=d["text"], timestamp=float(d["timestamp"]), from_me=bool(d.get("from_me", False)),
        source=source or Source(d.get("source", "live")), quoted_id=d.get("quoted_id", ""),
    )


class Inbox:
    def __init__(self, store: Store, entries: dict[int, dict[str, Any]], next_seq: int) -> None:
        self._store = store
        self._entries = entries  # seq -> message dict, unhandled only
        self._next_seq = next_seq
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, data_dir: Path) -> Inbox:
        """Load the inbox; raises StorageError naming the file if it cannot be read."""
        store, data, records = Store.open(data_dir, STORE_NAME)
        entries: dict[int, dict[str, Any]] = {}
        next_seq = 1
        if data is not None:
            next_seq = int(data.get("next_seq", 1))
            entries = {int(s): m for s, m in data.get("entries", {}).items()}
        for raw in records:
            rec = orjson.loads(raw)
            if rec.get("t") == "in":
                entries[int(rec["s"])] = rec["m"]
                next_seq = max(next_seq, int(rec["s"]) + 1)
            elif rec.get("t") == "done":
                for s in rec["s"]:
                    entries.pop(int(s), None)
        return cls(store, entries, next_seq)

    def record(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Append and fsync; returns the inbox sequence number of each message."""
        if not messages:
            return []
        with self._lock:
            seqs = list(range(self._next_seq, self._next_seq + len(messages)))
            dicts = [message_to_dict(m) for m in messages]
            payloads = [orjson.dumps({"t": "in", "s": seq, "m": d}) for seq, d in zip(seqs, dicts)]
            self._store.append(payloads)
            self._store.sync()
            # Only once durable: a failed record must not leave an entry that is not on disk.
            self._entries.update(zip(seqs, dicts))
            self._next_seq += len(messages)
            return seqs

    def mark_handled(self, seqs: Iterable[int]) -> None:
        """Forget handled entries. Not fsynced: if lost, they are replayed and deduplicated."""
        with self._lock:
            done = [s for s in seqs if self._entries.pop(s, None) is not None]
            if done:
                self._store.append([orjson.dumps({"t": "done", "s": done})])
            if self._store.journal_bytes > max(1 << 20, 4 * self._store.snapshot_bytes):
                self._store.compact({"next_seq": self._next_seq,
                                     "entries": {str(s): m for s, m in self._entries.items()}})

    def unhandled(self, group_id: str | None = None) -> list[tuple[int, ChatMessage]]:
        """Entries recorded but not handled, oldest first, as Source.INBOX messages."""
        with self._lock:
            return [(s, message_from_dict(m, Source.INBOX)) for s, m in sorted(self._entries.items())
                    if group_id is None or m["group_id"] == group_id]

    def drop_older_than(self, horizon: float) -> int:
        """Entries too old to become orders are marked handled."""
        with self._lock:  # transports record from their threads: never walk the dict unlocked
            old = [s for s, m in self._entries.items() if float(m["timestamp"]) < horizon]
        self.mark_handled(old)
        return len(old)

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._store.sync()
                self._store.close()
