"""Documentation assets."""
