"""funade.adapters."""
