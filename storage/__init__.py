"""Durable files: checksummed append-only journals, atomic snapshots, locks, the inbox."""
