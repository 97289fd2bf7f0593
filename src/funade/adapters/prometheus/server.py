"""The embedded Prometheus (Debian `prometheus`), run by funade for analysis on the local target.

It listens on 127.0.0.1 only, keeps its configuration and a short-lived TSDB under
``$FUNADE_HOME/prometheus``, scrapes every second (an analysis interval of a few seconds
needs several samples in its rate window) and is started and stopped like the embedded
registry: a pid file, a log file, and a wait until ``/-/ready`` answers.

What it scrapes comes from one file_sd JSON file that funade rewrites atomically
(:meth:`PrometheusServer.set_targets`); Prometheus watches the file and picks up changes
by itself, so the services controller can point it at the pods of Services labelled for
it without restarting or reloading anything. Each target's labels (``service``,
``namespace``, ``pod``, …) are attached to every series scraped from it, which is what
lets the seed's ``http_requests_total{service="…"}`` query select one Service's pods.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from funade.adapters.daemon import Daemon, DaemonError

__all__ = [
    "DEFAULT_ADDRESS",
    "PrometheusServer",
    "PrometheusStatus",
    "ServerError",
    "Target",
]

DEFAULT_ADDRESS = "127.0.0.1:9090"
SCRAPE_INTERVAL = "1s"
RETENTION = "2h"
JOB = "funade"

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class ServerError(Exception):
    """Prometheus could not be started, is not installed, or a target is invalid."""


@dataclass(frozen=True)
class Target:
    """One endpoint to scrape (``host:port``) and the labels every series from it carries."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics_path: str = "/metrics"

    def __post_init__(self) -> None:
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit():
            raise ServerError(f"scrape target {self.address!r}: expected HOST:PORT")
        for name in self.labels:
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ServerError(
                    f"scrape target {self.address}: {name!r} is not a label name funade can set "
                    "(letters, digits and _, not starting with a digit or __)"
                )
        if not self.metrics_path.startswith("/"):
            raise ServerError(f"scrape target {self.address}: metrics path {self.metrics_path!r} must start with /")


def _file_sd(targets: Iterable[Target]) -> list[dict[str, object]]:
    """The file_sd groups: one per target, sorted so the same targets always write the same bytes."""
    groups: list[dict[str, object]] = []
    for target in sorted(targets, key=lambda t: (t.address, t.metrics_path, sorted(t.labels.items()))):
        labels = dict(sorted(target.labels.items()))
        if target.metrics_path != "/metrics":
            labels["__metrics_path__"] = target.metrics_path
        groups.append({"targets": [target.address], "labels": labels})
    return groups


@dataclass(frozen=True)
class PrometheusStatus:
    """Whether the embedded Prometheus runs, where, with which process, and where it keeps things."""

    running: bool
    address: str
    pid: int | None
    storage: Path
    targets_file: Path


