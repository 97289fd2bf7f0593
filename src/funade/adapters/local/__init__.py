"""funade.adapters.local."""
