"""gateway/sandbox."""