class PrometheusServer:
    """Starts, stops and checks the Prometheus of one funade home, and sets what it scrapes."""

    def __init__(
        self,
        home: Path,
        address: str = DEFAULT_ADDRESS,
        *,
        scrape_interval: str = SCRAPE_INTERVAL,
        retention: str = RETENTION,
    ) -> None:
        host = address.rpartition(":")[0]
        if host not in _LOOPBACK:
            raise ServerError(f"{address}: the embedded Prometheus listens on loopback only (127.0.0.1)")
        self.home = home
        self.address = address
        self.scrape_interval = scrape_interval
        self.retention = retention
        self.dir = home / "prometheus"
        self.storage = self.dir / "data"
        self.config = self.dir / "prometheus.yml"
        self.targets_dir = self.dir / "targets"
        self.targets_file = self.targets_dir / "funade.json"
        self.log = self.dir / "prometheus.log"
        self.pid_file = self.dir / "prometheus.pid"
        self.address_file = self.dir / "address"
        self.daemon = Daemon("Prometheus", self.pid_file, self.log)

    @classmethod
    def of_home(cls, home: Path) -> PrometheusServer:
        """The Prometheus of ``home`` at the address it was last started with."""
        try:
            address = (home / "prometheus" / "address").read_text().strip()
        except OSError:
            return cls(home)
        return cls(home, address or DEFAULT_ADDRESS)

    @property
    def url(self) -> str:
        """The base URL the analysis provider queries."""
        return f"http://{self.address}"

    def _config(self) -> dict[str, object]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                # A scrape must finish within the interval; Prometheus refuses a longer timeout.
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": "15s",
            },
            "scrape_configs": [
                {
                    "job_name": JOB,
                    # Our labels win over same-named labels an app exposes (those become exported_*).
                    "honor_labels": False,
                    # Prometheus watches the file; the refresh is a backstop for a missed event.
                    "file_sd_configs": [{"files": [str(self.targets_dir / "*.json")], "refresh_interval": "5s"}],
                }
            ],
        }

    def _write_config(self) -> bool:
        """Write the configuration; True when it changed."""
        text = yaml.safe_dump(self._config(), sort_keys=False)
        with contextlib.suppress(OSError):
            if self.config.read_text() == text:
                return False
        _write_atomically(self.config, text)
        return True

    def set_targets(self, targets: Iterable[Target]) -> bool:
        """Scrape exactly ``targets`` from now on; True when that changed what is scraped.

        The file is replaced atomically (Prometheus never reads half of it) and left alone
        when the targets are the same, so calling this on every resync costs nothing.
        """
        text = json.dumps(_file_sd(targets), indent=2) + "\n"
        with contextlib.suppress(OSError):
            if self.targets_file.read_text() == text:
                return False
        _write_atomically(self.targets_file, text)
        return True

    def current_targets(self) -> list[Target]:
        """The targets the file holds now (empty when none were set)."""
        try:
            groups = json.loads(self.targets_file.read_text())
        except (OSError, ValueError):
            return []
        found: list[Target] = []
        for group in groups:
            labels = dict(group.get("labels") or {})
            path = labels.pop("__metrics_path__", "/metrics")
            found.extend(Target(address, labels, path) for address in group.get("targets", []))
        return found

    def pid(self) -> int | None:
        """Prometheus' pid when it runs, else None."""
        return self.daemon.pid()

    def answers(self) -> bool:
        """Whether some Prometheus answers on our address (ready or still starting)."""
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        """Whether the Prometheus on our address is ready to serve queries."""
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _is_ours(self) -> bool:
        """Whether the server answering on our address runs with our configuration file."""
        try:
            flags = httpx.get(f"{self.url}/api/v1/status/flags", timeout=2.0).json()["data"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False
        return bool(flags.get("config.file") == str(self.config))

    def status(self) -> PrometheusStatus:
        pid = self.pid()
        return PrometheusStatus(pid is not None and self.ready(), self.address, pid, self.storage, self.targets_file)

    def up(self, timeout: float = 60.0) -> PrometheusStatus:
        """Start Prometheus unless it runs; wait until it is ready.

        A running server whose configuration changed (another scrape interval) re-reads
        it on SIGHUP; its targets are never touched here.
        """
        pid = self.pid()
        if pid is not None and self.answers():
            if self._write_config():
                os.kill(pid, signal.SIGHUP)
            return self.status()
        if self.answers():
            whose = "a Prometheus of this home whose pid file is gone" if self._is_ours() else "another Prometheus"
            raise ServerError(f"{whose} already answers on {self.address}: stop it or choose another address")
        binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
        if binary is None:
            raise ServerError("Prometheus is not installed: apt-get install prometheus (make setup does it)")
        self.storage.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not self.targets_file.exists():
            self.set_targets([])
        self.address_file.write_text(self.address + "\n")
        argv = [
            binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.storage}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={self.address}",
            "--log.level=info",
        ]
        try:
            self.daemon.start(argv, self.ready, timeout)
        except DaemonError as exc:
            raise ServerError(f"{exc} (address {self.address})") from exc
        return self.status()

    def down(self, timeout: float = 30.0) -> bool:
        """Stop Prometheus; True when it was running. Its data stays (it expires after the retention)."""
        return self.daemon.stop(timeout)


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
