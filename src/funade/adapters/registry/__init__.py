"""Registries: the embedded distribution registry (and, later, the OCI client)."""
