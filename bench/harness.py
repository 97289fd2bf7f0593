"""What every benchmark here shares: run the steps, always clean up, stop on Ctrl-C or SIGTERM.

A benchmark starts servers, containers and registries of its own; they must go whether
it finishes, fails, or is interrupted (a second Ctrl-C during the cleanup is ignored).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console

__all__ = ["guarded", "testapp_deployment"]


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP behave like Ctrl-C, so cleanup always runs."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def guarded(
    steps: Callable[[], Any],
    cleanup: Callable[[], list[str]],
    failures: tuple[type[BaseException], ...],
    err: Console,
) -> tuple[Any, int]:
    """Run ``steps`` and return (their result, 0); (None, 130) when interrupted, (None, 1) on ``failures``.

    ``cleanup`` runs in every case and returns the problems it met, which are printed.
    """
    outcome: Any = None
    code = 0
    with _terminate_as_interrupt():
        try:
            outcome = steps()
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            code = 130
        except failures as exc:
            err.print(f"[red]benchmark failed:[/red] {exc}")
            code = 1
        finally:
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                err.print("cleaning up…")
                for problem in cleanup():
                    err.print(f"[yellow]cleanup: {problem}[/yellow]")
            finally:
                signal.signal(signal.SIGINT, old)
    return outcome, code


def testapp_deployment(
    name: str, namespace: str, replicas: int, image: str, startup_delay: str, port: int = 8080
) -> dict[str, Any]:
    """A Deployment of the test app: surge 1, unavailable 0, a 1 s readiness probe, a named http port."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "STARTUP_DELAY", "value": startup_delay}],
                            "ports": [{"name": "http", "containerPort": port}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 1},
                        }
                    ]
                },
            },
        },
    }
