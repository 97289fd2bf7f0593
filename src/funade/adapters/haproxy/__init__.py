"""HAProxy, the local target's data plane: the process funade owns and its runtime API.

`HAProxy` starts, reloads, drives and stops one HAProxy process per funade home and
applies `funade.core.traffic.DataPlane` values to it; `RuntimeClient` speaks the runtime
API on a unix socket; `FakeProxy` stands in for both in unit tests.
"""

from typing import TYPE_CHECKING

from .fake import FakeProxy
from .process import HAProxy, HAProxyError, find_binary
from .runtime import CommandError, Proc, RuntimeClient, parse_show_proc, parse_stat

__all__ = [
    "CommandError",
    "FakeProxy",
    "HAProxy",
    "HAProxyError",
    "Proc",
    "RuntimeClient",
    "find_binary",
    "parse_show_proc",
    "parse_stat",
]

if TYPE_CHECKING:
    from funade.core import traffic

    def _both_are_proxies(real: HAProxy, fake: FakeProxy) -> list[traffic.Proxy]:
        return [real, fake]
