"""Prometheus: the query client analysis measures with, and the embedded server `funade up` can start."""
