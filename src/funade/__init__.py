"""funade: container delivery from Dockerfile to healthy rollouts."""

__version__ = "0.1.0"
