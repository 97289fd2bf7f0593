"""funade.adapters.store."""
