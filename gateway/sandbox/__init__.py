"""The transport to the sandbox chat server (the server itself is the top-level `sandbox` package)."""
