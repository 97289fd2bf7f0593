"""funade.engine."""
