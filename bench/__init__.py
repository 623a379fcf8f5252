"""Benchmarks for SPEC §9 (run them from the repository root: `python -m bench.<name>`)."""
