"""funade.core."""
