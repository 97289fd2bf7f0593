"""funade.api."""
