"""Which loopback ports are free on this machine: Services must not take a port another program holds."""

from __future__ import annotations

import socket

__all__ = ["loopback_port_free"]


def loopback_port_free(port: int) -> bool:
    """Whether 127.0.0.1:PORT can be bound now (nothing listens there, funade's own HAProxy included)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
