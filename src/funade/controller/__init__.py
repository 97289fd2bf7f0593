"""funade.controller."""
