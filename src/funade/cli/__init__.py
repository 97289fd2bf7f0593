"""funade.cli."""
